//! Run with: cargo run -p example-process-metric -- --once
//!
//! A per-process metric: open file descriptors of every process, keyed by `Pid`; the
//! runtime turns each pid into Scope's process node id. With `rollup = "sum"` the runtime
//! also reports each container's and each pod's total, from the processes' cgroups.

use scope_plugin::prelude::*;

/// Open file descriptors per process, from `/proc/<pid>/fd`; summed per container and pod.
#[scope_metric(
    topology = "process",
    id = "open_fds",
    label = "Open FDs",
    format = "integer",
    priority = 5.0,
    rollup = "sum"
)]
fn open_fds(ctx: &Context) -> anyhow::Result<Vec<(Pid, u64)>> {
    let mut counts = Vec::new();
    for entry in std::fs::read_dir(ctx.procfs())? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A process may exit or deny access between listing and counting: skip it.
        if let Ok(fds) = std::fs::read_dir(ctx.procfs_path(&format!("{pid}/fd"))) {
            counts.push((Pid(pid), fds.count() as u64));
        }
    }
    Ok(counts)
}

scope_plugin::main!(
    id = "example-process-metric",
    label = "Open FDs",
    description = "Adds open FDs to processes"
);
