//! The HTTP/1.1 server under the gateway: API Gateway's limit on the request head, read
//! timeouts, problem+json even for requests hyper refuses before any router sees them, and
//! a graceful stop that lets requests in flight finish.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// API Gateway's limit on the request line and headers together.
pub const MAX_HEAD: usize = 10 * 1024;
/// How long a client may take to send a request's line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` until `stop` resolves, then stops accepting, lets each connection finish
/// the request it is serving (up to [`DRAIN_TIMEOUT`]) and closes it.
pub async fn serve(listener: TcpListener, app: Router, stop: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .writev(false);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(ProblemOnRefusal::new(stream));
        let connection = builder.serve_connection(io, TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain timeout were dropped");
    }
}

/// The problem+json answer for a request hyper refused while parsing it.
fn refusal(status: u16) -> Option<Vec<u8>> {
    let (status, code, detail) = match status {
        400 => (
            axum::http::StatusCode::BAD_REQUEST,
            "malformed-request",
            "the request line or a header is malformed",
        ),
        414 => (
            axum::http::StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "the request URI is too long",
        ),
        431 => (
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "the request line and headers are over 10 KB",
        ),
        _ => return None,
    };
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = serde_json::json!({
        "type": format!("urn:bulkhead:problem:{code}"),
        "title": reason,
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            reason,
            body.len()
        )
        .into_bytes(),
    )
}

/// Hyper answers a request it cannot parse (a bad header, a head too large, a URI too long)
/// itself, with an empty body, before any service sees it. This stream recognises that
/// answer, the only empty 400, 414 or 431 this server writes (every other comes from a
/// `bulkhead::http::Problem`), and writes the problem+json one in its place.
struct ProblemOnRefusal {
    inner: TcpStream,
    /// A replacement still to be written, and the length of the write it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl ProblemOnRefusal {
    fn new(inner: TcpStream) -> Self {
        ProblemOnRefusal {
            inner,
            pending: None,
        }
    }

    fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
        let head = std::str::from_utf8(buf.get(..buf.len().min(512))?).ok()?;
        let status: u16 = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let head = head.split("\r\n\r\n").next()?.to_ascii_lowercase();
        if !head.contains("\r\ncontent-length: 0") || buf.len() > head.len() + 4 {
            return None;
        }
        refusal(status)
    }
}

impl AsyncRead for ProblemOnRefusal {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProblemOnRefusal {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none()
            && let Some(replacement) = Self::replacement(buf)
        {
            self.pending = Some((replacement, 0, buf.len()));
        }
        let this = &mut *self;
        if let Some((bytes, written, stands_for)) = &mut this.pending {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            let n = *stands_for;
            // Hyper closes the connection after such an answer; anything else goes through.
            this.pending = Some((vec![], 0, 0));
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_refusals_are_replaced() {
        let refused =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let replaced = String::from_utf8(ProblemOnRefusal::replacement(refused).unwrap()).unwrap();
        assert!(replaced.starts_with("HTTP/1.1 431 "), "{replaced}");
        assert!(replaced.contains("application/problem+json"));
        assert!(
            replaced.contains(r#""code":"headers-too-large""#),
            "{replaced}"
        );
        for kept in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1",
            b"{\"a\":1}",
        ] {
            assert!(ProblemOnRefusal::replacement(kept).is_none());
        }
    }
}
