//! `kill -9` of the daemon in the middle of its work: a state write (killed
//! by strace at each system call of the crash-safe write), a GenerateKey
//! (an RSA-4096 key generation in SoftHSM). After a restart the state
//! store must be whole and consistent with the devices: no key without the
//! binding it was made with, no binding without its key, no half-written
//! file; the audit log must parse line by line.

use crate::common;

use common::{backends, generate, root_payload, sign, sign_as, targets_payload, NewKey, SignAs};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::faults::{leftovers, KillAt, StateFile, WriteStep};
use softhsm_tests::{connect, Daemon, SoftHsm, TestDaemon};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use virtual_piv::{ins, Profile, TestCard};

const GUN: &str = "example.com/crash";

async fn keys_in(client: &mut KeydClient<Channel>, backend: &str) -> Vec<pb::Key> {
    client
        .list_keys(pb::ListKeysRequest {
            backend: backend.into(),
            ..Default::default()
        })
        .await
        .expect("ListKeys after the restart")
        .into_inner()
        .keys
}

/// Waits until `backend` is listed as available (bounded: a backend that
/// never comes back fails the test).
async fn available(client: &mut KeydClient<Channel>, backend: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = backends(client).await;
        let b = listed.iter().find(|b| b.name == backend).unwrap();
        if b.available {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{backend} stayed unavailable: {}",
            b.unavailable_reason
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After a restart: the state file is whole, no temp file is left, every
/// key of `backend` has the binding it was generated with (role targets,
/// GUN), every binding has its key, no generation is left pending, and the
/// audit log parses. Returns the keys.
async fn consistent(daemon: &Daemon, backend: &str, dirs: &[&std::path::Path]) -> Vec<pb::Key> {
    let mut client = connect(&daemon.socket).await.unwrap();
    let keys = keys_in(&mut client, backend).await;
    let state = StateFile::read(&daemon.state_dir).unwrap();
    for dir in dirs {
        let left = leftovers(dir).unwrap();
        assert!(left.is_empty(), "half-written files left: {left:?}");
    }
    for key in &keys {
        assert_eq!(
            (key.role(), key.gun.as_str()),
            (pb::KeyRole::Targets, GUN),
            "key {} lost the binding it was generated with",
            key.key_id
        );
        assert!(
            state.bindings.contains_key(&key.key_id),
            "key {} has no record in keys.json",
            key.key_id
        );
    }
    for (key_id, (b, _, _)) in &state.bindings {
        if b == backend {
            assert!(
                keys.iter().any(|k| &k.key_id == key_id),
                "keys.json binds {key_id}, which {backend} does not hold"
            );
        }
    }
    assert_eq!(
        state.pending, 0,
        "a generation is still recorded as pending"
    );
    daemon.audit_verify().unwrap();
    keys
}

/// A key made after the restart works, and a key that survived the crash
/// signs for its role only.
async fn still_serves(daemon: &Daemon, backend: &str, survivors: &[pb::Key]) {
    let mut client = connect(&daemon.socket).await.unwrap();
    let fresh = generate(&mut client, NewKey::on(backend).targets(GUN)).await;
    for key in survivors.iter().chain([&fresh]) {
        let (_, ok) = sign(&mut client, &key.key_id, targets_payload(3)).await;
        ok.unwrap_or_else(|s| panic!("sign with {}: {s:?}", key.key_id));
        let (_, root) = sign(&mut client, &key.key_id, root_payload()).await;
        let refused = root.expect_err("a targets key signed a Root");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    }
}

/// Generates a key bound to (targets, GUN) on the software keystore of a
/// daemon that strace kills at `step` of its `nth` write of keys.json; the
/// request must fail. Returns the stopped daemon, to be started again.
async fn generate_killed(step: WriteStep, nth: u32) -> Daemon {
    let mut daemon = TestDaemon::new()
        .soft("soft")
        .env("TOKIO_WORKER_THREADS", "1")
        .start()
        .unwrap();
    let pid = daemon.pid().unwrap();
    let kill = KillAt::write_of(pid, &daemon.state_dir.join("keys.json"), step, nth).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let answer = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "soft".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            label: "crash test".into(),
            role: pb::KeyRole::Targets as i32,
            gun: GUN.into(),
            ..Default::default()
        })
        .await;
    assert!(
        answer.is_err(),
        "GenerateKey finished although the daemon was to die at {kill:?}: {answer:?}"
    );
    let ended = daemon.wait_exit(Duration::from_secs(30)).unwrap();
    kill.check_killed_there(ended).unwrap();
    daemon
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_each_step_of_a_state_write_keys_and_bindings_stay_consistent() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: strace needs root to trace the daemon (it makes itself undumpable)");
        return;
    }
    // A generation writes keys.json twice: the pending record before the
    // device is asked, the binding after. Each write dies at each of its
    // steps.
    for nth in [1, 2] {
        for step in WriteStep::ALL {
            let mut daemon = generate_killed(step, nth).await;
            daemon.restart().unwrap();
            let soft_keys = daemon.state_dir.join("soft").join("keys");
            let keys = consistent(&daemon, "soft", &[&daemon.state_dir, &soft_keys]).await;
            still_serves(&daemon, "soft", &keys).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_softhsm_makes_an_rsa_4096_key_leaves_no_key_without_binding() {
    let hsm = SoftHsm::new("crash", "2468").unwrap();
    let mut daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let generating = tokio::spawn(async move {
        client
            .generate_key(pb::GenerateKeyRequest {
                backend: "hsm".into(),
                algorithm: pb::Algorithm::Rsa4096 as i32,
                label: "crash test".into(),
                role: pb::KeyRole::Targets as i32,
                gun: GUN.into(),
                ..Default::default()
            })
            .await
    });
    // The daemon records the generation as pending right before it asks
    // the token, and SoftHSM takes seconds over an RSA-4096 key pair.
    let deadline = Instant::now() + Duration::from_secs(60);
    while StateFile::read(&daemon.state_dir).unwrap().pending == 0 {
        assert!(Instant::now() < deadline, "the generation never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    daemon.kill().unwrap();
    let answer = generating.await.unwrap();
    assert!(
        answer.is_err(),
        "GenerateKey finished before the kill: {answer:?}"
    );
    daemon.restart().unwrap();
    let keys = consistent(&daemon, "hsm", &[&daemon.state_dir]).await;
    still_serves(&daemon, "hsm", &keys).await;
}

const YUBIKEY_PIN: &str = "24681357";

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_a_yubikey_takes_its_new_management_key_the_card_stays_usable() {
    let card = TestCard::start(Profile::yubikey_5_4(7_140_001)).unwrap();
    let mut daemon = TestDaemon::new()
        .yubikey("yk", card.serial())
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    // Setup replaces the PUK, the PIN, then the management key with a
    // random one the card keeps PIN-protected. The card stops before it
    // executes SET MANAGEMENT KEY, and the daemon dies there.
    card.hold_before(ins::SET_MANAGEMENT_KEY);
    let serial = card.serial();
    let setup = tokio::spawn(async move {
        client
            .yubikey_setup(pb::YubiKeySetupRequest {
                serial,
                current_pin: "123456".into(),
                new_pin: YUBIKEY_PIN.into(),
                current_puk: "12345678".into(),
                new_puk: "13572468".into(),
                force: false,
            })
            .await
    });
    assert!(
        card.wait_for_hold(Duration::from_secs(60)),
        "setup never reached SET MANAGEMENT KEY"
    );
    daemon.kill().unwrap();
    // The command reached the card whole, so the card executes it although
    // the host is gone: from now on only the new key manages the card.
    card.release_hold();
    let answer = setup.await.unwrap();
    assert!(
        answer.is_err(),
        "setup finished although the daemon died: {answer:?}"
    );

    daemon.restart().unwrap();
    daemon.audit_verify().unwrap();
    // pcscd resets the card once it has cleaned up after the dead client;
    // until then the card is busy.
    let mut client = connect(&daemon.socket).await.unwrap();
    available(&mut client, "yk").await;
    // The daemon can still manage the card: it makes a key and signs.
    let key = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            gun: GUN.into(),
            slot: pb::PivSlot::Signature as i32,
            pin: YUBIKEY_PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("the card cannot be managed after the crash: {s:?}"))
        .into_inner();
    let payload = targets_payload(1);
    let (_, signed) = sign_as(
        &mut client,
        &key.key_id,
        payload.clone(),
        SignAs::default().pin(YUBIKEY_PIN),
    )
    .await;
    let signed = signed.unwrap();
    let public = notary_tuf::PublicKey::new(key.keytype.parse().unwrap(), key.public.clone());
    notary_tuf::verify(
        &public,
        signed.method().notary().unwrap(),
        &payload,
        &signed.signature,
    )
    .unwrap();
    consistent(&daemon, "yk", &[&daemon.state_dir]).await;
}

/// What a crash between setting and storing the management key left
/// before setup stored it first (and what another tool may leave): the
/// daemon must say so, not call the card absent.
#[tokio::test(flavor = "multi_thread")]
async fn a_management_key_nobody_stored_is_named_not_taken_for_a_missing_card() {
    let card = TestCard::start(Profile::yubikey_5_4(7_140_002)).unwrap();
    let serial = card.serial();
    tokio::task::spawn_blocking(move || {
        let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(serial)).unwrap();
        yk.verify_pin(b"123456").unwrap();
        yk.authenticate(&yubikey::MgmKey::get_default(&yk).unwrap())
            .unwrap();
        let key = yubikey::MgmKey::from_bytes([0x5a; 24], None).unwrap();
        key.set_manual(&mut yk, false).unwrap();
    })
    .await
    .unwrap();
    let daemon = TestDaemon::new().yubikey("yk", serial).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let refused = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            slot: pb::PivSlot::Signature as i32,
            pin: "123456".into(),
            ..Default::default()
        })
        .await
        .expect_err("generated with a management key the daemon does not hold");
    assert_eq!(
        common::reason(&refused),
        Some(common::Reason::ManagementKeyUnknown),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("not stored PIN-protected"),
        "{refused:?}"
    );
}
