//! The `/report` body, written straight from the collectors' latest values.
//!
//! The typed model (`report.rs`) defines what goes on the wire, but building it means a tree
//! of owned strings and maps: at 10,000 nodes × 5 metrics that cost tens of milliseconds
//! and about 100 MB of short-lived allocations a round. [`write`] puts the same bytes into
//! one buffer, borrowing every string from the collectors' values; [`model`] builds the
//! same report the typed way, and a test holds the two byte-identical for any input.
//!
//! Both take the values through [`sendable`], so what is left out (a non-finite number, a
//! series whose key Scope would split) is decided once.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use serde_json::ser::{CompactFormatter, Formatter};

use crate::collector::{Kind, PointRef, Points, ROW_COLUMN_SEPARATOR, ValueRef};
use crate::ids::validate_key;
use crate::report::{Metric, Report, Topology};
use crate::timestamp::Timestamp;

/// The largest body Scope's probe accepts (it counts the bytes it decodes).
pub(crate) const SCOPE_MAX_REPORT_BYTES: usize = 50 * 1024 * 1024;

/// One collector's latest values, as both writers read them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) topology: Topology,
    /// The wire key: metric key or `latest` key; a series adds `_<series>`.
    pub(crate) key: &'a str,
    pub(crate) kind: Kind,
    pub(crate) date: Timestamp,
    pub(crate) points: &'a Points,
}

/// A point as it is sent.
#[derive(Debug, Clone, Copy)]
enum Sendable<'a> {
    Metric { value: f64, min: f64, max: f64 },
    Text(&'a str),
}

impl Sendable<'_> {
    /// Text goes to a node's `latest`, which is written before its `metrics`.
    fn section(self) -> u8 {
        match self {
            Sendable::Text(_) => 0,
            Sendable::Metric { .. } => 1,
        }
    }
}

/// What `point` sends, or `None` if it cannot be sent: a non-finite number (Scope's app
/// re-encodes it as invalid JSON, docs/protocol.md §3.6) or a value of the wrong kind.
fn sendable(kind: Kind, point: PointRef<'_>) -> Option<Sendable<'_>> {
    match (point.value, kind) {
        (ValueRef::Number(number), Kind::Metric { min, max, .. }) => {
            // Scope draws min..max(max, value); keep every value inside the range.
            let floor = min.unwrap_or(0.0).min(number);
            let ceiling = max.unwrap_or(number).max(number);
            let finite = number.is_finite() && floor.is_finite() && ceiling.is_finite();
            finite.then_some(Sendable::Metric {
                value: number,
                min: floor,
                max: ceiling,
            })
        }
        (ValueRef::Text(text), Kind::Metadata { .. } | Kind::Table { .. }) => {
            Some(Sendable::Text(text))
        }
        // The typed outputs make a mismatch impossible for macro-built collectors.
        _ => None,
    }
}

/// Whether a series' key passes the key rules (no `;`, `/`, `___`, ...), remembered per
/// series: a collector sends the same few series for thousands of nodes.
#[derive(Debug)]
struct SeriesKeys<'a> {
    key: &'a str,
    /// A multicolumn table's series are `<row>___<column>`: each part is checked.
    multicolumn: bool,
    checked: HashMap<&'a str, bool>,
}

impl<'a> SeriesKeys<'a> {
    fn new(key: &'a str, kind: Kind) -> Self {
        Self {
            key,
            multicolumn: matches!(kind, Kind::Table { columns } if !columns.is_empty()),
            checked: HashMap::new(),
        }
    }

    fn allows(&mut self, series: Option<&'a str>) -> bool {
        let Some(series) = series else {
            return true;
        };
        let (key, multicolumn) = (self.key, self.multicolumn);
        *self.checked.entry(series).or_insert_with(|| {
            match series.split_once(ROW_COLUMN_SEPARATOR) {
                Some((row, column)) if multicolumn => {
                    validate_key(&series_key(key, row)).is_ok() && validate_key(column).is_ok()
                }
                _ => !multicolumn && validate_key(&series_key(key, series)).is_ok(),
            }
        })
    }
}

fn series_key(key: &str, series: &str) -> String {
    format!("{key}_{series}")
}

/// The sendable points of `source`, in order.
fn sendable_points<'a>(
    source: &'a Source<'a>,
) -> impl Iterator<Item = (usize, PointRef<'a>, Sendable<'a>)> + 'a {
    let mut series_keys = SeriesKeys::new(source.key, source.kind);
    source
        .points
        .iter()
        .enumerate()
        .filter_map(move |(index, point)| {
            let sent = sendable(source.kind, point)?;
            series_keys
                .allows(point.series)
                .then_some((index, point, sent))
        })
}

/// The series of `source` that have at least one sendable point, in order of first
/// appearance (`None` for the collector's one metric): each gets a template.
pub(crate) fn series_sent<'a>(source: &'a Source<'a>) -> Vec<Option<&'a str>> {
    // Most collectors have no series: then the first sendable point settles it, where
    // walking them all would cost a pass over every value each round.
    if !source.points.has_series() {
        return match sendable_points(source).next() {
            Some(_) => vec![None],
            None => Vec::new(),
        };
    }
    let mut seen = Vec::new();
    for (_, point, _) in sendable_points(source) {
        let series = point.series;
        if !seen.contains(&series) {
            seen.push(series);
        }
    }
    seen
}

/// The report the typed way: `report` (templates and spec) plus every source's nodes.
pub(crate) fn model(mut report: Report, sources: &[Source<'_>]) -> Report {
    for source in sources {
        for (_, point, sent) in sendable_points(source) {
            let key = match point.series {
                None => source.key.to_owned(),
                Some(series) => series_key(source.key, series),
            };
            let node = report.node_mut(source.topology, point.node_id);
            match sent {
                Sendable::Metric { value, min, max } => {
                    let Ok(mut metric) = Metric::new(min, max) else {
                        continue;
                    };
                    if metric.push(source.date, value).is_ok() {
                        node.insert_metric(key, metric);
                    }
                }
                Sendable::Text(text) => {
                    node.set_latest(key, text, source.date);
                }
            }
        }
    }
    report
}

/// How much of the report [`write`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) nodes: usize,
    /// Nodes left out to keep the body under the size limit.
    pub(crate) nodes_left_out: usize,
}

/// A sendable point: which source, which point of it.
#[derive(Debug, Clone, Copy, Default)]
struct Placed {
    source: u32,
    point: u32,
}

/// The writer's working memory, kept between rounds so that a round allocates nothing
/// once the report has reached its size. It holds indices only, no borrowed strings.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    hasher: hashbrown::DefaultHashBuilder,
    /// Node numbers, found by the node's (topology, id).
    node_numbers: hashbrown::HashTable<u32>,
    /// Each node's first point, which names it.
    nodes: Vec<Placed>,
    /// Every sendable point with its node number, in the order the model inserts them.
    placed: Vec<(u32, Placed)>,
    /// Node numbers in the model's order (topology, then id).
    order: Vec<u32>,
    /// Each node's position in `order`.
    rank: Vec<u32>,
    /// Where each node's points start in `by_node`, by position; `next` while filling it.
    starts: Vec<usize>,
    next: Vec<usize>,
    by_node: Vec<Placed>,
    /// Node numbers by point index, of the source before and of this one.
    previous_source_nodes: Vec<u32>,
    this_source_nodes: Vec<u32>,
    /// Per source: its date, and its range bounds, as JSON.
    source_bytes: Vec<SourceBytes>,
}

/// A point of the node being written, as it is sorted and sent.
#[derive(Debug, Clone, Copy)]
struct InNode<'a> {
    source: u32,
    key: &'a str,
    series: Option<&'a str>,
    sent: Sendable<'a>,
}

/// What every point of a source shares, written once per round.
#[derive(Debug, Default)]
struct SourceBytes {
    /// The key as a JSON string, and its place among the sources' keys.
    key: Vec<u8>,
    key_rank: u32,
    date: Vec<u8>,
    /// The floor when the value is above it: `min`, or 0.
    floor: FormattedNumber,
    /// The ceiling when the value is below it (`max`), if the collector has one.
    ceiling: Option<FormattedNumber>,
}

#[derive(Debug, Default)]
struct FormattedNumber {
    bits: u64,
    json: Vec<u8>,
}

impl FormattedNumber {
    fn new(value: f64) -> Self {
        let mut json = Vec::new();
        put_f64(&mut json, value);
        Self {
            bits: value.to_bits(),
            json,
        }
    }
}

fn point_at<'a>(sources: &[Source<'a>], at: Placed) -> PointRef<'a> {
    let points: &'a Points = sources[at.source as usize].points;
    // Only indices of existing points are placed.
    points.get(at.point as usize).unwrap_or(PointRef {
        node_id: "",
        series: None,
        value: ValueRef::Number(0.0),
    })
}

fn node_key<'a>(sources: &[Source<'a>], at: Placed) -> (Topology, &'a str) {
    (
        sources[at.source as usize].topology,
        point_at(sources, at).node_id,
    )
}

/// Writes into `out` (cleared first) the bytes `model(report, sources).to_json()` would
/// produce, keeping the body within `max_bytes`: if the nodes would not fit, the last ones
/// in the report's order are left out, and the rest is still a whole report.
///
/// `report` gives the templates and the spec; its nodes, if any, are not written.
pub(crate) fn write(
    report: &Report,
    sources: &[Source<'_>],
    max_bytes: usize,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Written {
    out.clear();
    place_points(sources, scratch);
    let Scratch {
        nodes,
        order,
        starts,
        by_node,
        source_bytes,
        ..
    } = scratch;
    // One node's points, sorted by key: borrowed strings, so it lives for this round only.
    let mut in_node = Vec::new();

    source_bytes.clear();
    source_bytes.extend(sources.iter().map(|source| {
        let key_rank = sources
            .iter()
            .filter(|other| other.key < source.key)
            .count();
        let (floor, ceiling) = match source.kind {
            Kind::Metric { min, max, .. } => (min.unwrap_or(0.0), max),
            Kind::Metadata { .. } | Kind::Table { .. } => (0.0, None),
        };
        SourceBytes {
            key: json_bytes(source.key),
            key_rank: index_u32(key_rank),
            date: json_bytes(&source.date),
            floor: FormattedNumber::new(floor),
            ceiling: ceiling.map(FormattedNumber::new),
        }
    }));

    // What follows the nodes (templates, spec) is small; keep room for it.
    let tail = report.to_json().len() + 1024;
    let budget = max_bytes.saturating_sub(tail);
    let mut written = Written {
        nodes: 0,
        nodes_left_out: 0,
    };
    let mut full = false;

    out.push(b'{');
    let mut first_topology = true;
    let mut position = 0;
    for &topology in Topology::ALL {
        let begin = position;
        while position < order.len()
            && node_key(sources, nodes[order[position] as usize]).0 == topology
        {
            position += 1;
        }
        let templates = report.topology(topology).filter(|data| !data.is_empty());
        if begin == position && templates.is_none() {
            continue;
        }
        if !first_topology {
            out.push(b',');
        }
        first_topology = false;
        put_str(out, topology.report_key());
        out.extend_from_slice(b":{");
        let mut wrote_nodes = false;
        for rank in begin..position {
            if full {
                written.nodes_left_out += 1;
                continue;
            }
            let node_start = out.len();
            out.extend_from_slice(if wrote_nodes { b"," } else { b"\"nodes\":{" });
            let (_, node_id) = node_key(sources, nodes[order[rank] as usize]);
            let points = &by_node[starts[rank]..starts[rank + 1]];
            write_node(
                out,
                topology,
                node_id,
                points,
                sources,
                source_bytes,
                &mut in_node,
            );
            if out.len() > budget {
                out.truncate(node_start);
                full = true;
                written.nodes_left_out += 1;
                continue;
            }
            wrote_nodes = true;
            written.nodes += 1;
        }
        if wrote_nodes {
            out.push(b'}');
        }
        if let Some(templates) = templates {
            templates.write_members_after_nodes(out, !wrote_nodes);
        }
        out.push(b'}');
    }
    if !first_topology {
        out.push(b',');
    }
    out.extend_from_slice(b"\"Plugins\":");
    put_json(out, &[report.plugin()]);
    out.push(b'}');
    written
}

/// Fills `scratch` with every sendable point grouped by node, nodes in the model's order
/// (topology, then id) and each node's points in the order they were met.
fn place_points(sources: &[Source<'_>], scratch: &mut Scratch) {
    let Scratch {
        hasher,
        node_numbers,
        nodes,
        placed,
        order,
        rank,
        starts,
        next,
        by_node,
        previous_source_nodes,
        this_source_nodes,
        ..
    } = scratch;
    node_numbers.clear();
    nodes.clear();
    placed.clear();
    previous_source_nodes.clear();
    let mut previous_topology = None;
    for (source_index, source) in sources.iter().enumerate() {
        if previous_topology != Some(source.topology) {
            previous_source_nodes.clear();
        }
        this_source_nodes.clear();
        this_source_nodes.resize(source.points.len(), u32::MAX);
        for (point_index, point, _) in sendable_points(source) {
            let at = Placed {
                source: index_u32(source_index),
                point: index_u32(point_index),
            };
            let key = (source.topology, point.node_id);
            // Collectors over one set of nodes tend to list them in one order: a node that
            // is the previous source's at this index needs no hashing.
            let node = match previous_source_nodes.get(point_index) {
                Some(&node)
                    if node != u32::MAX && node_key(sources, nodes[node as usize]) == key =>
                {
                    node
                }
                _ => {
                    let hash = hasher.hash_one(key);
                    match node_numbers.entry(
                        hash,
                        |&n| node_key(sources, nodes[n as usize]) == key,
                        |&n| hasher.hash_one(node_key(sources, nodes[n as usize])),
                    ) {
                        hashbrown::hash_table::Entry::Occupied(entry) => *entry.get(),
                        hashbrown::hash_table::Entry::Vacant(entry) => {
                            let number = index_u32(nodes.len());
                            nodes.push(at);
                            entry.insert(number);
                            number
                        }
                    }
                }
            };
            this_source_nodes[point_index] = node;
            placed.push((node, at));
        }
        std::mem::swap(previous_source_nodes, this_source_nodes);
        previous_topology = Some(source.topology);
    }

    // Node keys are distinct, so an unstable sort gives the one order; sorted with the
    // keys at hand rather than looked up for every comparison.
    let mut keyed: Vec<((Topology, &str), u32)> = (0..index_u32(nodes.len()))
        .map(|node| (node_key(sources, nodes[node as usize]), node))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    order.clear();
    order.extend(keyed.iter().map(|&(_, node)| node));
    drop(keyed);
    rank.clear();
    rank.resize(nodes.len(), 0);
    for (position, &node) in order.iter().enumerate() {
        rank[node as usize] = index_u32(position);
    }
    // A counting sort by rank: stable, so each node's points keep their order.
    starts.clear();
    starts.resize(nodes.len() + 1, 0);
    for (node, _) in placed.iter() {
        starts[rank[*node as usize] as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    next.clear();
    next.extend_from_slice(starts);
    by_node.clear();
    by_node.resize(placed.len(), Placed::default());
    for &(node, at) in placed.iter() {
        let slot = &mut next[rank[node as usize] as usize];
        by_node[*slot] = at;
        *slot += 1;
    }
}

/// `"<id>":{"id":"<id>","topology":...,"latest":{...},"metrics":{...}}`, as `Node`
/// serialises, with the node's points sorted by key and the last value of a key kept, as
/// the model's maps do.
fn write_node<'a>(
    out: &mut Vec<u8>,
    topology: Topology,
    node_id: &str,
    points: &[Placed],
    sources: &[Source<'a>],
    source_bytes: &[SourceBytes],
    in_node: &mut Vec<InNode<'a>>,
) {
    in_node.clear();
    in_node.extend(points.iter().filter_map(|&at| {
        let point = point_at(sources, at);
        let sent = sendable(sources[at.source as usize].kind, point)?;
        Some(InNode {
            source: at.source,
            key: sources[at.source as usize].key,
            series: point.series,
            sent,
        })
    }));
    // Keys without a series compare by their source's key rank, not by string.
    let cmp = |a: &InNode<'_>, b: &InNode<'_>| {
        a.sent
            .section()
            .cmp(&b.sent.section())
            .then_with(|| match (a.series, b.series) {
                (None, None) => source_bytes[a.source as usize]
                    .key_rank
                    .cmp(&source_bytes[b.source as usize].key_rank),
                _ => cmp_keys((a.key, a.series), (b.key, b.series)),
            })
    };
    // Stable, so among equal keys the last inserted stays last.
    if !in_node.is_sorted_by(|a, b| cmp(a, b).is_le()) {
        in_node.sort_by(cmp);
    }

    let id_start = out.len();
    put_str(out, node_id);
    let id_end = out.len();
    out.extend_from_slice(b":{\"id\":");
    out.extend_from_within(id_start..id_end);
    out.extend_from_slice(b",\"topology\":");
    put_str(out, topology.name());
    let mut open_section = None;
    for (index, entry) in in_node.iter().enumerate() {
        let next_same_key = in_node
            .get(index + 1)
            .is_some_and(|next| cmp(next, entry) == Ordering::Equal);
        if next_same_key {
            continue;
        }
        let section = entry.sent.section();
        if open_section == Some(section) {
            out.push(b',');
        } else {
            if open_section.is_some() {
                out.push(b'}');
            }
            out.extend_from_slice(if section == 0 {
                b",\"latest\":{"
            } else {
                b",\"metrics\":{"
            });
            open_section = Some(section);
        }
        let shared = &source_bytes[entry.source as usize];
        match entry.series {
            None => out.extend_from_slice(&shared.key),
            Some(series) => put_str(out, &series_key(entry.key, series)),
        }
        match entry.sent {
            Sendable::Text(text) => {
                out.extend_from_slice(b":{\"timestamp\":");
                out.extend_from_slice(&shared.date);
                out.extend_from_slice(b",\"value\":");
                put_str(out, text);
                out.push(b'}');
            }
            Sendable::Metric { value, min, max } => {
                out.extend_from_slice(b":{\"samples\":[{\"date\":");
                out.extend_from_slice(&shared.date);
                out.extend_from_slice(b",\"value\":");
                let value_start = out.len();
                put_f64(out, value);
                let value_json = value_start..out.len();
                // The bounds are the value itself or the collector's own: copy, not format.
                let put_bound = |out: &mut Vec<u8>, bound: f64, own: Option<&FormattedNumber>| {
                    if bound.to_bits() == value.to_bits() {
                        out.extend_from_within(value_json.clone());
                    } else if let Some(own) = own.filter(|own| own.bits == bound.to_bits()) {
                        out.extend_from_slice(&own.json);
                    } else {
                        put_f64(out, bound);
                    }
                };
                out.extend_from_slice(b"}],\"min\":");
                put_bound(out, min, Some(&shared.floor));
                out.extend_from_slice(b",\"max\":");
                put_bound(out, max, shared.ceiling.as_ref());
                out.push(b'}');
            }
        }
    }
    if open_section.is_some() {
        out.push(b'}');
    }
    out.push(b'}');
}

/// Report bodies handed back when the last response holding one is done, so that the next
/// round writes into memory already mapped instead of faulting in megabytes anew (at
/// 10,000 nodes, page faults were a sixth of the plugin's CPU time).
#[derive(Debug, Default, Clone)]
pub(crate) struct BodyPool(Arc<Mutex<Option<Vec<u8>>>>);

impl BodyPool {
    /// An empty buffer for a body of about `expected` bytes: the spare one if it is not
    /// far bigger than that (a report that shrank gives its memory back).
    pub(crate) fn take(&self, expected: usize) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        match spare {
            Some(mut body) if body.capacity() <= 2 * expected + (1 << 20) => {
                body.clear();
                body.reserve(expected + expected / 8);
                body
            }
            _ => Vec::with_capacity(expected + expected / 8),
        }
    }

    /// `body` as shared bytes that come back to this pool when the last clone is dropped.
    pub(crate) fn share(&self, body: Vec<u8>) -> Bytes {
        Bytes::from_owner(PooledBody {
            body,
            pool: self.clone(),
        })
    }
}

struct PooledBody {
    body: Vec<u8>,
    pool: BodyPool,
}

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        let mut spare = self.pool.0.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.is_none() {
            *spare = Some(std::mem::take(&mut self.body));
        }
    }
}

/// Orders keys `<key>` or `<key>_<series>` as their strings would sort, without building
/// them.
fn cmp_keys(a: (&str, Option<&str>), b: (&str, Option<&str>)) -> Ordering {
    if let ((a, None), (b, None)) = (a, b) {
        return a.cmp(b);
    }
    spelled(a).cmp(spelled(b))
}

fn spelled<'a>((key, series): (&'a str, Option<&'a str>)) -> impl Iterator<Item = u8> + 'a {
    let separator: &[u8] = if series.is_some() { b"_" } else { b"" };
    key.bytes()
        .chain(separator.iter().copied())
        .chain(series.unwrap_or_default().bytes())
}

fn index_u32(index: usize) -> u32 {
    // A report with 2^32 values would be far over Scope's size limit long before.
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// A JSON string, as serde_json writes it. Most strings need no escaping (serde_json
/// escapes only `"`, `\` and control characters): those are copied as they are.
fn put_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        put_json(out, text);
    }
}

/// A finite number, as serde_json writes it.
fn put_f64(out: &mut Vec<u8>, value: f64) {
    // Writing to a Vec cannot fail.
    let _ = CompactFormatter.write_f64(out, value);
}

fn put_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Every value written here has string keys and finite numbers: serde_json cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    put_json(&mut bytes, value);
    bytes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::collector::{Point, Value};
    use crate::report::{DataType, MetricFormat, MetricTemplate, PluginSpec};

    /// Owned data for one source.
    #[derive(Debug, Clone)]
    struct OwnedSource {
        topology: Topology,
        key: String,
        kind: Kind,
        date: Timestamp,
        points: Points,
    }

    fn sources(owned: &[OwnedSource]) -> Vec<Source<'_>> {
        owned
            .iter()
            .map(|o| Source {
                topology: o.topology,
                key: &o.key,
                kind: o.kind,
                date: o.date,
                points: &o.points,
            })
            .collect()
    }

    fn templates() -> Report {
        let spec = PluginSpec::new("snap", "Snapshot \"test\"").expect("spec");
        let mut report = Report::new(spec);
        let mut template = MetricTemplate::new("snap_a", "A").expect("template");
        template.format = MetricFormat::Percent;
        report
            .topology_mut(Topology::Process)
            .insert_metric_template(template);
        report
    }

    fn model_bytes(owned: &[OwnedSource]) -> Vec<u8> {
        model(templates(), &sources(owned)).to_json()
    }

    fn written_bytes(owned: &[OwnedSource], max_bytes: usize) -> (Vec<u8>, Written) {
        let mut out = vec![b'x'; 3];
        let mut scratch = Scratch::default();
        // Twice with one scratch: what the last round left in it must not leak through.
        write(
            &templates(),
            &sources(owned),
            max_bytes,
            &mut scratch,
            &mut out,
        );
        let written = write(
            &templates(),
            &sources(owned),
            max_bytes,
            &mut scratch,
            &mut out,
        );
        (out, written)
    }

    fn date(seconds: u64) -> Timestamp {
        Timestamp::try_from(std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
            .expect("date")
            .saturating_add(Duration::from_nanos(seconds * 1_000_000_007))
    }

    fn node_id() -> impl Strategy<Value = String> {
        prop_oneof![
            (1_u32..40).prop_map(|pid| format!("host;{pid}")),
            Just(String::from("host;<host>")),
            Just(String::from("quote\"and\\back;1")),
            Just(String::from("tab\tnew\nline;2")),
            Just(String::from("héllo;3")),
            Just(String::new()),
        ]
    }

    fn series() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(String::from("200"))),
            1 => Just(Some(String::from("404"))),
            1 => Just(Some(String::new())),
            1 => Just(Some(String::from("_x"))),
            1 => Just(Some(String::from("__x"))),
            1 => Just(Some(String::from("a;b"))),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => any::<f64>().prop_map(Value::Number),
            1 => prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0),
                Just(1e300),
                Just(5e-324),
                Just(100.0),
            ]
            .prop_map(Value::Number),
            2 => "[a-z\"\\\\\u{0}-\u{1f}é😀 ]{0,12}".prop_map(Value::Text),
        ]
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            (
                proptest::option::of(-10.0_f64..10.0),
                proptest::option::of(0.0_f64..200.0)
            )
                .prop_map(|(min, max)| Kind::Metric {
                    format: MetricFormat::Number,
                    min,
                    max: match (min, max) {
                        (Some(min), Some(max)) => Some(max.max(min)),
                        (_, max) => max,
                    },
                }),
            Just(Kind::Metadata {
                data_type: DataType::Text
            }),
        ]
    }

    fn source() -> impl Strategy<Value = OwnedSource> {
        (
            prop_oneof![
                Just(Topology::Host),
                Just(Topology::Process),
                Just(Topology::Container)
            ],
            prop_oneof![
                Just("snap_a"),
                Just("snap_a_1"),
                Just("snap_b"),
                Just("snap_a_200")
            ],
            kind(),
            0_u64..4,
            proptest::collection::vec((node_id(), series(), value()), 0..30),
        )
            .prop_map(|(topology, key, kind, seconds, points)| OwnedSource {
                topology,
                key: key.to_owned(),
                kind,
                date: date(seconds),
                points: points
                    .into_iter()
                    .map(|(node_id, series, value)| Point {
                        node_id,
                        series,
                        value,
                    })
                    .collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the collectors return, the writer sends what the model would.
        #[test]
        fn written_report_is_the_models_byte_for_byte(
            owned in proptest::collection::vec(source(), 0..6)
        ) {
            let (written, counts) = written_bytes(&owned, usize::MAX);
            prop_assert_eq!(counts.nodes_left_out, 0);
            // Every series with a sendable point gets a template, the shortcut included.
            for source in sources(&owned) {
                let mut naive: Vec<Option<&str>> = Vec::new();
                for (_, point, _) in sendable_points(&source) {
                    if !naive.contains(&point.series) {
                        naive.push(point.series);
                    }
                }
                prop_assert_eq!(series_sent(&source), naive);
            }
            let expected = model_bytes(&owned);
            prop_assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    fn many_nodes(nodes: u32) -> Vec<OwnedSource> {
        (1_u32..=5)
            .map(|metric| OwnedSource {
                topology: Topology::Process,
                key: format!("snap_m{metric}"),
                kind: Kind::Metric {
                    format: MetricFormat::Number,
                    min: None,
                    max: (metric == 5).then_some(100.0),
                },
                date: date(u64::from(metric)),
                points: (1..=nodes)
                    .map(|pid| {
                        Point::new(
                            format!("host;{pid}"),
                            Value::Number(f64::from(pid % 97) + f64::from(metric) / 10.0),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn a_big_report_is_the_models_byte_for_byte() {
        let owned = many_nodes(20_000);
        let (written, counts) = written_bytes(&owned, SCOPE_MAX_REPORT_BYTES);
        assert_eq!(counts.nodes, 20_000);
        assert!(written == model_bytes(&owned), "the bytes differ");
    }

    /// Over the limit, the report is still whole and valid, under the limit, and holds the
    /// first nodes exactly as the model has them.
    #[test]
    fn over_the_size_limit_the_last_nodes_are_left_out() {
        let owned = many_nodes(3_000);
        let full = model_bytes(&owned);
        let limit = full.len() / 3;
        let (written, counts) = written_bytes(&owned, limit);
        assert!(written.len() <= limit, "{} > {limit}", written.len());
        assert_eq!(counts.nodes + counts.nodes_left_out, 3_000);
        assert!(counts.nodes > 500, "only {} nodes kept", counts.nodes);
        let sent: serde_json::Value = serde_json::from_slice(&written).expect("valid JSON");
        let whole: serde_json::Value = serde_json::from_slice(&full).expect("valid JSON");
        let sent_nodes = sent["Process"]["nodes"].as_object().expect("nodes");
        assert_eq!(sent_nodes.len(), counts.nodes);
        let whole_nodes = whole["Process"]["nodes"].as_object().expect("nodes");
        for (expected, (id, node)) in whole_nodes.iter().zip(sent_nodes) {
            assert_eq!((expected.0, expected.1), (id, node));
        }
        assert_eq!(
            sent["Process"]["metric_templates"],
            whole["Process"]["metric_templates"]
        );
        assert_eq!(sent["Plugins"], whole["Plugins"]);
    }

    #[test]
    fn a_report_with_no_values_is_the_models() {
        assert_eq!(written_bytes(&[], usize::MAX).0, model_bytes(&[]));
        let spec_only = Report::new(PluginSpec::new("snap", "S").expect("spec"));
        let mut out = Vec::new();
        write(
            &spec_only,
            &[],
            usize::MAX,
            &mut Scratch::default(),
            &mut out,
        );
        assert_eq!(out, spec_only.to_json());
    }
}
