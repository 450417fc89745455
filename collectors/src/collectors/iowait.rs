//! Host IO wait: share of CPU time spent waiting for IO over the last interval.

use scope_plugin::prelude::*;

use crate::cpu_times::CpuDelta;

/// Share of CPU time in IO wait over the last interval, from /proc/stat deltas.
#[scope_metric(
    topology = "host",
    id = "iowait",
    label = "IO wait",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.0
)]
fn iowait(cpu: &mut CpuDelta, ctx: &Context) -> anyhow::Result<Option<f64>> {
    Ok(cpu.advance(ctx.procfs())?.map(|shares| shares.iowait))
}
