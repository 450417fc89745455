//! Buttons on the host to pause and resume the eBPF HTTP tracing: while paused, the socket
//! programs are detached, so socket reads and writes run no BPF at all and the HTTP rates
//! are not reported. The button on offer is the one that fits the state; neither shows
//! until the HTTP collectors have loaded the program (nor if it could not load).

use scope_plugin::prelude::*;

use crate::http_bpf::with_loaded_probe;

fn tracing() -> bool {
    with_loaded_probe(|probe| !probe.paused()).unwrap_or(false)
}

fn paused() -> bool {
    with_loaded_probe(|probe| probe.paused()).unwrap_or(false)
}

/// Detaches the HTTP programs from the socket tracepoints.
#[scope_control(
    topology = "host",
    id = "pause_http",
    human = "Pause HTTP tracing (no eBPF on sockets until resumed)",
    icon = "fa-pause",
    rank = 1,
    shown = tracing
)]
fn pause_http(_host: ThisHost) -> anyhow::Result<()> {
    with_loaded_probe(|probe| probe.pause())
        .unwrap_or_else(|| anyhow::bail!("HTTP tracing is not running"))
}

/// Attaches them again.
#[scope_control(
    topology = "host",
    id = "resume_http",
    human = "Resume HTTP tracing",
    icon = "fa-play",
    rank = 1,
    shown = paused
)]
fn resume_http(_host: ThisHost) -> anyhow::Result<()> {
    with_loaded_probe(|probe| probe.resume())
        .unwrap_or_else(|| anyhow::bail!("HTTP tracing is not loaded"))
}
