//! `faulty-front`: an HTTPS front end to a real notary-server that fails
//! on request, for the fault tests. It is the server process notaryctl
//! talks to; killing it cuts a request off just as a dying notary-server
//! would, while the collection behind it (notary-server keeps it in memory
//! here) survives for the next publish.
//!
//! `faulty-front --cert C --key K --upstream ADDR --upstream-ca CA --dir D
//! [--port P]` forwards each request to ADDR over TLS, one connection per
//! request, unless a line of `D/rule` matches it: `METHOD PATH-SUFFIX
//! ACTION` (`*` for any suffix), where ACTION is `status N` (answer N with
//! notary's errcode body), `garbage` (bytes that are no HTTP, then close)
//! or `hold` (never answer; `D/held` says it holds). Every request goes to
//! `D/requests.log` as `METHOD PATH WHAT`; the bound port to `D/port`.

use anyhow::{Context, Result};
use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection, StreamOwned};
use softhsm_tests::http_request::{read_request, Request};
use softhsm_tests::tls_server::{request_log, TlsFiles};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    tls: TlsFiles,
    /// The notary-server to forward to (loopback address and port).
    #[arg(long)]
    upstream: SocketAddr,
    /// The CA that issued the notary-server's certificate.
    #[arg(long)]
    upstream_ca: PathBuf,
    /// State directory: `rule` is read, `port`, `held` and `requests.log` written.
    #[arg(long)]
    dir: PathBuf,
    /// Port to listen on (0: any free one); to come back where it was.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

enum Action {
    Forward,
    Status(u16),
    Garbage,
    Hold,
}

struct Front {
    upstream: SocketAddr,
    client: Arc<ClientConfig>,
    dir: PathBuf,
    log: Mutex<std::fs::File>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let server = args.tls.server_config()?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.upstream_ca).context("reading --upstream-ca")? {
        roots.add(cert?)?;
    }
    let client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let front = Arc::new(Front {
        upstream: args.upstream,
        client: Arc::new(client),
        log: request_log(&args.dir)?,
        dir: args.dir,
    });
    let listener = TcpListener::bind(("127.0.0.1", args.port))?;
    softhsm_tests::tls_server::announce_port(&front.dir, listener.local_addr()?.port())?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (front, server) = (Arc::clone(&front), Arc::clone(&server));
        std::thread::spawn(move || {
            let _ = front.serve(stream, server);
        });
    }
    Ok(())
}

impl Front {
    /// One request per connection: the answer says `Connection: close`.
    fn serve(&self, tcp: TcpStream, server: Arc<rustls::ServerConfig>) -> Result<()> {
        let tls = StreamOwned::new(ServerConnection::new(server)?, tcp);
        let mut reader = BufReader::new(tls);
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let action = self.action(&request);
        let out = reader.get_mut();
        let what = match action {
            Action::Forward => {
                let answer = self.forward(&request)?;
                out.write_all(&answer)?;
                "forwarded".to_string()
            }
            Action::Status(code) => {
                let body = format!(
                    r#"{{"errors":[{{"code":"UNKNOWN","message":"faulty-front answers {code}"}}]}}"#
                );
                out.write_all(
                    format!(
                        "HTTP/1.1 {code} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                format!("status {code}")
            }
            Action::Garbage => {
                out.write_all(b"\x00\xff\xfeNOT HTTP \x13\x37 garbage \x00\r\n\r\n\x8f")?;
                "garbage".to_string()
            }
            Action::Hold => {
                self.record(&request, "held");
                std::fs::write(
                    self.dir.join("held"),
                    format!("{} {}\n", request.method, request.path()),
                )?;
                loop {
                    std::thread::park();
                }
            }
        };
        out.flush()?;
        self.record(&request, &what);
        Ok(())
    }

    fn record(&self, request: &Request, what: &str) {
        if let Ok(mut log) = self.log.lock() {
            let _ = writeln!(log, "{} {} {what}", request.method, request.path());
        }
    }

    /// The first line of `rule` that matches, else forward.
    fn action(&self, request: &Request) -> Action {
        let rules = std::fs::read_to_string(self.dir.join("rule")).unwrap_or_default();
        for line in rules.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (method, suffix, action) = match words.as_slice() {
                [m, s, rest @ ..] if !rest.is_empty() => (*m, *s, rest),
                _ => continue,
            };
            let matches =
                method == request.method && (suffix == "*" || request.path().ends_with(suffix));
            if !matches {
                continue;
            }
            return match action {
                ["status", code] => code.parse().map_or(Action::Forward, Action::Status),
                ["garbage"] => Action::Garbage,
                ["hold"] => Action::Hold,
                _ => Action::Forward,
            };
        }
        Action::Forward
    }

    /// Sends `request` to notary-server and returns its whole answer, with
    /// `Connection: close` in place of its own connection header.
    fn forward(&self, request: &Request) -> Result<Vec<u8>> {
        let tcp = TcpStream::connect(self.upstream)?;
        let name = ServerName::from(self.upstream.ip());
        let mut tls = StreamOwned::new(ClientConnection::new(Arc::clone(&self.client), name)?, tcp);
        let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
        for header in &request.headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            request.body.len()
        ));
        tls.write_all(head.as_bytes())?;
        tls.write_all(&request.body)?;
        tls.flush()?;
        let mut answer = Vec::new();
        match tls.read_to_end(&mut answer) {
            Ok(_) => {}
            // Go's TLS stack closes without close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(with_close(&answer))
    }
}

/// `answer` with its `Connection` header replaced by `Connection: close`.
fn with_close(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    out.extend_from_slice(b"\r\nConnection: close");
    out.extend_from_slice(&answer[end..]);
    out
}
