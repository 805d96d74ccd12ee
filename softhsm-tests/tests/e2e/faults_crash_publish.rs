//! `kill -9` of the daemon in the middle of a publish: the targets key is
//! on the virtual YubiKey with touch required, and the card holds the
//! publish's targets signature open until the daemon is dead. The publish
//! must fail cleanly with the staged change and the cached metadata as they
//! were; after a restart the same publish goes through.

use keyd_proto::keyd as pb;
use softhsm_tests::faults::{leftovers, StateFile};
use softhsm_tests::hostile::tree;
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{connect, TestDaemon};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use virtual_piv::{Profile, TestCard, TouchMode};

const GUN: &str = "example.com/crash/publish";
const PIN: &str = "24681357";

/// Paths added, removed or rewritten between two `tree`s.
fn changed_paths(
    before: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    after: &BTreeMap<PathBuf, Option<Vec<u8>>>,
) -> Vec<PathBuf> {
    let mut changed: Vec<PathBuf> = before
        .iter()
        .filter(|(path, content)| after.get(*path) != Some(content))
        .map(|(path, _)| path.clone())
        .collect();
    changed.extend(after.keys().filter(|p| !before.contains_key(*p)).cloned());
    changed
}

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_the_publish_waits_for_a_touch_nothing_staged_or_cached_is_lost() {
    let card = TestCard::start(Profile::yubikey_5_7(7_150_001)).unwrap();
    let mut daemon = TestDaemon::new()
        .soft("soft")
        .yubikey("yk", card.serial())
        .start()
        .unwrap();
    let pki = Pki::new("crash-publish").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();

    let mut client = connect(&daemon.socket).await.unwrap();
    client
        .yubikey_setup(pb::YubiKeySetupRequest {
            serial: card.serial(),
            current_pin: "123456".into(),
            new_pin: PIN.into(),
            current_puk: "12345678".into(),
            new_puk: "13572468".into(),
            force: false,
        })
        .await
        .unwrap();
    let targets_key = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            gun: GUN.into(),
            slot: pb::PivSlot::Authentication as i32,
            pin_policy: pb::PinPolicy::Never as i32,
            touch_policy: pb::TouchPolicy::Always as i32,
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Root and snapshot keys in the software keystore; targets on the card.
    ok(ctl.run(&["init", GUN, "-p"]));
    ok(ctl.run(&[
        "key",
        "rotate",
        GUN,
        "targets",
        "--key",
        &targets_key.key_id,
    ]));

    let file = ctl.work_dir().join("app.bin");
    std::fs::write(&file, b"a release\n").unwrap();
    ok(ctl.run(&["add", GUN, "v1", file.to_str().unwrap()]));
    // The rotation's new metadata into the cache, so the publish's update
    // from the server finds nothing new.
    ok(ctl.run(&["list", GUN]));
    let before = tree(&ctl.trust_dir).unwrap();

    // The publish signs targets on the card, which waits for a touch.
    card.set_touch(TouchMode::Manual);
    let publish = std::process::Command::new(softhsm_tests::bin_path("notaryctl").unwrap())
        .arg("--keyd")
        .arg(&daemon.socket)
        .args(["-s", &server.url, "--tlscacert"])
        .arg(&server.ca_cert)
        .arg("-d")
        .arg(&ctl.trust_dir)
        .args(["publish", GUN])
        .env_remove("NOTARY_KEYD_SOCKET")
        .env("HOME", ctl.work_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        card.wait_for_touch_request(Duration::from_secs(120)),
        "the publish never asked the card for a signature"
    );
    daemon.kill().unwrap();
    // The touch comes after the daemon died: the card signs for no one.
    card.touch();
    let out = publish.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the publish succeeded without the daemon:\n{stderr}"
    );
    assert!(
        stderr.contains("notary-keyd"),
        "the failure does not name the daemon:\n{stderr}"
    );
    let changed = changed_paths(&before, &tree(&ctl.trust_dir).unwrap());
    assert!(
        changed.is_empty(),
        "the failed publish changed the trust dir (staged change or cached metadata): {changed:?}"
    );

    daemon.restart().unwrap();
    StateFile::read(&daemon.state_dir).unwrap();
    assert!(leftovers(&daemon.state_dir).unwrap().is_empty());
    daemon.audit_verify().unwrap();
    // pcscd resets the card once it has cleaned up after the dead daemon;
    // until then a signature can find it busy.
    card.set_touch(TouchMode::Immediate);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let again = ctl.run(&["publish", GUN]).unwrap();
        if again.status.success() {
            break;
        }
        assert!(
            again.stderr.contains("unavailable") && Instant::now() < deadline,
            "the publish after the restart failed:\n{}",
            again.stderr
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let listed = ok(ctl.run(&["list", GUN]));
    listed.assert_prints("v1");
    let status = ok(ctl.run(&["status", GUN]));
    assert!(
        !status.stdout.contains("v1"),
        "the published change is still staged:\n{}",
        status.stdout
    );
}
