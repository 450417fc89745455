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
