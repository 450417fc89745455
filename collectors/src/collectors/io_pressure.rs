//! Host IO pressure: PSI "some" avg10 from /proc/pressure/io.

use std::io::ErrorKind;

use anyhow::Context as _;
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
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // No PSI in this kernel (or booted with psi=0): no metric, not an error.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) => {
            return Ok(None);
        }
        Err(e) if e.raw_os_error() == Some(95) => return Ok(None), // EOPNOTSUPP
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let share = crate::psi::some_avg10(&text)
        .with_context(|| format!("cannot parse {}", path.display()))?;
    Ok(Some(share))
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
            let error = format!("{:#}", io_pressure(&ctx).expect_err(bad));
            assert!(error.contains("is not a percentage"), "{bad}: {error}");
        }
    }
}
