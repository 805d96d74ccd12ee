//! HTTP/1.1 to notary-server over TLS (rustls, ring), one kept-alive
//! connection reused for the requests of one command.

use super::RemoteError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// TLS settings: notary's `--tlscacert`, `--tlscert`, `--tlskey` (or the
/// config's `root_ca`, `tls_client_cert`, `tls_client_key`).
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A parsed `https://host[:port][/prefix]` (or `http://`) server URL.
#[derive(Clone, Debug)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    prefix: String,
}

pub(super) struct Http {
    url: String,
    target: Target,
    connector: Option<TlsConnector>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// `-D`: one stderr line per request.
    trace: bool,
}

pub(super) struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Http {
    pub(super) fn new(url: &str, tls: &TlsFiles, trace: bool) -> Result<Http, RemoteError> {
        let target = parse_url(url)?;
        let connector = if target.tls {
            Some(connector(tls)?)
        } else {
            None
        };
        Ok(Http {
            url: url.trim_end_matches('/').to_string(),
            target,
            connector,
            sender: None,
            trace,
        })
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Sends one request and reads at most `limit` bytes of the answer.
    pub(super) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
        limit: usize,
    ) -> Result<Response, RemoteError> {
        let line = self.trace.then(|| format!("{method} {path}"));
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.prefix))
            .header(hyper::header::HOST, self.host_header())
            .header(hyper::header::USER_AGENT, "notaryctl");
        let payload = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let sender = self.sender().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    RemoteError::TooLarge { limit }
                } else {
                    self.unreachable(e.to_string())
                }
            })?
            .to_bytes();
        if let Some(line) = line {
            eprintln!("{line} -> {} ({} bytes)", status.as_u16(), body.len());
        }
        Ok(Response { status, body })
    }

    fn host_header(&self) -> String {
        format!("{}:{}", self.target.host, self.target.port)
    }

    fn unreachable(&self, cause: String) -> RemoteError {
        RemoteError::Unreachable {
            url: self.url.clone(),
            cause,
        }
    }

    /// The open connection, or a new one if there is none or it closed.
    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, RemoteError> {
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            self.sender = Some(self.connect().await?);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| RemoteError::Protocol("no connection".into()))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, RemoteError> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &self.connector {
            Some(connector) => {
                let name = ServerName::try_from(self.target.host.clone())
                    .map_err(|e| RemoteError::BadUrl(self.url.clone(), e.to_string()))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| RemoteError::Tls {
                        url: self.url.clone(),
                        cause: tls_cause(&e),
                    })?;
                handshake(TokioIo::new(tls)).await
            }
            None => handshake(TokioIo::new(tcp)).await,
        }
        .map_err(|e| self.unreachable(e.to_string()))
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
    // A connection failure surfaces on the next request over it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The innermost cause of a TLS failure reads best ("invalid peer
/// certificate: UnknownIssuer").
fn tls_cause(e: &std::io::Error) -> String {
    let cause = e
        .get_ref()
        .map(|inner| inner.to_string())
        .unwrap_or_else(|| e.to_string());
    if cause.contains("UnknownIssuer") {
        format!("{cause} (pass the server's CA with --tlscacert or remote_server.root_ca)")
    } else {
        cause
    }
}

fn parse_url(url: &str) -> Result<Target, RemoteError> {
    let bad = |why: &str| RemoteError::BadUrl(url.to_string(), why.to_string());
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("it must start with https:// or http://"));
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    Ok(Target {
        tls,
        host: host.to_string(),
        port,
        prefix: prefix.to_string(),
    })
}

fn connector(files: &TlsFiles) -> Result<TlsConnector, RemoteError> {
    let mut roots = RootCertStore::empty();
    let ca = files
        .ca
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    for cert in read_certs(&ca)? {
        roots
            .add(cert)
            .map_err(|e| tls_file_error(&ca, e.to_string()))?;
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_file_error(key, e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_file_error(cert, e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(RemoteError::TlsConfig(
                "--tlscert and --tlskey must be given together".into(),
            ))
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RemoteError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_file_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_file_error(path, "no CERTIFICATE in it".into()));
    }
    Ok(certs)
}

fn tls_file_error(path: &Path, why: String) -> RemoteError {
    RemoteError::TlsConfig(format!("{}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let t = parse_url("https://127.0.0.1:4443").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 4443, "")
        );
        let t = parse_url("http://notary.example/base/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("notary.example", 80, "/base")
        );
        let t = parse_url("https://[::1]:9").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        for bad in ["ftp://x", "https://", "https://h:port"] {
            assert!(
                matches!(parse_url(bad), Err(RemoteError::BadUrl(..))),
                "{bad}"
            );
        }
    }
}
