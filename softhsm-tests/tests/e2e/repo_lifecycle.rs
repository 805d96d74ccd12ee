//! notaryctl's delegations, key rotations and server-managed snapshots
//! against Debian's notary-server, checked by the stock notary CLI that
//! trusted the collection before each change.

use softhsm_tests::notary_stack::{CliOutput, NotaryCli, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, SoftHsm, TestDaemon};

struct Stack {
    _pki: Pki,
    server: NotaryServer,
    daemon: Daemon,
    ctl: Notaryctl,
    stock: NotaryCli,
    _hsm: Option<SoftHsm>,
}

fn stack(name: &str) -> Stack {
    stack_on(name, None)
}

/// The software keystore (the default backend), plus a SoftHSM2 token as
/// backend `hsm` when one is given.
fn stack_on(name: &str, hsm: Option<SoftHsm>) -> Stack {
    let pki = Pki::new(name).unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = match &hsm {
        Some(h) => TestDaemon::new()
            .server("default_backend = \"soft\"")
            .soft("soft")
            .softhsm(h, "hsm")
            .unwrap()
            .start()
            .unwrap(),
        None => TestDaemon::new().soft("soft").start().unwrap(),
    };
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let stock = server.cli().unwrap();
    Stack {
        _pki: pki,
        server,
        daemon,
        ctl,
        stock,
        _hsm: hsm,
    }
}

/// The backend holding each key bound to `gun` (and root keys), by role.
fn backends_by_role(s: &Stack, gun: &str) -> Vec<(String, String)> {
    let listed = ok(s.ctl.run(&["key", "list", "--json"]));
    let keys: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    let mut found: Vec<(String, String)> = keys
        .iter()
        .filter(|k| k["gun"] == gun || k["role"] == "root")
        .map(|k| {
            (
                k["role"].as_str().unwrap().to_string(),
                k["backend"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

/// Stages and publishes a target with notaryctl; returns the file.
fn publish_target(s: &Stack, gun: &str, name: &str, role: Option<&str>) -> std::path::PathBuf {
    let file = s
        .ctl
        .work_dir()
        .join(format!("{}.bin", name.replace('/', "_")));
    std::fs::write(&file, format!("content of {name}\n")).unwrap();
    let mut args = vec!["add", gun, name, file.to_str().unwrap()];
    if let Some(role) = role {
        args.extend(["--roles", role]);
    }
    ok(s.ctl.run(&args));
    ok(s.ctl.run(&["publish", gun]));
    file
}

/// The stock CLI lists `name` under `role` and verifies its content.
fn stock_sees(s: &Stack, gun: &str, name: &str, role: &str, file: &std::path::Path) {
    let listed = ok(s.stock.run(&["list", gun]));
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} ")) && l.trim_end().ends_with(role)),
        "{name} ({role}) not listed:\n{}",
        listed.stdout
    );
    ok(s.stock
        .run(&["verify", gun, name, "-i", file.to_str().unwrap(), "-q"]));
}

fn key_id(out: &CliOutput) -> String {
    out.stdout.lines().last().unwrap().trim().to_string()
}

#[test]
fn delegations_and_rotations_followed_by_the_stock_cli() {
    let s = stack("lifecycle");
    let gun = "example.com/keyd/lifecycle";
    ok(s.ctl.run(&["init", gun, "-p"]));
    let v1 = publish_target(&s, gun, "v1", None);
    stock_sees(&s, gun, "v1", "targets", &v1);

    // A delegation whose key lives in notary-keyd.
    let key = key_id(&ok(s.ctl.run(&[
        "key",
        "generate",
        "--role",
        "targets/releases",
        "--gun",
        gun,
    ])));
    ok(s.ctl.run(&[
        "delegation",
        "add",
        gun,
        "targets/releases",
        "--key",
        &key,
        "--all-paths",
        "-p",
    ]));
    let listed = ok(s.ctl.run(&["delegation", "list", gun]));
    listed.assert_prints("targets/releases");
    listed.assert_prints(&key);
    let rel = publish_target(&s, gun, "rel1", Some("targets/releases"));
    stock_sees(&s, gun, "rel1", "targets/releases", &rel);

    // Snapshot key to the server, then a new targets key, then a new root.
    ok(s.ctl.run(&["key", "rotate", gun, "snapshot", "-r"]));
    let v2 = publish_target(&s, gun, "v2", None);
    stock_sees(&s, gun, "v2", "targets", &v2);
    ok(s.ctl.run(&["key", "rotate", gun, "targets"]));
    let v3 = publish_target(&s, gun, "v3", None);
    stock_sees(&s, gun, "v3", "targets", &v3);
    let root = s
        .server
        .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
        .unwrap();
    let old_root: serde_json::Value = serde_json::from_slice(&root.body).unwrap();
    ok(s.ctl.run(&["key", "rotate", gun, "root"]));
    let v4 = publish_target(&s, gun, "v4", None);
    stock_sees(&s, gun, "v4", "targets", &v4);
    let root = s
        .server
        .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
        .unwrap();
    let new_root: serde_json::Value = serde_json::from_slice(&root.body).unwrap();
    assert_ne!(
        old_root["signed"]["roles"]["root"],
        new_root["signed"]["roles"]["root"]
    );
    assert_eq!(new_root["signatures"].as_array().unwrap().len(), 2);
    stock_sees(&s, gun, "rel1", "targets/releases", &rel);
    ok(s.ctl.run(&["key", "rotate", gun, "timestamp", "-r"]));
    let v5 = publish_target(&s, gun, "v5", None);
    stock_sees(&s, gun, "v5", "targets", &v5);
    // A second root rotation, also signed by the root key of version 1.
    ok(s.ctl.run(&["key", "rotate", gun, "root", "--legacy", "3"]));
    let root = s
        .server
        .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
        .unwrap();
    let newest: serde_json::Value = serde_json::from_slice(&root.body).unwrap();
    assert_eq!(newest["signatures"].as_array().unwrap().len(), 3);
    stock_sees(&s, gun, "v5", "targets", &v5);

    // A client that never saw the old root trusts the new one on first use.
    let fresh = Notaryctl::new(&s.server.url, &s.server.ca_cert, &s.daemon.socket).unwrap();
    let listed = ok(fresh.run(&["list", gun]));
    for name in ["v1 ", "v4 ", "rel1 "] {
        listed.assert_prints(name);
    }

    // Removing the delegation drops its targets from the listing.
    ok(s.ctl
        .run(&["delegation", "remove", gun, "targets/releases", "-p", "-y"]));
    let listed = ok(s.stock.run(&["list", gun]));
    assert!(!listed.stdout.contains("rel1"), "{}", listed.stdout);
}

#[test]
fn stock_delegation_receives_notaryctl_targets_signed_in_keyd() {
    let s = stack("stockdeleg");
    let gun = "example.com/stock/deleg";
    ok(s.stock.run(&["init", gun]));
    ok(s.stock.run(&["publish", gun]));
    ok(s.stock.run(&["key", "rotate", gun, "snapshot", "-r"]));
    // A keyd key with a certificate, handed to the stock CLI as a file.
    let key = key_id(&ok(s.ctl.run(&["key", "generate"])));
    let pem = ok(s
        .ctl
        .run(&["key", "cert", "issue-root", &key, "--gun", gun]))
    .stdout;
    let cert = s.stock.work_dir().join("releases.crt");
    std::fs::write(&cert, pem).unwrap();
    ok(s.stock.run(&[
        "delegation",
        "add",
        gun,
        "targets/releases",
        cert.to_str().unwrap(),
        "--all-paths",
    ]));
    ok(s.stock.run(&["publish", gun]));

    let d1 = publish_target(&s, gun, "d1", Some("targets/releases"));
    stock_sees(&s, gun, "d1", "targets/releases", &d1);
    let listed = ok(s.ctl.run(&["list", gun]));
    listed.assert_prints("targets/releases");
}

#[test]
fn server_managed_snapshot_from_init() {
    let s = stack("srvsnap");
    let gun = "example.com/keyd/srvsnap";
    ok(s.ctl.run(&["init", gun, "--server-managed-snapshot", "-p"]));
    let v1 = publish_target(&s, gun, "v1", None);
    stock_sees(&s, gun, "v1", "targets", &v1);
    let keys = ok(s.ctl.run(&["key", "list", "--gun", gun]));
    assert!(!keys.stdout.contains("snapshot"), "{}", keys.stdout);
}

#[test]
fn init_and_rotate_put_new_keys_on_the_backend_named() {
    let s = stack_on("onbackend", Some(SoftHsm::new("notary", "1234").unwrap()));
    let gun = "example.com/keyd/onbackend";
    ok(s.ctl.run(&["init", gun, "--backend", "hsm", "-p"]));
    assert_eq!(
        backends_by_role(&s, gun),
        [("root", "hsm"), ("snapshot", "hsm"), ("targets", "hsm")]
            .map(|(r, b)| (r.to_string(), b.to_string()))
    );
    let v1 = publish_target(&s, gun, "v1", None);
    stock_sees(&s, gun, "v1", "targets", &v1);

    ok(s.ctl
        .run(&["key", "rotate", gun, "targets", "--backend", "soft"]));
    let v2 = publish_target(&s, gun, "v2", None);
    stock_sees(&s, gun, "v2", "targets", &v2);
    let targets: Vec<_> = backends_by_role(&s, gun)
        .into_iter()
        .filter(|(role, _)| role == "targets")
        .map(|(_, backend)| backend)
        .collect();
    assert_eq!(
        targets,
        ["hsm", "soft"],
        "the old targets key stays, the new one is in soft"
    );

    // A backend that does not exist, and flags that exclude each other.
    let unknown = s
        .ctl
        .run(&["key", "rotate", gun, "snapshot", "--backend", "nowhere"])
        .unwrap();
    assert!(!unknown.status.success());
    unknown.assert_warns("nowhere");
    let both = s
        .ctl
        .run(&["key", "rotate", gun, "snapshot", "-r", "--backend", "soft"])
        .unwrap();
    assert!(!both.status.success());
    both.assert_warns("-r excludes --key and --backend");
}

#[test]
fn a_locked_token_signs_init_and_publish_with_notary_keyd_pin_file() {
    let hsm = SoftHsm::new("notary", "4321").unwrap();
    // Nobody has unlocked the token: its PIN comes from the person.
    let pki = Pki::new("pinfile").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new()
        .server("default_backend = \"hsm\"")
        .locked_softhsm(&hsm, "hsm", "")
        .start()
        .unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let gun = "example.com/keyd/pinfile";
    let no_pin = [("NOTARY_KEYD_PIN", ""), ("NOTARY_KEYD_PIN_FILE", "")];

    // Without a PIN and without a terminal: refused, saying how to give one.
    let refused = ctl.run_env(&no_pin, &[], &["init", gun]).unwrap();
    assert!(!refused.status.success());
    refused.assert_warns("NOTARY_KEYD_PIN_FILE");

    let pin_file = ctl.work_dir().join("hsm.pin");
    softhsm_tests::write_secret(&pin_file, "4321\n").unwrap();
    let with_file = [
        ("NOTARY_KEYD_PIN", ""),
        ("NOTARY_KEYD_PIN_FILE", pin_file.to_str().unwrap()),
    ];
    ctl.run_env(&with_file, &[], &["init", gun, "-p"])
        .unwrap()
        .ok()
        .unwrap();
    let file = ctl.work_dir().join("v1.bin");
    std::fs::write(&file, "v1\n").unwrap();
    ctl.run(&["add", gun, "v1", file.to_str().unwrap()])
        .unwrap()
        .ok()
        .unwrap();
    ctl.run_env(&with_file, &[], &["publish", gun])
        .unwrap()
        .ok()
        .unwrap();
    let listed = server
        .cli()
        .unwrap()
        .run(&["list", gun])
        .unwrap()
        .ok()
        .unwrap();
    listed.assert_prints("v1");
}
