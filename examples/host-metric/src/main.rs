//! Run with: cargo run -p example-host-metric -- --once
//!
//! A host metric: the 1-minute load average, on this host's node in Scope.

use scope_plugin::prelude::*;

/// The 1-minute load average, from /proc/loadavg.
#[scope_metric(
    topology = "host",
    id = "load1",
    label = "Load (1m)",
    min = 0.0,
    priority = 4.0
)]
fn load1(ctx: &Context) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(ctx.procfs_path("loadavg"))?;
    let first = text.split_whitespace().next().unwrap_or_default();
    Ok(first.parse()?)
}

scope_plugin::main!(
    id = "example-host-metric",
    label = "Load",
    description = "Adds the load average to hosts"
);
