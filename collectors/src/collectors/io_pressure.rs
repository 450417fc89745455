//! Host IO pressure: PSI "some" avg10 from /proc/pressure/io.

use std::io::ErrorKind;

use anyhow::Context as _;
use procfs_core::FromRead;
use procfs_core::IoPressure;
use scope_plugin::prelude::*;

/// Share of the last 10 s in which some task stalled on IO (PSI), where the kernel has PSI.
#[scope_metric(
    topology = "host",
    id = "io_pressure",
    label = "IO pressure (10 s)",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.3
)]
fn io_pressure(ctx: &Context) -> anyhow::Result<Option<f64>> {
    let path = ctx.procfs_path("pressure/io");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        // No PSI in this kernel (or booted with psi=0): no metric, not an error.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) => {
            return Ok(None);
        }
        Err(e) if e.raw_os_error() == Some(95) => return Ok(None), // EOPNOTSUPP
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let pressure =
        IoPressure::from_read(file).with_context(|| format!("cannot parse {}", path.display()))?;
    let share = f64::from(pressure.some.avg10);
    // A share of time: anything else (NaN, negative, above 100) is not the kernel's file.
    anyhow::ensure!(
        (0.0..=100.0).contains(&share),
        "{}: some avg10={share} is not a percentage",
        path.display()
    );
    // The kernel prints two decimals; f32 → f64 would add noise digits.
    Ok(Some((share * 100.0).round() / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_some_avg10_and_treats_missing_psi_as_no_metric() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = Context::new("h", dir.path());
        assert_eq!(io_pressure(&ctx).expect("no PSI is fine"), None);
        std::fs::create_dir(dir.path().join("pressure")).expect("mkdir");
        std::fs::write(
            dir.path().join("pressure/io"),
            "some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=2.00 avg60=1.00 avg300=0.50 total=45\n",
        )
        .expect("write");
        assert_eq!(io_pressure(&ctx).expect("parses"), Some(12.5));
        for bad in ["1e30", "-5.00", "NaN", "100.01"] {
            std::fs::write(
                dir.path().join("pressure/io"),
                format!("some avg10={bad} avg60=0 avg300=0 total=1\nfull avg10=0 avg60=0 avg300=0 total=0\n"),
            )
            .expect("write");
            let error = io_pressure(&ctx).expect_err(bad).to_string();
            assert!(error.contains("is not a percentage"), "{bad}: {error}");
        }
    }
}
