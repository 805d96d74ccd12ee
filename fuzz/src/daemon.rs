//! The daemon the `daemon_rpc` target calls, built once per process: a
//! software keystore in a directory under /dev/shm (so the audit log's
//! fsync costs little), served twice, once to a caller the policy allows
//! everything and once to one it allows nothing. Each side has its own
//! state directory: a keystore is open in one daemon at a time (its lock).
//!
//! The Unix-socket API's caller is this process (see
//! `notary_keyd::fuzzing`). The signer API's caller is the client
//! certificate of a real mutual-TLS handshake on loopback, made once per
//! side with the certificates in `fuzz/certs/` (a CA, the server, an
//! allowed client `notary-server` and a client `stranger` that is not
//! allowed); its connection info is attached to every request, as tonic's
//! TLS listener would attach it.

use crate::grpc::{self, Reply};
use keyd_proto::keyd as pb;
use notary_keyd::fuzzing::Daemon;
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tonic::service::Routes;
use tonic::transport::server::Connected;

const CA: &[u8] = include_bytes!("../certs/ca.crt");
const SERVER: (&[u8], &[u8]) = (
    include_bytes!("../certs/localhost.crt"),
    include_bytes!("../certs/localhost.key"),
);
const ALLOWED_CLIENT: (&[u8], &[u8]) = (
    include_bytes!("../certs/notary-server.crt"),
    include_bytes!("../certs/notary-server.key"),
);
const STRANGER: (&[u8], &[u8]) = (
    include_bytes!("../certs/stranger.crt"),
    include_bytes!("../certs/stranger.key"),
);

/// The GUN every key made at start-up is bound to.
pub const GUN: &str = "example.com/app";

/// One caller's view of the daemon.
pub struct Side {
    pub keyd: Routes,
    pub signer: Routes,
    /// What a TLS connection from this side's client certificate attaches.
    pub tls_peer: http::Extensions,
    audit: AuditReader,
}

impl Side {
    pub async fn keyd(&self, method: &str, message: &[u8]) -> Reply {
        let path = format!("/notary.keyd.v1.Keyd/{method}");
        grpc::call(&self.keyd, &path, message, &http::Extensions::new()).await
    }

    pub async fn signer(&self, service: &str, method: &str, message: &[u8]) -> Reply {
        let path = format!("/proto.{service}/{method}");
        grpc::call(&self.signer, &path, message, &self.tls_peer).await
    }

    /// The decisions recorded since the last call: one record per request
    /// (a decision, or the outcome of a request record), without the
    /// request records and the log's own lines (segment headers, starts,
    /// checkpoints). A signature's outcome is appended after its reply, so
    /// this waits (up to 5 s) until no request record is left open.
    pub async fn new_records(&mut self) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut decisions = self.audit.read();
        while !self.audit.open.is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            decisions.extend(self.audit.read());
        }
        decisions
    }
}

/// Reads a side's audit segments forward from where it stopped. A segment
/// is preallocated and filled with spaces: its records are the lines from
/// its start up to the first blank one.
struct AuditReader {
    dir: PathBuf,
    segment: u64,
    offset: u64,
    /// Request records whose outcome has not been read yet.
    open: std::collections::HashSet<u64>,
}

impl AuditReader {
    fn new(dir: PathBuf) -> AuditReader {
        AuditReader {
            dir,
            segment: 1,
            offset: 0,
            open: Default::default(),
        }
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("audit-{segment:06}.jsonl"))
    }

    /// The complete records written since the last read. A line that is
    /// not a JSON object is a torn record, a finding, once it stays so: an
    /// outcome is appended after its reply, so a read may overlap its
    /// write and see the first part of it before the rest.
    fn read(&mut self) -> Vec<serde_json::Value> {
        use std::os::unix::fs::FileExt;
        let mut decisions = Vec::new();
        let mut rereads = 0;
        loop {
            let Ok(file) = std::fs::File::open(self.path(self.segment)) else {
                return decisions;
            };
            let mut chunk = vec![0u8; 64 * 1024];
            let n = file.read_at(&mut chunk, self.offset).unwrap_or(0);
            chunk.truncate(n);
            let mut consumed = 0;
            let mut unfinished = false;
            for line in chunk.split_inclusive(|&b| b == b'\n') {
                if line.first().is_none_or(|b| b.is_ascii_whitespace()) || !line.ends_with(b"\n") {
                    break;
                }
                let Some(record) = serde_json::from_slice::<serde_json::Value>(line)
                    .ok()
                    .filter(serde_json::Value::is_object)
                else {
                    // A second of rereads: far longer than one write takes.
                    assert!(
                        rereads < 200,
                        "torn audit record: {:?}",
                        String::from_utf8_lossy(line)
                    );
                    unfinished = true;
                    break;
                };
                consumed += line.len();
                self.note(record, &mut decisions);
            }
            if unfinished {
                self.offset += consumed as u64;
                rereads += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            rereads = 0;
            self.offset += consumed as u64;
            let at_free_space = chunk.get(consumed).is_some_and(|b| b.is_ascii_whitespace());
            if consumed == 0 && (at_free_space || n == 0) && self.path(self.segment + 1).exists() {
                self.segment += 1;
                self.offset = 0;
                continue;
            }
            if consumed == 0 {
                return decisions;
            }
        }
    }

    fn note(&mut self, record: serde_json::Value, decisions: &mut Vec<serde_json::Value>) {
        match record["kind"].as_str() {
            Some("request") => {
                if let Some(seq) = record["seq"].as_u64() {
                    self.open.insert(seq);
                }
            }
            Some("outcome") => {
                if let Some(request) = record["request"].as_u64() {
                    self.open.remove(&request);
                }
                decisions.push(record);
            }
            Some("decision") => decisions.push(record),
            _ => {}
        }
    }
}

/// Both sides, each over its own state directory.
pub struct Harness {
    pub allowed: Side,
    pub denied: Side,
}

impl Harness {
    /// Opens the daemon on `runtime` in a fresh directory (removing what
    /// earlier runs of this target left behind there).
    pub fn open(runtime: &tokio::runtime::Runtime) -> Harness {
        let base = Path::new("/dev/shm/notary-fuzz");
        remove_stale(base);
        let dir = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a work directory under /dev/shm");
        let uid = nix_uid();
        // The daemon's own uid may do everything but sign-raw; a rule gives
        // the caller (this process) that too, so every path runs.
        let allowed_config = config(
            &dir,
            "allowed",
            &format!(
                "[[policy]]\nuids = [{uid}]\nallow = [\"list\", \"sign\", \"sign-raw\", \
                 \"generate\", \"delete\", \"unlock\"]\n"
            ),
        );
        // A daemon running as another user, with no rules: this process may
        // do nothing.
        let denied_config = config(&dir, "denied", "");
        let (allowed, denied) = runtime.block_on(async {
            let allowed = side(&allowed_config, uid, &dir, "allowed", ALLOWED_CLIENT).await;
            let denied = side(&denied_config, u32::MAX - 1, &dir, "denied", STRANGER).await;
            (allowed, denied)
        });
        Harness { allowed, denied }
    }
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("/proc/self names this process's uid")
}

/// Work directories of runs that have exited.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let alive = name
            .to_str()
            .is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn config(dir: &Path, side: &str, policy: &str) -> String {
    let unused = dir.join("unused");
    format!(
        "[server]\nstate_dir = {state:?}\n\n\
         [audit]\ndir = {audit:?}\nmax_size = \"1M\"\n\n\
         [[backend]]\nname = \"soft\"\ntype = \"soft\"\n\n{policy}\n\
         [signer_api]\nlisten = \"127.0.0.1:1\"\ntls_cert = {unused:?}\ntls_key = {unused:?}\n\
         client_ca = {unused:?}\nallowed_clients = [\"notary-server\"]\nmax_keys = 16\n",
        state = dir.join(format!("state-{side}")),
        audit = dir.join(format!("audit-{side}")),
    )
}

async fn side(
    config: &str,
    daemon_uid: u32,
    dir: &Path,
    name: &str,
    client: (&[u8], &[u8]),
) -> Side {
    let daemon = Daemon::open(config, daemon_uid)
        .await
        .unwrap_or_else(|e| panic!("the {name} daemon does not open: {e}"));
    Side {
        keyd: daemon.keyd(),
        signer: daemon.signer_api().expect("[signer_api] is configured"),
        tls_peer: tls_peer(client).await,
        audit: AuditReader::new(dir.join(format!("audit-{name}"))),
    }
}

/// A mutual-TLS handshake on loopback presenting `client`; what the
/// server side of it attaches to requests.
async fn tls_peer((cert, key): (&[u8], &[u8])) -> http::Extensions {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA).expect("the fuzz CA"))
        .expect("the fuzz CA is a CA");
    let roots = Arc::new(roots);
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .expect("a client verifier");
    let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(SERVER.0).expect("server cert")],
            PrivateKeyDer::from_pem_slice(SERVER.1).expect("server key"),
        )
        .expect("a server config");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(cert).expect("client cert")],
            PrivateKeyDer::from_pem_slice(key).expect("client key"),
        )
        .expect("a client config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("a server name");
        tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
    };
    let accept = async {
        let (tcp, _) = listener.accept().await?;
        tokio_rustls::TlsAcceptor::from(Arc::new(server))
            .accept(tcp)
            .await
    };
    let (connected, accepted) = tokio::join!(connect, accept);
    connected.expect("the TLS client side");
    let info = accepted.expect("the TLS server side").connect_info();
    let mut extensions = http::Extensions::new();
    extensions.insert(info);
    extensions
}

/// A key made at start-up, by index: what a fuzzed key field `"0"`..`"9"`
/// stands for.
#[derive(Clone, Debug)]
pub struct KnownKey {
    pub id: String,
    /// How to make it again after a fuzzed DeleteKey removed it.
    pub recipe: Recipe,
}

#[derive(Clone, Debug)]
pub enum Recipe {
    Keyd(pb::GenerateKeyRequest),
    /// Through `KeyManagement.CreateKey` (a signer-API key).
    Signer(keyd_proto::signer::CreateKeyRequest),
}

impl Recipe {
    /// The recipes of the keys made at start-up: one per role of `GUN`, a
    /// delegation key, a key bound to nothing, and two signer-API keys.
    pub fn start_up() -> Vec<Recipe> {
        let keyd = |role: pb::KeyRole, delegation: &str, algorithm: pb::Algorithm| {
            let bound = role != pb::KeyRole::Unspecified;
            Recipe::Keyd(pb::GenerateKeyRequest {
                backend: "soft".into(),
                algorithm: algorithm as i32,
                role: role as i32,
                delegation: delegation.into(),
                gun: if bound { GUN.into() } else { String::new() },
                ..Default::default()
            })
        };
        let signer = |role: &str, algorithm: &str| {
            Recipe::Signer(keyd_proto::signer::CreateKeyRequest {
                algorithm: algorithm.into(),
                gun: GUN.into(),
                role: role.into(),
            })
        };
        use pb::{Algorithm as A, KeyRole as R};
        vec![
            keyd(R::Targets, "", A::EcdsaP256),
            keyd(R::Snapshot, "", A::EcdsaP256),
            keyd(R::Timestamp, "", A::Ed25519),
            keyd(R::Root, "", A::EcdsaP256),
            keyd(R::Delegation, "targets/releases", A::Ed25519),
            keyd(R::Unspecified, "", A::EcdsaP384),
            signer("timestamp", "ecdsa"),
            signer("snapshot", "ed25519"),
        ]
    }

    /// Makes the key on the allowed side; its ID.
    pub async fn make(&self, side: &mut Side) -> String {
        let id = match self {
            Recipe::Keyd(req) => {
                side.keyd("GenerateKey", &req.encode_to_vec())
                    .await
                    .expect_ok("GenerateKey at start-up")
                    .unary::<pb::Key>("GenerateKey")
                    .key_id
            }
            Recipe::Signer(req) => side
                .signer("KeyManagement", "CreateKey", &req.encode_to_vec())
                .await
                .expect_ok("CreateKey at start-up")
                .unary::<keyd_proto::signer::PublicKey>("CreateKey")
                .key_info
                .and_then(|i| i.key_id)
                .map(|k| k.id)
                .unwrap_or_default(),
        };
        side.new_records().await;
        id
    }
}
