//! End to end with the root key on a YubiKey: `notaryctl init` with the root
//! key in slot 9c of the project's virtual YubiKey (touch required, behind
//! the real pcscd and vpcd) and the targets and snapshot keys in SoftHSM2,
//! published to Debian's notary-server; the stock notary CLI, with its own
//! trust dir, lists and verifies the target.

use keyd_proto::keyd as pb;
use notary_tuf::{PublicKey, Root};
use sha2::{Digest, Sha256};
use softhsm_tests::notary_stack::{NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{connect, Daemon, SoftHsm, TestDaemon};
use std::path::Path;
use std::time::Duration;
use virtual_piv::{Profile, TestCard, TouchMode};

const SERIAL: u32 = 41_000_001;
const PIN: &str = "24681357";
const PUK: &str = "13572468";
const GUN: &str = "example.com/keyd/yubikey-root";
const CONTENT: &[u8] = b"release signed under a YubiKey root\n";

/// Mode 0600: some of these are PIN files, which notaryctl refuses otherwise.
fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

/// The SoftHSM token first, so it is the default backend for new keys.
fn daemon(hsm: &SoftHsm) -> Daemon {
    TestDaemon::new()
        .softhsm(hsm, "hsm")
        .unwrap()
        .yubikey("yk", SERIAL)
        .start()
        .unwrap()
}

/// The root.json the server serves, as its `signed` part.
fn published_root(server: &NotaryServer) -> Root {
    let res = server
        .get(&format!("/v2/{GUN}/_trust/tuf/root.json"))
        .unwrap();
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let envelope: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    serde_json::from_value(envelope["signed"].clone()).unwrap()
}

fn role_key<'a>(root: &'a Root, role: &str) -> &'a PublicKey {
    let keyids = &root.roles[role].keyids;
    assert_eq!(keyids.len(), 1, "{role}: {keyids:?}");
    &root.keys[&keyids[0]]
}

#[tokio::test(flavor = "multi_thread")]
async fn init_with_yubikey_root_and_softhsm_targets_then_stock_cli_verifies() {
    let card = TestCard::start(Profile::yubikey_5_7(SERIAL)).unwrap();
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let daemon = daemon(&hsm);
    let pki = Pki::new("yubikey-root").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let serial = SERIAL.to_string();
    let pin = write(ctl.work_dir(), "pin", format!("{PIN}\n").as_bytes());
    let puk = write(ctl.work_dir(), "puk", format!("{PUK}\n").as_bytes());

    ctl.run(&[
        "yubikey",
        "setup",
        "--serial",
        &serial,
        "--yes",
        "--factory-defaults",
        "--new-pin-file",
        &pin,
        "--new-puk-file",
        &puk,
    ])
    .unwrap()
    .ok()
    .unwrap();

    // Every touch comes 300 ms after the card starts blinking.
    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    let generated = ctl
        .run(&[
            "key",
            "generate",
            "--backend",
            "yk",
            "--slot",
            "9c",
            "--role",
            "root",
            "--gun",
            GUN,
            "--touch-policy",
            "always",
            "--pin-file",
            &pin,
        ])
        .unwrap()
        .ok()
        .unwrap();
    generated.assert_warns(&format!("URI: yubikey:serial={serial};slot=9c"));
    let root_id = generated.stdout.lines().last().unwrap().trim().to_string();
    // ECDSA P-256, PIN once (the default), touch always.
    assert_eq!(card.slot_key(0x9c), Some((0x11, 2, 2)));

    // A locked card: init has to ask for the PIN. Without a way to get it,
    // init stops before creating anything, and can simply be run again.
    ctl.run(&["key", "lock", "--backend", "yk"])
        .unwrap()
        .ok()
        .unwrap();
    let init = ["init", GUN, "--rootkey", &root_id, "-p"];
    let refused = ctl.run_env(&[("NOTARY_KEYD_PIN", "")], &[], &init).unwrap();
    assert!(!refused.status.success(), "{}", refused.stderr);
    refused.assert_warns("notaryctl key unlock --backend yk");
    assert_eq!(card.pin_tries_left(), 3);

    // The root certificate and root.json are signed on the card: one touch
    // each, announced by notaryctl while it waits.
    let touches = card.touch_requests();
    let initialised = ctl
        .run_env(&[("NOTARY_KEYD_PIN", PIN)], &[], &init)
        .unwrap()
        .ok()
        .unwrap();
    let prompt = format!("Touch your YubiKey (serial {serial}, slot 9c)…");
    assert_eq!(
        initialised.stderr.matches(&prompt).count(),
        2,
        "{}",
        initialised.stderr
    );
    assert_eq!(card.touch_requests() - touches, 2);

    // Publishing a target needs the targets and snapshot keys only.
    let file = write(ctl.work_dir(), "app.bin", CONTENT);
    ctl.run(&["add", GUN, "v1", &file]).unwrap().ok().unwrap();
    let touches = card.touch_requests();
    ctl.run(&["publish", GUN]).unwrap().ok().unwrap();
    assert_eq!(card.touch_requests(), touches);

    // The published root: its root key is the YubiKey key's certificate;
    // targets and snapshot keys live in SoftHSM.
    let root = published_root(&server);
    let root_cert = role_key(&root, "root");
    assert!(root_cert.keytype().is_x509());
    assert_eq!(root_cert.bare_key().unwrap().key_id(), root_id);
    let mut client = connect(&daemon.socket).await.unwrap();
    for (role, backend) in [("root", "yk"), ("targets", "hsm"), ("snapshot", "hsm")] {
        let listed = role_key(&root, role);
        let bare = if listed.keytype().is_x509() {
            listed.bare_key().unwrap().key_id()
        } else {
            listed.key_id()
        };
        let key = client
            .get_key(pb::GetKeyRequest { key: bare })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(key.backend, backend, "{role} key {key:?}");
    }

    // The stock CLI, trusting on first use, lists the target with its
    // digest and size, and verifies content against it.
    let stock = server.cli().unwrap();
    let listed = stock.run(&["list", GUN]).unwrap().ok().unwrap();
    let row: Vec<&str> = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("v1 "))
        .unwrap_or_else(|| panic!("no v1 in:\n{}", listed.stdout))
        .split_whitespace()
        .collect();
    let sha256 = hex::encode(Sha256::digest(CONTENT));
    let size = CONTENT.len().to_string();
    assert_eq!(
        row,
        ["v1", sha256.as_str(), size.as_str(), "targets"],
        "{}",
        listed.stdout
    );
    let copy = write(stock.work_dir(), "app.bin", CONTENT);
    stock
        .run(&["verify", GUN, "v1", "-i", &copy, "-q"])
        .unwrap()
        .ok()
        .unwrap();
    let tampered = write(stock.work_dir(), "tampered.bin", b"another release\n");
    let rejected = stock
        .run(&["verify", GUN, "v1", "-i", &tampered, "-q"])
        .unwrap();
    assert!(
        !rejected.status.success(),
        "wrong content accepted:\n{}",
        rejected.stdout
    );
}
