//! Pressure stall information (`/proc/pressure/*`): the "some" avg10 share, checked.

use procfs_core::FromRead;
use procfs_core::IoPressure;

/// The `some avg10` share of a PSI file's text: a percentage from 0 to 100, with the
/// kernel's two decimals.
///
/// procfs-core (0.17 and 0.18) slices each record line at byte 5 and panics on a line that
/// is only `some` or has a multi-byte character there (found by `make fuzz`); such a line is
/// refused here first.
pub(crate) fn some_avg10(text: &str) -> anyhow::Result<f64> {
    let sliceable = text
        .lines()
        .filter(|line| line.starts_with("some") || line.starts_with("full"))
        .all(|line| line.get(5..).is_some());
    anyhow::ensure!(sliceable, "a some/full line is cut short");
    let pressure = IoPressure::from_read(text.as_bytes())?;
    let share = f64::from(pressure.some.avg10);
    // A share of time: anything else (NaN, negative, above 100) is not the kernel's file.
    anyhow::ensure!(
        (0.0..=100.0).contains(&share),
        "some avg10={share} is not a percentage"
    );
    // f32 → f64 would add noise digits.
    Ok((share * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_would_panic_procfs_core_are_errors() {
        for text in [
            "some\n",
            "some\u{6da} avg10==0.13som a00ge a",
            "some avg10=1.00 avg60=0 avg300=0 total=1\nfull",
        ] {
            assert!(some_avg10(text).is_err(), "{text:?}");
        }
        let good = "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=2.00 avg60=1.00 avg300=0.50 total=45\n";
        assert_eq!(some_avg10(good).expect("parses"), 12.5);
    }
}
