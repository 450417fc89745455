//! Host steal: share of CPU time taken by the hypervisor over the last interval.

use scope_plugin::prelude::*;

use crate::cpu_times::CpuDelta;

/// Share of CPU time stolen by the hypervisor over the last interval, from /proc/stat deltas.
#[scope_metric(
    topology = "host",
    id = "steal",
    label = "CPU steal",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.2
)]
fn steal(cpu: &mut CpuDelta, ctx: &Context) -> anyhow::Result<Option<f64>> {
    Ok(cpu.advance(ctx.procfs())?.map(|shares| shares.steal))
}
