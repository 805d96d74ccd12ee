//! HTTP/1.1 to notary-server over TLS (rustls, ring), one kept-alive
//! connection reused for the requests of one command. Every request is
//! bounded in time (connect, silence, whole request) and every answer in
//! size, checked while it streams in, so a slow or endless server cannot
//! hold notaryctl or fill its memory.

use super::proxy::Proxy;
use super::RemoteError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
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

/// How long notaryctl waits on the notary server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Timeouts {
    /// TCP connect plus the TLS and HTTP handshakes.
    pub connect: Duration,
    /// Longest silence while waiting for an answer or between its parts.
    pub read: Duration,
    /// One whole request, from sending it to the last byte of the answer.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            request: Duration::from_secs(120),
        }
    }
}

pub(super) struct Http {
    url: String,
    target: Target,
    connector: Option<TlsConnector>,
    /// `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` exempts the server.
    proxy: Option<Proxy>,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeouts: Timeouts,
    /// `-D`: one stderr line per request.
    trace: bool,
}

#[derive(Debug)]
pub(super) struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Http {
    pub(super) fn new(
        url: &str,
        tls: &TlsFiles,
        timeouts: Timeouts,
        trace: bool,
    ) -> Result<Http, RemoteError> {
        let target = parse_url(url)?;
        let connector = if target.tls {
            Some(connector(tls)?)
        } else {
            None
        };
        let proxy = Proxy::for_server(target.tls, &target.host, target.port, |name| {
            std::env::var(name).ok()
        })?;
        if trace {
            if let Some(proxy) = &proxy {
                eprintln!("{url}: through the proxy {}", proxy.address());
            }
        }
        Ok(Http {
            url: url.trim_end_matches('/').to_string(),
            target,
            connector,
            proxy,
            sender: None,
            timeouts,
            trace,
        })
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// True for an `http://` URL: nothing protects what it carries.
    pub(super) fn is_plain(&self) -> bool {
        !self.target.tls
    }

    /// Sends one request and reads at most `limit` bytes of the answer,
    /// within the request deadline. A connection that failed or was left
    /// mid-answer is not used again. A GET (which changes nothing) is tried
    /// once more, within the same deadline, when a kept-alive connection
    /// broke under it or the server answered 502, 503 or 504.
    pub(super) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
        limit: usize,
    ) -> Result<Response, RemoteError> {
        let deadline = Instant::now() + self.timeouts.request;
        let reused = self.sender.is_some();
        let idempotent = method == Method::GET;
        let mut result = self
            .attempt(method.clone(), path, body, limit, deadline)
            .await;
        if idempotent && worth_retrying(&result, reused) && Instant::now() < deadline {
            if self.trace {
                eprintln!("{method} {path}: trying once more");
            }
            result = self.attempt(method, path, None, limit, deadline).await;
        }
        result
    }

    async fn attempt(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
        limit: usize,
        deadline: Instant,
    ) -> Result<Response, RemoteError> {
        let line = format!("{method} {path}");
        let file = path.rsplit('/').next().filter(|f| !f.is_empty());
        let what = format!("{method} {}", file.unwrap_or(path));
        let result = match self.request(method, path, body) {
            Ok(request) => self.exchange(request, what, limit, deadline).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.sender = None;
        }
        if self.trace {
            match &result {
                Ok(r) => eprintln!("{line} -> {} ({} bytes)", r.status.as_u16(), r.body.len()),
                Err(e) => eprintln!("{line} -> {e}"),
            }
        }
        result
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<Request<Full<Bytes>>, RemoteError> {
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
        builder
            .body(Full::new(payload))
            .map_err(|e| RemoteError::Protocol(e.to_string()))
    }

    /// Sends `request` (`what`, in messages) and reads at most `limit`
    /// bytes of the answer by `deadline`.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        what: String,
        limit: usize,
        deadline: Instant,
    ) -> Result<Response, RemoteError> {
        let (url, timeouts) = (self.url.clone(), self.timeouts);
        // The server was reached: what fails now is the exchange itself.
        let failed = |e: hyper::Error| {
            let (url, what, cause) = (url.clone(), what.clone(), e.to_string());
            if e.is_parse() {
                RemoteError::NotHttp { url, what, cause }
            } else {
                RemoteError::Broken { url, what, cause }
            }
        };
        let sender = self.sender(deadline).await?;
        let response = bounded(&url, &timeouts, deadline, sender.send_request(request))
            .await?
            .map_err(failed)?;
        let status = response.status();
        let too_large = || RemoteError::TooLarge {
            what: what.clone(),
            limit,
        };
        let announced = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let mut stream = response.into_body();
        let mut body = Vec::new();
        while let Some(frame) = bounded(&url, &timeouts, deadline, stream.frame()).await? {
            let frame = frame.map_err(failed)?;
            if let Ok(chunk) = frame.into_data() {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
        }
        Ok(Response {
            status,
            body: Bytes::from(body),
        })
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
    async fn sender(
        &mut self,
        deadline: Instant,
    ) -> Result<&mut SendRequest<Full<Bytes>>, RemoteError> {
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let limit = self
                .timeouts
                .connect
                .min(deadline.saturating_duration_since(Instant::now()));
            let connected = tokio::time::timeout(limit, self.connect())
                .await
                .map_err(|_| self.unreachable(format!("no connection within {limit:?}")))??;
            self.sender = Some(connected);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| RemoteError::Protocol("no connection".into()))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, RemoteError> {
        let (host, port) = (self.target.host.as_str(), self.target.port);
        let tcp = match &self.proxy {
            Some(proxy) => proxy
                .tunnel(host, port)
                .await
                .map_err(|cause| self.unreachable(cause))?,
            None => TcpStream::connect((host, port))
                .await
                .map_err(|e| self.unreachable(e.to_string()))?,
        };
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

/// Waits for `step` at most the read timeout, and not past `deadline`.
async fn bounded<F: Future>(
    url: &str,
    timeouts: &Timeouts,
    deadline: Instant,
    step: F,
) -> Result<F::Output, RemoteError> {
    let too_slow = |why: String| RemoteError::TooSlow {
        url: url.to_string(),
        why,
    };
    match tokio::time::timeout_at(deadline, tokio::time::timeout(timeouts.read, step)).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(_)) => Err(too_slow(format!("it sent nothing for {:?}", timeouts.read))),
        Err(_) => Err(too_slow(format!(
            "one request took longer than {:?}",
            timeouts.request
        ))),
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

/// A failure another try may not have: a kept-alive connection the server
/// had closed, or a gateway or overload answer. A server that cannot be
/// reached at all, or that refuses the request, gets no second try.
fn worth_retrying(result: &Result<Response, RemoteError>, reused: bool) -> bool {
    match result {
        Ok(r) => matches!(
            r.status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        ),
        Err(RemoteError::Unreachable { .. }) => reused,
        Err(_) => false,
    }
}

fn connector(files: &TlsFiles) -> Result<TlsConnector, RemoteError> {
    let mut roots = RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| tls_file_error(ca, e.to_string()))?;
            }
        }
        None => system_roots(&mut roots)?,
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

/// The system's CA store, as rustls-native-certs finds it: $SSL_CERT_FILE
/// or $SSL_CERT_DIR when set, else the distribution's bundle. Certificates
/// rustls cannot use are skipped, as browsers skip them.
fn system_roots(roots: &mut RootCertStore) -> Result<(), RemoteError> {
    let found = rustls_native_certs::load_native_certs();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(RemoteError::TlsConfig(format!(
            "no CA certificates in the system store{}; give the notary server's CA with \
             --tlscacert or remote_server.root_ca",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        )));
    }
    Ok(())
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

    /// A loopback HTTP server that answers one connection with `answer`.
    async fn serve<F, Fut>(answer: F) -> String
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                answer(stream).await;
            }
        });
        url
    }

    fn client(url: &str, read_ms: u64, request_ms: u64) -> Http {
        let timeouts = Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_millis(read_ms),
            request: Duration::from_millis(request_ms),
        };
        Http::new(url, &TlsFiles::default(), timeouts, false).unwrap()
    }

    /// A server that answers one request with the bytes `raw`.
    async fn answering(raw: &'static [u8]) -> String {
        use tokio::io::AsyncWriteExt;
        serve(move |mut s| async move {
            read_request(&mut s).await;
            let _ = s.write_all(raw).await;
        })
        .await
    }

    /// `method path` on `url`, taking up to 10,000 bytes of answer.
    async fn ask(url: &str, method: Method, path: &str) -> Result<Response, RemoteError> {
        client(url, 5_000, 60_000)
            .send(method, path, None, 10_000)
            .await
    }

    async fn read_request(stream: &mut tokio::net::TcpStream) {
        use tokio::io::AsyncReadExt;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn endless_answers_stop_at_the_limit() {
        use tokio::io::AsyncWriteExt;
        let url = serve(|mut s| async move {
            read_request(&mut s).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 4096, " ".repeat(4096));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        })
        .await;
        let err = ask(&url, Method::GET, "/x.json").await.unwrap_err();
        assert!(
            matches!(err, RemoteError::TooLarge { limit: 10_000, .. }),
            "{err}"
        );
        let url = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n").await;
        let err = ask(&url, Method::GET, "/x.json").await.unwrap_err();
        assert!(err.to_string().contains("longer than 10000 bytes"), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_a_connection_cut_short_are_named() {
        let url = answering(b"\x00\xffnot http\r\n\r\n").await;
        let err = ask(&url, Method::POST, "/v2/g/_trust/tuf/")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RemoteError::NotHttp { what, .. } if what == "POST /v2/g/_trust/tuf/"),
            "{err}"
        );
        let url = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part").await;
        let err = ask(&url, Method::GET, "/x.json").await.unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "the connection to the notary server at {url} broke during GET x.json"
            )),
            "{err}"
        );
        assert!(err.is_offline(), "a read may still use the cache");
    }

    #[tokio::test]
    async fn a_get_is_tried_once_more_after_a_503_and_a_post_is_not() {
        use tokio::io::AsyncWriteExt;
        let answers = |first: &'static [u8], second: &'static [u8]| {
            move |mut s: tokio::net::TcpStream| async move {
                read_request(&mut s).await;
                let _ = s.write_all(first).await;
                read_request(&mut s).await;
                let _ = s.write_all(second).await;
            }
        };
        const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let url = serve(answers(BUSY, OK)).await;
        let r = ask(&url, Method::GET, "/x.json").await.unwrap();
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"ok"[..]));
        let url = serve(answers(BUSY, OK)).await;
        let r = client(&url, 5_000, 60_000)
            .send(Method::POST, "/x", Some(("a/b".into(), vec![1])), 10_000)
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        // Twice busy is an answer, not a loop.
        let url = serve(answers(BUSY, BUSY)).await;
        let r = ask(&url, Method::GET, "/x.json").await.unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn silent_and_trickling_servers_time_out() {
        use tokio::io::AsyncWriteExt;
        let url = serve(|mut s| async move {
            read_request(&mut s).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let err = client(&url, 200, 60_000)
            .send(Method::GET, "/x.json", None, 10_000)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("it sent nothing for 200ms"),
            "{err}"
        );
        assert!(
            !err.is_offline(),
            "a server that answers slowly is not offline"
        );

        // One byte every 50 ms never trips the silence limit; the request
        // deadline ends it.
        let url = serve(|mut s| async move {
            read_request(&mut s).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                .await;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if s.write_all(b" ").await.is_err() {
                    return;
                }
            }
        })
        .await;
        let err = client(&url, 5_000, 500)
            .send(Method::GET, "/x.json", None, 200_000)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("one request took longer than 500ms"),
            "{err}"
        );
    }
}
