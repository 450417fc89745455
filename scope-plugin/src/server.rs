//! The HTTP side: axum on the unix socket, serving the precomputed snapshot.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::UnixListener;

use crate::sampler::Sampler;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

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
