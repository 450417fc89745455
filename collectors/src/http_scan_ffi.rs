//! The HTTP classifier in bpf/http_scan.h compiled for the host (bpf/http_scan_host.c),
//! called through FFI: the tests and the fuzz target run the very code the BPF program runs.

use std::os::raw::c_int;

/// Mirrors `struct scope_http_found` in bpf/http_scan_host.c.
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) requests: u32,
    pub(crate) ncodes: u32,
    pub(crate) codes: [u16; 8],
    pub(crate) single_pass: u32,
    pub(crate) next_message: u32,
}

unsafe extern "C" {
    fn scope_http_scan(
        buf: *const u8,
        len: u32,
        dir: c_int,
        steps_only: c_int,
        out: *mut Found,
    ) -> c_int;
    fn scope_http_could_start_request(buf: *const u8) -> c_int;
}

/// Whether a connection whose first bytes are `first8` may carry an HTTP/1 request: the
/// BPF program lets a server's end go when not.
pub(crate) fn could_start_request(first8: &[u8; 8]) -> bool {
    // SAFETY: the C side reads exactly the 8 bytes of `first8`.
    unsafe { scope_http_could_start_request(first8.as_ptr()) != 0 }
}

/// Scans `buffer` as the BPF program scans a syscall buffer (with `steps_only`, without
/// trying the single pass first). Returns the C function's status (0 skipped by the
/// prefilter, 1 scanned, -1 out of steps: a bug) and what it found.
pub(crate) fn scan(buffer: &[u8], writing: bool, steps_only: bool) -> (c_int, Found) {
    let mut found = Found::default();
    let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
    // SAFETY: `buffer` is valid for `len` bytes (the C side reads at most its scan bound
    // of them) and `found` is a valid, exclusive out pointer to a struct with the C layout.
    let status = unsafe {
        scope_http_scan(
            buffer.as_ptr(),
            len,
            c_int::from(writing),
            c_int::from(steps_only),
            &raw mut found,
        )
    };
    (status, found)
}
