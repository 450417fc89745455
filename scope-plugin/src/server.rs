//! The HTTP side: axum on the unix socket, serving the precomputed snapshot.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
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
pub fn router(sampler: Arc<Sampler>) -> Router {
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

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (for at most a few seconds).
pub async fn serve(
    listener: UnixListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (drain_started, drain_signal) = tokio::sync::oneshot::channel::<()>();
    let listener = listener.tap_io(enlarge_send_buffer);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = drain_started.send(());
    });
    let drain_deadline = async move {
        if drain_signal.await.is_ok() {
            tokio::time::sleep(DRAIN_LIMIT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::error!(%error, "server stopped");
            }
        }
        () = drain_deadline => tracing::warn!("requests still open {DRAIN_LIMIT:?} after shutdown; closing them"),
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

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing requests, then removing the socket"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing requests, then removing the socket"),
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
