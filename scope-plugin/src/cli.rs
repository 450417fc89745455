//! The command line every plugin gets. Every flag has a `SCOPE_PLUGIN_*` variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// The options of a plugin binary.
#[derive(Debug, Clone, Parser)]
#[command(
    about = None,
    long_about = None,
    after_help = "Every option can also be set by the environment variable shown with it.\n\
                  The probe finds the socket under the plugins root within 5 s and polls GET /report every second."
)]
pub(crate) struct Cli {
    /// Socket to serve on. Default: <plugins-root>/<plugin-id>/<plugin-id>.sock. The file
    /// name minus its extension must be the plugin id: that is how the probe names plugins.
    /// A plugin with controls also serves them as the plugin <plugin-id>-controls, on
    /// <plugin-id>-controls.sock beside this socket (by default in its own directory).
    #[arg(long, env = "SCOPE_PLUGIN_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Directory the Scope probe scans for plugin sockets.
    #[arg(
        long,
        env = "SCOPE_PLUGIN_PLUGINS_ROOT",
        value_name = "DIR",
        default_value = "/var/run/scope/plugins"
    )]
    pub plugins_root: PathBuf,

    /// Host id used in node ids. Default: $SCOPE_HOSTNAME, else the hostname, which is
    /// what the probe uses; set it only if the probe was given another.
    #[arg(long, env = "SCOPE_PLUGIN_HOST_ID", value_name = "ID")]
    pub host_id: Option<String>,

    /// How often collectors run (collectors may set their own), e.g. 1s, 500ms; at
    /// least 100ms.
    #[arg(long, env = "SCOPE_PLUGIN_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = scope_plugin_rules::parse_interval)]
    pub interval: Duration,

    /// Run every collector once (twice for rates, one interval apart), print the report as pretty JSON
    /// on stdout and exit; exit status 1 if any collector failed.
    #[arg(long, env = "SCOPE_PLUGIN_ONCE", conflicts_with = "list")]
    pub once: bool,

    /// List the registered collectors (id, topology, label, format, default, source) and exit.
    #[arg(long, env = "SCOPE_PLUGIN_LIST")]
    pub list: bool,

    /// Turn on collectors that are off by default (ids, comma-separated or repeated).
    #[arg(
        long,
        env = "SCOPE_PLUGIN_ENABLE",
        value_name = "ID",
        value_delimiter = ','
    )]
    pub enable: Vec<String>,

    /// Turn off collectors (ids, comma-separated or repeated).
    #[arg(
        long,
        env = "SCOPE_PLUGIN_DISABLE",
        value_name = "ID",
        value_delimiter = ','
    )]
    pub disable: Vec<String>,

    /// Collector options as key=value (comma-separated or repeated); see each collector's docs.
    #[arg(long = "set", env = "SCOPE_PLUGIN_SET", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,

    /// Root of the proc filesystem collectors read (for containers and fixture trees).
    #[arg(
        long = "path.procfs",
        env = "SCOPE_PLUGIN_PATH_PROCFS",
        value_name = "DIR",
        default_value = "/proc"
    )]
    pub procfs: PathBuf,

    /// Log format on stderr.
    #[arg(long, env = "SCOPE_PLUGIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// "info,scope_plugin=debug").
    #[arg(
        long,
        env = "SCOPE_PLUGIN_LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log_level: String,

    /// Other actions.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Command {
    /// Check plugins the way the Scope probe does (a socket, or a plugins root to scan);
    /// runs the scope-plugin-check tool, found next to this binary or on PATH. See
    /// `check --help`.
    #[command(disable_help_flag = true)]
    Check {
        /// Passed to scope-plugin-check as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}

/// Starts logging to stderr.
pub(crate) fn init_logging(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("bad --log-level {filter:?}: {e}"))?;
    use std::io::IsTerminal;
    // Colours only on a terminal: piped into docker or journald logs they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests running a plugin in-process twice) keeps the first subscriber.
    let _ = result;
    Ok(())
}
