//! PINs against the real daemon and SoftHSM2: a PIN is checked by the token
//! even while it is unlocked, a refused PIN renews no `pin_cache`,
//! `pin_cache = "none"` leaves no unlock behind, PIN files others may read
//! are refused by the daemon and by notaryctl, and an env PIN leaves the
//! daemon's environment.

use crate::common;

use common::{
    backends, generate, notaryctl, reason, sign, sign_as, targets_payload, Failure, NewKey, Reason,
    SignAs,
};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::{connect, write_secret, Daemon, SoftHsm, TestDaemon};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const PIN: &str = "4321";

fn world_readable_pin_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("hsm.pin");
    std::fs::write(&path, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn refusal_of(path: &Path) -> String {
    let owner = std::fs::metadata(path).unwrap().uid();
    format!(
        "refusing to read a secret from {}: it is owned by uid {owner} with mode 0644",
        path.display()
    )
}

/// A daemon with one SoftHSM token in prompt mode and `pin_cache`.
fn locked_daemon(hsm: &SoftHsm, pin_cache: &str) -> Daemon {
    TestDaemon::new()
        .locked_softhsm(hsm, "hsm", &format!("pin_cache = {pin_cache}\n"))
        .start()
        .unwrap()
}

async fn unlock(client: &mut KeydClient<Channel>, pin: &str) -> Result<(), tonic::Status> {
    client
        .unlock(pb::UnlockRequest {
            backend: "hsm".into(),
            pin: pin.into(),
        })
        .await
        .map(|_| ())
}

async fn logged_in(client: &mut KeydClient<Channel>) -> bool {
    backends(client)
        .await
        .iter()
        .any(|b| b.name == "hsm" && b.logged_in)
}

/// A locked token behind a daemon, a client, and a key made on the token
/// with a PIN sent along.
async fn locked_with_key(
    label: &str,
    pin_cache: &str,
) -> (SoftHsm, Daemon, KeydClient<Channel>, pb::Key) {
    let hsm = SoftHsm::new(label, PIN).unwrap();
    let daemon = locked_daemon(&hsm, pin_cache);
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "hsm".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (hsm, daemon, client, key)
}

fn unlock_lines(daemon: &Daemon) -> Vec<serde_json::Value> {
    daemon
        .audit_lines()
        .into_iter()
        .filter(|l| l["operation"] == "unlock")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_on_an_unlocked_token_is_refused_and_audited_as_such() {
    let hsm = SoftHsm::new("unlocked", PIN).unwrap();
    let daemon = locked_daemon(&hsm, "\"until-lock\"");
    let mut client = connect(&daemon.socket).await.unwrap();

    unlock(&mut client, PIN).await.unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let st = unlock(&mut client, "0000").await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated, "{st:?}");
    assert_eq!(reason(&st), Some(Reason::WrongPin), "{st:?}");

    let lines = unlock_lines(&daemon);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[0]["result"], "ok");
    assert_eq!(lines[1]["allowed"], false, "{:?}", lines[1]);
    assert!(
        lines[1]["result"].as_str().unwrap().contains("wrong PIN"),
        "{:?}",
        lines[1]
    );
    // Checking the PIN took a fresh login, so the refused one left the
    // token locked; the right one unlocks it again.
    assert!(!logged_in(&mut client).await);
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    unlock(&mut client, PIN).await.unwrap();
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    r.unwrap();
    // A right PIN on an unlocked token is checked and accepted.
    unlock(&mut client, PIN).await.unwrap();
    assert!(logged_in(&mut client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_pins_sent_with_signs_do_not_keep_the_token_unlocked() {
    let (_hsm, daemon, mut client, key) = locked_with_key("renewal", "2").await;

    unlock(&mut client, PIN).await.unwrap();
    // A caller without the PIN signs with garbage every second for 5 s,
    // as if to keep renewing the 2 s cache.
    for version in 1..=5 {
        let (_, r) = sign_as(
            &mut client,
            &key.key_id,
            targets_payload(version),
            SignAs::default().pin("x"),
        )
        .await;
        let st = r.unwrap_err();
        assert_eq!(reason(&st), Some(Reason::WrongPin), "{st:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(9)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    let signs: Vec<_> = daemon
        .audit_lines()
        .into_iter()
        .filter(|l| l["operation"] == "sign")
        .collect();
    assert_eq!(signs.len(), 6, "{signs:?}");
    assert!(signs.iter().all(|l| l["allowed"] == false), "{signs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_cache_none_refuses_unlock_and_a_pin_serves_one_request() {
    let (_hsm, daemon, mut client, key) = locked_with_key("percall", "\"none\"").await;
    assert!(!logged_in(&mut client).await, "generate logged out after");

    let st = unlock(&mut client, PIN).await.unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert_eq!(reason(&st), Some(Reason::PinPerRequest), "{st:?}");
    let refused = Failure::of(&st).unwrap();
    assert_eq!(refused.backend.as_deref(), Some("hsm"), "{st:?}");
    assert!(st.message().contains("pin_cache = \"none\""), "{st:?}");
    let lines = unlock_lines(&daemon);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["allowed"], false);

    // Two signs after the refused unlock: neither gets a login.
    for version in [1, 2] {
        let (_, r) = sign(&mut client, &key.key_id, targets_payload(version)).await;
        assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    }
    // A PIN sent with one sign serves that sign only.
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(3),
        SignAs::default().pin(PIN),
    )
    .await;
    r.unwrap();
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(4)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    assert!(!logged_in(&mut client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refuses_a_pin_file_others_may_read() {
    let hsm = SoftHsm::new("exposed", PIN).unwrap();
    let pins = tempfile::tempdir().unwrap();
    let exposed = world_readable_pin_file(pins.path());
    let config = TestDaemon::new()
        .softhsm_pin(
            &hsm,
            "hsm",
            &format!("{{ file = \"{}\" }}", exposed.display()),
        )
        .soft("soft");
    let daemon = config.clone().start().unwrap();
    let log = daemon.log_text();
    assert!(log.contains(&refusal_of(&exposed)), "{log}");
    assert!(!log.contains(PIN), "the PIN must never be logged: {log}");
    let mut client = connect(&daemon.socket).await.unwrap();
    let backends = backends(&mut client).await;
    assert!(backends.iter().all(|b| b.name != "hsm"), "{backends:?}");
    drop(client);
    drop(daemon);

    // The same file, closed to others, opens the token.
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = config.start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notaryctl_refuses_a_pin_file_others_may_read_and_sends_no_pin() {
    let (_hsm, daemon, mut client, key) = locked_with_key("ctlfile", "\"until-lock\"").await;
    client
        .lock(pb::LockRequest {
            backend: "hsm".into(),
        })
        .await
        .unwrap();
    let exposed = world_readable_pin_file(daemon.dir.path());
    let payload = daemon.dir.path().join("signed.json");
    std::fs::write(&payload, targets_payload(1)).unwrap();
    let payload = payload.to_str().unwrap();
    let exposed_arg = exposed.to_str().unwrap();

    let unlock_with_file = || {
        notaryctl(
            &daemon,
            &[
                "key",
                "unlock",
                "--backend",
                "hsm",
                "--pin-file",
                exposed_arg,
            ],
        )
    };
    let unlock = unlock_with_file();
    let sign_with_env = std::process::Command::new(softhsm_tests::bin_path("notaryctl").unwrap())
        .arg("--keyd")
        .arg(&daemon.socket)
        .args(["sign", "--key", &key.key_id, payload])
        .env("NOTARY_KEYD_PIN_FILE", &exposed)
        .env_remove("NOTARY_KEYD_PIN")
        .output()
        .unwrap();
    for out in [&unlock, &sign_with_env] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&refusal_of(&exposed)), "{err}");
    }
    // The daemon never saw a PIN: no unlock at all, and the one sign
    // stopped at login_required.
    let audit = daemon.audit_lines();
    assert!(unlock_lines(&daemon).is_empty(), "{audit:?}");
    let signs: Vec<_> = audit.iter().filter(|l| l["operation"] == "sign").collect();
    assert_eq!(signs.len(), 1, "{signs:?}");
    assert!(
        signs[0]["result"].as_str().unwrap().contains("locked"),
        "{:?}",
        signs[0]
    );

    // Closed to others, the same file works.
    write_secret(&exposed, &format!("{PIN}\n")).unwrap();
    let out = unlock_with_file();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_pin_leaves_the_daemons_environment() {
    const ENV_PIN: &str = "739218465";
    let hsm = SoftHsm::new("envpin", ENV_PIN).unwrap();
    let daemon = TestDaemon::new()
        .softhsm_pin(&hsm, "hsm", "{ env = \"HSM_PIN_FOR_TEST\" }")
        .env("HSM_PIN_FOR_TEST", ENV_PIN)
        .start()
        .unwrap();
    // The PIN was read: the token is logged in.
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();

    let environ = std::fs::read(format!("/proc/{}/environ", daemon.pid().unwrap())).unwrap();
    let has = |needle: &[u8]| environ.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"SOFTHSM2_CONF="), "read the daemon's environment");
    assert!(
        !has(ENV_PIN.as_bytes()),
        "the PIN is still in the daemon's environment"
    );
}

/// A PIN file whose PIN the token rejects at start leaves the backend
/// unavailable; a signature with one of its keys is told the key is on
/// that backend and why it is unavailable, not that there is no such key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_on_a_backend_whose_pin_was_rejected_is_named_with_the_backend() {
    let hsm = SoftHsm::new("rejected", PIN).unwrap();
    let pins = tempfile::tempdir().unwrap();
    let pin_file = pins.path().join("hsm.pin");
    write_secret(&pin_file, &format!("{PIN}\n")).unwrap();
    let mut daemon = TestDaemon::new()
        .softhsm_pin(
            &hsm,
            "hsm",
            &format!("{{ file = \"{}\" }}", pin_file.display()),
        )
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    drop(client);

    write_secret(&pin_file, "000000\n").unwrap();
    daemon.restart().unwrap();
    let payload = daemon.dir.path().join("targets.json");
    std::fs::write(&payload, targets_payload(1)).unwrap();
    let o = notaryctl(
        &daemon,
        &["sign", "--key", &key.key_id, payload.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!(
            "key {} is on backend hsm, which is unavailable: ",
            key.key_id
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("in any available backend"), "{stderr}");
    assert!(
        !stderr.contains("000000"),
        "the PIN must never be shown: {stderr}"
    );
    // A caller no rule lets sign learns nothing about where keys are.
    if nix::unistd::geteuid().is_root() {
        daemon.open_to_group("nogroup").unwrap();
        let o = common::notaryctl_as(
            65534,
            65534,
            &daemon,
            &["sign", "--key", &key.key_id, payload.to_str().unwrap()],
        );
        assert!(!o.status.success());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("in any available backend"), "{stderr}");
        assert!(!stderr.contains("backend hsm"), "{stderr}");
    }
    // The soft keystore serves meanwhile.
    let mut client = connect(&daemon.socket).await.unwrap();
    let soft = generate(&mut client, NewKey::on("soft").role("targets")).await;
    let (_, r) = sign(&mut client, &soft.key_id, targets_payload(2)).await;
    r.unwrap();
}
