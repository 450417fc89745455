//! Run with: cargo run -p example-iowait-switch -- --plugins-root /tmp/plugins
//!
//! A control, as Scope's official iowait plugin has one: the host shows IO wait, and a
//! button switches it to CPU idle (and another one back). The button on offer follows the
//! state: "Show CPU idle" while IO wait shows, "Show IO wait" while idle shows. The switch
//! is a static both the metrics and the controls read.

use std::sync::atomic::{AtomicBool, Ordering};

use scope_plugin::prelude::*;

/// Whether the host shows CPU idle instead of IO wait.
static SHOW_IDLE: AtomicBool = AtomicBool::new(false);

/// The previous reading of /proc/stat's first line: (iowait, idle, all) ticks.
#[derive(Default)]
struct Previous(Option<(u64, u64, u64)>);

impl Previous {
    /// The (IO wait, idle) shares of CPU time since the previous reading.
    fn shares(&mut self, ctx: &Context) -> anyhow::Result<Option<(f64, f64)>> {
        let stat = std::fs::read_to_string(ctx.procfs_path("stat"))?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let field = |n: usize| ticks.get(n).copied().unwrap_or(0);
        let now = (field(4), field(3), ticks.iter().sum::<u64>());
        Ok(self.0.replace(now).and_then(|(iowait, idle, total)| {
            let elapsed = now.2.checked_sub(total).filter(|&t| t > 0)? as f64;
            Some((
                now.0.saturating_sub(iowait) as f64 * 100.0 / elapsed,
                now.1.saturating_sub(idle) as f64 * 100.0 / elapsed,
            ))
        }))
    }
}

/// Share of CPU time in IO wait, unless the switch shows idle.
#[scope_metric(
    topology = "host",
    id = "iowait",
    label = "IO wait",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.0
)]
fn iowait(previous: &mut Previous, ctx: &Context) -> anyhow::Result<Option<f64>> {
    let shares = previous.shares(ctx)?;
    Ok(shares
        .filter(|_| !SHOW_IDLE.load(Ordering::Relaxed))
        .map(|(iowait, _)| iowait))
}

/// Share of CPU time idle, when the switch shows it.
#[scope_metric(
    topology = "host",
    id = "idle",
    label = "CPU idle",
    format = "percent",
    min = 0.0,
    max = 100.0,
    priority = 3.0
)]
fn idle(previous: &mut Previous, ctx: &Context) -> anyhow::Result<Option<f64>> {
    let shares = previous.shares(ctx)?;
    Ok(shares
        .filter(|_| SHOW_IDLE.load(Ordering::Relaxed))
        .map(|(_, idle)| idle))
}

fn showing_iowait() -> bool {
    !SHOW_IDLE.load(Ordering::Relaxed)
}

fn showing_idle() -> bool {
    SHOW_IDLE.load(Ordering::Relaxed)
}

/// Switches the host's metric to CPU idle.
#[scope_control(topology = "host", id = "switch_to_idle", human = "Show CPU idle instead of IO wait",
                icon = "fa-exchange", shown = showing_iowait)]
fn switch_to_idle(_host: ThisHost) {
    SHOW_IDLE.store(true, Ordering::Relaxed);
}

/// Switches the host's metric back to IO wait.
#[scope_control(topology = "host", id = "switch_to_iowait", human = "Show IO wait instead of CPU idle",
                icon = "fa-exchange", shown = showing_idle)]
fn switch_to_iowait(_host: ThisHost) {
    SHOW_IDLE.store(false, Ordering::Relaxed);
}

scope_plugin::main!(
    id = "example-iowait-switch",
    label = "IO wait switch",
    description = "IO wait or CPU idle on hosts, with a button to switch"
);
