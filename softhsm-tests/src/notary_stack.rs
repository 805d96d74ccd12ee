//! Debian's notary 0.7 on loopback: a throwaway PKI, `notary-server` with
//! in-memory storage and TLS, and the stock `notary` CLI in its own temp
//! trust dir. Every process is stopped by its pid when its guard drops.
//!
//! Usage (the server's trust service signs locally, or calls a signer such
//! as notary-keyd's signer API over mutual TLS):
//! ```no_run
//! use softhsm_tests::notary_stack::{NotaryServer, Pki, RemoteSigner, TrustService};
//! # fn main() -> anyhow::Result<()> {
//! let pki = Pki::new("stack")?;
//! let server = NotaryServer::start(&pki, &TrustService::Local)?;
//! // or: TrustService::Remote(RemoteSigner { addr, key_algorithm: "ecdsa".into(),
//! //       client: pki.issue("notary-server", "serverAuth,clientAuth")? })
//! let cli = server.cli()?;                      // fresh trust dir + passphrases
//! cli.run(&["init", "example.com/app"])?.ok()?; // .ok() fails with stderr
//! let res = server.get("/v2/example.com/app/_trust/tuf/timestamp.key")?;
//! assert_eq!(res.status, 200);
//! # Ok(()) }
//! ```
//! `cli.run_in(dir, args)` runs in a working directory (for `notary add`);
//! `cli.trust_dir` and `cli.env()` let other clients share the same state;
//! `server.log_text()` helps when a step fails. Certificates are P-256,
//! issued by `openssl`; leaves carry SANs `DNS:<cn>, DNS:localhost,
//! IP:127.0.0.1`, which is what notary 0.7 checks against `hostname`.

use crate::process::terminate;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A throwaway certificate authority (EC P-256) in a temp dir.
pub struct Pki {
    dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
}

/// A leaf certificate and its unencrypted key, both PEM.
#[derive(Clone, Debug)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs `openssl ARGS` in `dir`, failing with its stderr.
pub fn openssl(args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install the openssl package)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Writes a new P-256 private key (PEM) to `dir/file`.
pub fn p256_key(file: &str, dir: &Path) -> Result<()> {
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            file,
        ],
        dir,
    )
}

impl Pki {
    /// A new CA whose subject names `name` (so two CAs are distinguishable).
    pub fn new(name: &str) -> Result<Pki> {
        let dir = tempfile::tempdir()?;
        let p = dir.path();
        p256_key("ca.key", p)?;
        openssl(
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-sha256",
                "-days",
                "30",
                "-out",
                "ca.crt",
                "-subj",
                &format!("/O=notary-keyd tests/CN={name} test CA"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-addext",
                "subjectKeyIdentifier=hash",
            ],
            p,
        )?;
        Ok(Pki {
            ca_cert: p.join("ca.crt"),
            dir,
        })
    }

    /// Issues a leaf with CN `cn` and extended key usage `eku` (for example
    /// `serverAuth`, `clientAuth` or `serverAuth,clientAuth`).
    pub fn issue(&self, cn: &str, eku: &str) -> Result<CertPair> {
        let p = self.dir.path();
        let name: String = cn
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let (key, csr, ext, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("{name}.crt"),
        );
        p256_key(&key, p)?;
        openssl(
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/O=notary-keyd tests/CN={cn}"),
            ],
            p,
        )?;
        std::fs::write(
            p.join(&ext),
            format!(
                "basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage={eku}\n\
                 subjectAltName=DNS:{cn},DNS:localhost,IP:127.0.0.1\n\
                 subjectKeyIdentifier=hash\n\
                 authorityKeyIdentifier=keyid,issuer\n"
            ),
        )?;
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-sha256",
                "-days",
                "30",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
            p,
        )?;
        Ok(CertPair {
            cert: p.join(crt),
            key: p.join(key),
        })
    }
}

/// Starts `program -config DIR/PROGRAM.json` with its output in
/// `DIR/PROGRAM.log`. (viper picks the parser from the extension: the
/// config must end in .json.)
fn spawn_notary(program: &str, dir: &Path, config: &serde_json::Value) -> Result<Child> {
    let config_path = dir.join(format!("{program}.json"));
    std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)?;
    let log = std::fs::File::create(dir.join(format!("{program}.log")))?;
    Command::new(program)
        .arg("-config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {program} (install the notary package)"))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where notary-server gets its timestamp and snapshot signatures.
pub enum TrustService {
    /// In-process, in-memory ed25519 keys.
    Local,
    /// A notary-signer-compatible gRPC service over mutual TLS.
    Remote(RemoteSigner),
}

pub struct RemoteSigner {
    /// The signer's address; its certificate needs an IP SAN for it.
    pub addr: SocketAddr,
    /// `ecdsa`, `ed25519` or `rsa`.
    pub key_algorithm: String,
    /// The client certificate notary-server presents to the signer.
    pub client: CertPair,
}

/// A `[signer_api]` section for notary-keyd listening on `addr` with a
/// certificate from `pki` (CN `notary-keyd`), trusting `pki` for client
/// certificates and allowing the subject `notary-server`; keys go to
/// `backend`. `extra` lines are appended to the section.
pub fn signer_api_toml(pki: &Pki, addr: SocketAddr, backend: &str, extra: &str) -> Result<String> {
    let tls = pki.issue("notary-keyd", "serverAuth")?;
    Ok(format!(
        "[signer_api]\nlisten = \"{addr}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
         client_ca = \"{}\"\nbackend = \"{backend}\"\nallowed_clients = [\"notary-server\"]\n{extra}",
        tls.cert.display(),
        tls.key.display(),
        pki.ca_cert.display(),
    ))
}

/// Debian's stock notary-signer (memory storage) on a free loopback port,
/// requiring client certificates from `pki`; stopped on drop.
pub struct NotarySigner {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl NotarySigner {
    /// Starts it with `logging.level` `log_level` and waits until it
    /// accepts connections.
    pub fn start(pki: &Pki, log_level: &str) -> Result<NotarySigner> {
        let tls = pki.issue("notary-signer", "serverAuth")?;
        let dir = tempfile::tempdir()?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let config = serde_json::json!({
            "server": {
                "grpc_addr": addr.to_string(),
                "tls_cert_file": tls.cert,
                "tls_key_file": tls.key,
                "client_ca_file": pki.ca_cert,
            },
            "logging": { "level": log_level },
            "storage": { "backend": "memory" },
        });
        let child = spawn_notary("notary-signer", dir.path(), &config)?;
        let mut signer = NotarySigner {
            child: Some(child),
            _dir: dir,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = signer
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                signer.child = None;
                bail!("notary-signer exited ({status})");
            }
            if Instant::now() > deadline {
                bail!("notary-signer did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(signer)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NotarySigner {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "notary-signer", Duration::from_secs(5));
        }
    }
}

/// An HTTP response: status code and de-chunked body.
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Debian's notary-server on a free loopback port, stopped on drop.
pub struct NotaryServer {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub url: String,
    pub ca_cert: PathBuf,
    log: PathBuf,
}

impl NotaryServer {
    /// Starts the server and waits until `/_notary_server/health` is 200.
    pub fn start(pki: &Pki, trust: &TrustService) -> Result<NotaryServer> {
        let server = Self::spawn(pki, trust)?;
        server.wait_healthy(Duration::from_secs(30))?;
        Ok(server)
    }

    /// Starts the server and waits until it answers HTTPS, healthy or not.
    pub fn spawn(pki: &Pki, trust: &TrustService) -> Result<NotaryServer> {
        let tls = pki.issue("notary-server", "serverAuth,clientAuth")?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let trust_json = match trust {
            TrustService::Local => serde_json::json!({ "type": "local" }),
            TrustService::Remote(r) => serde_json::json!({
                "type": "remote",
                "hostname": r.addr.ip().to_string(),
                "port": r.addr.port().to_string(),
                "key_algorithm": r.key_algorithm,
                "tls_ca_file": pki.ca_cert,
                "tls_client_cert": r.client.cert,
                "tls_client_key": r.client.key,
            }),
        };
        let config = serde_json::json!({
            "server": {
                "http_addr": addr.to_string(),
                "tls_cert_file": tls.cert,
                "tls_key_file": tls.key,
            },
            "trust_service": trust_json,
            "logging": { "level": "debug" },
            "storage": { "backend": "memory" },
        });
        let log = dir.path().join("notary-server.log");
        let child = spawn_notary("notary-server", dir.path(), &config)?;
        let mut server = NotaryServer {
            child: Some(child),
            _dir: dir,
            addr,
            url: format!("https://{addr}"),
            ca_cert: pki.ca_cert.clone(),
            log,
        };
        server.wait_answering(Duration::from_secs(20))?;
        Ok(server)
    }

    fn wait_answering(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!("notary-server exited ({status}):\n{}", self.log_text());
                }
            }
            if std::net::TcpStream::connect(self.addr).is_ok() && self.health().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "notary-server did not answer on {}:\n{}",
            self.addr,
            self.log_text()
        )
    }

    /// Waits until the health endpoint says 200 (the remote trust service's
    /// gRPC health check passed).
    pub fn wait_healthy(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut last = 0;
        while Instant::now() < deadline {
            last = self.health()?;
            if last == 200 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "notary-server health stayed {last} for {limit:?}:\n{}",
            self.log_text()
        )
    }

    /// Status code of `GET /_notary_server/health`.
    pub fn health(&self) -> Result<u16> {
        Ok(self.get("/_notary_server/health")?.status)
    }

    /// `GET path` over TLS verified against the test CA (via `openssl
    /// s_client`, so no HTTP client is needed).
    pub fn get(&self, path: &str) -> Result<HttpResponse> {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
            .arg(self.addr.to_string())
            .arg("-CAfile")
            .arg(&self.ca_cert)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running openssl s_client")?;
        child.stdin.take().context("no stdin")?.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )
            .as_bytes(),
        )?;
        let out = child.wait_with_output()?;
        parse_http(&out.stdout).with_context(|| {
            format!(
                "GET {path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
    }

    /// A stock notary CLI with its own trust dir, talking to this server.
    pub fn cli(&self) -> Result<NotaryCli> {
        NotaryCli::new(&self.url, &self.ca_cert)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NotaryServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "notary-server", Duration::from_secs(5));
        }
    }
}

fn parse_http(raw: &[u8]) -> Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP response")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status line")?;
    let body = &raw[split + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol])?.trim(), 16)?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).context("truncated chunk")?);
        rest = rest.get(size + 2..).context("truncated chunk")?;
    }
}

/// What a CLI run printed.
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Fails with the command's output unless it exited 0.
    pub fn ok(self) -> Result<CliOutput> {
        if !self.status.success() {
            bail!(
                "exit {}\nstdout:\n{}\nstderr:\n{}",
                self.status,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }

    /// Fails, showing what it printed, unless stdout contains `text`.
    #[track_caller]
    pub fn assert_prints(&self, text: &str) {
        assert_has("stdout", &self.stdout, text);
    }

    /// Fails, showing it, unless stderr (warnings and errors) contains
    /// `text`.
    #[track_caller]
    pub fn assert_warns(&self, text: &str) {
        assert_has("stderr", &self.stderr, text);
    }
}

#[track_caller]
fn assert_has(stream: &str, output: &str, text: &str) {
    assert!(output.contains(text), "{stream} lacks {text:?}:\n{output}");
}

/// The stock `notary` CLI with its own trust dir, config and passphrases.
pub struct NotaryCli {
    dir: tempfile::TempDir,
    pub trust_dir: PathBuf,
    pub config: PathBuf,
    env: Vec<(String, String)>,
}

impl NotaryCli {
    pub fn new(server_url: &str, root_ca: &Path) -> Result<NotaryCli> {
        let dir = tempfile::tempdir()?;
        let trust_dir = dir.path().join("trust");
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            serde_json::to_vec_pretty(&serde_json::json!({
                "trust_dir": trust_dir,
                "remote_server": { "url": server_url, "root_ca": root_ca },
            }))?,
        )?;
        let env = ["ROOT", "TARGETS", "SNAPSHOT", "DELEGATION"]
            .iter()
            .map(|role| {
                (
                    format!("NOTARY_{role}_PASSPHRASE"),
                    format!("{}-pass-{}-x", role.to_lowercase(), std::process::id()),
                )
            })
            .collect();
        Ok(NotaryCli {
            dir,
            trust_dir,
            config,
            env,
        })
    }

    /// The passphrase variables and HOME the CLI runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.push(("HOME".into(), self.dir.path().display().to_string()));
        env
    }

    /// Runs `notary -c <config> ARGS` in the CLI's own temp dir.
    pub fn run(&self, args: &[&str]) -> Result<CliOutput> {
        self.run_in(self.dir.path(), args)
    }

    /// Runs `notary -c <config> ARGS` in `cwd`.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Result<CliOutput> {
        let out = Command::new("notary")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .current_dir(cwd)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .context("running notary (install the notary package)")?;
        Ok(CliOutput {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The CLI's own temp dir (a working directory for target files).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }
}
