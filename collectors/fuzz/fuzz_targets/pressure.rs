//! The PSI parsing the IO pressure collector does (procfs-core's parser behind our guard):
//! never a panic, and a value only if it is a percentage.
#![no_main]

#[path = "../../src/psi.rs"]
mod psi;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(share) = psi::some_avg10(text)
    {
        assert!((0.0..=100.0).contains(&share), "{share}");
    }
});
