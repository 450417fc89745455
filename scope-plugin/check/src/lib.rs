//! `check`: talk to plugins like the Scope probe and judge their reports like it.

mod client;
mod control;
mod rules;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

pub use client::{MAX_RESPONSE_BYTES, PLUGIN_TIMEOUT, Poll, PollError, ProbeClient};
pub use rules::{Finding, Level, Verdict, judge, parse_rfc3339_nanos};

use scope_plugin_rules::{is_plugin_id, plugin_id_from_path};

/// Options of `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// A plugin socket, or a plugins root to scan recursively like the probe.
    #[arg(value_name = "PATH", default_value = "/var/run/scope/plugins")]
    pub path: PathBuf,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Polls per plugin (latency figures come from these).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub polls: u32,
    /// For controller plugins, call this control for real on the first node showing it
    /// (without it, only a control id that cannot exist is sent, which must be refused
    /// with a 200 `{"error": ...}`).
    #[arg(long, value_name = "CONTROL")]
    pub invoke: Option<String>,
    /// Pause between polls (the probe polls every 1s).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

/// Everything learned about one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginCheck {
    /// The socket.
    pub socket: PathBuf,
    /// The id the probe derives from the file name.
    pub id: String,
    /// The probe's status after the first poll.
    pub status: String,
    /// Broken rules.
    pub findings: Vec<Finding>,
    /// Latency over the polls.
    pub latency: Option<Latency>,
    /// Connections opened over all polls (1 means keep-alive held).
    pub connections: u32,
}

impl PluginCheck {
    /// True if no MUST rule failed.
    pub fn passes(&self) -> bool {
        !self.findings.iter().any(|f| f.level == Level::Must)
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Polls that answered.
    pub polls: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Figures from durations.
    pub fn from_durations(mut durations: Vec<Duration>) -> Option<Self> {
        if durations.is_empty() {
            return None;
        }
        durations.sort();
        let at = |q: f64| {
            let index =
                ((durations.len() as f64 * q).ceil() as usize).clamp(1, durations.len()) - 1;
            durations[index].as_secs_f64() * 1000.0
        };
        Some(Self {
            polls: durations.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }
}

/// Sockets under `root` like the probe finds them: recursively, following symlinks, in
/// lexical order, sockets only.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(root)?;
    if meta.file_type().is_socket() {
        return Ok(vec![root.to_owned()]);
    }
    let mut found = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => found.extend(discover(&path).unwrap_or_default()),
            Ok(meta) if meta.file_type().is_socket() => found.push(path),
            _ => {}
        }
    }
    Ok(found)
}

/// Checks the plugin on `socket` with `polls` polls.
pub async fn check_socket(socket: &Path, polls: u32, pause: Duration) -> PluginCheck {
    check_socket_with(socket, polls, pause, None).await
}

/// Checks the plugin on `socket`; for controller plugins also exercises `/control`,
/// calling `invoke` for real if given.
pub async fn check_socket_with(
    socket: &Path,
    polls: u32,
    pause: Duration,
    invoke: Option<&str>,
) -> PluginCheck {
    let id = plugin_id_from_path(socket).unwrap_or_default();
    let mut check = PluginCheck {
        socket: socket.to_owned(),
        id: id.clone(),
        status: String::new(),
        findings: Vec::new(),
        latency: None,
        connections: 0,
    };
    if !is_plugin_id(&id) {
        check.status = format!("invalid plugin id {id:?}");
        check.findings.push(Finding {
            level: Level::Must,
            rule: 2,
            path: socket.display().to_string(),
            message: format!("the probe ignores this socket: invalid plugin id {id:?}"),
            fix: "name the socket <id>.sock with id like my-plugin".into(),
        });
        return check;
    }
    let mut client = ProbeClient::new(socket);
    let mut durations = Vec::new();
    let mut first_body = None;
    for round in 0..polls {
        if round > 0 {
            tokio::time::sleep(pause).await;
        }
        match client.get_report().await {
            Ok(poll) => {
                durations.push(poll.elapsed);
                if poll.elapsed > client::PLUGIN_TIMEOUT {
                    add_once(
                        &mut check.findings,
                        8,
                        format!("a poll took {:?}, over 500 ms", poll.elapsed),
                    );
                }
                let verdict = judge(&poll.body, &id);
                if round == 0 {
                    first_body = Some(poll.body.clone());
                    check.status = verdict.status;
                    check.findings.extend(verdict.findings);
                } else if verdict.status != "ok" && verdict.status != check.status {
                    add_once(
                        &mut check.findings,
                        16,
                        format!(
                            "poll {} changed the status to {}",
                            round + 1,
                            verdict.status
                        ),
                    );
                }
            }
            Err(error) => {
                let status = format!("error: {error}");
                add_once(&mut check.findings, error.rule(), status.clone());
                if round == 0 {
                    check.status = status;
                }
            }
        }
    }
    if let Some(body) = first_body
        && check.status == "ok"
    {
        control::check(&mut client, &body, &id, invoke, &mut check.findings).await;
    }
    check.latency = Latency::from_durations(durations);
    check.connections = client.connections_opened();
    check
        .findings
        .sort_by(|a, b| (a.level, a.rule, &a.path).cmp(&(b.level, b.rule, &b.path)));
    check
}

pub(crate) fn add_once(findings: &mut Vec<Finding>, rule: u8, message: String) {
    if findings
        .iter()
        .any(|f| f.rule == rule && f.message == message)
    {
        return;
    }
    let fix = match rule {
        4 => "remove the socket file when the plugin exits, and replace stale ones at start".into(),
        8 => "serve a snapshot computed in the background; never collect inside /report".into(),
        9 => "answer /report with 200 exactly".into(),
        10 => "keep the body under 50 MiB".into(),
        _ => format!("see rule {rule} in scope-plugin's docs/protocol.md"),
    };
    findings.push(Finding {
        level: Level::Must,
        rule,
        path: "GET /report".into(),
        message,
        fix,
    });
}

/// Runs `check` from the command line; exit 0 when no MUST rule fails, 1 otherwise, 2
/// when the path cannot be read.
pub fn run(args: &CheckArgs) -> ExitCode {
    let sockets = match discover(&args.path) {
        Ok(sockets) => sockets,
        Err(error) => {
            eprintln!("error: cannot read {}: {error}", args.path.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let checks: Vec<PluginCheck> = runtime.block_on(async {
        let mut checks = Vec::new();
        for socket in &sockets {
            checks.push(
                check_socket_with(
                    socket,
                    args.polls,
                    args.poll_interval,
                    args.invoke.as_deref(),
                )
                .await,
            );
        }
        flag_duplicate_ids(&mut checks);
        checks
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).unwrap_or_default()
        );
    } else {
        print!("{}", human_report(&args.path, &checks, use_colour()));
    }
    if checks.iter().all(PluginCheck::passes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Two sockets giving one id: the probe polls both but keeps one spec (rule 3).
fn flag_duplicate_ids(checks: &mut [PluginCheck]) {
    let paths_by_id = |id: &str, checks: &[PluginCheck]| -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.id == id)
            .map(|c| c.socket.display().to_string())
            .collect()
    };
    let duplicates: Vec<(usize, Vec<String>)> = checks
        .iter()
        .enumerate()
        .map(|(index, check)| (index, paths_by_id(&check.id, checks)))
        .filter(|(_, paths)| paths.len() > 1)
        .collect();
    for (index, paths) in duplicates {
        checks[index].findings.insert(
            0,
            Finding {
                level: Level::Must,
                rule: 3,
                path: checks[index].socket.display().to_string(),
                message: format!(
                    "plugin id {:?} is used by {} sockets: {}",
                    checks[index].id,
                    paths.len(),
                    paths.join(", ")
                ),
                fix: "give every plugin socket a unique file name".into(),
            },
        );
    }
}

fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn human_report(root: &Path, checks: &[PluginCheck], colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    use std::fmt::Write as _;
    let mut out = String::new();
    if checks.is_empty() {
        let _ = writeln!(out, "no plugin sockets under {}", root.display());
    }
    for check in checks {
        let verdict = if check.passes() {
            paint("1;32", "PASS")
        } else {
            paint("1;31", "FAIL")
        };
        let _ = writeln!(out, "{verdict} {} ({})", check.id, check.socket.display());
        let _ = writeln!(out, "  probe status: {}", check.status);
        if let Some(latency) = &check.latency {
            let _ = writeln!(
                out,
                "  latency over {} poll(s): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (limit 500 ms); connections opened: {}",
                latency.polls, latency.p50_ms, latency.p99_ms, latency.max_ms, check.connections
            );
        }
        for finding in &check.findings {
            let level = match finding.level {
                Level::Must => "MUST",
                Level::Should => "SHOULD",
            };
            let _ = writeln!(
                out,
                "  {level:<6} rule {:>2}  {}\n           {}\n           fix: {}",
                finding.rule, finding.path, finding.message, finding.fix
            );
        }
    }
    out
}
