//! A plugin whose controls misbehave on purpose, for the hardening tests of controls: one
//! takes two seconds, one panics, one fails, one's `shown` never returns, and a process
//! control records which process it was clicked on.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use scope_plugin::prelude::*;

/// Set when the slow control has finished.
static SLOW_DONE: AtomicBool = AtomicBool::new(false);
/// The pid the process control was last clicked on.
static CLICKED_PID: AtomicU32 = AtomicU32::new(0);

/// 1 once the slow control has finished, and the last pid the process control got.
#[scope_metadata(topology = "host", id = "state", label = "State")]
fn state() -> String {
    format!(
        "slow_done={} clicked_pid={}",
        SLOW_DONE.load(Ordering::Relaxed),
        CLICKED_PID.load(Ordering::Relaxed)
    )
}

/// Takes longer than the probe waits.
#[scope_control(topology = "host", id = "slow", human = "Slow", icon = "fa-clock-o")]
fn slow(_host: ThisHost) {
    std::thread::sleep(Duration::from_secs(2));
    SLOW_DONE.store(true, Ordering::Relaxed);
}

/// Panics.
#[scope_control(topology = "host", id = "panics", human = "Panics", icon = "fa-bomb")]
fn panics(_host: ThisHost) {
    panic!("deliberate control panic");
}

/// Fails with a message for the user.
#[scope_control(topology = "host", id = "fails", human = "Fails", icon = "fa-times")]
fn fails(_host: ThisHost) -> anyhow::Result<()> {
    anyhow::bail!("the disk is full (deliberately)")
}

fn never_answers() -> bool {
    std::thread::sleep(Duration::from_secs(3600));
    true
}

/// Never offered: its `shown` never returns.
#[scope_control(topology = "host", id = "stuck", human = "Stuck", icon = "fa-lock", shown = never_answers)]
fn stuck(_host: ThisHost) {}

fn this_process() -> Vec<Pid> {
    vec![Pid(std::process::id())]
}

/// Remembers the process it was clicked on.
#[scope_control(topology = "process", id = "mark", human = "Mark", icon = "fa-check", shown = this_process)]
fn mark(pid: Pid) {
    CLICKED_PID.store(pid.0, Ordering::Relaxed);
}

scope_plugin::main!(id = "control-plugin", label = "Control plugin");
