//! The HTTP side: axum on the unix socket, serving the precomputed snapshot.

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use tokio::net::{UnixListener, UnixStream};

use crate::sampler::Sampler;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Kernel send buffer asked for on each connection (the kernel doubles it). A 10,000-node
/// report is 5 MiB: through the default 208 KiB it takes some 25 hand-offs between this
/// process and the probe, each a wake-up a busy host can delay. At 10,000 nodes the median
/// `/report` p99 of seven alternated bench runs went from 9.8 to 6.0 ms (BENCHMARKS.md).
/// The kernel charges only what is queued, so a small report costs nothing more.
const SEND_BUFFER_BYTES: libc::c_int = 4 << 20;

/// The plugin's routes: `GET /report` (the snapshot), `GET /collectors` (per-collector
/// counters); JSON 404 and 405 for everything else.
pub(crate) fn router(sampler: Arc<Sampler>) -> Router {
    Router::new()
        .route("/report", get(report))
        .route("/collectors", get(collectors))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sampler)
}

async fn report(State(sampler): State<Arc<Sampler>>) -> Response {
    // Query parameters (api_version, probe_id, anything else) are accepted and ignored:
    // the snapshot is the same for every probe.
    let mut response = Response::new(Body::from(sampler.snapshot()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn collectors(State(sampler): State<Arc<Sampler>>) -> Response {
    axum::Json(sampler.stats()).into_response()
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn not_found(request: Request) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        format!(
            "no such path {}; a Scope plugin serves GET /report",
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; use GET",
            request.method(),
            request.uri().path()
        ),
    )
}

/// How long a connection may wait for a request's headers: from the moment it opens or
/// the previous response went out, to the end of the next request's headers. It is the
/// idle timeout and the header-read timeout at once (hyper has one timer for both). At
/// least 30 s, since the probe keeps its connection between polls and a shorter idle
/// timeout races with its next request; the probe polls every second, so it never waits.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most connections kept open, whatever the open-files limit allows.
const MAX_CONNECTIONS: usize = 256;

/// The open-connections cap for this process: a quarter of its open-files limit (at
/// most `MAX_CONNECTIONS`), so that collectors, the runtime and the logs keep the rest.
pub(crate) fn connection_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit we own.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0;
    let open_files = if known {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (open_files / 4).clamp(4, MAX_CONNECTIONS)
}

/// Raises the soft open-files limit to the hard one, as Go programs (the probe among them)
/// do at start: the soft default of 1024 is a relic of select(2), which nothing here uses.
pub(crate) fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0
            && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (for at most a few seconds).
///
/// At most `max_connections` are open at once. One more closes a connection that never
/// sent a request, the oldest first, else the one that has gone longest without one: the
/// probe asks every second, so its connection is the last to go, however many idle ones
/// others open (and a probe whose connection closes opens another).
pub(crate) async fn serve(
    listener: UnixListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    max_connections: usize,
) {
    let connections = Arc::new(Connections::new(max_connections));
    let (closing, closing_signal) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let accept_errors = RateLimitedLog::default();
    let mut trim_at = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    enlarge_send_buffer(&mut stream);
                    let (id, connection) = connections.admit();
                    tasks.spawn(serve_connection(
                        stream,
                        router.clone(),
                        id,
                        connection,
                        Arc::clone(&connections),
                        closing_signal.clone(),
                    ));
                }
                Err(error) => {
                    // Most often EMFILE: out of descriptors. Back off instead of spinning;
                    // the connections already open keep being served.
                    accept_errors.warn(|| tracing::warn!(%error, "cannot accept a connection"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                // A second after the last connection of a burst closed: not after each
                // one, which a client opening a connection per poll would pay for.
                if tasks.len() <= 1 {
                    trim_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
            () = sleep_until_some(trim_at) => {
                trim_at = None;
                return_freed_memory();
            }
        }
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still open {DRAIN_LIMIT:?} after shutdown; closing them");
        tasks.abort_all();
    }
}

async fn serve_connection(
    stream: UnixStream,
    router: Router,
    id: u64,
    connection: Open,
    connections: Arc<Connections>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let last_request = Arc::clone(&connection.last_request);
    let service = tower::ServiceExt::map_request(router, move |request: Request<Incoming>| {
        last_request.store(connections_clock(), Ordering::Relaxed);
        request
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT);
    let served = builder.serve_connection(
        hyper_util::rt::TokioIo::new(crate::error_bodies::ErrorBodies::new(stream)),
        hyper_util::service::TowerToHyperService::new(service),
    );
    tokio::pin!(served);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                break;
            }
            () = connection.evicted.notified(), if !shutting_down => {
                shutting_down = true;
                served.as_mut().graceful_shutdown();
            }
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                shutting_down = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
    connections.remove(id);
}

/// Sleeps until `deadline`, or forever if there is none.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Gives the memory freed by closed connections back to the system, once the burst is
/// over (at most one connection left). glibc keeps freed memory in its arenas: after
/// 1,000 connections RSS stayed at 37 MB where `malloc_trim(0)` brings it to 7.4 MB.
fn return_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Milliseconds since this process first asked, plus one (0 means "never"): a clock
/// cheap enough for every request.
fn connections_clock() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// The open connections, and which one to close when there are too many.
#[derive(Debug)]
struct Connections {
    max: usize,
    open: Mutex<HashMap<u64, Open>>,
    next_id: AtomicU64,
    evictions: RateLimitedLog,
}

/// An open connection: when it last had a request (0: never), and how it is told to close.
/// The connection's task and the table each hold one.
#[derive(Debug, Clone, Default)]
struct Open {
    last_request: Arc<AtomicU64>,
    evicted: Arc<tokio::sync::Notify>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            evictions: RateLimitedLog::default(),
        }
    }

    /// Lets a new connection in; if that makes one too many, tells the oldest connection
    /// that never sent a request, else the one longest without a request, to close.
    /// Returns the connection's id and its entry.
    fn admit(&self) -> (u64, Open) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // No request yet (0): the clock starts at 1, so any request counts as later.
        let connection = Open::default();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.max {
            let oldest = open
                .iter()
                .min_by_key(|(id, o)| (o.last_request.load(Ordering::Relaxed), **id))
                .map(|(&id, _)| id);
            if let Some(oldest) = oldest.and_then(|id| open.remove(&id)) {
                // notify_one keeps the wake-up if the task is not waiting yet.
                oldest.evicted.notify_one();
                let max = self.max;
                self.evictions.warn(|| {
                    tracing::warn!(
                        max,
                        "connection limit reached: closed the connection idle the longest"
                    );
                });
            }
        }
        open.insert(id, connection.clone());
        (id, connection)
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Logs at most once every 10 s: a flood of bad connections must not flood the log.
#[derive(Debug, Default)]
struct RateLimitedLog {
    last: Mutex<Option<std::time::Instant>>,
}

impl RateLimitedLog {
    fn warn(&self, log: impl FnOnce()) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *last = Some(std::time::Instant::now());
            log();
        }
    }
}

/// Asks for [`SEND_BUFFER_BYTES`]: with SO_SNDBUFFORCE past `net.core.wmem_max` when
/// allowed (root or CAP_NET_ADMIN), else with SO_SNDBUF, which the kernel caps there.
/// Hand-written: tokio's `UnixStream` has no setter, and `socket2` has no SO_SNDBUFFORCE.
fn enlarge_send_buffer(stream: &mut UnixStream) {
    let size = SEND_BUFFER_BYTES;
    for option in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: setsockopt on a socket this process owns, reading one live c_int.
        let done = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        if done {
            return;
        }
    }
    // Both refused: the default buffer only makes big reports slower to send.
}

/// Resolves on SIGTERM, SIGINT, SIGHUP or SIGQUIT: each means "stop" (SIGHUP when the
/// terminal goes away; there is no configuration file to reload), and each shuts down
/// cleanly, removing the socket. SIGUSR1, SIGUSR2 and SIGALRM, whose default action would
/// kill the process and leave the socket behind, are logged and ignored.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
        (SignalKind::alarm(), "SIGALRM"),
    ] {
        match signal(kind) {
            Ok(mut stream) => {
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        tracing::info!(
                            "{name} ignored: this plugin stops on SIGTERM, SIGINT, SIGHUP or SIGQUIT"
                        );
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "cannot handle {name}"),
        }
    }
    let (stop, mut stopped) = tokio::sync::mpsc::channel::<&'static str>(1);
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        match signal(kind) {
            Ok(mut stream) => {
                let stop = stop.clone();
                tokio::spawn(async move {
                    if stream.recv().await.is_some() {
                        let _ = stop.send(name).await;
                    }
                });
            }
            Err(error) => tracing::error!(%error, "cannot handle {name}"),
        }
    }
    drop(stop);
    match stopped.recv().await {
        Some(name) => tracing::info!("{name}: finishing requests, then removing the socket"),
        // No stop signal could be handled at all: serve until killed.
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_buffer(stream: &UnixStream) -> libc::c_int {
        let mut size: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on a live socket, writing one c_int and its length.
        let result = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw mut size).cast(),
                &raw mut length,
            )
        };
        assert_eq!(result, 0, "{}", std::io::Error::last_os_error());
        size
    }

    #[tokio::test]
    async fn connections_get_a_send_buffer_for_big_reports() {
        let (mut ours, _probe) = UnixStream::pair().expect("socket pair");
        let before = send_buffer(&ours);
        enlarge_send_buffer(&mut ours);
        let after = send_buffer(&ours);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // The kernel doubles what it is given.
            assert_eq!(after, 2 * SEND_BUFFER_BYTES);
        } else {
            // Capped at net.core.wmem_max, doubled: still above the default.
            assert!(after > before, "{before} -> {after}");
        }
    }
}
