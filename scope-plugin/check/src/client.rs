//! An HTTP client that behaves like the probe's: one persistent connection per plugin,
//! 500 ms for dial plus the whole body, 50 MiB cap, only 200 accepted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// The probe's `pluginTimeout`.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_millis(500);
/// The probe's `maxResponseBytes`.
pub const MAX_RESPONSE_BYTES: usize = 50 * 1024 * 1024;

/// What one poll returned.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The body.
    pub body: Bytes,
    /// From the start of the request (including any dial) to the last body byte.
    pub elapsed: Duration,
    /// Whether the request went over a connection opened earlier.
    pub reused_connection: bool,
}

/// A failed poll, worded like the probe's status.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// Dial failed (stale socket, no permission).
    #[error("Get \"http://plugin/report?{query}\": dial unix {path}: {source}")]
    Dial {
        /// The query string sent.
        query: String,
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over 500 ms.
    #[error("context deadline exceeded")]
    Timeout,
    /// Anything but 200.
    #[error("plugin returned non-200 status code: {0}")]
    Status(String),
    /// Over 50 MiB.
    #[error("response must be shorter than 50MB")]
    TooLarge,
    /// The HTTP exchange broke.
    #[error("{0}")]
    Http(String),
}

impl PollError {
    /// The docs/protocol.md §6 rule this failure breaks.
    pub fn rule(&self) -> u8 {
        match self {
            PollError::Dial { .. } => 4,
            PollError::Timeout => 8,
            PollError::Status(_) => 9,
            PollError::TooLarge => 10,
            PollError::Http(_) => 7,
        }
    }
}

/// A probe-like client for one plugin socket.
#[derive(Debug)]
pub struct ProbeClient {
    path: PathBuf,
    probe_id: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    connections_opened: u32,
}

impl ProbeClient {
    /// A client for the plugin on `path`, with a random probe id.
    pub fn new(path: &Path) -> Self {
        // The probe's id is rand.Int63 in lower-case hex; any hex string will do here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self::with_probe_id(
            path,
            &format!("{:x}", (nanos ^ u64::from(std::process::id())) >> 1),
        )
    }

    /// A client sending `probe_id`.
    pub fn with_probe_id(path: &Path, probe_id: &str) -> Self {
        Self {
            path: path.to_owned(),
            probe_id: probe_id.to_owned(),
            sender: None,
            connections_opened: 0,
        }
    }

    /// Connections opened so far (1 after many polls means keep-alive works).
    pub fn connections_opened(&self) -> u32 {
        self.connections_opened
    }

    fn query(&self) -> String {
        format!("api_version=1&probe_id={}", self.probe_id)
    }

    /// `GET /report` within the probe's limits.
    pub async fn get_report(&mut self) -> Result<Poll, PollError> {
        let request = hyper::Request::get(format!("/report?{}", self.query()))
            .header("Host", "plugin")
            .header("User-Agent", "Go-http-client/1.1")
            .header("Accept-Encoding", "gzip")
            .body(Full::new(Bytes::new()));
        self.exchange(request).await
    }

    /// `POST /control` with the probe's body (keys sorted, `ControlArgs: null`).
    pub async fn post_control(&mut self, node_id: &str, control: &str) -> Result<Poll, PollError> {
        let body = serde_json::json!({
            "AppID": "scope-plugin-check",
            "Control": control,
            "ControlArgs": null,
            "NodeID": node_id,
        });
        let request = hyper::Request::post(format!("/control?{}", self.query()))
            .header("Host", "plugin")
            .header("User-Agent", "Go-http-client/1.1")
            .header("Content-Type", "application/json")
            .header("Accept-Encoding", "gzip")
            .body(Full::new(Bytes::from(body.to_string())));
        self.exchange(request).await
    }

    async fn exchange(
        &mut self,
        request: Result<hyper::Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<Poll, PollError> {
        let request = request.map_err(|e| PollError::Http(e.to_string()))?;
        let started = Instant::now();
        match tokio::time::timeout(PLUGIN_TIMEOUT, self.exchange_inner(request)).await {
            Ok(Ok((body, reused_connection))) => Ok(Poll {
                body,
                elapsed: started.elapsed(),
                reused_connection,
            }),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                self.sender = None;
                Err(PollError::Timeout)
            }
        }
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, PollError> {
        let stream = UnixStream::connect(&self.path)
            .await
            .map_err(|source| PollError::Dial {
                query: self.query(),
                path: self.path.clone(),
                source,
            })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| PollError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.connections_opened += 1;
        Ok(sender)
    }

    async fn exchange_inner(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(Bytes, bool), PollError> {
        let reusable = match self.sender.take() {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let reused = reusable.is_some();
        let mut sender = match reusable {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| PollError::Http(e.to_string()))?;
        let status = response.status();
        if status != hyper::StatusCode::OK {
            let reason = status.canonical_reason().unwrap_or("");
            return Err(PollError::Status(
                format!("{} {reason}", status.as_u16())
                    .trim_end()
                    .to_owned(),
            ));
        }
        let gzipped = response
            .headers()
            .get(hyper::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let too_large = |e: Box<dyn std::error::Error + Send + Sync>| {
            if e.is::<http_body_util::LengthLimitError>() {
                PollError::TooLarge
            } else {
                PollError::Http(e.to_string())
            }
        };
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(too_large)?
            .to_bytes();
        // Go's transport decodes gzip itself; the 50 MiB cap applies to the decoded stream.
        let body = if gzipped {
            gunzip_limited(&body)?
        } else {
            body
        };
        self.sender = Some(sender);
        Ok((body, reused))
    }
}

fn gunzip_limited(compressed: &[u8]) -> Result<Bytes, PollError> {
    use std::io::Read;
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|e| PollError::Http(format!("gzip: {e}")))?;
    if decoded.len() > MAX_RESPONSE_BYTES {
        return Err(PollError::TooLarge);
    }
    Ok(Bytes::from(decoded))
}
