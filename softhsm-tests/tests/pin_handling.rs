//! PINs against the real daemon and SoftHSM2: a PIN is checked by the token
//! even while it is unlocked, a refused PIN renews no `pin_cache`, and
//! `pin_cache = "none"` leaves no unlock behind.

mod common;

use common::{generate, reason, sign, targets_payload};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::{connect, Daemon, SoftHsm};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const PIN: &str = "4321";

/// A daemon with one SoftHSM token in prompt mode and `pin_cache`.
fn locked_daemon(hsm: &SoftHsm, pin_cache: &str) -> Daemon {
    let conf = hsm.conf();
    Daemon::start(
        &format!(
            "{}pin_cache = {pin_cache}\n",
            hsm.locked_backend_toml("hsm")
        ),
        &[("SOFTHSM2_CONF", conf.to_str().unwrap())],
    )
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
    client
        .list_backends(pb::ListBackendsRequest {})
        .await
        .unwrap()
        .into_inner()
        .backends
        .iter()
        .any(|b| b.name == "hsm" && b.logged_in)
}

async fn key_with_pin(client: &mut KeydClient<Channel>) -> pb::Key {
    client
        .generate_key(pb::GenerateKeyRequest {
            backend: "hsm".into(),
            algorithm: "ecdsa".into(),
            role: "targets".into(),
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
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
    let key = generate(&mut client, "hsm", "ecdsa", "p256", 0, "targets", "").await;
    let st = unlock(&mut client, "0000").await.unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated, "{st:?}");
    assert_eq!(reason(&st), "wrong_pin", "{st:?}");

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
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1), "", "", "").await;
    assert_eq!(reason(&r.unwrap_err()), "login_required");
    unlock(&mut client, PIN).await.unwrap();
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(2), "", "", "").await;
    r.unwrap();
    // A right PIN on an unlocked token is checked and accepted.
    unlock(&mut client, PIN).await.unwrap();
    assert!(logged_in(&mut client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_pins_sent_with_signs_do_not_keep_the_token_unlocked() {
    let hsm = SoftHsm::new("renewal", PIN).unwrap();
    let daemon = locked_daemon(&hsm, "2");
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = key_with_pin(&mut client).await;

    unlock(&mut client, PIN).await.unwrap();
    // A caller without the PIN signs with garbage every second for 5 s,
    // as if to keep renewing the 2 s cache.
    for version in 1..=5 {
        let (_, r) = sign(
            &mut client,
            &key.key_id,
            targets_payload(version),
            "",
            "",
            "x",
        )
        .await;
        let st = r.unwrap_err();
        assert_eq!(reason(&st), "wrong_pin", "{st:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (events, r) = sign(&mut client, &key.key_id, targets_payload(9), "", "", "").await;
    assert_eq!(reason(&r.unwrap_err()), "login_required");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::progress::Kind::PinNeeded(p) if p.backend == "hsm")),
        "{events:?}"
    );
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
    let hsm = SoftHsm::new("percall", PIN).unwrap();
    let daemon = locked_daemon(&hsm, "\"none\"");
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = key_with_pin(&mut client).await;
    assert!(!logged_in(&mut client).await, "generate logged out after");

    let st = unlock(&mut client, PIN).await.unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert_eq!(reason(&st), "pin_per_request", "{st:?}");
    assert!(st.message().contains("pin_cache = \"none\""), "{st:?}");
    let lines = unlock_lines(&daemon);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["allowed"], false);

    // Two signs after the refused unlock: neither gets a login.
    for version in [1, 2] {
        let (_, r) = sign(
            &mut client,
            &key.key_id,
            targets_payload(version),
            "",
            "",
            "",
        )
        .await;
        assert_eq!(reason(&r.unwrap_err()), "login_required");
    }
    // A PIN sent with one sign serves that sign only.
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(3), "", "", PIN).await;
    r.unwrap();
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(4), "", "", "").await;
    assert_eq!(reason(&r.unwrap_err()), "login_required");
    assert!(!logged_in(&mut client).await);
}
