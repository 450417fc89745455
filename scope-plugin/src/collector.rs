//! The collector registry: what `#[scope_metric]` and `#[scope_metadata]` register.
//!
//! Each registration is a const [`Collector`] descriptor holding two fn pointers (make the
//! state, collect once), never a live instance, because `inventory` needs const values.
//! Registration order is unspecified, so [`Registry::load`] sorts and checks it.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::ids::{NodeKey, ThisHost, validate_key};

use crate::report::{DataType, MetricFormat, Topology};
use scope_plugin_rules::Rollup;

/// A collector's descriptor plus the functions that run it. Built by the attribute
/// macros; may be written by hand and registered with [`register_collector!`](crate::register_collector).
#[derive(Debug)]
pub struct Collector {
    /// The topology whose nodes get the values.
    pub topology: Topology,
    /// The id, unique in the plugin; on the wire `<plugin-id>_<id>` unless `namespaced` is false.
    pub id: &'static str,
    /// The row label in Scope's node details panel.
    pub label: &'static str,
    /// A metric (a number with a sparkline) or metadata (a text row).
    pub kind: Kind,
    /// Sort order of the row (ascending). Scope's own CPU and memory rows use 1 and 2.
    pub priority: Option<f64>,
    /// How often to run; `None` uses the plugin's `--interval`.
    pub interval: Option<Duration>,
    /// How long one run may take before it counts as failed; `None` means the interval.
    pub timeout: Option<Duration>,
    /// Runs unless disabled (`--disable`); `false` needs `--enable`.
    pub enabled_by_default: bool,
    /// Prefix the wire id with the plugin id, so two plugins cannot collide (rule 30).
    pub namespaced: bool,
    /// Also report the metric on the container and the pod of each process, reduced this
    /// way (process metrics only; [`Rollup::None`] for none).
    pub rollup: Rollup,
    /// One line for `--list`: the first line of the function's doc comment.
    pub description: &'static str,
    /// Where the collector was written.
    pub location: Location,
    /// Makes the per-collector state kept between rounds.
    pub new_state: fn() -> Box<dyn Any + Send>,
    /// Runs the collector once.
    pub collect: CollectFn,
}

/// Runs a collector once with its state.
pub type CollectFn = fn(&mut (dyn Any + Send), &Context) -> anyhow::Result<Collected>;

inventory::collect!(Collector);

/// A metric's or metadata row's presentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A number, drawn as a sparkline between `min` and `max`.
    Metric {
        /// Number, integer, filesize or percent.
        format: MetricFormat,
        /// The sparkline's floor; `None` takes `min(0, value)`.
        min: Option<f64>,
        /// The sparkline's ceiling; `None` takes the value itself.
        max: Option<f64>,
    },
    /// A text value shown in the info table.
    Metadata {
        /// How the value is shown and sorted.
        data_type: DataType,
    },
    /// A table in the node's details: rows of text, one per row id the collector returns.
    Table {
        /// The columns of a multicolumn table; none for a property list (a label and a
        /// value per row).
        columns: &'static [TableColumn],
    },
}

/// A column of a multicolumn table (`#[scope_table(columns = [...])]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableColumn {
    /// The column's id: on the wire, cells are `<table key>_<row>___<id>`.
    pub id: &'static str,
    /// The column header.
    pub label: &'static str,
    /// How the cells are shown and sorted.
    pub data_type: DataType,
}

/// Separates a multicolumn table's row id from its column id in `latest` keys: Scope
/// splits on it, so no row or column id may contain it (rule 28).
pub(crate) const ROW_COLUMN_SEPARATOR: &str = "___";

/// Source location of a collector, for messages and `--list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// `module_path!()`.
    pub module_path: &'static str,
    /// `file!()`.
    pub file: &'static str,
    /// `line!()`.
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl Collector {
    /// The key on the wire: metric key, `latest` key and template id.
    pub fn wire_id(&self, plugin_id: &str) -> String {
        if self.namespaced {
            format!("{plugin_id}_{}", self.id)
        } else {
            self.id.to_owned()
        }
    }

    /// "metric" or "metadata".
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Metric { .. } => "metric",
            Kind::Metadata { .. } => "metadata",
            Kind::Table { .. } => "table",
        }
    }

    /// The format (metrics) or data type (metadata), as Scope spells it.
    pub fn format_name(&self) -> &'static str {
        match self.kind {
            Kind::Metric {
                format: MetricFormat::Number,
                ..
            } => "number",
            Kind::Metric { format, .. } => format.as_str(),
            Kind::Metadata {
                data_type: DataType::Text,
            } => "text",
            Kind::Metadata { data_type } => data_type.as_str(),
            Kind::Table { columns: [] } => "property-list",
            Kind::Table { .. } => "multicolumn-table",
        }
    }
}

/// What one collection produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Collected {
    /// Nothing this round (a rate's first reading, a source that is not there).
    NoSample,
    /// Values by node id (`vec![Point::new(..)].into()` from hand-written collectors).
    Values(Points),
}

/// A collector's values, with every node id, series and text in one buffer: a round of
/// 10,000 values costs a few allocations, not 10,000 (each a `String` to make, and to
/// free a round later). Build one from a `Vec<Point>`, or with [`Points::push`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    text: String,
    entries: Vec<Entry>,
    /// How many entries have a series.
    with_series: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    node_id: Span,
    series: Option<Span>,
    value: Stored,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stored {
    Number(f64),
    Text(Span),
}

/// Where a string sits in [`Points`]' buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Appends with `write`; `None` past what a `u32` can address.
    fn append(text: &mut String, write: impl FnOnce(&mut String)) -> Option<Self> {
        let start = text.len();
        write(text);
        Some(Self {
            start: u32::try_from(start).ok()?,
            len: u32::try_from(text.len() - start).ok()?,
        })
    }
}

/// One value of a collector, borrowed from [`Points`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointRef<'a> {
    /// Scope's node id.
    pub node_id: &'a str,
    /// The series (see [`Point::series`]).
    pub series: Option<&'a str>,
    /// The value.
    pub value: ValueRef<'a>,
}

/// A value borrowed from [`Points`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A metric sample.
    Number(f64),
    /// A metadata value.
    Text(&'a str),
}

impl Points {
    /// No values, with room for `count`.
    pub fn with_capacity(count: usize) -> Self {
        Self {
            text: String::new(),
            entries: Vec::with_capacity(count),
            with_series: 0,
        }
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a value for `node_id`, in `series` if any.
    pub fn push(&mut self, node_id: &str, series: Option<&str>, value: ValueRef<'_>) {
        self.push_with(|text| text.push_str(node_id), series, value);
    }

    /// Adds a value whose node id `write_node_id` appends to the buffer. A value past
    /// 4 GiB of text is left out: 80 times what Scope accepts in a whole report.
    pub(crate) fn push_with(
        &mut self,
        write_node_id: impl FnOnce(&mut String),
        series: Option<&str>,
        value: ValueRef<'_>,
    ) {
        let rollback = self.text.len();
        let node_id = Span::append(&mut self.text, write_node_id);
        let series = match series {
            None => Some(None),
            Some(series) => Span::append(&mut self.text, |text| text.push_str(series)).map(Some),
        };
        let value = match value {
            ValueRef::Number(number) => Some(Stored::Number(number)),
            ValueRef::Text(value) => {
                Span::append(&mut self.text, |text| text.push_str(value)).map(Stored::Text)
            }
        };
        match (node_id, series, value) {
            (Some(node_id), Some(series), Some(value)) => {
                self.with_series += usize::from(series.is_some());
                self.entries.push(Entry {
                    node_id,
                    series,
                    value,
                });
            }
            _ => self.text.truncate(rollback),
        }
    }

    /// True if any value is in a series.
    pub fn has_series(&self) -> bool {
        self.with_series > 0
    }

    /// The value at `index`.
    pub fn get(&self, index: usize) -> Option<PointRef<'_>> {
        self.entries.get(index).map(|entry| self.resolve(entry))
    }

    /// The values, in the order they were added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PointRef<'_>> {
        self.entries.iter().map(|entry| self.resolve(entry))
    }

    fn resolve(&self, entry: &Entry) -> PointRef<'_> {
        let text = |span: Span| {
            let start = span.start as usize;
            self.text
                .get(start..start + span.len as usize)
                .unwrap_or_default()
        };
        PointRef {
            node_id: text(entry.node_id),
            series: entry.series.map(text),
            value: match entry.value {
                Stored::Number(number) => ValueRef::Number(number),
                Stored::Text(span) => ValueRef::Text(text(span)),
            },
        }
    }
}

impl From<Vec<Point>> for Points {
    fn from(points: Vec<Point>) -> Self {
        points.into_iter().collect()
    }
}

impl FromIterator<Point> for Points {
    fn from_iter<I: IntoIterator<Item = Point>>(points: I) -> Self {
        let points = points.into_iter();
        let mut collected = Self::with_capacity(points.size_hint().0);
        for point in points {
            collected.push(
                &point.node_id,
                point.series.as_deref(),
                point.value.as_ref(),
            );
        }
        collected
    }
}

impl Value {
    /// Borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Number(number) => ValueRef::Number(*number),
            Value::Text(text) => ValueRef::Text(text),
        }
    }
}

/// One value for one node, optionally in a named series of the collector.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Scope's node id.
    pub node_id: String,
    /// The series, for collectors that report a family of metrics (one per HTTP status
    /// code, say): sent as `<wire id>_<series>`. `None` for the collector's one metric.
    pub series: Option<String>,
    /// The value.
    pub value: Value,
}

impl Point {
    /// A value of the collector's one metric.
    pub fn new(node_id: impl Into<String>, value: Value) -> Self {
        Self {
            node_id: node_id.into(),
            series: None,
            value,
        }
    }
}

/// One node's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A metric sample.
    Number(f64),
    /// A metadata value.
    Text(String),
}

/// What a collector sees besides its own state.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) host_id: String,
    pub(crate) plugin_id: String,
    pub(crate) procfs: PathBuf,
    pub(crate) since_last_sample: Option<Duration>,
    pub(crate) started: Instant,
    pub(crate) options: HashMap<String, String>,
    /// Every option key a collector asked for, shared by the plugin's contexts, so that a
    /// `--set` key no collector reads gets a warning.
    pub(crate) options_asked: Option<Arc<Mutex<BTreeSet<String>>>>,
}

impl Context {
    /// A context for calling a collector outside the runtime, as tests do.
    pub fn new(host_id: impl Into<String>, procfs: impl Into<PathBuf>) -> Self {
        Self {
            host_id: host_id.into(),
            plugin_id: String::from("test"),
            procfs: procfs.into(),
            since_last_sample: None,
            started: Instant::now(),
            options: HashMap::new(),
            options_asked: None,
        }
    }

    /// Scope's host id for this host (`SCOPE_HOSTNAME`, else the hostname, or `--host-id`).
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The plugin id.
    pub fn plugin_id(&self) -> &str {
        &self.plugin_id
    }

    /// The procfs root (`--path.procfs`, default `/proc`).
    pub fn procfs(&self) -> &Path {
        &self.procfs
    }

    /// A path under the procfs root, such as `procfs_path("stat")`.
    pub fn procfs_path(&self, relative: &str) -> PathBuf {
        self.procfs.join(relative)
    }

    /// Time since this collector's previous run started, `None` on the first one.
    pub fn since_last_sample(&self) -> Option<Duration> {
        self.since_last_sample
    }

    /// When this run started: the moment its values are dated in the report. A rate
    /// measured from one run's `started` to the next spans exactly the time between its
    /// samples' dates, so rate × time adds up to the count, however long the runs take.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// A `--set key=value` option given on the command line.
    pub fn option(&self, key: &str) -> Option<&str> {
        if let Some(asked) = &self.options_asked {
            let mut asked = asked.lock().unwrap_or_else(PoisonError::into_inner);
            if !asked.contains(key) {
                asked.insert(key.to_owned());
            }
        }
        self.options.get(key).map(String::as_str)
    }

    /// Sets `since_last_sample` (for tests that drive a collector by hand).
    pub fn with_since_last_sample(mut self, since: Option<Duration>) -> Self {
        self.since_last_sample = since;
        self
    }

    /// Sets an option (for tests that drive a collector by hand).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }
}

/// A registry that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two collectors with one id.
    #[error("two collectors have the id {id:?}: {first} and {second}; rename one")]
    Duplicate {
        /// The shared id.
        id: String,
        /// One definition.
        first: Location,
        /// The other.
        second: Location,
    },
    /// An id, label or range Scope cannot use.
    #[error("collector {id:?} at {location}: {problem}")]
    Invalid {
        /// The collector.
        id: String,
        /// Where it is.
        location: Location,
        /// What is wrong.
        problem: String,
    },
}

/// The plugin's collectors, sorted by (topology, id) and checked.
#[derive(Debug, Clone)]
pub struct Registry {
    collectors: Vec<&'static Collector>,
}

impl Registry {
    /// Every collector registered in this binary plus `extra`, sorted and checked.
    pub fn load(plugin_id: &str, extra: &[&'static Collector]) -> Result<Self, RegistryError> {
        let registered = inventory::iter::<Collector>.into_iter();
        Self::from_collectors(plugin_id, registered.chain(extra.iter().copied()).collect())
    }

    /// The given collectors, sorted and checked.
    pub fn from_collectors(
        plugin_id: &str,
        mut collectors: Vec<&'static Collector>,
    ) -> Result<Self, RegistryError> {
        collectors.sort_by_key(|c| (c.topology, c.id, c.location.file, c.location.line));
        let mut seen: BTreeMap<&str, &Collector> = BTreeMap::new();
        for collector in &collectors {
            check_collector(plugin_id, collector)?;
            if let Some(first) = seen.insert(collector.id, collector) {
                return Err(RegistryError::Duplicate {
                    id: collector.id.to_owned(),
                    first: first.location,
                    second: collector.location,
                });
            }
        }
        check_table_prefixes(plugin_id, &collectors)?;
        Ok(Self { collectors })
    }

    /// The collectors, sorted by (topology, id).
    pub fn collectors(&self) -> &[&'static Collector] {
        &self.collectors
    }

    /// The collector called `id` (its own id or its wire id).
    pub fn find(&self, id: &str, plugin_id: &str) -> Option<&'static Collector> {
        self.collectors
            .iter()
            .copied()
            .find(|c| c.id == id || c.wire_id(plugin_id) == id)
    }
}

fn check_collector(plugin_id: &str, collector: &Collector) -> Result<(), RegistryError> {
    let invalid = |problem: String| RegistryError::Invalid {
        id: collector.id.to_owned(),
        location: collector.location,
        problem,
    };
    validate_key(&collector.wire_id(plugin_id)).map_err(|e| invalid(e.to_string()))?;
    scope_plugin_rules::check_label(collector.label).map_err(|e| invalid(e.into()))?;
    if collector.priority.is_some_and(|p| !p.is_finite()) {
        return Err(invalid("the priority is not a finite number".into()));
    }
    if let Kind::Metric { min, max, .. } = collector.kind {
        scope_plugin_rules::check_range(min, max).map_err(invalid)?;
    }
    if collector.rollup != Rollup::None
        && (collector.topology != Topology::Process
            || !matches!(collector.kind, Kind::Metric { .. }))
    {
        return Err(invalid(format!(
            "rollup = \"{}\" applies to process metrics only (it adds their values up per container and pod)",
            collector.rollup.name()
        )));
    }
    for duration in [collector.interval, collector.timeout]
        .into_iter()
        .flatten()
    {
        scope_plugin_rules::check_interval(duration)
            .map_err(|e| invalid(format!("interval and timeout {e}")))?;
    }
    Ok(())
}

/// A table's rows are the `latest` keys that start with `<table key>_`: another text row or
/// table whose key starts so would be read as the table's (and in a multicolumn table, a
/// key without `___` crashes Scope's renderer, rule 28).
fn check_table_prefixes(
    plugin_id: &str,
    collectors: &[&'static Collector],
) -> Result<(), RegistryError> {
    for table in collectors
        .iter()
        .filter(|c| matches!(c.kind, Kind::Table { .. }))
    {
        let prefix = format!("{}_", table.wire_id(plugin_id));
        let failing = format!("{plugin_id}_failing_");
        let clash = collectors
            .iter()
            .filter(|other| other.topology == table.topology && !std::ptr::eq(**other, *table))
            .filter(|other| !matches!(other.kind, Kind::Metric { .. }))
            .find(|other| other.wire_id(plugin_id).starts_with(&prefix));
        if let Some(other) = clash {
            return Err(RegistryError::Invalid {
                id: table.id.to_owned(),
                location: table.location,
                problem: format!(
                    "the table's rows are the keys starting with {prefix:?}, and {:?} at {} starts so: rename one",
                    other.wire_id(plugin_id),
                    other.location
                ),
            });
        }
        if prefix.starts_with(&failing) || failing.starts_with(&prefix) {
            return Err(RegistryError::Invalid {
                id: table.id.to_owned(),
                location: table.location,
                problem: format!(
                    "{prefix:?} would also hold the rows naming failing collectors: rename the table"
                ),
            });
        }
    }
    Ok(())
}

/// A number a metric collector may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a metric value",
    label = "a #[scope_metric] function returns a number (f64, f32 or an integer) per node",
    note = "for text, use #[scope_metadata]"
)]
pub trait MetricValue {
    /// As `f64`.
    fn into_f64(self) -> f64;
}

macro_rules! metric_values {
    ($($ty:ty),*) => {$(
        impl MetricValue for $ty {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless, reason = "a metric is an f64 on the wire")]
            fn into_f64(self) -> f64 { self as f64 }
        }
    )*};
}
metric_values!(f64, f32, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// Text a metadata collector may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a metadata value",
    label = "a #[scope_metadata] function returns text (String or &str), a number or a bool per node",
    note = "for numbers, use #[scope_metric]"
)]
pub trait MetadataValue {
    /// As a `String`.
    fn into_text(self) -> String;
}

impl MetadataValue for String {
    fn into_text(self) -> String {
        self
    }
}

impl MetadataValue for &str {
    fn into_text(self) -> String {
        self.to_owned()
    }
}

// Numbers and booleans as their text: a row such as "open files: 12", sorted as a number
// with `data_type = "number"`.
macro_rules! metadata_as_text {
    ($($type:ty)*) => {$(
        impl MetadataValue for $type {
            fn into_text(self) -> String {
                self.to_string()
            }
        }
    )*};
}
metadata_as_text!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize f32 f64 bool);

/// Turns a collector's value into [`Value`]; `Kind` is `MetricKind` or `MetadataKind`.
pub trait IntoValue<Kind> {
    /// The value.
    fn into_value(self) -> Value;
}

/// Marker: the collector is a metric.
#[derive(Debug)]
pub enum MetricKind {}
/// Marker: the collector is a metadata row.
#[derive(Debug)]
pub enum MetadataKind {}

impl<T: MetricValue> IntoValue<MetricKind> for T {
    fn into_value(self) -> Value {
        Value::Number(self.into_f64())
    }
}

impl<T: MetadataValue> IntoValue<MetadataKind> for T {
    fn into_value(self) -> Value {
        Value::Text(self.into_text())
    }
}

/// What a Host-topology collector may return: a value, `Option` of one (`None`: no sample
/// this round), or `Result` of either.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a host collector",
    label = "return a value, Option<value> or Result<value> for this host's node",
    note = "per-node topologies return collections such as Vec<(Pid, f64)> instead"
)]
pub trait HostOutput<K> {
    /// The collected values.
    fn into_collected(self, context: &Context) -> anyhow::Result<Collected>;
}

// Concrete impls (not a blanket over `IntoValue`) so that `Option` and `Result` below
// cannot overlap with them.
macro_rules! host_scalars {
    ($kind:ty: $($ty:ty),*) => {$(
        impl HostOutput<$kind> for $ty {
            fn into_collected(self, context: &Context) -> anyhow::Result<Collected> {
                let mut points = Points::with_capacity(1);
                let value = IntoValue::<$kind>::into_value(self);
                points.push_with(
                    |text| ThisHost.write_node_id(context.host_id(), text),
                    None,
                    value.as_ref(),
                );
                Ok(Collected::Values(points))
            }
        }
    )*};
}
host_scalars!(MetricKind: f64, f32, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
host_scalars!(MetadataKind: String, &str);

impl<K, T: HostOutput<K>> HostOutput<K> for Option<T> {
    fn into_collected(self, context: &Context) -> anyhow::Result<Collected> {
        match self {
            Some(value) => value.into_collected(context),
            None => Ok(Collected::NoSample),
        }
    }
}

impl<K, T: HostOutput<K>, E: Into<anyhow::Error>> HostOutput<K> for Result<T, E> {
    fn into_collected(self, context: &Context) -> anyhow::Result<Collected> {
        self.map_err(Into::into)?.into_collected(context)
    }
}

/// What a per-node collector may return: `(key, value)` pairs in a `Vec`, `BTreeMap` or
/// `HashMap`, `Option` of one, or `Result` of either. Keys are typed ([`Pid`](crate::ids::Pid), ...).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a per-node collector",
    label = "return (key, value) pairs such as Vec<(Pid, f64)>, HashMap<Pid, f64>, or an Option/Result of one",
    note = "host collectors return a single value instead"
)]
pub trait NodesOutput<K> {
    /// The node key type of the values.
    type Node: NodeKey;
    /// The collected values, checked against the collector's topology.
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected>;
}

/// A key of a per-node collector's output: a [`NodeKey`], or `(NodeKey, series)` for a
/// family of metrics (the series is any `Display`, such as an HTTP status code).
pub trait SeriesKey {
    /// The node key type.
    type Node: NodeKey;
    /// The node key.
    fn node(&self) -> &Self::Node;
    /// The series, if any.
    fn series(&self) -> Option<String>;
}

impl<K: NodeKey> SeriesKey for K {
    type Node = K;
    fn node(&self) -> &K {
        self
    }
    fn series(&self) -> Option<String> {
        None
    }
}

impl<K: NodeKey, S: fmt::Display> SeriesKey for (K, S) {
    type Node = K;
    fn node(&self) -> &K {
        &self.0
    }
    fn series(&self) -> Option<String> {
        Some(self.1.to_string())
    }
}

fn keyed<K, Key: SeriesKey, V: IntoValue<K>>(
    pairs: impl IntoIterator<Item = (Key, V)>,
    context: &Context,
    topology: Topology,
) -> anyhow::Result<Collected> {
    anyhow::ensure!(
        <Key::Node as NodeKey>::TOPOLOGY == topology,
        "the collector is declared for the {} topology but returns keys of the {} topology",
        topology.name(),
        <Key::Node as NodeKey>::TOPOLOGY.name()
    );
    let pairs = pairs.into_iter();
    let mut values = Points::with_capacity(pairs.size_hint().0);
    for (key, value) in pairs {
        let series = key.series();
        let value = value.into_value();
        values.push_with(
            |text| key.node().write_node_id(context.host_id(), text),
            series.as_deref(),
            value.as_ref(),
        );
    }
    Ok(Collected::Values(values))
}

impl<K, Key: SeriesKey, V: IntoValue<K>> NodesOutput<K> for Vec<(Key, V)> {
    type Node = Key::Node;
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected> {
        keyed(self, context, topology)
    }
}

impl<K, Key: SeriesKey, V: IntoValue<K>> NodesOutput<K> for BTreeMap<Key, V> {
    type Node = Key::Node;
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected> {
        keyed(self, context, topology)
    }
}

impl<K, Key: SeriesKey, V: IntoValue<K>, S> NodesOutput<K> for HashMap<Key, V, S> {
    type Node = Key::Node;
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected> {
        keyed(self, context, topology)
    }
}

impl<K, T: NodesOutput<K>> NodesOutput<K> for Option<T> {
    type Node = T::Node;
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected> {
        match self {
            Some(values) => values.into_collected(context, topology),
            None => Ok(Collected::NoSample),
        }
    }
}

impl<K, T: NodesOutput<K>, E: Into<anyhow::Error>> NodesOutput<K> for Result<T, E> {
    type Node = T::Node;
    fn into_collected(self, context: &Context, topology: Topology) -> anyhow::Result<Collected> {
        self.map_err(Into::into)?.into_collected(context, topology)
    }
}

/// What a `#[scope_table]` function may return: rows keyed by `(node key, row id)` (the
/// host's node is `ThisHost`), each a text (a property list) or `[text; N]` for the N
/// columns of a multicolumn table; in a `Vec`, `BTreeMap` or `HashMap`, an `Option` of one,
/// or a `Result` of either.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a table",
    label = "return rows such as Vec<((Pid, u16), String)>, or Vec<((Pid, u16), [String; 2])> for two columns",
    note = "the key is (node key, row id); a multicolumn table's row is an array with one cell per column"
)]
pub trait TableOutput<Row> {
    /// The node key type.
    type Node: NodeKey;
    /// The rows, `None` for no sample this round.
    fn into_rows(self) -> anyhow::Result<Option<Rows<Self::Node, Row>>>;
}

/// A table's rows: ((node key, row id), cells).
pub type Rows<K, Row> = Vec<((K, String), Row)>;

macro_rules! table_collections {
    ($($collection:ident $(, $extra:ident)?;)*) => {$(
        impl<K: NodeKey, R: fmt::Display, Row $(, $extra)?> TableOutput<Row> for $collection<(K, R), Row $(, $extra)?> {
            type Node = K;
            fn into_rows(self) -> anyhow::Result<Option<Rows<K, Row>>> {
                Ok(Some(
                    self.into_iter()
                        .map(|((node, row), cells)| ((node, row.to_string()), cells))
                        .collect(),
                ))
            }
        }
    )*};
}

/// `Vec` has one type parameter where the maps have two: spelled out.
type VecOf<K, Row> = Vec<(K, Row)>;
table_collections! {
    VecOf;
    BTreeMap;
    HashMap, S;
}

impl<Row, T: TableOutput<Row>> TableOutput<Row> for Option<T> {
    type Node = T::Node;
    fn into_rows(self) -> anyhow::Result<Option<Rows<T::Node, Row>>> {
        match self {
            Some(rows) => rows.into_rows(),
            None => Ok(None),
        }
    }
}

impl<Row, T: TableOutput<Row>, E: Into<anyhow::Error>> TableOutput<Row> for Result<T, E> {
    type Node = T::Node;
    fn into_rows(self) -> anyhow::Result<Option<Rows<T::Node, Row>>> {
        self.map_err(Into::into)?.into_rows()
    }
}

/// A table's cells as [`Points`]: a property list's row `r` is the series `r`, a
/// multicolumn table's cell (`r`, column `c`) the series `r___c`. A row id that Scope's
/// table parser would split wrongly, or that a key cannot hold, fails the round with the
/// reason: it is never sent.
pub(crate) fn table_points<K: NodeKey>(
    rows: Vec<((K, String), Vec<String>)>,
    context: &Context,
    columns: &[TableColumn],
) -> anyhow::Result<Collected> {
    let mut points = Points::with_capacity(rows.len() * columns.len().max(1));
    let mut series = String::new();
    for ((node, row), cells) in rows {
        anyhow::ensure!(
            !row.contains(ROW_COLUMN_SEPARATOR) && validate_key(&row).is_ok(),
            "row id {row:?} cannot be sent: use ASCII letters, digits, '_', '-' or '.', with no \"___\" (Scope splits table keys on it)"
        );
        if columns.is_empty() {
            let [cell] = <[String; 1]>::try_from(cells)
                .map_err(|_| anyhow::anyhow!("a property list has one cell per row"))?;
            points.push_with(
                |text| node.write_node_id(context.host_id(), text),
                Some(&row),
                ValueRef::Text(&cell),
            );
            continue;
        }
        for (column, cell) in columns.iter().zip(&cells) {
            series.clear();
            series.push_str(&row);
            series.push_str(ROW_COLUMN_SEPARATOR);
            series.push_str(column.id);
            points.push_with(
                |text| node.write_node_id(context.host_id(), text),
                Some(&series),
                ValueRef::Text(cell),
            );
        }
    }
    Ok(Collected::Values(points))
}

/// Registers a hand-written [`Collector`] (what the attribute macros expand to).
#[macro_export]
macro_rules! register_collector {
    ($collector:expr) => {
        $crate::__private::inventory::submit! { $collector }
    };
}

/// The crate's tests' collector: a host metric with every option at its default and no
/// state. Tests change what they need with `..Collector::for_tests(id, collect)`.
#[cfg(test)]
impl Collector {
    pub(crate) const fn for_tests(id: &'static str, collect: CollectFn) -> Self {
        Self {
            topology: Topology::Host,
            id,
            label: id,
            kind: Kind::Metric {
                format: MetricFormat::Number,
                min: None,
                max: None,
            },
            priority: None,
            interval: None,
            timeout: None,
            enabled_by_default: true,
            namespaced: true,
            rollup: Rollup::None,
            description: "",
            location: Location {
                module_path: module_path!(),
                file: file!(),
                line: line!(),
            },
            new_state: crate::__private::new_state::<()>,
            collect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Pid;

    const COLUMNS: &[TableColumn] = &[
        TableColumn {
            id: "rate",
            label: "Rate",
            data_type: DataType::Number,
        },
        TableColumn {
            id: "total",
            label: "Total",
            data_type: DataType::Number,
        },
    ];

    fn cells(points: &Points) -> Vec<(String, Option<String>, String)> {
        points
            .iter()
            .map(|p| {
                let ValueRef::Text(text) = p.value else {
                    panic!("text")
                };
                (
                    p.node_id.to_owned(),
                    p.series.map(str::to_owned),
                    text.to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn table_rows_become_row_column_series_and_bad_row_ids_are_never_sent() {
        let context = Context::new("h", "/proc");
        let Collected::Values(points) = table_points(
            vec![((Pid(7), "200".into()), vec!["1.5".into(), "10".into()])],
            &context,
            COLUMNS,
        )
        .expect("rows") else {
            panic!("values")
        };
        let series = |s: &str| Some(s.to_owned());
        assert_eq!(
            cells(&points),
            vec![
                ("h;7".into(), series("200___rate"), "1.5".into()),
                ("h;7".into(), series("200___total"), "10".into()),
            ]
        );
        for bad in ["a___b", "a;b", "a/b", "", "a b"] {
            let error = table_points(
                vec![((Pid(7), bad.into()), vec!["1".into(), "2".into()])],
                &context,
                COLUMNS,
            )
            .expect_err(bad);
            assert!(
                error.to_string().contains("cannot be sent"),
                "{bad}: {error}"
            );
        }
        // A property list: the row id is the series.
        let Collected::Values(points) = table_points(
            vec![((Pid(7), "IPv4".into()), vec!["3".into()])],
            &context,
            &[],
        )
        .expect("rows") else {
            panic!("values")
        };
        assert_eq!(
            cells(&points),
            vec![("h;7".into(), series("IPv4"), "3".into())]
        );
    }

    #[test]
    fn a_table_owns_every_key_under_its_prefix() {
        fn collect(_: &mut (dyn Any + Send), _: &Context) -> anyhow::Result<Collected> {
            Ok(Collected::NoSample)
        }
        const fn collector(id: &'static str, kind: Kind) -> Collector {
            Collector {
                topology: Topology::Process,
                label: "L",
                kind,
                ..Collector::for_tests(id, collect)
            }
        }
        static TABLE: Collector = collector("ports", Kind::Table { columns: COLUMNS });
        static UNDER_IT: Collector = collector(
            "ports_extra",
            Kind::Metadata {
                data_type: DataType::Text,
            },
        );
        static A_METRIC: Collector = collector(
            "ports_open",
            Kind::Metric {
                format: MetricFormat::Number,
                min: None,
                max: None,
            },
        );
        static FAILING: Collector = collector("failing", Kind::Table { columns: &[] });
        let error = Registry::from_collectors("p", vec![&TABLE, &UNDER_IT])
            .expect_err("a text row under the table's prefix");
        assert!(error.to_string().contains("\"p_ports_extra\""), "{error}");
        // Metrics are not `latest` keys: no clash.
        Registry::from_collectors("p", vec![&TABLE, &A_METRIC]).expect("a metric may");
        Registry::from_collectors("p", vec![&FAILING]).expect_err("the failing rows' prefix");
    }

    #[test]
    fn numbers_and_bools_are_metadata_text() {
        let text = |value: Value| match value {
            Value::Text(text) => text,
            Value::Number(n) => panic!("a number {n}, not text"),
        };
        assert_eq!(text(IntoValue::<MetadataKind>::into_value(12_usize)), "12");
        assert_eq!(text(IntoValue::<MetadataKind>::into_value(1.5_f64)), "1.5");
        assert_eq!(text(IntoValue::<MetadataKind>::into_value(true)), "true");
    }
}
