//! Five process metrics over `NODES` nodes, for the scale benchmark: shared by the
//! `scale-plugin` binary and the in-process build timings of `benches/plugin.rs`.

use std::sync::atomic::{AtomicU32, Ordering};

use scope_plugin::prelude::*;

/// How many process nodes each metric reports.
pub(crate) static NODES: AtomicU32 = AtomicU32::new(1000);

fn nodes(salt: f64) -> Vec<(Pid, f64)> {
    (1..=NODES.load(Ordering::Relaxed))
        .map(|pid| (Pid(pid), f64::from(pid % 97) + salt))
        .collect()
}

/// Metric one of five.
#[scope_metric(topology = "process", id = "m1", label = "M1", priority = 5.0)]
fn m1() -> Vec<(Pid, f64)> {
    nodes(0.1)
}

/// Metric two of five.
#[scope_metric(topology = "process", id = "m2", label = "M2", priority = 5.1)]
fn m2() -> Vec<(Pid, f64)> {
    nodes(0.2)
}

/// Metric three of five.
#[scope_metric(topology = "process", id = "m3", label = "M3", priority = 5.2)]
fn m3() -> Vec<(Pid, f64)> {
    nodes(0.3)
}

/// Metric four of five.
#[scope_metric(topology = "process", id = "m4", label = "M4", priority = 5.3)]
fn m4() -> Vec<(Pid, f64)> {
    nodes(0.4)
}

/// Metric five of five.
#[scope_metric(
    topology = "process",
    id = "m5",
    label = "M5",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 5.4
)]
fn m5() -> Vec<(Pid, f64)> {
    nodes(0.5)
}

// The same five metrics rolled up onto containers and pods, for the roll-up benchmark
// (`--enable r1,r2,r3,r4,r5 --disable m1,m2,m3,m4,m5`, with a procfs tree giving each
// pid a container: `write_procfs`).

/// Metric one of five, summed per container and pod.
#[scope_metric(
    topology = "process",
    id = "r1",
    label = "R1",
    priority = 6.0,
    rollup = "sum",
    default = false
)]
fn r1() -> Vec<(Pid, f64)> {
    nodes(0.1)
}

/// Metric two of five, summed per container and pod.
#[scope_metric(
    topology = "process",
    id = "r2",
    label = "R2",
    priority = 6.1,
    rollup = "sum",
    default = false
)]
fn r2() -> Vec<(Pid, f64)> {
    nodes(0.2)
}

/// Metric three of five, summed per container and pod.
#[scope_metric(
    topology = "process",
    id = "r3",
    label = "R3",
    priority = 6.2,
    rollup = "sum",
    default = false
)]
fn r3() -> Vec<(Pid, f64)> {
    nodes(0.3)
}

/// Metric four of five, the largest per container and pod.
#[scope_metric(
    topology = "process",
    id = "r4",
    label = "R4",
    priority = 6.3,
    rollup = "max",
    default = false
)]
fn r4() -> Vec<(Pid, f64)> {
    nodes(0.4)
}

/// Metric five of five, the mean per container and pod.
#[scope_metric(
    topology = "process",
    id = "r5",
    label = "R5",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 6.4,
    rollup = "mean",
    default = false
)]
fn r5() -> Vec<(Pid, f64)> {
    nodes(0.5)
}

/// A procfs tree under `root` for pids 1 to `nodes`: 20 processes to a container, and every
/// other container in a Kubernetes pod (two containers a pod), as a busy node's would be.
#[allow(
    dead_code,
    reason = "used by the bench, not by the scale-plugin binary"
)]
pub(crate) fn write_procfs(root: &std::path::Path, nodes: u32) {
    for pid in 1..=nodes {
        let container = pid / 20;
        let id = format!("{container:064x}");
        let cgroup = if container % 2 == 0 {
            format!("0::/system.slice/docker-{id}.scope\n")
        } else {
            let pod = container / 4;
            format!("0::/kubepods/burstable/pod{pod:08x}-0000-4000-8000-{pod:012x}/{id}\n")
        };
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("pid dir");
        std::fs::write(dir.join("cgroup"), cgroup).expect("cgroup");
    }
    // The kernel's pid cursor, as a live /proc has it: without it every round reads every
    // cgroup file again.
    std::fs::create_dir_all(root.join("sys/kernel")).expect("sys dir");
    std::fs::write(root.join("sys/kernel/ns_last_pid"), format!("{nodes}\n")).expect("cursor");
}
