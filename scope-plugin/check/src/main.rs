//! `scope-plugin-check PATH`: checks any Scope plugin (Go, Python, anything on a unix
//! socket) the way the probe would. Every plugin built with scope-plugin also runs it as
//! `<plugin> check PATH` (when this binary is installed).

use clap::Parser;

/// Check Weave Scope plugins like the probe does: discover sockets, poll /report with the
/// probe's limits, and judge the reports with the probe's rules. Exit 0 when no MUST rule
/// fails, 1 when one does, 2 on usage errors.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    check: scope_plugin_check::CheckArgs,
}

fn main() -> std::process::ExitCode {
    scope_plugin_check::run(&Args::parse().check)
}
