//! The runtime's `main`: command line, registry, sampling, serving, shutdown.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::cli::{Cli, Command, init_logging};
use crate::collector::{Collector, Registry};
use crate::ids::probe_host_id;
use crate::report::PluginSpec;
use crate::sampler::{Sampler, SamplerConfig, run_all_once};
use crate::socket::{bind, default_socket_path};

/// A plugin binary: its identity plus every registered collector.
///
/// `scope_plugin::main!(id = "...", label = "...")` writes `fn main` with this; call it
/// by hand to add collectors that were not registered with the macros.
#[derive(Debug, Clone)]
pub struct Plugin {
    id: &'static str,
    label: &'static str,
    description: &'static str,
    extra: Vec<&'static Collector>,
}

impl Plugin {
    /// A plugin whose id (and socket name) is `id`, shown in Scope as `label`.
    pub fn new(id: &'static str, label: &'static str) -> Self {
        Self {
            id,
            label,
            description: "",
            extra: Vec::new(),
        }
    }

    /// The tooltip text in Scope's plugin list.
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Adds a collector that is not in the `inventory` registry.
    pub fn collector(mut self, collector: &'static Collector) -> Self {
        self.extra.push(collector);
        self
    }

    /// Runs with the process's arguments. Exit status: 0 done, 1 runtime failure
    /// (including a failed collector under `--once`), 2 usage or configuration error.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// Runs with the given arguments (the first is the program name).
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(error) => {
                let _ = error.print();
                return if error.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        };
        if let Err(message) = init_logging(cli.log_format, &cli.log_level) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
        match self.run_cli(cli) {
            Ok(code) => code,
            Err(Failure { message, code }) => {
                eprintln!("error: {message}");
                ExitCode::from(code)
            }
        }
    }

    fn run_cli(self, cli: Cli) -> Result<ExitCode, Failure> {
        if let Some(Command::Check { args }) = &cli.command {
            return Err(run_checker(args));
        }
        let usage = |message: String| Failure { message, code: 2 };
        let spec = PluginSpec::new(self.id, self.label)
            .map_err(|e| usage(e.to_string()))?
            .with_description(self.description);
        let registry = Registry::load(self.id, &self.extra).map_err(|e| usage(e.to_string()))?;
        let controls = crate::controls::load().map_err(usage)?;
        if cli.list {
            print!("{}", list_table(&registry, self.id));
            for control in &controls {
                println!(
                    "control {}~{}  {}  {:?}  {}",
                    crate::controls::controls_plugin_id(self.id),
                    control.id,
                    control.topology.name(),
                    control.human,
                    control.location
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let enabled = registry
            .enabled(self.id, &cli.enable, &cli.disable)
            .map_err(usage)?;
        let host_id = cli.host_id.clone().unwrap_or_else(probe_host_id);
        if host_id.is_empty() || host_id.contains(';') {
            return Err(usage(format!(
                "host id {host_id:?} cannot be used in Scope node ids (empty or contains ';')"
            )));
        }
        let config = SamplerConfig {
            spec,
            host_id,
            interval: cli.interval,
            procfs: cli.procfs.clone(),
            options: cli.options.iter().cloned().collect::<HashMap<_, _>>(),
        };
        limit_malloc_arenas();
        // One async worker: requests are tiny and few, and every extra worker adds wake-ups
        // while idle. Collectors and big rebuilds run on the blocking pool.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Failure {
                message: format!("cannot start the async runtime: {e}"),
                code: 1,
            })?;
        runtime.block_on(async move {
            let sampler = Sampler::new(config, &enabled);
            if cli.once {
                return Ok(print_once(&sampler).await);
            }
            let socket_path = cli
                .socket
                .clone()
                .unwrap_or_else(|| default_socket_path(&cli.plugins_root, self.id));
            let (listener, socket) = bind(&socket_path, self.id).map_err(|e| Failure {
                message: e.to_string(),
                code: 1,
            })?;
            crate::server::raise_open_files_limit();
            let max_connections = crate::server::connection_limit();
            tracing::info!(
                socket = %socket.path().display(),
                collectors = enabled.len(),
                max_connections,
                "serving Scope plugin {}", self.id
            );
            // One signal stops both servers.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                crate::server::shutdown_signal().await;
                let _ = stop.send(true);
            });
            let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
                let _ = stopped.wait_for(|&stop| stop).await;
            };
            let controls_server = if controls.is_empty() {
                None
            } else {
                let controls_id = crate::controls::controls_plugin_id(self.id);
                let path = match &cli.socket {
                    Some(main) => main.with_file_name(format!("{controls_id}.sock")),
                    None => default_socket_path(&cli.plugins_root, &controls_id),
                };
                let (listener, controls_socket) =
                    bind(&path, &controls_id).map_err(|e| Failure {
                        message: e.to_string(),
                        code: 1,
                    })?;
                let served = crate::controls::Controls::new(
                    self.id,
                    self.label,
                    controls,
                    sampler.controls_context(),
                )
                .map_err(|message| Failure { message, code: 2 })?;
                tracing::info!(
                    socket = %controls_socket.path().display(),
                    "serving the controls as Scope plugin {controls_id}"
                );
                let server = crate::server::serve(
                    listener,
                    crate::controls::router(Arc::new(served)),
                    until_stopped(stopped.clone()),
                    max_connections,
                );
                Some((server, controls_socket))
            };
            let tasks = sampler.spawn();
            let main_server = crate::server::serve(
                listener,
                crate::server::router(Arc::clone(&sampler)),
                until_stopped(stopped),
                max_connections,
            );
            let controls_socket = match controls_server {
                Some((server, controls_socket)) => {
                    tokio::join!(main_server, server);
                    Some(controls_socket)
                }
                None => {
                    main_server.await;
                    None
                }
            };
            for task in tasks {
                task.abort();
            }
            drop(controls_socket);
            drop(socket);
            Ok(ExitCode::SUCCESS)
        })
    }
}

async fn print_once(sampler: &Arc<Sampler>) -> ExitCode {
    let failures = run_all_once(sampler).await;
    println!("{}", sampler.build_report().to_json_pretty());
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for (id, error) in &failures {
        eprintln!("collector {id} failed: {error}");
    }
    ExitCode::from(1)
}

/// The `--list` table.
pub(crate) fn list_table(registry: &Registry, plugin_id: &str) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "TOPOLOGY".to_owned(),
        "KIND".to_owned(),
        "LABEL".to_owned(),
        "FORMAT".to_owned(),
        "DEFAULT".to_owned(),
        "SOURCE".to_owned(),
    ]];
    for collector in registry.collectors() {
        rows.push([
            collector.wire_id(plugin_id),
            collector.topology.name().to_owned(),
            collector.kind_name().to_owned(),
            collector.label.to_owned(),
            collector.format_name().to_owned(),
            if collector.enabled_by_default {
                "on"
            } else {
                "off"
            }
            .to_owned(),
            collector.location.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Replaces this process with `scope-plugin-check args…`: the checker is a tool of its
/// own, so that plugins do not carry its HTTP client and gzip code. Returns only on
/// failure.
fn run_checker(args: &[OsString]) -> Failure {
    use std::os::unix::process::CommandExt;
    const CHECKER: &str = "scope-plugin-check";
    let beside_us = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(CHECKER)))
        .filter(|path| path.is_file());
    let program = beside_us.map_or_else(|| OsString::from(CHECKER), OsString::from);
    let error = std::process::Command::new(&program).args(args).exec();
    Failure {
        message: format!(
            "cannot run {} ({error}): `check` is the scope-plugin-check tool; install it with `cargo install --path <scope-plugin checkout>/scope-plugin/check`, or build it with `cargo build -p scope-plugin-check` in the checkout",
            program.to_string_lossy()
        ),
        code: 2,
    }
}

struct Failure {
    message: String,
    code: u8,
}

/// Two malloc arenas instead of glibc's eight per core. Collectors and rebuilds run on
/// whichever blocking-pool thread is free, so with an arena per thread each arena ends up
/// keeping the largest round it ever freed: at 10,000 nodes, six arenas held 12.8 MB and two
/// hold 8.9 MB (RSS 30.7 → 26.6 MB), at the same CPU (BENCHMARKS.md). `MALLOC_ARENA_MAX` in
/// the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread of
        // ours exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
