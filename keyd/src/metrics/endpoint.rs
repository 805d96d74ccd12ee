//! The scrape endpoint: `GET /metrics` over HTTP/1.x on its own Unix
//! socket (or a loopback TCP port), one response per connection. Requests
//! are read with a bounded size and time, so a stuck or hostile scraper
//! holds one task and a few KiB at most.

use crate::metrics::{render, MetricsConfig, DEFAULT_SOCKET};
use crate::registry::Registry;
use crate::server;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head read; a scraper's GET is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint reports on.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) registry: Arc<Registry>,
    /// Configured backends that could not be opened.
    pub(crate) failed: Arc<[String]>,
}

/// The running endpoint; its own socket file is removed when dropped.
pub(crate) struct Endpoint {
    task: tokio::task::JoinHandle<()>,
    socket: Option<PathBuf>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds the endpoint and serves it in the background.
pub(crate) async fn start(
    config: &MetricsConfig,
    group: Option<&str>,
    source: Source,
) -> Result<Endpoint> {
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        tracing::info!(%addr, "metrics endpoint listening");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, source.clone()));
            }
        });
        return Ok(Endpoint { task, socket: None });
    }
    let path = config
        .socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let listener = server::bind(&path, group).context("metrics endpoint")?;
    tracing::info!(socket = %path.display(), "metrics endpoint listening");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, source.clone()));
        }
    });
    Ok(Endpoint {
        task,
        socket: Some(path),
    })
}

async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, source: Source) {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await;
    let response = match head {
        Ok(Some(head)) if is_metrics_get(&head) => {
            let body = render(&source.registry, &source.failed);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Ok(Some(_)) => not_found(),
        Ok(None) | Err(_) => return,
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request up to its blank line, or `None` when the client sent more
/// than `MAX_REQUEST` or closed first.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

fn is_metrics_get(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    method == Some(b"GET") && matches!(target, Some(b"/metrics" | b"/"))
}

fn not_found() -> String {
    let body = "only GET /metrics is served here\n";
    format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_get_of_the_metrics_path_is_answered() {
        assert!(is_metrics_get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(is_metrics_get(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!is_metrics_get(b"POST /metrics HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_get(b"GET /metricsx HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_get(b"\r\n\r\n"));
    }
}
