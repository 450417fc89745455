//! The HTTP classifier the BPF program runs (bpf/http_scan.h, compiled for the host): on
//! any buffer, in either direction, the scan ends within the program's step limit, and
//! the single pass and the steps alone agree on what they count and where the next
//! message starts; and a server end whose first read counts requests is never let go.
#![no_main]

#[path = "../../src/http_scan_ffi.rs"]
mod http_scan_ffi;

use http_scan_ffi::{Found, could_start_request, scan};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for writing in [false, true] {
        let (status, single) = scan(data, writing, false);
        assert!(status >= 0, "out of steps: {data:?}");
        let (_, steps) = scan(data, writing, true);
        if single.single_pass == 1 {
            let counted = |f: &Found| (f.requests, f.ncodes, f.codes, f.next_message);
            assert_eq!(counted(&single), counted(&steps), "{data:?}");
        }
        assert!(single.ncodes <= 8);
        // A server end whose first read counts requests is never let go.
        if !writing && single.requests > 0 {
            let first8: &[u8; 8] = data[..8].try_into().expect("a counted read has 8 bytes");
            assert!(could_start_request(first8), "{data:?}");
        }
    }
});
