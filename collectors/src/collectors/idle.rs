//! Host idle: share of CPU time idle over the last interval.

use scope_plugin::prelude::*;

use crate::cpu_times::CpuDelta;

/// Share of CPU time idle over the last interval, from /proc/stat deltas.
#[scope_metric(
    topology = "host",
    id = "idle",
    label = "CPU idle",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.1
)]
fn idle(cpu: &mut CpuDelta, ctx: &Context) -> anyhow::Result<Option<f64>> {
    Ok(cpu.advance(ctx.procfs())?.map(|shares| shares.idle))
}
