//! A plugin reporting SCALE_NODES (default 1000) process nodes with 5 metrics each, for
//! the scale benchmarks. Written with the macros, as a user would.

#[path = "../scale_collectors.rs"]
mod scale_collectors;

fn main() -> std::process::ExitCode {
    if let Some(count) = std::env::var("SCALE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        scale_collectors::NODES.store(count, std::sync::atomic::Ordering::Relaxed);
    }
    scope_plugin::Plugin::new("scale-plugin", "Scale").run()
}
