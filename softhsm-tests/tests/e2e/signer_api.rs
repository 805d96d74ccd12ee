//! notary-keyd's signer API behind Debian's notary-server (trust_service
//! "remote"): the stock notary CLI's whole scenario, for ecdsa and ed25519
//! keys on SoftHSM2 and on the software keystore; restarts; key reuse; and
//! refusals of callers with the wrong CA or subject.

use anyhow::{ensure, Context, Result};
use softhsm_tests::notary_stack::{
    free_port, openssl, p256_key, signer_api_toml, CertPair, CliOutput, NotaryCli, NotaryServer,
    Pki, RemoteSigner, TrustService,
};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, SoftHsm, TestDaemon};
use std::net::SocketAddr;
use std::path::Path;

/// notary-keyd with its signer API on a free port, keys in `backend`
/// ("soft" or "hsm", a SoftHSM2 token), and the PKI that signs both sides.
struct KeydSigner {
    daemon: Daemon,
    addr: SocketAddr,
    pki: Pki,
    _hsm: Option<SoftHsm>,
}

impl KeydSigner {
    fn start(backend: &str, extra: &str) -> Result<KeydSigner> {
        let pki = Pki::new("keyd-signer")?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let hsm = match backend {
            "hsm" | "locked-hsm" => Some(SoftHsm::new("notary", "1234")?),
            _ => None,
        };
        let with_backend = match &hsm {
            // A token nobody has unlocked yet: its PIN comes from a person.
            Some(h) if backend == "locked-hsm" => TestDaemon::new().locked_softhsm(h, "hsm", ""),
            Some(h) => TestDaemon::new().softhsm(h, "hsm")?,
            None => TestDaemon::new().soft("soft"),
        };
        let backend = if backend == "locked-hsm" {
            "hsm"
        } else {
            backend
        };
        let daemon = with_backend
            .toml(&signer_api_toml(&pki, addr, backend, extra)?)
            .start()?;
        Ok(KeydSigner {
            daemon,
            addr,
            pki,
            _hsm: hsm,
        })
    }

    fn remote(&self, key_algorithm: &str, client: CertPair) -> TrustService {
        TrustService::Remote(RemoteSigner {
            addr: self.addr,
            key_algorithm: key_algorithm.into(),
            client,
        })
    }

    /// A notary-server using this signer with a proper client certificate.
    fn server(&self, key_algorithm: &str) -> Result<NotaryServer> {
        let client = self.pki.issue("notary-server", "serverAuth,clientAuth")?;
        NotaryServer::start(&self.pki, &self.remote(key_algorithm, client))
    }

    /// Keys the signer API made, from its store: (key ID, role, used).
    fn api_keys(&self) -> Result<Vec<(String, String, bool)>> {
        let path = self.daemon.state_dir.join("signer-api.json");
        let store: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let keys = store["keys"].as_object().context("no keys object")?;
        Ok(keys
            .iter()
            .map(|(id, k)| {
                (
                    id.clone(),
                    k["role"].as_str().unwrap_or_default().to_string(),
                    k["used"].as_bool().unwrap_or(false),
                )
            })
            .collect())
    }
}

fn tuf(server: &NotaryServer, gun: &str, file: &str) -> Result<serde_json::Value> {
    let res = server.get(&format!("/v2/{gun}/_trust/tuf/{file}"))?;
    ensure!(res.status == 200, "GET {file}: HTTP {}", res.status);
    Ok(serde_json::from_slice(&res.body)?)
}

/// Key ID of a server-managed key as `GET <role>.key` returns it.
fn server_key_id(server: &NotaryServer, gun: &str, role: &str) -> Result<String> {
    let key = tuf(server, gun, &format!("{role}.key"))?;
    let keytype = key["keytype"].as_str().context("keytype")?;
    let public = key["keyval"]["public"].as_str().context("public")?;
    let canonical =
        format!(r#"{{"keytype":"{keytype}","keyval":{{"private":null,"public":"{public}"}}}}"#);
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(canonical.as_bytes())))
}

fn signature_key_ids(meta: &serde_json::Value) -> Vec<String> {
    meta["signatures"]
        .as_array()
        .map(|sigs| {
            sigs.iter()
                .filter_map(|s| s["keyid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn listed(cli: &NotaryCli, args: &[&str], name: &str) -> Result<()> {
    let out = cli.run(args)?.ok()?;
    ensure!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} "))),
        "{name} not listed by `notary {}`:\n{}",
        args.join(" "),
        out.stdout
    );
    Ok(())
}

/// The notary-stack scenario: init, add, publish, list, verify (and a
/// wrong-content refusal), a delegation, `key rotate snapshot -r`, publish.
fn stock_scenario(server: &NotaryServer, key_algorithm: &str) -> Result<()> {
    let gun = "example.com/keyd/scenario";
    let cli = server.cli()?;
    let work = cli.work_dir();
    for (name, text) in [("t1.txt", "one"), ("t2.txt", "two"), ("t3.txt", "three")] {
        std::fs::write(work.join(name), format!("payload {text}\n"))?;
    }
    cli.run(&["init", gun])?.ok()?;
    cli.run(&["add", gun, "v1", "t1.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;
    listed(&cli, &["list", gun], "v1")?;
    cli.run(&["verify", gun, "v1", "-i", "t1.txt", "-q"])?
        .ok()?;
    let wrong = cli.run(&["verify", gun, "v1", "-i", "t2.txt", "-q"])?;
    ensure!(!wrong.status.success(), "verify accepted the wrong content");

    let ts = tuf(server, gun, "timestamp.key")?;
    ensure!(ts["keytype"] == key_algorithm, "timestamp key {ts}");
    let ts_id = server_key_id(server, gun, "timestamp")?;
    ensure!(
        signature_key_ids(&tuf(server, gun, "timestamp.json")?) == [ts_id.clone()],
        "timestamp.json not signed by the signer-API key {ts_id}"
    );

    p256_key("deleg-ec.key", work)?;
    openssl(
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "deleg-ec.key",
            "-out",
            "deleg.key",
        ],
        work,
    )?;
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "deleg.key",
            "-sha256",
            "-days",
            "3650",
            "-subj",
            "/CN=targets\\/releases",
            "-out",
            "deleg.crt",
        ],
        work,
    )?;
    cli.run(&[
        "delegation",
        "add",
        gun,
        "targets/releases",
        "deleg.crt",
        "--all-paths",
    ])?
    .ok()?;
    cli.run(&["key", "import", "deleg.key", "--role", "targets/releases"])?
        .ok()?;
    cli.run(&["publish", gun])?.ok()?;
    let delegations = cli.run(&["delegation", "list", gun])?.ok()?;
    ensure!(delegations.stdout.contains("targets/releases"));
    cli.run(&["add", gun, "v2", "t2.txt", "--roles", "targets/releases"])?
        .ok()?;
    cli.run(&["publish", gun])?.ok()?;
    listed(&cli, &["list", gun, "--roles", "targets/releases"], "v2")?;
    listed(&cli, &["list", gun], "v1")?;
    cli.run(&["verify", gun, "v2", "-i", "t2.txt", "-q"])?
        .ok()?;

    cli.run(&["key", "rotate", gun, "snapshot", "-r"])?.ok()?;
    let snap_id = server_key_id(server, gun, "snapshot")?;
    cli.run(&["add", gun, "v3", "t3.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;
    ensure!(
        signature_key_ids(&tuf(server, gun, "snapshot.json")?) == [snap_id.clone()],
        "snapshot.json not signed by the signer-API key {snap_id}"
    );
    cli.run(&["verify", gun, "v3", "-i", "t3.txt", "-q"])?
        .ok()?;
    listed(&cli, &["list", gun], "v3")?;
    Ok(())
}

fn scenario_on(backend: &str, key_algorithm: &str) -> Result<()> {
    let signer = KeydSigner::start(backend, "")?;
    let server = signer.server(key_algorithm)?;
    assert_eq!(server.health()?, 200);
    stock_scenario(&server, key_algorithm).with_context(|| {
        format!(
            "scenario ({backend}, {key_algorithm})\nnotary-server log tail:\n{}\nkeyd log:\n{}",
            tail(&server.log_text(), 30),
            tail(&signer.daemon.log_text(), 30)
        )
    })?;
    let keys = signer.api_keys()?;
    let roles: Vec<&str> = keys.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(
        keys.len(),
        2,
        "one timestamp and one snapshot key: {keys:?}"
    );
    assert!(roles.contains(&"timestamp") && roles.contains(&"snapshot"));
    assert!(keys.iter().all(|(_, _, used)| *used), "{keys:?}");
    let audit = signer.daemon.audit_lines();
    let signs: Vec<_> = audit
        .iter()
        .filter(|r| r["operation"] == "signer-sign")
        .collect();
    assert!(!signs.is_empty());
    for r in signs {
        assert_eq!(r["allowed"], true, "{r}");
        assert!(
            r["client"].as_str().unwrap().contains("CN=notary-server"),
            "{r}"
        );
        assert_eq!(r["payload_sha256"].as_str().unwrap().len(), 64, "{r}");
        assert!(r.get("uid").is_none(), "{r}");
    }
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn stock_scenario_ecdsa_on_software_keystore() -> Result<()> {
    scenario_on("soft", "ecdsa")
}

#[test]
fn stock_scenario_ed25519_on_software_keystore() -> Result<()> {
    scenario_on("soft", "ed25519")
}

#[test]
fn stock_scenario_ecdsa_on_softhsm() -> Result<()> {
    scenario_on("hsm", "ecdsa")
}

#[test]
fn stock_scenario_ed25519_on_softhsm() -> Result<()> {
    scenario_on("hsm", "ed25519")
}

#[test]
fn second_publish_after_keyd_restart_uses_the_same_timestamp_key() -> Result<()> {
    let mut signer = KeydSigner::start("hsm", "")?;
    let server = signer.server("ecdsa")?;
    let gun = "example.com/keyd/restart";
    let cli = server.cli()?;
    std::fs::write(cli.work_dir().join("a.txt"), b"a\n")?;
    std::fs::write(cli.work_dir().join("b.txt"), b"b\n")?;
    cli.run(&["init", gun])?.ok()?;
    cli.run(&["add", gun, "a", "a.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;
    let ts_id = server_key_id(&server, gun, "timestamp")?;

    // keyd down: the publish fails with the gRPC error, it does not hang.
    signer.daemon.stop()?;
    cli.run(&["add", gun, "b", "b.txt"])?.ok()?;
    let down = cli.run(&["publish", gun])?;
    assert!(!down.status.success());
    down.assert_prints("rpc error");

    signer.daemon.restart()?;
    // notary-server redials with backoff; `timestamp.key` goes through
    // GetKeyInfo, so once it answers the server is connected again.
    let ts_key = format!("/v2/{gun}/_trust/tuf/timestamp.key");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while server.get(&ts_key)?.status != 200 {
        ensure!(
            std::time::Instant::now() < deadline,
            "notary-server never reconnected:\n{}",
            tail(&server.log_text(), 20)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    cli.run(&["publish", gun])
        .and_then(CliOutput::ok)
        .with_context(|| tail(&server.log_text(), 20))?;
    listed(&cli, &["list", gun], "b")?;
    let ts = tuf(&server, gun, "timestamp.json")?;
    assert_eq!(signature_key_ids(&ts), [ts_id]);
    assert_eq!(ts["signed"]["version"], 2);
    assert_eq!(signer.api_keys()?.len(), 1, "no new key was minted");
    Ok(())
}

#[test]
fn repeated_timestamp_key_requests_reuse_one_unused_key() -> Result<()> {
    // A backend limited to two signer-API keys: twenty `timestamp.key`
    // requests before the first publish must not use them up.
    let signer = KeydSigner::start("hsm", "max_keys = 2\n")?;
    let server = signer.server("ed25519")?;
    let gun = "example.com/keyd/minting";
    let path = format!("/v2/{gun}/_trust/tuf/timestamp.key");
    let first = server.get(&path)?;
    assert_eq!(first.status, 200);
    for _ in 0..20 {
        let again = server.get(&path)?;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body, "a different key was handed out");
    }
    assert_eq!(signer.api_keys()?.len(), 1);

    // The reused key is the one the published root names and that signs.
    let cli = server.cli()?;
    std::fs::write(cli.work_dir().join("a.txt"), b"a\n")?;
    cli.run(&["init", gun])?.ok()?;
    cli.run(&["add", gun, "a", "a.txt"])?.ok()?;
    cli.run(&["publish", gun])?.ok()?;
    let ts_id = server_key_id(&server, gun, "timestamp")?;
    assert_eq!(
        signer.api_keys()?,
        [(ts_id.clone(), "timestamp".into(), true)]
    );

    // Other collections fill the cap; the next one gets a clear refusal.
    let other = server.get("/v2/example.com/keyd/second/_trust/tuf/timestamp.key")?;
    assert_eq!(other.status, 200);
    let refused = server.get("/v2/example.com/keyd/third/_trust/tuf/timestamp.key")?;
    assert_ne!(refused.status, 200);
    let refusal = signer
        .daemon
        .audit_lines()
        .into_iter()
        .find(|r| r["operation"] == "signer-create-key" && r["allowed"] == false)
        .context("refused CreateKey not audited")?;
    assert!(
        refusal["result"].as_str().unwrap().contains("max_keys = 2"),
        "{refusal}"
    );
    assert_eq!(refusal["gun"], "example.com/keyd/third");
    // At the cap, an unused key is still handed out again.
    let again = server.get("/v2/example.com/keyd/second/_trust/tuf/timestamp.key")?;
    assert_eq!((again.status, again.body), (200, other.body));
    assert_eq!(signer.api_keys()?.len(), 2);
    Ok(())
}

/// A gRPC channel to the signer API presenting `client`, trusting `ca`.
async fn channel(
    addr: SocketAddr,
    ca: &Path,
    client: &CertPair,
) -> Result<tonic::transport::Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
        .identity(Identity::from_pem(
            std::fs::read(&client.cert)?,
            std::fs::read(&client.key)?,
        ))
        .domain_name("127.0.0.1");
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_lazy())
}

async fn health(channel: tonic::transport::Channel, service: &str) -> Result<i32, tonic::Status> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_with_another_ca_or_subject_are_refused() -> Result<()> {
    use keyd_proto::signer::key_management_client::KeyManagementClient;
    use keyd_proto::signer::CreateKeyRequest;
    let signer = KeydSigner::start("soft", "")?;
    let ca = &signer.pki.ca_cert;
    let good = signer.pki.issue("notary-server", "clientAuth")?;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    for name in [
        "",
        "grpc.health.v1.Health.KeyManagement",
        "grpc.health.v1.Health.Signer",
    ] {
        let ok = health(channel(signer.addr, ca, &good).await?, name).await;
        assert_eq!(ok.map_err(|s| s.code()), Ok(serving), "{name:?}");
    }

    // A certificate with the right name from another CA: the handshake fails.
    let other = Pki::new("intruder")?;
    let foreign = other.issue("notary-server", "clientAuth")?;
    // (With TLS 1.3 the server's alert arrives after the client finished
    // its side, so the client sees a transport error whose code varies:
    // UNAVAILABLE, CANCELLED or UNKNOWN. It never reaches the services,
    // which would answer PERMISSION_DENIED.)
    let refused = health(channel(signer.addr, ca, &foreign).await?, "").await;
    let code = refused.unwrap_err().code();
    assert!(
        matches!(
            code,
            tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
        ),
        "{code:?}"
    );

    // The right CA, a subject not in allowed_clients: refused and audited.
    let stranger = signer.pki.issue("build-bot", "clientAuth")?;
    let refused = health(channel(signer.addr, ca, &stranger).await?, "").await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let mut km = KeyManagementClient::new(channel(signer.addr, ca, &stranger).await?);
    let refused = km
        .create_key(CreateKeyRequest {
            algorithm: "ecdsa".into(),
            gun: "example.com/app".into(),
            role: "timestamp".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("allowed_clients"), "{refused:?}");
    let audit = signer.daemon.audit_lines();
    let record = audit
        .iter()
        .find(|r| r["operation"] == "signer-create-key")
        .context("refusal not audited")?;
    assert_eq!(record["allowed"], false);
    assert!(
        record["client"].as_str().unwrap().contains("CN=build-bot"),
        "{record}"
    );
    assert!(!signer.daemon.state_dir.join("signer-api.json").exists());

    // notary-server with a client certificate from another CA cannot hand
    // out a timestamp key. (Its health page is not asserted: it reports the
    // last periodic check, which may not have run yet.)
    let server = NotaryServer::spawn(
        &signer.pki,
        &signer.remote(
            "ecdsa",
            other.issue("notary-server", "serverAuth,clientAuth")?,
        ),
    )?;
    let res = server.get("/v2/example.com/app/_trust/tuf/timestamp.key")?;
    assert_ne!(res.status, 200);
    assert!(!signer.daemon.state_dir.join("signer-api.json").exists());
    Ok(())
}

/// Whether the signer API closed `stream` without a word: a peer that is
/// held instead (its TLS handshake waits) leaves the read to time out.
fn closed_at_once(mut stream: std::net::TcpStream) -> Result<bool> {
    use std::io::Read;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
        other => anyhow::bail!("unexpected read on a refused connection: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed_and_places_come_back() -> Result<()> {
    let signer = KeydSigner::start("soft", "max_connections = 3")?;
    let good = signer.pki.issue("notary-server", "clientAuth")?;
    // Three peers that never start TLS take every place (each for up to
    // the 10 s handshake timeout)...
    let held = (0..3)
        .map(|_| std::net::TcpStream::connect(signer.addr))
        .collect::<std::io::Result<Vec<_>>>()?;
    // ...so every further connection, a real notary-server's too, is
    // closed as it arrives rather than held.
    for n in 0..20 {
        let extra = std::net::TcpStream::connect(signer.addr)?;
        ensure!(
            closed_at_once(extra)?,
            "connection {n} beyond the limit was held"
        );
    }
    let refused = health(channel(signer.addr, &signer.pki.ca_cert, &good).await?, "").await;
    ensure!(
        refused.is_err(),
        "served beyond max_connections: {refused:?}"
    );
    // Logged, but a line a second rather than a line per connection.
    let warned = signer
        .daemon
        .log_text()
        .matches("[signer_api] max_connections are open")
        .count();
    ensure!(
        (1..11).contains(&warned),
        "{warned} warnings for 21 refused connections:\n{}",
        signer.daemon.log_text()
    );
    // The Unix socket serves meanwhile.
    let ctl = Notaryctl::new(
        "https://127.0.0.1:1",
        &signer.pki.ca_cert,
        &signer.daemon.socket,
    )?;
    let listed = ctl.run(&["key", "list"])?;
    ensure!(listed.status.success(), "{}", listed.stderr);

    // The places come back as the held peers hang up.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    loop {
        let answer = health(channel(signer.addr, &signer.pki.ca_cert, &good).await?, "").await;
        match answer {
            Ok(status) if status == serving => break,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            other => anyhow::bail!("not served after the held peers left: {other:?}"),
        }
    }
    Ok(())
}

fn timestamp_payload(version: u32) -> Vec<u8> {
    format!(
        r#"{{"_type":"Timestamp","expires":"2026-12-09T12:00:00Z","meta":{{"snapshot":{{"hashes":{{"sha256":"AAAA"}},"length":1}}}},"version":{version}}}"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_semantics_match_notary_signer() -> Result<()> {
    use keyd_proto::signer::key_management_client::KeyManagementClient;
    use keyd_proto::signer::signer_client::SignerClient;
    use keyd_proto::signer::{CreateKeyRequest, KeyId, SignatureRequest};
    use tonic::Code;
    let signer = KeydSigner::start("soft", "")?;
    let client = signer.pki.issue("notary-server", "clientAuth")?;
    let ch = channel(signer.addr, &signer.pki.ca_cert, &client).await?;
    let mut km = KeyManagementClient::new(ch.clone());
    let mut sg = SignerClient::new(ch);
    let create = |algorithm: &str, role: &str| CreateKeyRequest {
        algorithm: algorithm.into(),
        gun: "example.com/app".into(),
        role: role.into(),
    };
    let id = |id: &str| KeyId { id: id.into() };

    for (algorithm, keytype, method, public_len) in [
        ("ecdsa", "ecdsa", "ecdsa", 91),
        ("ed25519", "ed25519", "eddsa", 32),
    ] {
        let made = km
            .create_key(create(algorithm, "timestamp"))
            .await?
            .into_inner();
        let info = made.key_info.clone().context("key_info")?;
        let key_id = info.key_id.context("key id")?.id;
        assert_eq!(info.algorithm.context("algorithm")?.algorithm, keytype);
        assert_eq!(made.public_key.len(), public_len);
        let expected = notary_tuf::PublicKey::new(keytype.parse()?, made.public_key.clone());
        assert_eq!(key_id, expected.key_id(), "key IDs are notary key IDs");

        let got = km.get_key_info(id(&key_id)).await?.into_inner();
        assert_eq!(got.public_key, made.public_key);
        assert_eq!(got.role, "timestamp");

        let payload = timestamp_payload(1);
        let sig = sg
            .sign(SignatureRequest {
                key_id: Some(id(&key_id)),
                content: payload.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(sig.algorithm.context("algorithm")?.algorithm, method);
        assert_eq!(sig.content.len(), 64, "raw r||s or Ed25519");
        softhsm_tests::openssl_verify(keytype, &made.public_key, method, &payload, &sig.content)?;

        // A timestamp key signs only timestamps.
        let snapshot =
            br#"{"_type":"Snapshot","expires":"2029-11-25T12:00:00Z","meta":{},"version":1}"#;
        let refused = sg
            .sign(SignatureRequest {
                key_id: Some(id(&key_id)),
                content: snapshot.to_vec(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        let refused = sg
            .sign(SignatureRequest {
                key_id: Some(id(&key_id)),
                content: b"raw bytes".to_vec(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

        // Once it has been used, a new request mints a new key (rotation).
        let rotated = km
            .create_key(create(algorithm, "timestamp"))
            .await?
            .into_inner();
        let rotated_id = rotated.key_info.and_then(|k| k.key_id).context("id")?.id;
        assert_ne!(rotated_id, key_id);

        km.delete_key(id(&rotated_id)).await?;
        km.delete_key(id(&rotated_id)).await?; // idempotent
        let gone = km.get_key_info(id(&rotated_id)).await.unwrap_err();
        assert_eq!(gone.code(), Code::NotFound);
    }

    let unknown = "0".repeat(64);
    let err = km.get_key_info(id(&unknown)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = sg
        .sign(SignatureRequest {
            key_id: Some(id(&unknown)),
            content: timestamp_payload(1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("signing key not found"), "{err:?}");
    km.delete_key(id(&unknown)).await?;

    for (algorithm, role, needle) in [
        ("rsa", "timestamp", "algorithm"),
        ("ecdsa", "targets", "role"),
        ("ecdsa", "root", "role"),
    ] {
        let err = km.create_key(create(algorithm, role)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(needle), "{err:?}");
    }
    let err = km
        .create_key(CreateKeyRequest {
            algorithm: "ecdsa".into(),
            gun: String::new(),
            role: "snapshot".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("GUN"), "{err:?}");

    // Keys made by the daemon's own API are not reachable through this one.
    let mut local = softhsm_tests::connect(&signer.daemon.socket).await?;
    let own = local
        .generate_key(keyd_proto::keyd::GenerateKeyRequest {
            backend: "soft".into(),
            algorithm: keyd_proto::keyd::Algorithm::EcdsaP256 as i32,
            role: keyd_proto::keyd::KeyRole::Timestamp as i32,
            gun: "example.com/app".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let err = km.get_key_info(id(&own.key_id)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = sg
        .sign(SignatureRequest {
            key_id: Some(id(&own.key_id)),
            content: timestamp_payload(2),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

/// Two allowed clients (two certificates the same CA signed): each reaches
/// only the keys it created, and nobody deletes a key once it has been
/// used (review finding 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reach_only_their_own_keys_and_used_keys_stay() -> Result<()> {
    use keyd_proto::signer::key_management_client::KeyManagementClient;
    use keyd_proto::signer::signer_client::SignerClient;
    use keyd_proto::signer::{CreateKeyRequest, KeyId, SignatureRequest};
    use tonic::Code;
    let mut signer = KeydSigner::start("soft", "")?;
    let config = signer.daemon.config_path().to_path_buf();
    let text = std::fs::read_to_string(&config)?;
    let two = "allowed_clients = [\"notary-server\", \"mirror\"]";
    std::fs::write(
        &config,
        text.replace("allowed_clients = [\"notary-server\"]", two),
    )?;
    signer.daemon.restart()?;
    let ca = &signer.pki.ca_cert;
    let a = channel(
        signer.addr,
        ca,
        &signer.pki.issue("notary-server", "clientAuth")?,
    )
    .await?;
    let b = channel(signer.addr, ca, &signer.pki.issue("mirror", "clientAuth")?).await?;
    let (mut km_a, mut sg_a) = (KeyManagementClient::new(a.clone()), SignerClient::new(a));
    let (mut km_b, mut sg_b) = (KeyManagementClient::new(b.clone()), SignerClient::new(b));
    let create = |role: &str| CreateKeyRequest {
        algorithm: "ecdsa".into(),
        gun: "example.com/app".into(),
        role: role.into(),
    };
    let id = |id: &str| KeyId { id: id.into() };
    let key_id = |k: keyd_proto::signer::PublicKey| k.key_info.and_then(|i| i.key_id).map(|i| i.id);

    // A's timestamp key, used: looked up and signed with.
    let used = key_id(km_a.create_key(create("timestamp")).await?.into_inner()).context("id")?;
    km_a.get_key_info(id(&used)).await?;
    let sign = |key: &str| SignatureRequest {
        key_id: Some(id(key)),
        content: timestamp_payload(1),
    };
    sg_a.sign(sign(&used)).await?;
    // A's unused snapshot key: CreateKey would hand it out again, but only to A.
    let unused = key_id(km_a.create_key(create("snapshot")).await?.into_inner()).context("id")?;

    let err = sg_b.sign(sign(&used)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = km_b.get_key_info(id(&used)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // B's DeleteKey of A's keys does what it does for an unknown key:
    // nothing, successfully.
    km_b.delete_key(id(&used)).await?;
    km_b.delete_key(id(&unused)).await?;
    let mine = key_id(km_b.create_key(create("snapshot")).await?.into_inner()).context("id")?;
    assert_ne!(mine, unused, "A's unused key is not handed to B");
    assert_eq!(
        km_a.create_key(create("snapshot"))
            .await?
            .into_inner()
            .key_info
            .and_then(|i| i.key_id)
            .map(|i| i.id)
            .as_deref(),
        Some(unused.as_str())
    );

    // A may not delete its used key either; the key still signs.
    let err = km_a.delete_key(id(&used)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("notaryctl key delete"), "{err:?}");
    sg_a.sign(sign(&used)).await?;
    let held: Vec<String> = signer.api_keys()?.into_iter().map(|k| k.0).collect();
    for k in [&used, &unused, &mine] {
        assert!(held.contains(k), "{k} still in the store: {held:?}");
    }
    let audit = signer.daemon.audit_lines();
    assert!(audit.iter().any(|r| r["operation"] == "signer-sign"
        && r["allowed"] == false
        && r["client"]
            .as_str()
            .is_some_and(|c| c.contains("CN=mirror"))));
    Ok(())
}

#[test]
fn locked_backend_gives_notary_an_error_not_a_hang() -> Result<()> {
    let signer = KeydSigner::start("locked-hsm", "device_timeout_seconds = 5\n")?;
    let server = signer.server("ecdsa")?;
    let gun = "example.com/keyd/locked";
    let cli = server.cli()?;
    let init = cli.run(&["init", gun])?;
    let res = server.get(&format!("/v2/{gun}/_trust/tuf/timestamp.key"))?;
    assert_ne!(res.status, 200);
    let refusal = signer
        .daemon
        .audit_lines()
        .into_iter()
        .find(|r| r["operation"] == "signer-create-key")
        .context("CreateKey not audited")?;
    assert_eq!(refusal["allowed"], false, "{refusal}");
    assert!(
        refusal["result"].as_str().unwrap().contains("locked"),
        "{refusal}"
    );
    // The CLI reports the server's 500 ("unable to reach trust server").
    assert!(!init.status.success(), "init: {}", init.stdout);
    assert!(!signer.daemon.state_dir.join("signer-api.json").exists());
    // The failed CreateKey made the signer API NOT_SERVING; notary-server's
    // own health (checked every 10 s) turns 503.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        // (It was 200 when the server started: `start` waits for that.)
        let status = server.health()?;
        if status == 503 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "notary-server health still {status} 40 s after the token was found locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_token_is_locked_and_recovers_on_unlock() -> Result<()> {
    use keyd_proto::keyd as kpb;
    use keyd_proto::signer::key_management_client::KeyManagementClient;
    use keyd_proto::signer::CreateKeyRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    let signer = KeydSigner::start("locked-hsm", "")?;
    let ca = &signer.pki.ca_cert;
    let client = signer.pki.issue("notary-server", "clientAuth")?;
    let status = |name: &'static str| {
        let (addr, ca, client) = (signer.addr, ca.clone(), client.clone());
        async move {
            health(channel(addr, &ca, &client).await?, name)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    // Nothing has tried the token yet.
    assert_eq!(
        status("grpc.health.v1.Health.Signer").await?,
        ServingStatus::Serving as i32
    );

    let mut km = KeyManagementClient::new(channel(signer.addr, ca, &client).await?);
    let create = CreateKeyRequest {
        algorithm: "ecdsa".into(),
        gun: "example.com/health".into(),
        role: "timestamp".into(),
    };
    let refused = km.create_key(create.clone()).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    for name in [
        "grpc.health.v1.Health.KeyManagement",
        "grpc.health.v1.Health.Signer",
    ] {
        assert_eq!(
            status(name).await?,
            ServingStatus::NotServing as i32,
            "{name}"
        );
    }

    // A person unlocks the token over the socket; the periodic check sees
    // the login without any signer traffic.
    softhsm_tests::connect(&signer.daemon.socket)
        .await?
        .unlock(kpb::UnlockRequest {
            backend: "hsm".into(),
            pin: "1234".into(),
        })
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status("grpc.health.v1.Health.Signer").await? != ServingStatus::Serving as i32 {
        assert!(
            std::time::Instant::now() < deadline,
            "still NOT_SERVING 20 s after unlock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        status("grpc.health.v1.Health.KeyManagement").await?,
        ServingStatus::Serving as i32
    );
    km.create_key(create).await?;
    let log = signer.daemon.log_text();
    assert!(log.contains("signer API health: NOT_SERVING"), "{log}");
    assert!(log.contains("signer API health: SERVING again"), "{log}");
    Ok(())
}

/// notaryctl (keys in the same notary-keyd, over its socket) against
/// notary-server whose timestamp key is in notary-keyd's signer API.
fn notaryctl_scenario_on(backend: &str, key_algorithm: &str) -> Result<()> {
    let signer = KeydSigner::start(backend, "")?;
    let server = signer.server(key_algorithm)?;
    let gun = "example.com/keyd/notaryctl";
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &signer.daemon.socket)?;
    let file = ctl.work_dir().join("app.bin");
    std::fs::write(&file, b"release one\n")?;
    let file = file.to_str().context("path")?;
    let ctx = || {
        format!(
            "notary-server log tail:\n{}\nkeyd log tail:\n{}",
            tail(&server.log_text(), 20),
            tail(&signer.daemon.log_text(), 20)
        )
    };
    ctl.run(&["init", gun, "-p"])?.ok().with_context(ctx)?;
    ctl.run(&["add", gun, "v1", file])?.ok()?;
    ctl.run(&["publish", gun])?.ok().with_context(ctx)?;
    let listed = ctl.run(&["list", gun])?.ok()?;
    ensure!(listed.stdout.contains("v1 "), "{}", listed.stdout);
    ctl.run(&["verify", gun, "v1", "-i", file, "-q"])?.ok()?;

    let ts_id = server_key_id(&server, gun, "timestamp")?;
    ensure!(tuf(&server, gun, "timestamp.key")?["keytype"] == key_algorithm);
    assert_eq!(
        signature_key_ids(&tuf(&server, gun, "timestamp.json")?),
        std::slice::from_ref(&ts_id)
    );
    assert_eq!(
        signer.api_keys()?,
        [(ts_id.clone(), "timestamp".into(), true)]
    );

    // A delegation whose key is in notary-keyd, behind the Unix socket.
    let generated = ctl
        .run(&[
            "key",
            "generate",
            "--role",
            "targets/releases",
            "--gun",
            gun,
        ])?
        .ok()?;
    let deleg_key = generated
        .stdout
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    ctl.run(&[
        "delegation",
        "add",
        gun,
        "targets/releases",
        "--key",
        &deleg_key,
        "--all-paths",
        "-p",
    ])?
    .ok()
    .with_context(ctx)?;
    let delegations = ctl.run(&["delegation", "list", gun])?.ok()?;
    ensure!(
        delegations.stdout.contains("targets/releases"),
        "{}",
        delegations.stdout
    );
    let rel = ctl.work_dir().join("rel.bin");
    std::fs::write(&rel, b"release two\n")?;
    let rel = rel.to_str().context("path")?;
    ctl.run(&["add", gun, "v2", rel, "--roles", "targets/releases"])?
        .ok()?;
    ctl.run(&["publish", gun])?.ok().with_context(ctx)?;

    // Snapshot key to the server (the signer API), then publish again.
    ctl.run(&["key", "rotate", gun, "snapshot", "-r"])?
        .ok()
        .with_context(ctx)?;
    let snap_id = server_key_id(&server, gun, "snapshot")?;
    let v3 = ctl.work_dir().join("v3.bin");
    std::fs::write(&v3, b"release three\n")?;
    let v3 = v3.to_str().context("path")?;
    ctl.run(&["add", gun, "v3", v3])?.ok()?;
    ctl.run(&["publish", gun])?.ok().with_context(ctx)?;
    assert_eq!(
        signature_key_ids(&tuf(&server, gun, "snapshot.json")?),
        std::slice::from_ref(&snap_id)
    );

    // A timestamp rotation: the published key has been used, so the signer
    // API makes a new one instead of handing the old one out again.
    ctl.run(&["key", "rotate", gun, "timestamp", "-r"])?
        .ok()
        .with_context(ctx)?;
    let new_ts = server_key_id(&server, gun, "timestamp")?;
    assert_ne!(new_ts, ts_id);
    let v4 = ctl.work_dir().join("v4.bin");
    std::fs::write(&v4, b"release four\n")?;
    let v4 = v4.to_str().context("path")?;
    ctl.run(&["add", gun, "v4", v4])?.ok()?;
    ctl.run(&["publish", gun])?.ok().with_context(ctx)?;
    assert_eq!(
        signature_key_ids(&tuf(&server, gun, "timestamp.json")?),
        std::slice::from_ref(&new_ts)
    );
    let mut keys = signer.api_keys()?;
    keys.sort();
    let mut expected = vec![
        (ts_id, "timestamp".to_string(), true),
        (new_ts, "timestamp".to_string(), true),
        (snap_id, "snapshot".to_string(), true),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    // The stock CLI reads and verifies everything notaryctl published.
    let stock = server.cli()?;
    for (name, file) in [
        ("v1", "app.bin"),
        ("v2", "rel.bin"),
        ("v3", "v3.bin"),
        ("v4", "v4.bin"),
    ] {
        listed_by(&stock, gun, name)?;
        let copy = stock.work_dir().join(file);
        std::fs::copy(ctl.work_dir().join(file), &copy)?;
        stock
            .run(&[
                "verify",
                gun,
                name,
                "-i",
                copy.to_str().context("path")?,
                "-q",
            ])?
            .ok()?;
    }
    Ok(())
}

fn listed_by(cli: &NotaryCli, gun: &str, name: &str) -> Result<()> {
    listed(cli, &["list", gun], name)
}

#[test]
fn notaryctl_scenario_ecdsa_on_software_keystore() -> Result<()> {
    notaryctl_scenario_on("soft", "ecdsa")
}

#[test]
fn notaryctl_scenario_ed25519_on_softhsm() -> Result<()> {
    notaryctl_scenario_on("hsm", "ed25519")
}

#[test]
fn tls_1_2_and_1_3_are_served() -> Result<()> {
    let signer = KeydSigner::start("soft", "")?;
    let client = signer.pki.issue("notary-server", "clientAuth")?;
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-brief", "-verify_return_error", flag])
            .arg("-connect")
            .arg(signer.addr.to_string())
            .arg("-CAfile")
            .arg(&signer.pki.ca_cert)
            .arg("-cert")
            .arg(&client.cert)
            .arg("-key")
            .arg(&client.key)
            .stdin(std::process::Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stderr);
        ensure!(
            text.contains(&format!("Protocol version: {version}")),
            "{flag}: {text}"
        );
    }
    Ok(())
}

#[test]
fn bad_tls_files_or_a_busy_port_stop_the_daemon_with_the_reason() -> Result<()> {
    let pki = Pki::new("bad-config")?;
    let tls = pki.issue("notary-keyd", "serverAuth")?;
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dir = tempfile::tempdir()?;
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n")?;
    let missing = dir.path().join("missing.crt");
    let free: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let cases = [
        (free, missing.as_path(), "cannot read"),
        (free, garbage.as_path(), "TLS setup failed"),
        (busy.local_addr()?, tls.cert.as_path(), "cannot listen on"),
    ];
    for (addr, cert, needle) in cases {
        let signer_api = format!(
            "[signer_api]\nlisten = \"{addr}\"\n\
             tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\nallowed_clients = [\"notary-server\"]\n",
            cert.display(),
            tls.key.display(),
            pki.ca_cert.display()
        );
        let err = match TestDaemon::new().soft("soft").toml(&signer_api).start() {
            Ok(_) => anyhow::bail!("notary-keyd started with {needle:?} expected"),
            Err(e) => e.to_string(),
        };
        ensure!(
            err.contains(&format!("[signer_api] {needle}")),
            "{needle}: {err}"
        );
    }
    Ok(())
}
