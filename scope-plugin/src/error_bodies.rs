//! JSON bodies for the errors hyper answers by itself.
//!
//! hyper answers a request it cannot parse with `400`, `414` or `431` and an empty body,
//! before any handler runs, and has no hook to change that. Everything else this plugin
//! answers carries `{"error": ...}`, so a person trying the socket with curl would get no
//! word on what was wrong. This wrapper sees those answers on their way out (a head with
//! one of the three statuses and `content-length: 0`, which no handler of ours sends) and
//! writes them again with a JSON body. Hand-written for want of that hook.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose hyper-made error answers get a JSON body.
#[derive(Debug)]
pub(crate) struct ErrorBodies<S> {
    inner: S,
    /// A rewritten answer not yet fully written.
    pending: Vec<u8>,
    written: usize,
}

impl<S> ErrorBodies<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The answer to write instead of `head`, if it is one of hyper's bodiless error answers.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    let message = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => {
            "the request is not valid HTTP/1.1; a Scope plugin serves GET /report"
        }
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => "the request target is too long",
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => "the request headers are too large",
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let end = text.find("\r\n\r\n")?;
    if end + 4 != text.len() || !text[..end].contains("\r\ncontent-length: 0") {
        return None;
    }
    let body = serde_json::json!({ "error": message }).to_string();
    let head = text[..end].replace(
        "\r\ncontent-length: 0",
        &format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}",
            body.len()
        ),
    );
    Some(format!("{head}\r\n\r\n{body}").into_bytes())
}

impl<S: AsyncWrite + Unpin> ErrorBodies<S> {
    /// Writes what is pending; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ErrorBodies<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ErrorBodies<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = with_json_body(buf) {
            // Taken whole; written by this call or the next write, flush or shutdown.
            self.pending = answer;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper's error answers are a head alone, in the first slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && bufs.iter().filter(|b| !b.is_empty()).count() == 1
            && let Some(answer) = with_json_body(first)
        {
            self.pending = answer;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(first.len()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_errors_get_a_json_body_and_nothing_else_changes() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(with_json_body(head).expect("rewritten")).expect("utf8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        let json: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(json["error"], "the request headers are too large");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"));
        for untouched in [
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".as_slice(),
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
        ] {
            assert_eq!(with_json_body(untouched), None);
        }
    }
}
