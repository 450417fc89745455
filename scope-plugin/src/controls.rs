//! Controls: buttons on nodes in Scope that run a function of the plugin
//! (`#[scope_control]`), served as a plugin of their own.
//!
//! The probe re-stamps `active_controls` on every node a controller plugin reports, empty
//! where the plugin lists none, and the newest list wins the merge (docs/protocol.md §5.7):
//! a controller that also reported metrics on containers would hide Docker's own buttons.
//! So a plugin's controls go out under a second plugin id, `<id>-controls`, on a socket of
//! their own, in a report holding only the nodes that show a control; the metrics plugin
//! stays a plain reporter. On a host node, Scope's own terminal button (`host_exec`) is
//! listed too, so it stays.
//!
//! That report is small and depends on the asking probe (`control_probe_id`), so it is
//! built per request rather than kept as a snapshot. Which nodes show which control is the
//! plugin's to say (`shown`), asked at each poll on the blocking pool with a time limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::collector::{Context, Location};
use crate::ids::validate_key;
use crate::report::{PluginSpec, Report, Topology};
use crate::timestamp::Timestamp;

/// A control's descriptor, registered by `#[scope_control]`.
#[derive(Debug)]
pub struct Control {
    /// The topology of the nodes that show it: host or process.
    pub topology: Topology,
    /// The id, unique in the plugin (no `;`, `/`, `~`, `%`, `?`, `#`).
    pub id: &'static str,
    /// The button's tooltip.
    pub human: &'static str,
    /// A Font Awesome class, `fa-...`.
    pub icon: &'static str,
    /// A question Scope asks before running it.
    pub confirmation: Option<&'static str>,
    /// Order among a node's buttons.
    pub rank: i64,
    /// Where it was written.
    pub location: Location,
    /// The node ids that show the control now.
    pub shown: fn(&Context) -> anyhow::Result<Vec<String>>,
    /// Runs the control on the node with this id.
    pub run: fn(&str, &Context) -> anyhow::Result<()>,
}

inventory::collect!(Control);

/// Scope's own control on host nodes (a terminal), listed beside ours so that our list,
/// newest in the merge, does not hide it.
pub(crate) const HOST_EXEC: &str = "host_exec";

/// How long `shown` may take before the control is left off that poll's report.
const SHOWN_LIMIT: Duration = Duration::from_millis(150);

/// How long a control runs before `/control` answers anyway: the probe gives up at 500 ms.
/// The control goes on in the background, and the next poll shows what it did.
const ANSWER_WITHIN: Duration = Duration::from_millis(350);

/// A `/control` body larger than this is refused unread: the probe's are a few hundred
/// bytes.
const MAX_BODY: usize = 64 << 10;

/// The plugin id the controls are served under.
pub(crate) fn controls_plugin_id(plugin_id: &str) -> String {
    format!("{plugin_id}-controls")
}

/// Every registered control, sorted, checked like the collectors: ids Scope and its UI can
/// carry, an icon, the topologies controls are safe on, no id twice.
pub(crate) fn load() -> Result<Vec<&'static Control>, String> {
    checked(inventory::iter::<Control>.into_iter().collect())
}

/// `controls` sorted and checked (see [`load`]).
fn checked(mut controls: Vec<&'static Control>) -> Result<Vec<&'static Control>, String> {
    // By id first: a click names only the control's id, so an id is unique across
    // topologies too, and duplicates sort next to each other.
    controls.sort_by_key(|c| (c.id, c.topology));
    for pair in controls.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(format!(
                "two controls have the id {:?}: {} and {}; rename one",
                pair[0].id, pair[0].location, pair[1].location
            ));
        }
    }
    controls.sort_by_key(|c| (c.topology, c.id));
    for control in &controls {
        validate_key(control.id).map_err(|e| format!("control at {}: {e}", control.location))?;
        if !matches!(control.topology, Topology::Host | Topology::Process) {
            return Err(format!(
                "control {:?} at {}: controls go on host or process nodes",
                control.id, control.location
            ));
        }
    }
    Ok(controls)
}

/// The controls plugin: its spec, its controls, and what they run with.
#[derive(Debug)]
pub(crate) struct Controls {
    spec: PluginSpec,
    controls: Vec<&'static Control>,
    context: Context,
    /// One control runs at a time: two clicks never interleave, and a click while one
    /// still runs is told so at once instead of queueing a thread behind it.
    running: Arc<AtomicBool>,
    /// Per control (same order), whether its `shown` is still running from an earlier
    /// poll: a `shown` that hangs then holds one blocking thread, not one per poll.
    asking: Vec<Arc<AtomicBool>>,
    /// Per control, the last problem with its `shown` that was logged: a problem is logged
    /// when it starts or changes, not at every poll.
    problems: Vec<std::sync::Mutex<Option<String>>>,
}

/// The probe's `/control` body: Go field names, no tags (`common/xfer/controls.go`).
#[derive(Debug, Deserialize)]
struct ControlRequest {
    #[serde(rename = "AppID", default)]
    _app_id: Option<String>,
    #[serde(rename = "NodeID")]
    node_id: String,
    #[serde(rename = "Control")]
    control: String,
    #[serde(rename = "ControlArgs", default)]
    _control_args: Option<BTreeMap<String, String>>,
}

/// The `probe_id` of the query string (`?api_version=1&probe_id=<hex>`); anything else in
/// it is ignored, as Scope may add parameters.
fn probe_id(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("probe_id="))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

impl Controls {
    pub(crate) fn new(
        plugin_id: &str,
        label: &str,
        controls: Vec<&'static Control>,
        context: Context,
    ) -> Result<Self, String> {
        let spec = PluginSpec::new(controls_plugin_id(plugin_id), format!("{label} controls"))
            .map_err(|e| e.to_string())?
            .with_description(format!("The buttons of {plugin_id}"))
            .with_controller()
            .with_status("ok");
        Ok(Self {
            asking: controls.iter().map(|_| Arc::default()).collect(),
            problems: controls
                .iter()
                .map(|_| std::sync::Mutex::default())
                .collect(),
            spec,
            controls,
            context,
            running: Arc::default(),
        })
    }

    /// The report: every control declared in its topology, and each node showing one with
    /// its list and `control_probe_id` (without which Scope shows no button).
    async fn report(&self, probe_id: Option<&str>) -> Report {
        let mut report = Report::new(self.spec.clone());
        let now = Timestamp::now();
        let mut shown: BTreeMap<(Topology, String), Vec<&'static str>> = BTreeMap::new();
        // Every control's `shown` at once, under one deadline: however many there are, the
        // report is out well within the probe's 500 ms.
        let deadline = tokio::time::Instant::now() + SHOWN_LIMIT;
        let asked: Vec<_> = (0..self.controls.len())
            .map(|index| self.ask_shown(index))
            .collect();
        for (index, (control, asked)) in self.controls.iter().zip(asked).enumerate() {
            let mut declared = crate::report::Control::new(control.id, control.human, control.icon)
                .expect("control ids are checked at start");
            declared.confirmation = control.confirmation.map(str::to_owned);
            declared.rank = control.rank;
            report
                .topology_mut(control.topology)
                .insert_control(declared);
            for node in self.answer(index, asked, deadline).await {
                shown
                    .entry((control.topology, node))
                    .or_default()
                    .push(control.id);
            }
        }
        for ((topology, node_id), mut ids) in shown {
            if topology == Topology::Host {
                ids.insert(0, HOST_EXEC);
            }
            let node = report.node_mut(topology, &node_id);
            node.set_latest("active_controls", ids.join(";"), now);
            if let Some(probe_id) = probe_id {
                node.set_latest("control_probe_id", probe_id, now);
            }
        }
        report
    }

    /// Starts control `index`'s `shown` on the blocking pool, unless the previous one is
    /// still running (then the control shows nowhere until it returns).
    fn ask_shown(
        &self,
        index: usize,
    ) -> Option<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>> {
        let asking = Arc::clone(&self.asking[index]);
        if asking.swap(true, Ordering::AcqRel) {
            return None;
        }
        let control = self.controls[index];
        let context = self.context.clone();
        Some(tokio::task::spawn_blocking(move || {
            let nodes = (control.shown)(&context);
            asking.store(false, Ordering::Release);
            nodes
        }))
    }

    /// The nodes `asked` says show control `index`; none if its `shown` fails, panics, is
    /// slow, or was still running from before.
    async fn answer(
        &self,
        index: usize,
        asked: Option<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>>,
        deadline: tokio::time::Instant,
    ) -> Vec<String> {
        let problem = match asked {
            None => String::from("its `shown` has not returned since an earlier poll"),
            Some(asked) => match tokio::time::timeout_at(deadline, asked).await {
                Ok(Ok(Ok(nodes))) => {
                    self.log_problem(index, None);
                    return nodes;
                }
                Ok(Ok(Err(error))) => format!("its `shown` failed: {error:#}"),
                Ok(Err(_)) => String::from("its `shown` panicked"),
                Err(_) => format!("its `shown` took longer than {SHOWN_LIMIT:?}"),
            },
        };
        self.log_problem(index, Some(problem));
        Vec::new()
    }

    /// Logs control `index`'s problem when it starts or changes, and when it is over.
    fn log_problem(&self, index: usize, problem: Option<String>) {
        let mut last = self.problems[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == problem {
            return;
        }
        let control = self.controls[index].id;
        match &problem {
            Some(problem) => tracing::warn!(control, %problem, "control not offered"),
            None => tracing::info!(control, "control offered again"),
        }
        *last = problem;
    }

    /// The nodes showing control `index` now.
    async fn shown_on(&self, index: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + SHOWN_LIMIT;
        self.answer(index, self.ask_shown(index), deadline).await
    }

    /// Runs a click. Every answer is HTTP 200 with a JSON object, which Scope shows: an
    /// error for anything wrong (the body, the control, the node, the control's own
    /// failure), else the shortcut report, so that the change shows at once.
    async fn click(&self, headers: &HeaderMap, body: &[u8], probe_id: Option<&str>) -> Response {
        let request = match parse(headers, body) {
            Ok(request) => request,
            Err(message) => return error(message),
        };
        let Some(index) = self.controls.iter().position(|c| c.id == request.control) else {
            let known: Vec<&str> = self.controls.iter().map(|c| c.id).collect();
            return error(format!(
                "no control {:?} in this plugin (it has: {})",
                request.control,
                known.join(", ")
            ));
        };
        let control = self.controls[index];
        if !self.shown_on(index).await.contains(&request.node_id) {
            return error(format!(
                "{:?} is not offered on node {:?} now (the page may be out of date: it shows again within seconds)",
                control.human, request.node_id
            ));
        }
        let context = self.context.clone();
        let running = Arc::clone(&self.running);
        let node_id = request.node_id.clone();
        if running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return error(String::from(
                "another control of this plugin is still running; try again in a moment",
            ));
        }
        let run = tokio::task::spawn_blocking(move || {
            // Cleared however the control ends, a panic included.
            let _done = ClearOnDrop(running);
            (control.run)(&node_id, &context)
        });
        match tokio::time::timeout(ANSWER_WITHIN, run).await {
            Ok(Ok(Ok(()))) => {
                tracing::info!(control = control.id, node = %request.node_id, "control ran");
            }
            Ok(Ok(Err(failure))) => {
                let message = format!("{}: {failure:#}", control.human);
                tracing::warn!(control = control.id, node = %request.node_id, error = %message, "control failed");
                return error(message);
            }
            Ok(Err(_)) => {
                tracing::error!(control = control.id, "the control panicked");
                return error(format!(
                    "{} failed (it panicked; see the plugin's log)",
                    control.human
                ));
            }
            Err(_) => {
                tracing::info!(
                    control = control.id,
                    "control still running; answered before the probe's deadline"
                );
            }
        }
        let shortcut = self.report(probe_id).await;
        let mut body = br#"{"shortcutReport":"#.to_vec();
        body.extend_from_slice(&shortcut.to_json());
        body.push(b'}');
        json_response(body)
    }
}

/// Clears the flag when dropped.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The body as the probe sends it: JSON (any `Content-Type` that says so, or none, as Go's
/// client may leave it), at most [`MAX_BODY`] bytes, with the probe's four fields.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<ControlRequest, String> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default();
        if !kind.trim_start().starts_with("application/json") {
            return Err(format!("a control request is JSON; this one is {kind:?}"));
        }
    }
    if body.len() > MAX_BODY {
        return Err(format!(
            "a control request of {} bytes is too large (at most {MAX_BODY})",
            body.len()
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a control request ({e}): the probe sends {{\"AppID\": ..., \"Control\": ..., \"ControlArgs\": ..., \"NodeID\": ...}}"
        )
    })
}

fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Scope shows `error` in the UI for 10 s; a bare 400 or 500 would show as a status code.
fn error(message: String) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| br#"{"error":"control failed"}"#.to_vec());
    json_response(body)
}

/// `GET /report` and `POST /control` of the controls plugin; JSON errors for the rest.
pub(crate) fn router(controls: Arc<Controls>) -> Router {
    Router::new()
        .route("/report", get(report))
        .route("/control", post(control))
        .fallback(|| async { unserved(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { unserved(StatusCode::METHOD_NOT_ALLOWED) })
        .with_state(controls)
}

fn unserved(status: StatusCode) -> Response {
    let message = "a Scope controller plugin serves GET /report and POST /control";
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn report(State(controls): State<Arc<Controls>>, RawQuery(query): RawQuery) -> Response {
    let probe_id = probe_id(query.as_deref());
    json_response(controls.report(probe_id.as_deref()).await.to_json())
}

async fn control(
    State(controls): State<Arc<Controls>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let probe_id = probe_id(query.as_deref());
    controls.click(&headers, &body, probe_id.as_deref()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn control(topology: Topology, id: &'static str) -> Control {
        Control {
            topology,
            id,
            human: id,
            icon: "fa-play",
            confirmation: None,
            rank: 0,
            location: Location {
                module_path: module_path!(),
                file: file!(),
                line: line!(),
            },
            shown: |_| Ok(Vec::new()),
            run: |_, _| Ok(()),
        }
    }

    static HOST_A: Control = control(Topology::Host, "a");
    static HOST_X: Control = control(Topology::Host, "x");
    static PROCESS_B: Control = control(Topology::Process, "b");
    static PROCESS_X: Control = control(Topology::Process, "x");

    #[test]
    fn an_id_is_unique_across_topologies_since_a_click_names_only_the_id() {
        let error =
            checked(vec![&PROCESS_X, &HOST_A, &PROCESS_B, &HOST_X]).expect_err("x is there twice");
        assert!(error.contains("two controls have the id \"x\""), "{error}");
        let ids: Vec<_> = checked(vec![&PROCESS_B, &HOST_X, &HOST_A])
            .expect("distinct ids")
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(
            ids,
            ["b", "a", "x"],
            "by topology (processes first), then id"
        );
    }
}
