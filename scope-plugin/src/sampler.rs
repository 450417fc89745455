//! Background sampling: every collector on its own timer, results merged into a report
//! snapshot that `/report` serves as is.
//!
//! A collector runs on the blocking pool under `catch_unwind` and a timeout (see
//! the runner), so a panic or a hang loses only that collector's values; `/report`
//! never waits for a collector.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cgroup::{ContainerMap, RolledUp};
use crate::collector::{Collected, Collector, Context, Kind, Points, Registry, ValueRef};
use crate::ids::{NodeKey, ThisHost};
use crate::report::{
    Column, DataType, Finite, MetricTemplate, PluginSpec, Report, TableTemplate, Topology,
};
pub(crate) use crate::runner::Outcome;
use crate::runner::{Runner, lower_thread_priority};
use crate::snapshot::{self, SCOPE_MAX_REPORT_BYTES, Source};
use crate::timestamp::Timestamp;
use scope_plugin_rules::Rollup;

/// How long a finished collector waits for others still running before the snapshot is
/// rebuilt; when none is running, the rebuild starts at once.
const REBUILD_DEBOUNCE: Duration = Duration::from_millis(20);

/// A rebuild that took less than this last time runs on the async worker itself: handing
/// a small report to the blocking pool costs two thread wake-ups, more than building it.
const INLINE_REBUILD_LIMIT: Duration = Duration::from_millis(1);

/// Settings shared by every collector of a plugin.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// The plugin's spec (its id prefixes the wire ids).
    pub spec: PluginSpec,
    /// This host's id in Scope.
    pub host_id: String,
    /// Default sampling interval.
    pub interval: Duration,
    /// The procfs root.
    pub procfs: PathBuf,
    /// `--set key=value` options for collectors.
    pub options: HashMap<String, String>,
}

/// Counters kept per collector.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectorStats {
    /// The collector's wire id.
    pub id: String,
    /// Successful samples.
    pub successes: u64,
    /// Failed samples (errors, panics, timeouts).
    pub failures: u64,
    /// How long the collector's last finished run took, in milliseconds.
    pub last_duration_ms: Option<f64>,
    /// The current error, if the last run failed.
    pub error: Option<String>,
    /// Whether the collector is running now.
    pub running: bool,
}

#[derive(Debug)]
struct Slot {
    collector: &'static Collector,
    wire_id: String,
    /// Shared, so a rebuild copies a pointer under the lock, not the values.
    values: Option<Arc<(Timestamp, Points)>>,
    /// The values rolled up onto containers and pods (`rollup = ...` collectors).
    rolled_up: Option<Arc<RolledUp>>,
    stats: CollectorStats,
}

/// The shared state: one slot per enabled collector, and the serialised snapshot.
#[derive(Debug)]
pub struct Sampler {
    config: SamplerConfig,
    slots: Mutex<Vec<Slot>>,
    snapshot: RwLock<Bytes>,
    changed: Notify,
    /// Collector runs started and not yet recorded.
    runs_in_flight: AtomicUsize,
    /// Collector runs recorded so far: a rebuild is due only when it has moved on.
    rounds_recorded: AtomicU64,
    /// How long the last rebuild took, in nanoseconds.
    last_rebuild_ns: AtomicU64,
    /// The last body's length: the next one is written into a buffer that size.
    last_body_len: AtomicUsize,
    /// Nodes the last body left out to stay under Scope's size limit.
    nodes_left_out: AtomicUsize,
    /// The snapshot writer's memory, and the bodies it writes into, reused every round.
    scratch: Mutex<snapshot::Scratch>,
    bodies: snapshot::BodyPool,
    /// Option keys collectors asked for (see [`Context::option`]).
    options_asked: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Whether unread `--set` keys were looked for (once every collector has sampled).
    options_checked: std::sync::atomic::AtomicBool,
    /// Each process's container and pod, for roll-ups.
    containers: Arc<ContainerMap>,
}

impl Sampler {
    /// A sampler for the enabled `collectors`, with an initial snapshot holding the spec.
    pub fn new(config: SamplerConfig, collectors: &[&'static Collector]) -> Arc<Self> {
        let slots = collectors
            .iter()
            .map(|&collector| {
                let wire_id = collector.wire_id(config.spec.id());
                Slot {
                    collector,
                    values: None,
                    rolled_up: None,
                    stats: CollectorStats {
                        id: wire_id.clone(),
                        ..CollectorStats::default()
                    },
                    wire_id,
                }
            })
            .collect();
        let sampler = Arc::new(Self {
            config,
            slots: Mutex::new(slots),
            snapshot: RwLock::new(Bytes::new()),
            changed: Notify::new(),
            runs_in_flight: AtomicUsize::new(0),
            rounds_recorded: AtomicU64::new(0),
            last_rebuild_ns: AtomicU64::new(0),
            last_body_len: AtomicUsize::new(0),
            nodes_left_out: AtomicUsize::new(0),
            scratch: Mutex::default(),
            bodies: snapshot::BodyPool::default(),
            options_asked: Arc::default(),
            options_checked: std::sync::atomic::AtomicBool::new(false),
            containers: Arc::default(),
        });
        sampler.rebuild();
        // That build held no values: until a real one is timed, build on the pool.
        sampler.last_rebuild_ns.store(u64::MAX, Ordering::Relaxed);
        sampler
    }

    /// The latest serialised report.
    pub fn snapshot(&self) -> Bytes {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Per-collector counters.
    pub fn stats(&self) -> Vec<CollectorStats> {
        self.lock_slots()
            .iter()
            .map(|slot| slot.stats.clone())
            .collect()
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn context(&self, since_last_sample: Option<Duration>, started: Instant) -> Context {
        Context {
            host_id: self.config.host_id.clone(),
            plugin_id: self.config.spec.id().to_owned(),
            procfs: self.config.procfs.clone(),
            since_last_sample,
            started,
            options: self.config.options.clone(),
            options_asked: Some(Arc::clone(&self.options_asked)),
        }
    }

    /// The context the plugin's controls run with: the collectors' plugin id, host, procfs
    /// and options, and an option a control reads counts as read. Made once, so its
    /// `started` is only when the controls server started.
    pub(crate) fn controls_context(&self) -> Context {
        self.context(None, Instant::now())
    }

    /// Once every collector has sampled: warns about each `--set` key that none of them
    /// asked for (most likely a typo), naming the keys they did ask for.
    fn warn_about_unread_options(&self, slots: &[Slot]) {
        if self.config.options.is_empty()
            || self.options_checked.load(Ordering::Relaxed)
            || slots
                .iter()
                .any(|slot| slot.stats.successes + slot.stats.failures == 0)
        {
            return;
        }
        self.options_checked.store(true, Ordering::Relaxed);
        let asked = self
            .options_asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let known = if asked.is_empty() {
            String::from("none")
        } else {
            asked.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let mut given: Vec<&String> = self.config.options.keys().collect();
        given.sort();
        for key in given.into_iter().filter(|key| !asked.contains(*key)) {
            tracing::warn!(
                option = %key,
                options_read = %known,
                "--set {key}: no collector reads this option"
            );
        }
    }

    fn interval_of(&self, collector: &Collector) -> Duration {
        collector.interval.unwrap_or(self.config.interval)
    }

    /// Starts one task per collector, and one that rebuilds the snapshot when any reports.
    pub fn spawn(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let count = self.lock_slots().len();
        let start = tokio::time::Instant::now();
        let mut tasks: Vec<_> = (0..count)
            .map(|index| tokio::spawn(Arc::clone(self).run_collector(index, start)))
            .collect();
        let sampler = Arc::clone(self);
        tasks.push(tokio::spawn(async move {
            let mut built = 0;
            loop {
                sampler.changed.notified().await;
                // Collectors on one interval finish within moments of each other: wait for
                // those still running, up to a limit, so they share one rebuild (Notify
                // keeps a single permit). At idle nothing is left running and no timer
                // wakes the process.
                let deadline = tokio::time::Instant::now() + REBUILD_DEBOUNCE;
                loop {
                    while sampler.runs_in_flight.load(Ordering::Acquire) > 0 {
                        tokio::select! {
                            () = sampler.changed.notified() => {}
                            () = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                    // Collectors woken by the same tick but not yet polled have not counted
                    // themselves in yet (a quick one can finish first): let them start.
                    tokio::task::yield_now().await;
                    if sampler.runs_in_flight.load(Ordering::Acquire) == 0
                        || tokio::time::Instant::now() >= deadline
                    {
                        break;
                    }
                }
                // The last collector to finish may leave a wake-up behind for values the
                // rebuild that follows already includes: skip it.
                let recorded = sampler.rounds_recorded.load(Ordering::Acquire);
                if recorded == built {
                    continue;
                }
                built = recorded;
                if Duration::from_nanos(sampler.last_rebuild_ns.load(Ordering::Relaxed))
                    < INLINE_REBUILD_LIMIT
                {
                    sampler.rebuild();
                    continue;
                }
                // A big report takes tens of milliseconds to build: off the async workers,
                // so /report never waits behind it.
                let builder = Arc::clone(&sampler);
                if tokio::task::spawn_blocking(move || {
                    lower_thread_priority();
                    builder.rebuild();
                })
                .await
                .is_err()
                {
                    tracing::error!(
                        "building the report snapshot panicked; serving the previous one"
                    );
                }
            }
        }));
        tasks
    }

    async fn run_collector(self: Arc<Self>, index: usize, start: tokio::time::Instant) {
        let collector = self.lock_slots()[index].collector;
        // Every collector's timer starts at the same instant, so collectors on one interval
        // wake the process once per tick, not once each, and share one rebuild. `Skip`
        // keeps each timer on that common grid after a late tick; `Delay` shifted each
        // collector by its own lateness, and the spread collectors then took two rebuilds
        // a round instead of one.
        let mut ticker = tokio::time::interval_at(start, self.interval_of(collector));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut runner = Runner::new(collector);
        loop {
            ticker.tick().await;
            self.run_once(index, &mut runner).await;
        }
    }

    /// Runs collector `index` once and records what it returned; returns the outcome.
    pub(crate) async fn run_once(&self, index: usize, runner: &mut Runner) -> Outcome {
        self.lock_slots()[index].stats.running = true;
        let in_flight = RunInFlight::start(&self.runs_in_flight);
        // The values are dated when the run starts, not when they are stored: the time a
        // run and its roll-up take varies, and dates spaced by it would not match the
        // intervals rate collectors measure from `Context::started`.
        let (started, date) = (Instant::now(), Timestamp::now());
        let context = self.context(
            runner.last_start.map(|at| started.duration_since(at)),
            started,
        );
        runner.last_start = Some(started);
        let timeout = runner
            .collector
            .timeout
            .unwrap_or_else(|| self.interval_of(runner.collector));
        let mut outcome = runner.run(context, timeout).await;
        let rolled_up = self.roll_up(runner.collector, &mut outcome).await;
        self.record(index, &mut outcome, rolled_up, date, started.elapsed());
        drop(in_flight);
        self.changed.notify_one();
        outcome
    }

    /// The collector's values rolled up onto containers and pods, if it asks for that and
    /// returned values. On the blocking pool: a process seen for the first time costs a
    /// read of its cgroup file.
    async fn roll_up(
        &self,
        collector: &'static Collector,
        outcome: &mut Outcome,
    ) -> Option<Arc<RolledUp>> {
        if collector.rollup == Rollup::None {
            return None;
        }
        let Outcome::Collected(Collected::Values(points)) = outcome else {
            return None;
        };
        let points = std::mem::take(points);
        let containers = Arc::clone(&self.containers);
        let procfs = self.config.procfs.clone();
        let rollup = collector.rollup;
        let (points, rolled_up) = tokio::task::spawn_blocking(move || {
            // The points go back whatever happens: a roll-up that fails loses only itself.
            let rolled_up = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                containers.roll_up(&procfs, &points, rollup)
            }));
            (points, rolled_up)
        })
        .await
        .ok()?;
        *outcome = Outcome::Collected(Collected::Values(points));
        match rolled_up {
            Ok(rolled_up) => Some(Arc::new(rolled_up)),
            Err(_) => {
                tracing::error!(
                    collector = collector.id,
                    "rolling up onto containers and pods panicked; sending the processes only"
                );
                None
            }
        }
    }

    /// Stores the outcome's values in the slot (moving them out: a big collector returns
    /// tens of thousands of points) and updates the counters.
    fn record(
        &self,
        index: usize,
        outcome: &mut Outcome,
        rolled_up: Option<Arc<RolledUp>>,
        date: Timestamp,
        took: Duration,
    ) {
        let mut slots = self.lock_slots();
        let slot = &mut slots[index];
        let error = match outcome {
            Outcome::Collected(Collected::NoSample) => {
                slot.values = None;
                slot.rolled_up = None;
                None
            }
            Outcome::Collected(Collected::Values(values)) => {
                slot.values = Some(Arc::new((date, std::mem::take(values))));
                slot.rolled_up = rolled_up;
                None
            }
            Outcome::Failed(message) => Some(message.clone()),
            Outcome::TimedOut(limit) => Some(format!(
                "did not finish within {limit:?}; its values are left out"
            )),
        };
        slot.stats.last_duration_ms = Some(took.as_secs_f64() * 1000.0);
        slot.stats.running = matches!(outcome, Outcome::TimedOut(_));
        match error {
            None => {
                if let Some(previous) = slot.stats.error.take() {
                    tracing::info!(collector = %slot.wire_id, %previous, "collector recovered");
                }
                slot.stats.successes += 1;
            }
            Some(message) => {
                slot.values = None;
                slot.rolled_up = None;
                slot.stats.failures += 1;
                // Logged when the error starts or changes, not once a second.
                if slot.stats.error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(collector = %slot.wire_id, error = %message, "collector failed");
                }
                slot.stats.error = Some(message);
            }
        }
        self.warn_about_unread_options(&slots);
        self.rounds_recorded.fetch_add(1, Ordering::Release);
    }

    /// Writes the report from every slot's latest values and swaps it in.
    pub fn rebuild(&self) {
        let started = Instant::now();
        // Room for a report as big as the last, so the buffer grows at most once.
        let mut body = self.bodies.take(self.last_body_len.load(Ordering::Relaxed));
        let written = self.with_round(|report, sources| {
            let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
            snapshot::write(
                &report,
                sources,
                SCOPE_MAX_REPORT_BYTES,
                &mut scratch,
                &mut body,
            )
        });
        self.last_body_len.store(body.len(), Ordering::Relaxed);
        let previously_left_out = self
            .nodes_left_out
            .swap(written.nodes_left_out, Ordering::Relaxed);
        if written.nodes_left_out != previously_left_out {
            if written.nodes_left_out > 0 {
                tracing::warn!(
                    nodes_sent = written.nodes,
                    nodes_left_out = written.nodes_left_out,
                    limit_bytes = SCOPE_MAX_REPORT_BYTES,
                    "the report would exceed Scope's 50 MiB limit, which makes the probe drop all of it; \
                     sending the first {} of {} nodes (by topology, then id)",
                    written.nodes,
                    written.nodes + written.nodes_left_out
                );
            } else {
                tracing::info!("the report fits Scope's size limit again; sending every node");
            }
        }
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_rebuild_ns.store(took, Ordering::Relaxed);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = self.bodies.share(body);
    }

    /// The report from every slot's latest values, built with the typed model: what `--once`
    /// prints, and what the snapshot writer is held byte-identical to.
    pub fn build_report(&self) -> Report {
        self.with_round(snapshot::model)
    }

    /// Hands `use_round` the round's templates and spec, and every slot's latest values,
    /// with a row on the host node for each failing collector.
    fn with_round<R>(&self, use_round: impl FnOnce(Report, &[Source<'_>]) -> R) -> R {
        let now = Timestamp::now();
        // Copy what the build needs and let go of the lock at once: collector tasks take it
        // on the async worker, so holding it for a big build would stall /report.
        let slots: Vec<SlotView> = self
            .lock_slots()
            .iter()
            .map(|slot| SlotView {
                collector: slot.collector,
                wire_id: slot.wire_id.clone(),
                values: slot.values.clone(),
                rolled_up: slot.rolled_up.clone(),
                error: slot.stats.error.clone(),
            })
            .collect();
        let mut report = Report::new(self.config.spec.clone());
        let mut sources = Vec::with_capacity(slots.len() + 1);
        for slot in &slots {
            let Some(values) = &slot.values else {
                continue;
            };
            let source = Source {
                topology: slot.collector.topology,
                key: &slot.wire_id,
                kind: slot.collector.kind,
                date: values.0,
                points: &values.1,
            };
            let sent = snapshot::series_sent(&source);
            if matches!(slot.collector.kind, Kind::Table { .. }) {
                if !sent.is_empty() {
                    add_template(&mut report, slot, slot.collector.topology, None);
                }
            } else {
                for series in sent {
                    add_template(&mut report, slot, slot.collector.topology, series);
                }
            }
            sources.push(source);
            let Some(rolled_up) = &slot.rolled_up else {
                continue;
            };
            // The same metric, keys and templates, on the containers and pods.
            for (topology, points) in [
                (Topology::Container, &rolled_up.containers),
                (Topology::Pod, &rolled_up.pods),
            ] {
                let source = Source {
                    topology,
                    points,
                    ..source
                };
                for series in snapshot::series_sent(&source) {
                    add_template(&mut report, slot, topology, series);
                }
                sources.push(source);
            }
        }

        let host_node = ThisHost.node_id(&self.config.host_id);
        let failing_key = format!("{}_failing", self.config.spec.id());
        let mut failing = Points::default();
        for slot in &slots {
            let Some(error) = &slot.error else {
                continue;
            };
            failing.push(&host_node, Some(slot.collector.id), ValueRef::Text(error));
            if let Ok(mut template) = crate::report::MetadataTemplate::new(
                format!("{failing_key}_{}", slot.collector.id),
                format!("{} failing", slot.collector.label),
            ) {
                // Below 10 so the row is visible without "show more".
                template.priority = Finite::try_from(9.0).ok();
                report
                    .topology_mut(Topology::Host)
                    .insert_metadata_template(template);
            }
        }
        if !failing.is_empty() {
            sources.push(Source {
                topology: Topology::Host,
                key: &failing_key,
                kind: Kind::Metadata {
                    data_type: DataType::Text,
                },
                date: now,
                points: &failing,
            });
        }
        use_round(report, &sources)
    }
}

/// Counts one collector run in `runs_in_flight` while alive, so a task that is
/// cancelled halfway (shutdown) does not leave the count up.
struct RunInFlight<'a>(&'a AtomicUsize);

impl<'a> RunInFlight<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for RunInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A slot's data, copied out of the lock for a rebuild.
struct SlotView {
    collector: &'static Collector,
    wire_id: String,
    values: Option<Arc<(Timestamp, Points)>>,
    rolled_up: Option<Arc<RolledUp>>,
    error: Option<String>,
}

/// The template for one series of a collector: `{}` in the label is replaced by the
/// series, and numeric series (status codes) sort by number after the base priority.
fn add_template(report: &mut Report, slot: &SlotView, topology: Topology, series: Option<&str>) {
    let collector = slot.collector;
    let (id, label) = match series {
        None => (slot.wire_id.clone(), collector.label.to_owned()),
        Some(series) if collector.label.contains("{}") => (
            format!("{}_{series}", slot.wire_id),
            collector.label.replace("{}", series),
        ),
        Some(series) => (
            format!("{}_{series}", slot.wire_id),
            format!("{} {series}", collector.label),
        ),
    };
    let offset = series
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0.0, |n| n / 10_000.0);
    let priority = collector
        .priority
        .map(|p| p + offset)
        .and_then(|p| Finite::try_from(p).ok());
    let topology = report.topology_mut(topology);
    match collector.kind {
        Kind::Metric { format, .. } => {
            if let Ok(mut template) = MetricTemplate::new(id, label) {
                template.format = format;
                template.priority = priority;
                topology.insert_metric_template(template);
            }
        }
        Kind::Table { columns } => {
            // One template for all the table's rows: its keys start with the prefix.
            let prefix = format!("{}_", slot.wire_id);
            let (id, label) = (slot.wire_id.clone(), collector.label);
            let template = if columns.is_empty() {
                TableTemplate::property_list(id, label, prefix)
            } else {
                columns
                    .iter()
                    .map(|c| Column::new(c.id, c.label, c.data_type))
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|columns| TableTemplate::multicolumn(id, label, prefix, columns))
            };
            if let Ok(template) = template {
                topology.insert_table_template(template);
            }
        }
        Kind::Metadata { data_type } => {
            if let Ok(mut template) = crate::report::MetadataTemplate::new(id, label) {
                template.data_type = data_type;
                template.priority = priority;
                topology.insert_metadata_template(template);
            }
        }
    }
}

/// Runs every collector at once, and again one interval later those that returned no
/// value yet (rates need two readings); returns the failures as (collector id, error).
///
/// Collectors run concurrently, so one slow to start (loading an eBPF program) does not
/// shift the others' intervals.
pub async fn run_all_once(sampler: &Arc<Sampler>) -> Vec<(String, String)> {
    let count = sampler.lock_slots().len();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let sampler = Arc::clone(sampler);
        tasks.spawn(async move {
            let collector = sampler.lock_slots()[index].collector;
            let mut runner = Runner::new(collector);
            let started = tokio::time::Instant::now();
            let mut outcome = sampler.run_once(index, &mut runner).await;
            if matches!(outcome, Outcome::Collected(Collected::NoSample)) {
                tokio::time::sleep_until(started + sampler.interval_of(collector)).await;
                outcome = sampler.run_once(index, &mut runner).await;
            }
            (collector.id, outcome)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, Outcome::Failed(error))) => failures.push((id.to_owned(), error)),
            Ok((id, Outcome::TimedOut(limit))) => {
                failures.push((id.to_owned(), format!("did not finish within {limit:?}")));
            }
            Ok(_) => {}
            Err(error) => failures.push((
                String::from("(unknown)"),
                format!("sampling task failed: {error}"),
            )),
        }
    }
    failures.sort();
    sampler.rebuild();
    failures
}

impl Registry {
    /// The collectors that run: enabled by default unless disabled, plus those enabled.
    pub fn enabled(
        &self,
        plugin_id: &str,
        enable: &[String],
        disable: &[String],
    ) -> Result<Vec<&'static Collector>, String> {
        for id in enable.iter().chain(disable) {
            if self.find(id, plugin_id).is_none() {
                let known: Vec<_> = self.collectors().iter().map(|c| c.id).collect();
                return Err(format!(
                    "no collector called {id:?}; this plugin has: {}",
                    known.join(", ")
                ));
            }
        }
        let named = |list: &[String], c: &Collector| {
            list.iter()
                .any(|id| id == c.id || *id == c.wire_id(plugin_id))
        };
        Ok(self
            .collectors()
            .iter()
            .copied()
            .filter(|c| (c.enabled_by_default || named(enable, c)) && !named(disable, c))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use super::*;
    use crate::collector::{Point, Value};

    /// When the slow collector's run ended.
    static SLOW_RUN_ENDED: Mutex<Option<Timestamp>> = Mutex::new(None);

    /// A collector that takes a while, as one reading many files does.
    fn slow(_: &mut (dyn Any + Send), ctx: &Context) -> anyhow::Result<Collected> {
        std::thread::sleep(Duration::from_millis(200));
        *SLOW_RUN_ENDED.lock().expect("lock") = Some(Timestamp::now());
        Ok(Collected::Values(
            vec![Point::new(
                ThisHost.node_id(ctx.host_id()),
                Value::Number(1.0),
            )]
            .into(),
        ))
    }

    static SLOW: Collector = Collector::for_tests("slow", slow);

    #[test]
    fn values_are_dated_when_their_run_starts_not_when_it_ends() {
        let config = SamplerConfig {
            spec: PluginSpec::new("test", "Test").expect("spec"),
            host_id: String::from("h"),
            interval: Duration::from_secs(5),
            procfs: PathBuf::from("/proc"),
            options: HashMap::new(),
        };
        let sampler = Sampler::new(config, &[&SLOW]);
        let before = Timestamp::now();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run_all_once(&sampler));
        let date = sampler.lock_slots()[0].values.as_ref().expect("values").0;
        let ended = SLOW_RUN_ENDED
            .lock()
            .expect("lock")
            .expect("the collector ran");
        assert!(
            before <= date && date < ended,
            "dated {date:?}, run from {before:?} to {ended:?}"
        );
    }
}
