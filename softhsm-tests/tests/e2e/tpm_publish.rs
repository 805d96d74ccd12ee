//! End to end with the TPM: a collection whose targets key lives in a real
//! swtpm (through notary-keyd), published by notaryctl to Debian's
//! notary-server, then listed and verified by the stock notary CLI.

use sha2::{Digest, Sha256};
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Swtpm, TestDaemon};

const GUN: &str = "example.com/keyd/tpm";
const CONTENT: &[u8] = b"release built on a TPM host\n";

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

/// The daemon's keys for `role` (root keys are not bound to a GUN; the
/// others must be bound to `GUN`), as `notaryctl key list --json` shows them.
fn keys_for(ctl: &Notaryctl, role: &str) -> Vec<serde_json::Value> {
    let out = ok(ctl.run(&["key", "list", "--json", "--role", role]));
    let keys: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    keys.into_iter()
        .filter(|k| role == "root" || k["gun"] == GUN)
        .collect()
}

/// The key IDs a signed root gives `role`.
fn role_keyids(root: &serde_json::Value, role: &str) -> Vec<String> {
    serde_json::from_value(root["signed"]["roles"][role]["keyids"].clone()).unwrap()
}

/// The key IDs whose signatures a signed metadata file carries.
fn signer_keyids(meta: &serde_json::Value) -> Vec<String> {
    meta["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_string())
        .collect()
}

fn fetch_json(server: &NotaryServer, name: &str) -> serde_json::Value {
    let res = server
        .get(&format!("/v2/{GUN}/_trust/tuf/{name}.json"))
        .unwrap();
    assert_eq!(res.status, 200, "GET {name}.json");
    serde_json::from_slice(&res.body).unwrap()
}

#[test]
fn targets_key_in_swtpm_publishes_and_stock_cli_verifies() {
    let tpm = Swtpm::start().unwrap();
    let key_auth = tpm.key_auth_file("publish e2e key auth").unwrap();
    // `notaryctl init` creates its targets and snapshot keys on the daemon's
    // default backend; naming the TPM there (rather than relying on it being
    // the first backend) is how an operator sends them to it.
    let daemon = TestDaemon::new()
        .server("default_backend = \"tpm\"")
        .soft("soft")
        .tpm(&tpm, "tpm", &key_auth)
        .start()
        .unwrap();
    let pki = Pki::new("tpm-publish").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();

    // The root key stays in the software keystore; init picks it up.
    ok(ctl.run(&["key", "generate", "--backend", "soft", "--role", "root"]));
    let file = ctl.work_dir().join("app.bin");
    std::fs::write(&file, CONTENT).unwrap();
    ok(ctl.run(&["init", GUN]));
    ok(ctl.run(&["add", GUN, "v1", file.to_str().unwrap()]));
    ok(ctl.run(&["publish", GUN]));

    let roots = keys_for(&ctl, "root");
    let targets = keys_for(&ctl, "targets");
    let snapshots = keys_for(&ctl, "snapshot");
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(roots[0]["backend"], "soft", "{roots:?}");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(snapshots[0]["backend"], "tpm", "{snapshots:?}");
    assert_eq!(targets.len(), 1, "{targets:?}");
    let targets_key = &targets[0];
    assert_eq!(targets_key["backend"], "tpm", "{targets_key}");
    let uri = targets_key["uri"].as_str().unwrap();
    assert!(uri.starts_with("tpm:"), "targets key not in the TPM: {uri}");
    let targets_id = targets_key["keyid"].as_str().unwrap();
    // Their wrapped blobs (targets, snapshot) are in the TPM backend's
    // blob directory, beside the audit key's (made in the TPM when there
    // is one).
    let blobs = std::fs::read_dir(daemon.state_dir.join("tpm-tpm"))
        .unwrap()
        .count();
    assert_eq!(blobs, 3, "TPM key blobs");

    // What the server serves: the root names the TPM key for targets, and
    // targets.json carries its signature.
    let root = fetch_json(&server, "root");
    assert_eq!(role_keyids(&root, "targets"), [targets_id]);
    let published = fetch_json(&server, "targets");
    assert_eq!(signer_keyids(&published), [targets_id]);

    // The stock CLI, trusting on first use, lists the target with its
    // digest and size...
    let stock = server.cli().unwrap();
    let listed = ok(stock.run(&["list", GUN]));
    let row: Vec<&str> = listed
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&"v1"))
        .unwrap_or_else(|| panic!("v1 not listed:\n{}", listed.stdout));
    let sha256 = hex::encode(Sha256::digest(CONTENT));
    let size = CONTENT.len().to_string();
    assert_eq!(row, ["v1", sha256.as_str(), size.as_str(), "targets"]);

    // ...accepts the right content and rejects anything else.
    let copy = stock.work_dir().join("app.bin");
    std::fs::write(&copy, CONTENT).unwrap();
    let verified = ok(stock.run(&["verify", GUN, "v1", "-i", copy.to_str().unwrap()]));
    assert_eq!(verified.stdout.as_bytes(), CONTENT);
    std::fs::write(&copy, b"release built elsewhere\n").unwrap();
    let wrong = stock
        .run(&["verify", GUN, "v1", "-i", copy.to_str().unwrap()])
        .unwrap();
    assert!(!wrong.status.success(), "wrong content accepted");
    // notary checks the sha256 and sha512 hashes in map order, so either
    // may be the one it names.
    assert!(
        wrong.stdout.contains("checksum for v1 did not match"),
        "rejected for another reason:\nstdout: {}\nstderr: {}",
        wrong.stdout,
        wrong.stderr
    );
}
