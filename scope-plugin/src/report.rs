//! The typed report model: everything a plugin may send on `/report` (docs/protocol.md §3 to §5).
//!
//! The types make Scope's rules hold by construction rather than by convention:
//! - JSON keys are spelled as Scope's case-sensitive decoder reads them;
//! - only non-empty topologies are written, and `Plugins` always holds exactly one spec;
//! - node and template ids are their map keys (a node or template is created under its id);
//! - timestamps are [`Timestamp`]s (UTC `Z`), metric values are [`Finite`];
//! - samples are strictly increasing by date; sets, parents and adjacency are sorted sets.

use std::collections::{BTreeMap, BTreeSet};

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

pub use crate::ids::IdError;
pub use scope_plugin_rules::{DataType, MetricFormat, Topology};

use crate::ids::{validate_key, validate_plugin_id};
use crate::timestamp::Timestamp;

/// A value the report model refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// NaN or an infinity: Scope decodes them but the app re-encodes them as invalid JSON.
    #[error("metric value {0} is not finite; Scope cannot carry NaN or infinities")]
    NotFinite(f64),
    /// A sample not after the previous one: Scope's merges assume strictly increasing dates.
    #[error("sample at {new} is not after the previous sample at {last}")]
    SampleOrder {
        /// The newest sample already in the metric.
        last: Timestamp,
        /// The rejected sample.
        new: Timestamp,
    },
    /// An id Scope would reject or mangle.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A plugin spec without a label gets `spec must contain a label` from the probe.
    #[error(
        "the plugin label must not be empty (Scope rejects the report with \"spec must contain a label\")"
    )]
    EmptyLabel,
    /// A multicolumn table with no columns crashes Scope's UI.
    #[error("multicolumn table {0:?} needs at least one column")]
    NoColumns(String),
    /// A range Scope cannot draw ([`scope_plugin_rules::check_range`]).
    #[error("{0}")]
    Range(String),
}

/// A finite `f64`: the only kind of number a report may carry.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Finite(f64);

impl Finite {
    /// The value.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Finite {
    type Error = ModelError;
    fn try_from(value: f64) -> Result<Self, ModelError> {
        if value.is_finite() {
            Ok(Self(value))
        } else {
            Err(ModelError::NotFinite(value))
        }
    }
}

/// A whole `/report` body: the plugin's spec and its topologies.
#[derive(Debug, Clone)]
pub struct Report {
    topologies: BTreeMap<Topology, TopologyData>,
    plugin: PluginSpec,
}

impl Report {
    /// An empty report from the plugin `plugin`.
    pub fn new(plugin: PluginSpec) -> Self {
        Self {
            topologies: BTreeMap::new(),
            plugin,
        }
    }

    /// The plugin's spec, sent as the one entry of `Plugins`.
    pub fn plugin(&self) -> &PluginSpec {
        &self.plugin
    }

    /// The topology `topology`, created empty if absent.
    pub fn topology_mut(&mut self, topology: Topology) -> &mut TopologyData {
        self.topologies.entry(topology).or_default()
    }

    /// The topology `topology`, if anything was added to it.
    pub fn topology(&self, topology: Topology) -> Option<&TopologyData> {
        self.topologies.get(&topology)
    }

    /// The node `id` in `topology`, created if absent.
    pub fn node_mut(&mut self, topology: Topology, id: &str) -> &mut Node {
        self.topology_mut(topology).node_mut(topology, id)
    }

    /// The JSON body, exactly as sent: no whitespace, no trailing newline (a trailing byte
    /// stops Go's client from reusing the connection, docs/protocol.md §2.4).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising this model cannot fail: every map key is a string and every number
        // is finite, which are serde_json's only failure cases here.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// The JSON body, indented for people.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let non_empty: Vec<_> = self
            .topologies
            .iter()
            .filter(|(_, data)| !data.is_empty())
            .collect();
        let mut map = serializer.serialize_map(Some(non_empty.len() + 1))?;
        for (topology, data) in non_empty {
            map.serialize_entry(topology.report_key(), data)?;
        }
        map.serialize_entry("Plugins", &[&self.plugin])?;
        map.end()
    }
}

/// One topology's contribution: nodes, controls and the templates that render them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TopologyData {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    nodes: BTreeMap<String, Node>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    controls: BTreeMap<String, Control>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata_templates: BTreeMap<String, MetadataTemplate>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metric_templates: BTreeMap<String, MetricTemplate>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    table_templates: BTreeMap<String, TableTemplate>,
}

impl TopologyData {
    /// True if nothing would be sent for this topology.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.controls.is_empty()
            && self.metadata_templates.is_empty()
            && self.metric_templates.is_empty()
            && self.table_templates.is_empty()
    }

    fn node_mut(&mut self, topology: Topology, id: &str) -> &mut Node {
        self.nodes
            .entry(id.to_owned())
            .or_insert_with(|| Node::new(topology, id))
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// Adds (or replaces) a metric template under its own id.
    pub fn insert_metric_template(&mut self, template: MetricTemplate) {
        self.metric_templates.insert(template.id.clone(), template);
    }

    /// Adds (or replaces) a metadata template under its own id.
    pub fn insert_metadata_template(&mut self, template: MetadataTemplate) {
        self.metadata_templates
            .insert(template.id.clone(), template);
    }

    /// Adds (or replaces) a table template under its own id.
    pub fn insert_table_template(&mut self, template: TableTemplate) {
        self.table_templates.insert(template.id.clone(), template);
    }

    /// Adds (or replaces) a control under its own id.
    pub fn insert_control(&mut self, control: Control) {
        self.controls.insert(control.id.clone(), control);
    }

    /// Writes every member but `nodes`, as `TopologyData` serialises them, for the
    /// snapshot writer, which writes the nodes itself: `"controls":{...}` and so on, each
    /// after a comma unless it comes `first`.
    pub(crate) fn write_members_after_nodes(&self, out: &mut Vec<u8>, first: bool) {
        #[derive(Serialize)]
        struct AfterNodes<'a> {
            #[serde(skip_serializing_if = "no_entries")]
            controls: &'a BTreeMap<String, Control>,
            #[serde(skip_serializing_if = "no_entries")]
            metadata_templates: &'a BTreeMap<String, MetadataTemplate>,
            #[serde(skip_serializing_if = "no_entries")]
            metric_templates: &'a BTreeMap<String, MetricTemplate>,
            #[serde(skip_serializing_if = "no_entries")]
            table_templates: &'a BTreeMap<String, TableTemplate>,
        }
        fn no_entries<T>(map: &&BTreeMap<String, T>) -> bool {
            map.is_empty()
        }
        let members = serde_json::to_vec(&AfterNodes {
            controls: &self.controls,
            metadata_templates: &self.metadata_templates,
            metric_templates: &self.metric_templates,
            table_templates: &self.table_templates,
        })
        .unwrap_or_default();
        // `{...}`: keep what is between the braces.
        let inner = members
            .get(1..members.len().saturating_sub(1))
            .unwrap_or_default();
        if !inner.is_empty() {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(inner);
        }
    }

    /// The metric templates, by id.
    pub fn metric_templates(&self) -> &BTreeMap<String, MetricTemplate> {
        &self.metric_templates
    }

    /// The metadata templates, by id.
    pub fn metadata_templates(&self) -> &BTreeMap<String, MetadataTemplate> {
        &self.metadata_templates
    }
}

/// A node: the `id` and `topology` are fixed when it is created in its topology.
#[derive(Debug, Clone)]
pub struct Node {
    id: String,
    topology: Topology,
    latest: BTreeMap<String, LatestEntry>,
    sets: BTreeMap<String, BTreeSet<String>>,
    parents: BTreeMap<Topology, BTreeSet<String>>,
    adjacency: BTreeSet<String>,
    metrics: BTreeMap<String, Metric>,
    latest_controls: BTreeMap<String, LatestControl>,
}

#[derive(Debug, Clone, Serialize)]
struct LatestEntry {
    timestamp: Timestamp,
    value: String,
}

#[derive(Debug, Clone, Serialize)]
struct LatestControl {
    timestamp: Timestamp,
    value: ControlState,
}

#[derive(Debug, Clone, Serialize)]
struct ControlState {
    dead: bool,
}

impl Node {
    fn new(topology: Topology, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            topology,
            latest: BTreeMap::new(),
            sets: BTreeMap::new(),
            parents: BTreeMap::new(),
            adjacency: BTreeSet::new(),
            metrics: BTreeMap::new(),
            latest_controls: BTreeMap::new(),
        }
    }

    /// The node id (also its key in the topology).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets `latest[key]`; Scope keeps the value with the newest timestamp, so stamp it now.
    pub fn set_latest(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        timestamp: Timestamp,
    ) -> &mut Self {
        self.latest.insert(
            key.into(),
            LatestEntry {
                timestamp,
                value: value.into(),
            },
        );
        self
    }

    /// The value of `latest[key]`.
    pub fn latest(&self, key: &str) -> Option<&str> {
        self.latest.get(key).map(|entry| entry.value.as_str())
    }

    /// Adds `value` to the set `key` (kept sorted and unique).
    pub fn add_to_set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.sets
            .entry(key.into())
            .or_default()
            .insert(value.into());
        self
    }

    /// Links this node to `parent_id` in the `parent` topology.
    pub fn add_parent(&mut self, parent: Topology, parent_id: impl Into<String>) -> &mut Self {
        self.parents
            .entry(parent)
            .or_default()
            .insert(parent_id.into());
        self
    }

    /// Adds an edge to `node_id` (meaningful in Endpoint and Overlay).
    pub fn add_adjacent(&mut self, node_id: impl Into<String>) -> &mut Self {
        self.adjacency.insert(node_id.into());
        self
    }

    /// Sets the metric `key`.
    pub fn insert_metric(&mut self, key: impl Into<String>, metric: Metric) -> &mut Self {
        self.metrics.insert(key.into(), metric);
        self
    }

    /// The metric `key`.
    pub fn metric(&self, key: &str) -> Option<&Metric> {
        self.metrics.get(key)
    }

    /// Marks the control `control_id` live (or dead) on this node, in the legacy
    /// `latestControls` form. The id must be declared in the topology's `controls`.
    pub fn set_latest_control(
        &mut self,
        control_id: impl Into<String>,
        dead: bool,
        timestamp: Timestamp,
    ) -> &mut Self {
        self.latest_controls.insert(
            control_id.into(),
            LatestControl {
                timestamp,
                value: ControlState { dead },
            },
        );
        self
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut node = serializer.serialize_struct("Node", 8)?;
        node.serialize_field("id", &self.id)?;
        node.serialize_field("topology", &self.topology)?;
        if !self.latest.is_empty() {
            node.serialize_field("latest", &self.latest)?;
        }
        if !self.sets.is_empty() {
            node.serialize_field("sets", &self.sets)?;
        }
        if !self.parents.is_empty() {
            let by_name: BTreeMap<&str, &BTreeSet<String>> = self
                .parents
                .iter()
                .map(|(topology, ids)| (topology.name(), ids))
                .collect();
            node.serialize_field("parents", &by_name)?;
        }
        if !self.adjacency.is_empty() {
            node.serialize_field("adjacency", &self.adjacency)?;
        }
        if !self.metrics.is_empty() {
            node.serialize_field("metrics", &self.metrics)?;
        }
        if !self.latest_controls.is_empty() {
            node.serialize_field("latestControls", &self.latest_controls)?;
        }
        node.end()
    }
}

/// A metric: samples in strictly increasing date order, and the range the UI draws.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    samples: Vec<Sample>,
    min: Finite,
    max: Finite,
}

/// One metric sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    date: Timestamp,
    value: Finite,
}

impl Sample {
    /// The sample's time.
    pub fn date(&self) -> Timestamp {
        self.date
    }
    /// The sample's value.
    pub fn value(&self) -> f64 {
        self.value.get()
    }
}

impl Metric {
    /// An empty metric drawn between `min` and `max`.
    pub fn new(min: f64, max: f64) -> Result<Self, ModelError> {
        let (min, max) = (Finite::try_from(min)?, Finite::try_from(max)?);
        scope_plugin_rules::check_range(Some(min.get()), Some(max.get()))
            .map_err(ModelError::Range)?;
        Ok(Self {
            samples: Vec::new(),
            min,
            max,
        })
    }

    /// Appends a sample; it must be finite and later than the last one.
    pub fn push(&mut self, date: Timestamp, value: f64) -> Result<&mut Self, ModelError> {
        let value = Finite::try_from(value)?;
        if let Some(last) = self.samples.last()
            && last.date >= date
        {
            return Err(ModelError::SampleOrder {
                last: last.date,
                new: date,
            });
        }
        self.samples.push(Sample { date, value });
        Ok(self)
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The drawn range.
    pub fn range(&self) -> (f64, f64) {
        (self.min.get(), self.max.get())
    }
}

fn is_plain_number(format: &MetricFormat) -> bool {
    *format == MetricFormat::Number
}

/// A metric row in the node details panel. Rows sort by ascending priority; the UI shows
/// the first three, and Scope's own CPU and memory rows use priorities 1 and 2.
#[derive(Debug, Clone, Serialize)]
pub struct MetricTemplate {
    id: String,
    /// The row's label.
    pub label: String,
    /// How the value is formatted.
    #[serde(skip_serializing_if = "is_plain_number")]
    pub format: MetricFormat,
    /// Rows with the same group are drawn together.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Sort order (ascending; omitted counts as 0 and sorts first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Finite>,
}

impl MetricTemplate {
    /// A template for the metric key `id`.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        validate_key(&id)?;
        Ok(Self {
            id,
            label: label.into(),
            format: MetricFormat::Number,
            group: String::new(),
            priority: None,
        })
    }

    /// The template id (the metric key it renders).
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn is_text(data_type: &DataType) -> bool {
    *data_type == DataType::Text
}

/// Where a metadata row takes its value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataFrom {
    /// `latest[id]`.
    #[default]
    Latest,
    /// `sets[id]`, joined with ", ".
    Sets,
}

/// A metadata row in the node details panel (rows with priority ≥ 10 are hidden).
#[derive(Debug, Clone, Serialize)]
pub struct MetadataTemplate {
    id: String,
    /// The row's label.
    pub label: String,
    /// Truncate the value to this many characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncate: Option<i64>,
    /// How the value is shown.
    #[serde(rename = "dataType", skip_serializing_if = "is_text")]
    pub data_type: DataType,
    /// Sort order (ascending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Finite>,
    /// Where the value comes from.
    pub from: MetadataFrom,
}

impl MetadataTemplate {
    /// A template for the `latest` key `id`.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        validate_key(&id)?;
        Ok(Self {
            id,
            label: label.into(),
            truncate: None,
            data_type: DataType::Text,
            priority: None,
            from: MetadataFrom::Latest,
        })
    }

    /// The template id (the `latest` key it renders).
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A table in the node details panel, fed from `latest` keys starting with `prefix`.
#[derive(Debug, Clone, Serialize)]
pub struct TableTemplate {
    id: String,
    label: String,
    prefix: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    columns: Vec<Column>,
    #[serde(rename = "fixedRows", skip_serializing_if = "BTreeMap::is_empty")]
    fixed_rows: BTreeMap<String, String>,
}

/// A column of a multicolumn table.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    id: String,
    label: String,
    #[serde(rename = "dataType", skip_serializing_if = "is_text")]
    data_type: DataType,
}

impl Column {
    /// A column whose cells come from keys `<prefix><row>___<id>`.
    pub fn new(
        id: impl Into<String>,
        label: impl Into<String>,
        data_type: DataType,
    ) -> Result<Self, ModelError> {
        let id = id.into();
        validate_key(&id)?;
        Ok(Self {
            id,
            label: label.into(),
            data_type,
        })
    }
}

impl TableTemplate {
    /// A property list: one row per `latest` key starting with `prefix`.
    pub fn property_list(
        id: impl Into<String>,
        label: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Result<Self, ModelError> {
        Self::build(
            id.into(),
            label.into(),
            prefix.into(),
            "property-list",
            Vec::new(),
        )
    }

    /// A multicolumn table: cells are `latest["<prefix><row>___<column>"]`.
    pub fn multicolumn(
        id: impl Into<String>,
        label: impl Into<String>,
        prefix: impl Into<String>,
        columns: Vec<Column>,
    ) -> Result<Self, ModelError> {
        let id = id.into();
        if columns.is_empty() {
            return Err(ModelError::NoColumns(id));
        }
        Self::build(
            id,
            label.into(),
            prefix.into(),
            "multicolumn-table",
            columns,
        )
    }

    fn build(
        id: String,
        label: String,
        prefix: String,
        kind: &'static str,
        columns: Vec<Column>,
    ) -> Result<Self, ModelError> {
        validate_key(&id)?;
        validate_key(&prefix)?;
        Ok(Self {
            id,
            label,
            prefix,
            kind,
            columns,
            fixed_rows: BTreeMap::new(),
        })
    }

    /// Adds a fixed row: `latest[key]` shown with `label`.
    pub fn fixed_row(mut self, key: impl Into<String>, label: impl Into<String>) -> Self {
        self.fixed_rows.insert(key.into(), label.into());
        self
    }
}

/// A control button (controller plugins, docs/protocol.md §5).
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    id: String,
    /// The button's tooltip.
    pub human: String,
    /// A Font Awesome class such as `fa-download`.
    pub icon: String,
    /// A question asked before the control runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    /// Sort order of the buttons.
    pub rank: i64,
    /// Routes the control to this probe (only after the node has `control_probe_id`).
    #[serde(rename = "probeId", skip_serializing_if = "Option::is_none")]
    pub probe_id: Option<String>,
}

impl Control {
    /// A control `id` (no `;`, `/`, `?`, `#`, `%`, `~`: Scope and its UI split on them).
    pub fn new(
        id: impl Into<String>,
        human: impl Into<String>,
        icon: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let id = id.into();
        validate_key(&id)?;
        Ok(Self {
            id,
            human: human.into(),
            icon: icon.into(),
            confirmation: None,
            rank: 0,
            probe_id: None,
        })
    }
}

/// What the plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    /// Answers `GET /report` (required by the probe).
    Reporter,
    /// Answers `POST /control`.
    Controller,
}

/// The plugin's entry in `Plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginSpec {
    id: String,
    label: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    interfaces: BTreeSet<Interface>,
    api_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

impl PluginSpec {
    /// A reporter plugin `id` shown as `label`. The id must pass Scope's id rule and
    /// match the socket's file name.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Result<Self, ModelError> {
        let id = id.into();
        let label = label.into();
        validate_plugin_id(&id)?;
        if scope_plugin_rules::check_label(&label).is_err() {
            return Err(ModelError::EmptyLabel);
        }
        Ok(Self {
            id,
            label,
            description: String::new(),
            interfaces: BTreeSet::from([Interface::Reporter]),
            api_version: "1",
            status: None,
        })
    }

    /// Sets the tooltip description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Declares the controller interface too.
    pub fn with_controller(mut self) -> Self {
        self.interfaces.insert(Interface::Controller);
        self
    }

    /// Sets `status` (the probe overwrites it on `/report`; shortcut reports need `"ok"`).
    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }
}
