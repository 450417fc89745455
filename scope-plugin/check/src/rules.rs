//! The probe's spec checks and docs/protocol.md §6's body rules, applied to a raw `/report` body.

use serde::Serialize;
use serde_json::{Map, Value};

use scope_plugin_rules::{DataType, MetricFormat, Topology};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Scope rejects, corrupts or crashes.
    Must,
    /// The UI or the data degrades.
    Should,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// MUST or SHOULD.
    pub level: Level,
    /// The rule number in docs/protocol.md §6.
    pub rule: u8,
    /// Where, as a JSON path (`$.Host.nodes["h;<host>"].latest.k.timestamp`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub fix: String,
}

/// The result of judging one body like the probe.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What the probe would put in the plugin's status: `ok` or `error: ...`.
    pub status: String,
    /// Every broken rule.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// True if no MUST rule is broken.
    pub fn passes(&self) -> bool {
        !self.findings.iter().any(|f| f.level == Level::Must)
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(
        &mut self,
        level: Level,
        rule: u8,
        path: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            level,
            rule,
            path: path.to_owned(),
            message: message.into(),
            fix: fix.into(),
        });
    }
}

fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_owned()))
    }
}

/// Judges `body` as the probe would for the plugin whose socket gives `expected_id`.
pub fn judge(body: &[u8], expected_id: &str) -> Verdict {
    let mut findings = Findings(Vec::new());
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let root = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(error)) => return decode_error(findings, format!("json: {error}")),
        None => return decode_error(findings, "EOF".into()),
    };
    let consumed = values.byte_offset();
    if consumed < body.len() {
        findings.add(
            Level::Should,
            11,
            "$",
            format!("{} byte(s) after the JSON value", body.len() - consumed),
            "end the body right after the closing brace: with trailing bytes Go does not reuse the connection",
        );
    }
    let Value::Object(root) = root else {
        return decode_error(
            findings,
            "json: the top-level value is not an object".into(),
        );
    };
    let status = spec_status(&root, expected_id);
    check_top_level(&root, expected_id, &mut findings);
    if let Some(error) = status.strip_prefix("error: ") {
        findings.add(
            Level::Must,
            spec_rule(error),
            "$.Plugins",
            error.to_owned(),
            spec_fix(error),
        );
    }
    findings
        .0
        .sort_by(|a, b| (a.level, a.rule, &a.path).cmp(&(b.level, b.rule, &b.path)));
    Verdict {
        status,
        findings: findings.0,
    }
}

fn decode_error(mut findings: Findings, detail: String) -> Verdict {
    let status = format!("error: decoding error: {detail}");
    findings.add(Level::Must, 15, "$", status.clone(), "send one JSON object");
    Verdict {
        status,
        findings: findings.0,
    }
}

/// The spec checks in `registry.go` `Plugin.Report` order; the first failure is the status.
fn spec_status(root: &Map<String, Value>, expected_id: &str) -> String {
    // Plugins is decoded into a map keyed by id: duplicates collapse, last wins.
    let mut specs: Vec<&Map<String, Value>> = Vec::new();
    if let Some(Value::Array(entries)) = root.get("Plugins") {
        for spec in entries.iter().filter_map(Value::as_object) {
            let id = scalar_text(spec.get("id"));
            specs.retain(|s| scalar_text(s.get("id")) != id);
            specs.push(spec);
        }
    }
    if specs.len() != 1 {
        return format!(
            "error: report must contain exactly one plugin (found {})",
            specs.len()
        );
    }
    let spec = specs[0];
    let id = scalar_text(spec.get("id"));
    if id != expected_id {
        return format!(
            "error: plugin must not change its id (is {id:?}, should be {expected_id:?})"
        );
    }
    let api_version = scalar_text(spec.get("api_version"));
    if api_version != "1" {
        return format!("error: incorrect API version: expected \"1\", got {api_version:?}");
    }
    if scalar_text(spec.get("label")).is_empty() {
        return String::from("error: spec must contain a label");
    }
    let reporter = spec
        .get("interfaces")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|i| i.as_str() == Some("reporter")));
    if !reporter {
        return String::from("error: spec must implement the \"reporter\" interface");
    }
    String::from("ok")
}

fn spec_rule(error: &str) -> u8 {
    if error.starts_with("report must") || error.starts_with("plugin must") {
        16
    } else {
        17
    }
}

fn spec_fix(error: &str) -> &'static str {
    if error.starts_with("report must") {
        "send \"Plugins\" (capital P) as an array with exactly one spec"
    } else if error.starts_with("plugin must") {
        "make the spec id equal the socket's file name without its extension"
    } else if error.starts_with("incorrect API") {
        "send \"api_version\": \"1\""
    } else if error.contains("label") {
        "send a non-empty \"label\""
    } else {
        "send \"interfaces\": [\"reporter\"] (lowercase)"
    }
}

/// Go's ugorji decoder turns scalars into their text where a string is expected.
fn scalar_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Whether a spec in `Plugins` declares the controller interface: the probe then rewrites
/// every node's `id` to its map key (`registry.go`), which it leaves alone otherwise.
fn is_controller(root: &Map<String, Value>) -> bool {
    root.get("Plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|spec| spec.get("interfaces")?.as_array())
        .flatten()
        .any(|interface| interface.as_str() == Some("controller"))
}

fn check_top_level(root: &Map<String, Value>, plugin_id: &str, findings: &mut Findings) {
    let controller = is_controller(root);
    for (key, value) in root {
        let path = key_path("$", key);
        if let Some(topology) = Topology::ALL.iter().find(|t| t.report_key() == key) {
            check_topology(*topology, value, &path, plugin_id, controller, findings);
            continue;
        }
        if let Some(topology) = Topology::ALL
            .iter()
            .find(|t| t.report_key().eq_ignore_ascii_case(key))
        {
            findings.add(
                Level::Must,
                15,
                &path,
                format!("Scope matches keys case-sensitively and silently drops {key:?}"),
                format!("spell it {:?}", topology.report_key()),
            );
            continue;
        }
        match key.as_str() {
            "Plugins" => {}
            "TS" => {
                check_timestamp(value, &path, findings);
                findings.add(
                    Level::Should,
                    32,
                    &path,
                    "TS drags the probe's report time back",
                    "leave TS out",
                );
            }
            "Window" => {
                check_integer(value, &path, findings);
                findings.add(
                    Level::Should,
                    32,
                    &path,
                    "the probe overwrites Window",
                    "leave Window out",
                );
            }
            "Sampling" => {
                for field in ["Count", "Total"] {
                    if let Some(v) = value.get(field) {
                        check_integer(v, &key_path(&path, field), findings);
                    }
                }
            }
            "Shortcut" | "ID" | "nodes" => {
                findings.add(
                    Level::Should,
                    32,
                    &path,
                    format!("{key} is ignored or legacy"),
                    format!("leave {key} out"),
                );
            }
            "DNS" => {}
            _ => findings.add(
                Level::Should,
                15,
                &path,
                format!("unknown top-level key {key:?} is dropped by Scope"),
                "plugins cannot add topologies; use one of the 23 topology keys",
            ),
        }
    }
    if !root.contains_key("Plugins")
        && let Some(key) = root.keys().find(|k| k.eq_ignore_ascii_case("plugins"))
    {
        findings.add(
            Level::Must,
            15,
            &key_path("$", key),
            "Scope only reads \"Plugins\"",
            "spell it \"Plugins\"",
        );
    }
}

fn check_topology(
    topology: Topology,
    value: &Value,
    path: &str,
    plugin_id: &str,
    controller: bool,
    findings: &mut Findings,
) {
    let Some(object) = value.as_object() else {
        findings.add(
            Level::Must,
            15,
            path,
            "a topology must be an object",
            "send {\"nodes\": {...}}",
        );
        return;
    };
    let empty = Map::new();
    let nodes = object
        .get("nodes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let nodes_path = key_path(path, "nodes");
    let declared = object
        .get("controls")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (id, node) in nodes {
        let node_path = key_path(&nodes_path, id);
        check_node(
            topology, id, node, &node_path, plugin_id, controller, findings,
        );
        check_active_controls(topology, node, &node_path, declared, findings);
    }
    for (field, kind) in [
        ("metric_templates", "metrics"),
        ("metadata_templates", "latest"),
        ("table_templates", ""),
    ] {
        let Some(templates) = object.get(field).and_then(Value::as_object) else {
            continue;
        };
        let templates_path = key_path(path, field);
        for (id, template) in templates {
            let template_path = key_path(&templates_path, id);
            check_template(
                field,
                kind,
                id,
                template,
                &template_path,
                nodes,
                plugin_id,
                findings,
            );
        }
    }
    if let Some(controls) = object.get("controls").and_then(Value::as_object) {
        for (id, control) in controls {
            let control_path = key_path(&key_path(path, "controls"), id);
            if id.contains(';') {
                findings.add(
                    Level::Must,
                    35,
                    &control_path,
                    "control ids cannot contain ';'",
                    "use [A-Za-z0-9_.-]",
                );
            }
            if let Some(rank) = control.get("rank") {
                check_integer(rank, &key_path(&control_path, "rank"), findings);
            }
        }
    }
    for field in ["shape", "label", "label_plural", "tag"] {
        if object.contains_key(field) {
            findings.add(
                Level::Should,
                32,
                &key_path(path, field),
                format!("topology {field} has no effect or decorates every node"),
                format!("leave {field} out"),
            );
        }
    }
}

fn check_node(
    topology: Topology,
    key: &str,
    node: &Value,
    path: &str,
    plugin_id: &str,
    controller: bool,
    findings: &mut Findings,
) {
    let Some(node) = node.as_object() else {
        findings.add(
            Level::Must,
            34,
            path,
            "a node must be an object",
            "send {\"id\": ..., ...}",
        );
        return;
    };
    match node.get("id").and_then(Value::as_str) {
        Some(id) if id == key => {}
        // The probe sets a controller plugin's node ids to their keys: nothing breaks.
        other if controller => findings.add(
            Level::Should,
            21,
            &key_path(path, "id"),
            format!(
                "node id {:?} differs from its map key {key:?}; the probe rewrites it for controller plugins, other readers of the report may not",
                other.unwrap_or("")
            ),
            "set id to the map key",
        ),
        other => findings.add(
            Level::Must,
            21,
            &key_path(path, "id"),
            format!(
                "node id {:?} differs from its map key {key:?}",
                other.unwrap_or("")
            ),
            "set id to the map key",
        ),
    }
    if let Some(name) = node.get("topology")
        && name.as_str() != Some(topology.name())
    {
        findings.add(
            Level::Must,
            22,
            &key_path(path, "topology"),
            format!(
                "topology {name} differs from {:?}; merging two spellings panics the probe",
                topology.name()
            ),
            format!("omit it or send {:?}", topology.name()),
        );
    }
    if let Some(latest) = node.get("latest").and_then(Value::as_object) {
        let latest_path = key_path(path, "latest");
        for (key, entry) in latest {
            let entry_path = key_path(&latest_path, key);
            check_namespaced(key, &entry_path, plugin_id, findings);
            match entry.get("timestamp") {
                Some(ts) => check_timestamp(ts, &key_path(&entry_path, "timestamp"), findings),
                None => findings.add(
                    Level::Should,
                    18,
                    &entry_path,
                    "no timestamp: the value loses every merge",
                    "stamp it with the current UTC time",
                ),
            }
            match entry.get("value") {
                Some(Value::Object(_) | Value::Array(_)) => findings.add(
                    Level::Must,
                    20,
                    &key_path(&entry_path, "value"),
                    "latest values must be strings; objects and arrays fail decoding",
                    "send the value as a string",
                ),
                Some(Value::Number(_) | Value::Bool(_)) => findings.add(
                    Level::Should,
                    20,
                    &key_path(&entry_path, "value"),
                    "a non-string value is coerced to text",
                    "send the value as a string",
                ),
                _ => {}
            }
        }
    }
    if let Some(metrics) = node.get("metrics").and_then(Value::as_object) {
        let metrics_path = key_path(path, "metrics");
        for (key, metric) in metrics {
            let metric_path = key_path(&metrics_path, key);
            check_namespaced(key, &metric_path, plugin_id, findings);
            check_metric(metric, &metric_path, findings);
        }
    }
    for field in ["sets", "parents"] {
        if let Some(lists) = node.get(field).and_then(Value::as_object) {
            for (key, list) in lists {
                check_sorted_unique(list, &key_path(&key_path(path, field), key), findings);
            }
        }
    }
    if let Some(adjacency) = node.get("adjacency") {
        check_sorted_unique(adjacency, &key_path(path, "adjacency"), findings);
    }
    if let Some(controls) = node.get("latestControls").and_then(Value::as_object) {
        for (key, entry) in controls {
            if let Some(ts) = entry.get("timestamp") {
                check_timestamp(
                    ts,
                    &key_path(
                        &key_path(&key_path(path, "latestControls"), key),
                        "timestamp",
                    ),
                    findings,
                );
            }
        }
    }
    if let Some(counters) = node.get("counters").and_then(Value::as_object) {
        for (key, count) in counters {
            check_integer(count, &key_path(&key_path(path, "counters"), key), findings);
        }
    }
}

/// The control ids a node shows: `latestControls` entries not dead, and
/// `latest.active_controls` (`;`-separated), as Scope's decoder merges them.
pub(super) fn active_controls(node: &Value) -> Vec<String> {
    let mut ids: Vec<String> = node
        .get("latestControls")
        .and_then(Value::as_object)
        .map(|controls| {
            controls
                .iter()
                .filter(|(_, entry)| {
                    entry.pointer("/value/dead").and_then(Value::as_bool) != Some(true)
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty()
        && let Some(list) = node
            .pointer("/latest/active_controls/value")
            .and_then(Value::as_str)
    {
        ids = list
            .split(';')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
    }
    ids
}

fn check_active_controls(
    topology: Topology,
    node: &Value,
    path: &str,
    declared: &Map<String, Value>,
    findings: &mut Findings,
) {
    let active = active_controls(node);
    if active.is_empty() {
        return;
    }
    // Scope's own reporters set control_probe_id on host, container, Kubernetes and ECS
    // nodes; on these topologies only the plugin can.
    let probe_sets_it = !matches!(
        topology,
        Topology::Process | Topology::Endpoint | Topology::Overlay | Topology::ContainerImage
    );
    if !probe_sets_it && node.pointer("/latest/control_probe_id").is_none() {
        findings.add(
            Level::Must,
            37,
            &key_path(path, "latest"),
            "the node has controls but no latest.control_probe_id, so Scope shows none of them",
            "set latest.control_probe_id to the probe_id from the /report query string",
        );
    }
    for id in active
        .iter()
        .filter(|id| !declared.contains_key(id.as_str()))
    {
        findings.add(
            Level::Should,
            36,
            path,
            format!("active control {id:?} is not declared in the topology's controls"),
            "declare it under the topology's \"controls\"",
        );
    }
}

fn check_metric(metric: &Value, path: &str, findings: &mut Findings) {
    let number = |field: &str| metric.get(field).and_then(Value::as_f64);
    for field in ["min", "max"] {
        if let Some(v) = metric.get(field)
            && !v.is_number()
        {
            findings.add(
                Level::Must,
                24,
                &key_path(path, field),
                format!("{field} is {v}, not a number"),
                "send a finite number",
            );
        }
    }
    let (min, max) = (number("min").unwrap_or(0.0), number("max").unwrap_or(0.0));
    let samples = metric
        .get("samples")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut previous: Option<i128> = None;
    for (index, sample) in samples.iter().enumerate() {
        let sample_path = format!("{}[{index}]", key_path(path, "samples"));
        let date = sample.get("date").map(|d| {
            check_timestamp(d, &key_path(&sample_path, "date"), findings);
            d.as_str().and_then(parse_rfc3339_nanos)
        });
        match sample.get("value") {
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if v < min || v > max {
                    findings.add(
                        Level::Should,
                        24,
                        &key_path(&sample_path, "value"),
                        format!("value {v} is outside min {min} .. max {max}"),
                        "send min ≤ value ≤ max (the sparkline uses them as its range)",
                    );
                }
            }
            other => findings.add(
                Level::Must,
                24,
                &key_path(&sample_path, "value"),
                format!(
                    "value {} is not a finite number",
                    other.map_or("missing".into(), Value::to_string)
                ),
                "send a finite JSON number; drop the sample if it is NaN or infinite",
            ),
        }
        if let Some(Some(date)) = date {
            if previous.is_some_and(|p| p >= date) {
                findings.add(
                    Level::Should,
                    24,
                    &sample_path,
                    "samples are not in strictly increasing date order",
                    "sort samples by date and drop duplicates",
                );
            }
            previous = Some(date);
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the arguments"
)]
fn check_template(
    field: &str,
    data_kind: &str,
    id: &str,
    template: &Value,
    path: &str,
    nodes: &Map<String, Value>,
    plugin_id: &str,
    findings: &mut Findings,
) {
    let inner = template.get("id").and_then(Value::as_str).unwrap_or("");
    if inner != id {
        findings.add(
            Level::Must,
            25,
            &key_path(path, "id"),
            format!("template id {inner:?} differs from its map key {id:?}; Scope looks rows up by the inner id"),
            "set id to the map key",
        );
    }
    check_namespaced(id, path, plugin_id, findings);
    if !data_kind.is_empty()
        && !nodes
            .values()
            .any(|n| n.get(data_kind).and_then(|m| m.get(id)).is_some())
    {
        findings.add(
            Level::Should,
            25,
            path,
            format!("no node has a {data_kind} entry {id:?}, so the row never shows"),
            "send the template only with data, or fix the key",
        );
    }
    if let Some(truncate) = template.get("truncate") {
        check_integer(truncate, &key_path(path, "truncate"), findings);
    }
    let text = |key: &str| template.get(key).and_then(Value::as_str).unwrap_or("");
    match field {
        "metric_templates" => {
            if !MetricFormat::ALL
                .iter()
                .any(|format| format.as_str() == text("format"))
            {
                findings.add(
                    Level::Should,
                    26,
                    &key_path(path, "format"),
                    "unknown format renders as a number",
                    "use \"\", integer, filesize or percent",
                );
            }
            if template
                .get("priority")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                < 3.0
            {
                findings.add(
                    Level::Should,
                    31,
                    &key_path(path, "priority"),
                    "priority below 3 pushes Scope's CPU and memory rows out of the top three",
                    "use a priority of 3 or more",
                );
            }
        }
        "metadata_templates" => {
            if !DataType::ALL
                .iter()
                .any(|data_type| data_type.as_str() == text("dataType"))
            {
                findings.add(
                    Level::Should,
                    26,
                    &key_path(path, "dataType"),
                    "unknown dataType",
                    "use \"\", number, ip, datetime or duration",
                );
            }
        }
        _ => check_table(template, path, nodes, findings),
    }
}

fn check_table(template: &Value, path: &str, nodes: &Map<String, Value>, findings: &mut Findings) {
    let kind = template.get("type").and_then(Value::as_str).unwrap_or("");
    if !["", "property-list", "multicolumn-table"].contains(&kind) {
        findings.add(
            Level::Must,
            27,
            &key_path(path, "type"),
            format!("table type {kind:?} renders nothing"),
            "use property-list or multicolumn-table",
        );
    }
    if kind != "multicolumn-table" {
        return;
    }
    let columns = template
        .get("columns")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if columns == 0 {
        findings.add(
            Level::Must,
            28,
            &key_path(path, "columns"),
            "a multicolumn table needs at least one column",
            "add a column",
        );
    }
    let prefix = template.get("prefix").and_then(Value::as_str).unwrap_or("");
    if prefix.is_empty() {
        return;
    }
    for (node_id, node) in nodes {
        let Some(latest) = node.get("latest").and_then(Value::as_object) else {
            continue;
        };
        for key in latest
            .keys()
            .filter(|k| k.starts_with(prefix) && !k[prefix.len()..].contains("___"))
        {
            findings.add(
                Level::Must,
                28,
                &key_path(
                    &key_path(&key_path(&key_path("$", "nodes"), node_id), "latest"),
                    key,
                ),
                format!(
                    "key {key:?} has the table prefix but no \"___\": Scope panics rendering it"
                ),
                format!("name it {prefix}<row>___<column>, or use another prefix"),
            );
        }
    }
}

const BUILT_IN_KEYS: &[&str] = &["control_probe_id", "active_controls", "host_node_id"];

fn check_namespaced(key: &str, path: &str, plugin_id: &str, findings: &mut Findings) {
    if !key.starts_with(plugin_id) && !BUILT_IN_KEYS.contains(&key) {
        findings.add(
            Level::Should,
            30,
            path,
            format!("key {key:?} is not namespaced by the plugin id"),
            format!("prefix it with \"{plugin_id}_\""),
        );
    }
}

fn check_integer(value: &Value, path: &str, findings: &mut Findings) {
    if !(value.is_i64() || value.is_u64()) {
        findings.add(
            Level::Must,
            19,
            path,
            format!("{value} is not a JSON integer; decoding fails for the whole report"),
            "send a whole number without '.' or exponent",
        );
    }
}

fn check_sorted_unique(list: &Value, path: &str, findings: &mut Findings) {
    let Some(items) = list.as_array() else { return };
    let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
    if texts.windows(2).any(|pair| pair[0] >= pair[1]) {
        findings.add(
            Level::Should,
            23,
            path,
            "array is not sorted and unique",
            "sort by bytes and remove duplicates",
        );
    }
}

fn check_timestamp(value: &Value, path: &str, findings: &mut Findings) {
    let valid = value.as_str().and_then(parse_rfc3339_nanos).is_some();
    if !valid {
        findings.add(
            Level::Must,
            18,
            path,
            format!("{value} is not an RFC 3339 time Go accepts; it can silently corrupt the rest of the report"),
            "send UTC like \"2024-05-01T12:00:00.5Z\"",
        );
    }
}

/// Parses the RFC 3339 form Go's `time.Time.UnmarshalJSON` accepts: `T` and `Z` upper
/// case, a zone required, optional fraction. Returns nanoseconds since the epoch.
pub fn parse_rfc3339_nanos(text: &str) -> Option<i128> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    let shape = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19);
    if !shape {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if count == 0 {
            return None;
        }
        rest = &fraction[count..];
    }
    let zone_ok = rest == "Z"
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':'
            && rest[1..3]
                .bytes()
                .chain(rest[4..6].bytes())
                .all(|b| b.is_ascii_digit()));
    if !zone_ok {
        return None;
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_go() {
        for good in [
            "2023-01-01T00:00:00Z",
            "2023-01-01T00:00:00+00:00",
            "2023-01-01T00:00:00.123456789Z",
        ] {
            assert!(parse_rfc3339_nanos(good).is_some(), "{good}");
        }
        for bad in [
            "2023-01-01T00:00:00",
            "2023-01-01 00:00:00Z",
            "2023-01-01T00:00:00z",
            "2016-07-20T15:51:05Z01:00",
            "",
        ] {
            assert!(parse_rfc3339_nanos(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn spec_status_strings_match_the_probe() {
        let status = |body: &str| judge(body.as_bytes(), "p").status;
        assert_eq!(
            status(r#"{}"#),
            "error: report must contain exactly one plugin (found 0)"
        );
        assert_eq!(
            status(r#"{"Plugins":[{"id":"p"},{"id":"q"}]}"#),
            "error: report must contain exactly one plugin (found 2)"
        );
        assert_eq!(
            status(r#"{"Plugins":[{"id":"q","api_version":"1"}]}"#),
            r#"error: plugin must not change its id (is "q", should be "p")"#
        );
        assert_eq!(
            status(r#"{"Plugins":[{"id":"p","api_version":"2"}]}"#),
            r#"error: incorrect API version: expected "1", got "2""#
        );
        assert_eq!(
            status(r#"{"Plugins":[{"id":"p","api_version":1}]}"#),
            "error: spec must contain a label"
        );
        assert_eq!(
            status(
                r#"{"Plugins":[{"id":"p","api_version":"1","label":"P","interfaces":["Reporter"]}]}"#
            ),
            r#"error: spec must implement the "reporter" interface"#
        );
        assert_eq!(
            status(
                r#"{"Plugins":[{"id":"p","api_version":"1","label":"P","interfaces":["reporter"]}]}"#
            ),
            "ok"
        );
    }

    #[test]
    fn a_controller_plugins_node_without_id_passes_like_the_probe() {
        // The official iowait plugin's Host node has no id; the probe rewrites node ids of
        // controller plugins to their keys and says "ok".
        let body = |interfaces: &str| {
            format!(
                r#"{{"Host":{{"nodes":{{"h;<host>":{{"topology":"host","metrics":{{}}}}}}}},"Plugins":[{{"id":"p","api_version":"1","label":"P","interfaces":[{interfaces}]}}]}}"#
            )
        };
        let controller = judge(body(r#""reporter","controller""#).as_bytes(), "p");
        assert!(controller.passes(), "{:#?}", controller.findings);
        assert!(
            controller
                .findings
                .iter()
                .any(|f| f.rule == 21 && f.level == Level::Should)
        );
        let reporter = judge(body(r#""reporter""#).as_bytes(), "p");
        assert!(!reporter.passes());
        assert!(
            reporter
                .findings
                .iter()
                .any(|f| f.rule == 21 && f.level == Level::Must)
        );
    }
}
