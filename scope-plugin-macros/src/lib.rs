//! Implementation detail of `scope-plugin`: depend on `scope-plugin`, which re-exports
//! these macros and documents them.
//!
//! One module per macro, each a plain struct with `parse` and `expand`.

mod args;
mod collector;
mod control;
mod main_macro;

use proc_macro::TokenStream;

use collector::AttrKind;

/// Registers a function as a metric collector: a number per node, drawn as a sparkline
/// in Scope's node details.
///
/// ```no_run
/// use scope_plugin::prelude::*;
///
/// /// The 1-minute load average.
/// #[scope_metric(topology = "host", id = "load1", label = "Load (1m)", min = 0.0, priority = 4.0)]
/// fn load1(ctx: &Context) -> anyhow::Result<f64> {
///     let text = std::fs::read_to_string(ctx.procfs_path("loadavg"))?;
///     Ok(text.split_whitespace().next().unwrap_or("0").parse()?)
/// }
///
/// /// Threads per process (the key says which node: here a process, by host pid).
/// #[scope_metric(topology = "process", id = "threads", label = "Threads", format = "integer")]
/// fn threads() -> Vec<(Pid, u64)> {
///     vec![(Pid(std::process::id()), 4)]
/// }
///
/// scope_plugin::main!(id = "my-plugin", label = "My plugin");
/// ```
///
/// # Keys
///
/// | key | required | meaning |
/// |---|---|---|
/// | `topology` | yes | where the value shows: `"host"`, `"process"`, `"container"`, `"pod"`, ... (Scope's 23 topologies, lowercase, as in `docs/protocol.md` §3.2) |
/// | `id` | yes | unique in the plugin: letters, digits, `_ - .`, no `___`; sent as `<plugin-id>_<id>` |
/// | `label` | yes | the row's label in the node details; for a family of metrics, `{}` is replaced by the series |
/// | `format` | no | `"number"` (default), `"integer"`, `"filesize"` (bytes), `"percent"` (0 to 100) |
/// | `min`, `max` | no | the sparkline's range. Without `max`, the top of the sparkline is the highest value shown; without `min`, 0 |
/// | `rollup` | no | process metrics only: also report the metric on each container and pod, its processes' values reduced by `"sum"` (rates, counts), `"mean"`, `"max"` or `"min"`; the runtime finds each process's container and pod from `/proc/<pid>/cgroup` (Docker, containerd, CRI-O, podman; cgroup v1 and v2; Kubernetes pods). Default `"none"`: a percentage does not add up |
/// | `priority` | no | row order, ascending. Scope shows three metrics before "show more", and its CPU and memory rows use 1 and 2: use 3 or more |
/// | `interval` | no | how often to sample, e.g. `"5s"`, `"1m30s"` (at least 100ms); default: the plugin's `--interval` |
/// | `timeout` | no | how long a sample may take before it counts as failed; default: the interval |
/// | `default` | no | `false`: off unless enabled with `--enable <id>` |
/// | `namespaced` | no | `false`: send the id without the `<plugin-id>_` prefix (keys may then collide with other plugins') |
/// | `crate` | no | the path of `scope_plugin` when you re-export it, e.g. `crate = ::my_sdk::scope` |
///
/// # The function
///
/// Parameters, in any order, each optional: `&mut S` for state kept between samples
/// (`S: Default + Send + 'static`, made on the first sample and after a panic) and
/// `&Context` (host id, procfs root, time since the last sample, `--set` options). It
/// must not be `async` or generic.
///
/// It returns, for `topology = "host"`, the value (`f64`, `f32` or any integer); for any
/// other topology, `(key, value)` pairs in a `Vec`, `HashMap` or `BTreeMap`, where the key
/// is the typed key of that topology (`Pid` for `"process"`, `ContainerId` for
/// `"container"`, `PodUid` for `"pod"`, ...), which the runtime turns into Scope's node id.
/// A family of metrics keys its values by `(key, series)` (e.g. `((Pid, u16), f64)`), and
/// each series becomes `<id>_<series>`. Any of these may be wrapped in `Option` (`None`: no
/// sample this round) and in `Result` (an error: logged, shown on the host node, and the
/// other collectors go on).
#[proc_macro_attribute]
pub fn scope_metric(args: TokenStream, item: TokenStream) -> TokenStream {
    collector::attribute(AttrKind::Metric, args.into(), item.into()).into()
}

/// Registers a function as a metadata collector: a text row per node in Scope's node
/// details.
///
/// ```no_run
/// use scope_plugin::prelude::*;
///
/// /// The kernel release.
/// #[scope_metadata(topology = "host", id = "kernel", label = "Kernel")]
/// fn kernel(ctx: &Context) -> anyhow::Result<String> {
///     Ok(std::fs::read_to_string(ctx.procfs_path("sys/kernel/osrelease"))?.trim().to_owned())
/// }
///
/// scope_plugin::main!(id = "my-plugin", label = "My plugin");
/// ```
///
/// The keys are those of [`scope_metric`] less `format`, `min`, `max` and `rollup`, plus
/// `data_type`: `"text"` (default), `"number"` and `"ip"` (which only change how the
/// column sorts), `"datetime"` (an RFC 3339 time, shown relative to now), `"duration"`
/// (seconds). Rows with `priority` 10 or more are hidden behind "show more". The function
/// returns a `String` or `&str` (or a number or `bool`, sent as its text) where a metric
/// returns a number.
#[proc_macro_attribute]
pub fn scope_metadata(args: TokenStream, item: TokenStream) -> TokenStream {
    collector::attribute(AttrKind::Metadata, args.into(), item.into()).into()
}

/// Registers a function as a table in Scope's node details: rows of text per node, as a
/// property list (a label and a value per row) or, with `columns`, a multicolumn table.
///
/// ```no_run
/// use scope_plugin::prelude::*;
///
/// /// Listening TCP ports per process, with the address each listens on.
/// #[scope_table(topology = "process", id = "ports", label = "Listening ports",
///               columns = [("address", "Address", "ip"), ("backlog", "Backlog", "number")])]
/// fn ports() -> Vec<((Pid, u16), [String; 2])> {
///     vec![((Pid(1), 80), ["0.0.0.0".into(), "511".into()])]
/// }
///
/// scope_plugin::main!(id = "my-plugin", label = "My plugin");
/// ```
///
/// | key | required | meaning |
/// |---|---|---|
/// | `topology`, `id`, `label` | yes | as for [`scope_metric`]; the label is the table's title |
/// | `columns` | no | `[(id, label), (id, label, data_type), ...]`: a multicolumn table with these columns (data types as for [`scope_metadata`]); without it, a property list |
/// | `interval`, `timeout`, `default`, `namespaced`, `crate` | no | as for [`scope_metric`] |
///
/// The function returns rows keyed by `(node key, row id)`, the host's node being
/// `ThisHost`: `Vec<((Pid, u16), String)>` for a property list (the row id is its label), or
/// an array with one cell per column for a multicolumn table (`[String; 2]` above: a row
/// with another number of cells does not compile). Cells are text, numbers or `bool`; a
/// `BTreeMap` or `HashMap` works as the `Vec`, and `Option`/`Result` as for metrics. Row ids
/// are sent inside keys: one that Scope's table parser would split wrongly (`___`) or that a
/// key cannot hold fails the round with that reason and is never sent.
#[proc_macro_attribute]
pub fn scope_table(args: TokenStream, item: TokenStream) -> TokenStream {
    collector::attribute(AttrKind::Table, args.into(), item.into()).into()
}

/// Registers a function as a button on nodes in Scope: it runs when a user clicks it.
///
/// ```no_run
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use scope_plugin::prelude::*;
///
/// static PAUSED: AtomicBool = AtomicBool::new(false);
///
/// fn running() -> bool {
///     !PAUSED.load(Ordering::Relaxed)
/// }
///
/// /// Pauses sampling on this host.
/// #[scope_control(topology = "host", id = "pause", human = "Pause", icon = "fa-pause", shown = running)]
/// fn pause(_host: ThisHost) -> anyhow::Result<()> {
///     PAUSED.store(true, Ordering::Relaxed);
///     Ok(())
/// }
///
/// scope_plugin::main!(id = "my-plugin", label = "My plugin");
/// ```
///
/// | key | required | meaning |
/// |---|---|---|
/// | `topology` | yes | `"host"` or `"process"` (on containers and pods a plugin's buttons would hide Scope's own) |
/// | `id` | yes | unique in the plugin: ASCII letters, digits, `_`, `-`, `.` (no `;`, `/`, `~`, `%`, `?`, `#`) |
/// | `human` | yes | the button's tooltip |
/// | `icon` | yes | a Font Awesome class, such as `"fa-pause"` |
/// | `confirmation` | no | a question Scope asks before running it |
/// | `rank` | no | order among the node's buttons (whole number) |
/// | `shown` | for process controls | a function returning which nodes show the button now: `bool` for a host control (default: always), `Vec<Pid>` for a process control; so a "Pause" button can give way to "Resume" |
/// | `crate` | no | the path of `scope_plugin` if you re-export it |
///
/// The function takes the key of the node it was clicked on (`ThisHost` or `Pid`) and
/// returns `()` or a `Result`: an error is shown to the user in Scope. Controls reach state
/// that collectors use through statics (atomics, a `Mutex`). They are served as a second
/// plugin, `<id>-controls`, whose report holds only the nodes that show a button: Scope
/// re-stamps the button list of every node a controller plugin reports, so the metrics stay
/// in a plugin without controls, where they hide nothing.
#[proc_macro_attribute]
pub fn scope_control(args: TokenStream, item: TokenStream) -> TokenStream {
    control::attribute(args.into(), item.into()).into()
}

/// Writes `fn main` for a plugin, which serves every registered collector.
///
/// ```no_run
/// scope_plugin::main!(
///     id = "my-plugin",
///     label = "My plugin",
///     description = "What the plugin adds, shown in Scope's plugin list"
/// );
/// ```
///
/// | key | required | meaning |
/// |---|---|---|
/// | `id` | yes | the plugin's id: letters and digits in groups joined by single dashes; it names the socket, `<plugins-root>/<id>/<id>.sock`, which is how the probe knows it |
/// | `label` | yes | the plugin's name in Scope |
/// | `description` | no | the tooltip in Scope's plugin list |
/// | `crate` | no | the path of `scope_plugin` when you re-export it |
///
/// The binary gets the command line described in the README (`--help` lists it).
#[proc_macro]
pub fn main(args: TokenStream) -> TokenStream {
    main_macro::main(args.into()).into()
}
