//! notary-keyd's signer API behind Debian's notary-server (trust_service
//! "remote"): the stock notary CLI's whole scenario, for ecdsa and ed25519
//! keys on SoftHSM2 and on the software keystore; restarts; key reuse; and
//! refusals of callers with the wrong CA or subject.

use anyhow::{ensure, Context, Result};
use softhsm_tests::notary_stack::{
    free_port, CertPair, NotaryCli, NotaryServer, Pki, RemoteSigner, TrustService,
};
use softhsm_tests::{Daemon, SoftHsm};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

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
        let tls = pki.issue("notary-keyd", "serverAuth")?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let hsm = match backend {
            "hsm" => Some(SoftHsm::new("notary", "1234")?),
            _ => None,
        };
        let backend_toml = match &hsm {
            Some(h) => h.backend_toml("hsm")?,
            None => "[[backend]]\nname = \"soft\"\ntype = \"soft\"\n".into(),
        };
        let config = format!(
            "{backend_toml}\n[signer_api]\nlisten = \"{addr}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             client_ca = \"{}\"\nbackend = \"{backend}\"\nallowed_clients = [\"notary-server\"]\n{extra}",
            tls.cert.display(),
            tls.key.display(),
            pki.ca_cert.display(),
        );
        let conf = hsm.as_ref().map(|h| h.conf().display().to_string());
        let env: Vec<(&str, &str)> = conf
            .as_deref()
            .map(|c| vec![("SOFTHSM2_CONF", c)])
            .unwrap_or_default();
        let daemon = Daemon::start(&config, &env)?;
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

    /// Keys the signer API made, from its store: (key ID, role, signed).
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
                    k["signed"].as_bool().unwrap_or(false),
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

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
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

    openssl(
        work,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "deleg-ec.key",
        ],
    )?;
    openssl(
        work,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "deleg-ec.key",
            "-out",
            "deleg.key",
        ],
    )?;
    openssl(
        work,
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
    assert!(keys.iter().all(|(_, _, signed)| *signed), "{keys:?}");
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
