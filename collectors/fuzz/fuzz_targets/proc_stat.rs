//! `/proc/stat` parsing and the shares computed from two readings: never a panic, and every
//! share a number from 0 to 100, the three adding up to at most 100.
#![no_main]

#[expect(dead_code, reason = "only parse and shares_since are fuzzed")]
#[path = "../../src/cpu_times.rs"]
mod cpu_times;
#[expect(dead_code, reason = "cpu_times names it; the fuzzer reads no files")]
#[path = "../../src/shared_reading.rs"]
mod shared_reading;

use cpu_times::CpuTimes;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The input is two readings, split at the first NUL.
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (first, second) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let (Ok(before), Ok(after)) = (CpuTimes::parse(first), CpuTimes::parse(second)) else {
        return;
    };
    if let Some(shares) = after.shares_since(&before) {
        for share in [shares.iowait, shares.idle, shares.steal] {
            assert!((0.0..=100.0).contains(&share), "{shares:?}");
        }
        assert!(shares.iowait + shares.idle + shares.steal <= 100.0 + 1e-9);
    }
});
