//! The YubiKey backend through the real daemon and notaryctl, against the
//! project's virtual YubiKey (crate virtual-piv) behind the real pcscd and
//! vpcd. Each test holds the virtual readers for its whole run
//! (`TestReaders`), because opening a card by serial SELECTs every card.

use crate::common;

use common::{
    backends, reason, root_payload, sign, sign_as, targets_payload, Algorithm, Reason, SignAs,
};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use notary_tuf::{verify, PublicKey, SignatureMethod};
use softhsm_tests::{bin_path, connect, Daemon, TestDaemon};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use virtual_piv::{ins, Profile, TestCard, TestReaders, TouchMode};

const PIN: &str = "24681357";
const PUK: &str = "13572468";
const GUN: &str = "example.com/yubikey";
/// The factory PIN and PUK of a new card, given explicitly.
const FACTORY_PIN: &str = "123456";
const FACTORY_PUK: &str = "12345678";

/// A daemon whose one backend, `yk`, is the card with `serial`.
fn start(serial: u32) -> Daemon {
    TestDaemon::new().yubikey("yk", serial).start().unwrap()
}

fn notaryctl(daemon: &Daemon, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin_path("notaryctl").unwrap());
    cmd.arg("--keyd")
        .arg(&daemon.socket)
        .args(args)
        .env_remove("NOTARY_KEYD_SOCKET")
        .env_remove("NOTARY_KEYD_PIN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: Output) -> (String, String) {
    let (out, err) = text(&o);
    assert!(o.status.success(), "notaryctl failed:\n{out}\n{err}");
    (out, err)
}

fn failed(o: Output) -> String {
    let (out, err) = text(&o);
    assert!(
        !o.status.success(),
        "notaryctl should have failed:\n{out}\n{err}"
    );
    err
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    softhsm_tests::write_secret(&path, &format!("{content}\n")).unwrap();
    path.to_string_lossy().into_owned()
}

async fn client(daemon: &Daemon) -> KeydClient<Channel> {
    connect(&daemon.socket).await.unwrap()
}

/// Setup over the API with the factory PIN and PUK given explicitly.
async fn set_up(client: &mut KeydClient<Channel>, serial: u32) {
    client
        .yubikey_setup(pb::YubiKeySetupRequest {
            serial,
            current_pin: FACTORY_PIN.into(),
            new_pin: PIN.into(),
            current_puk: FACTORY_PUK.into(),
            new_puk: PUK.into(),
            force: false,
        })
        .await
        .unwrap();
}

/// A second, unforced setup of a card set up with PIN and PUK.
fn setup_again(serial: u32) -> pb::YubiKeySetupRequest {
    pb::YubiKeySetupRequest {
        serial,
        current_pin: PIN.into(),
        new_pin: PIN.into(),
        current_puk: PUK.into(),
        new_puk: PUK.into(),
        force: false,
    }
}

/// A key `generate` makes on the `yk` card: P-256 in `slot` for the
/// collection's targets role, PIN once, no touch, unless the methods say
/// otherwise.
struct CardKey {
    slot: pb::PivSlot,
    algorithm: Algorithm,
    pin_policy: pb::PinPolicy,
    touch_policy: pb::TouchPolicy,
    role: &'static str,
}

impl CardKey {
    /// `slot` as its hex ID (`"9a"`, `"82"`).
    fn in_slot(slot: &str) -> CardKey {
        let id = u8::from_str_radix(slot, 16).unwrap();
        CardKey {
            slot: pb::PivSlot::from_id(id).unwrap(),
            algorithm: Algorithm::EcdsaP256,
            pin_policy: pb::PinPolicy::Once,
            touch_policy: pb::TouchPolicy::Never,
            role: "targets",
        }
    }

    fn algorithm(self, algorithm: Algorithm) -> CardKey {
        CardKey { algorithm, ..self }
    }

    fn pin_policy(self, pin_policy: pb::PinPolicy) -> CardKey {
        CardKey { pin_policy, ..self }
    }

    fn touch_policy(self, touch_policy: pb::TouchPolicy) -> CardKey {
        CardKey {
            touch_policy,
            ..self
        }
    }

    fn role(self, role: &'static str) -> CardKey {
        CardKey { role, ..self }
    }
}

async fn generate(client: &mut KeydClient<Channel>, key: CardKey) -> pb::Key {
    let (role, delegation) = common::role(key.role);
    client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: key.algorithm as i32,
            role,
            delegation,
            gun: GUN.into(),
            slot: key.slot as i32,
            pin_policy: key.pin_policy as i32,
            touch_policy: key.touch_policy as i32,
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("generate in {:?}: {s:?}", key.slot))
        .into_inner()
}

fn public(key: &pb::Key) -> PublicKey {
    PublicKey::new(key.keytype.parse().unwrap(), key.public.clone())
}

fn assert_verifies(key: &pb::Key, payload: &[u8], result: &pb::SignResult) {
    verify(
        &public(key),
        SignatureMethod::Ecdsa,
        payload,
        &result.signature,
    )
    .unwrap_or_else(|e| panic!("signature by {} does not verify: {e}", key.key_id));
}

fn touch_events(events: &[pb::progress::Kind]) -> Vec<&pb::TouchNeeded> {
    events
        .iter()
        .filter_map(|e| match e {
            pb::progress::Kind::TouchNeeded(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// One card, set up, in a daemon that selects it by serial.
async fn ready_card(profile: Profile) -> (TestCard, Daemon, KeydClient<Channel>) {
    let card = TestCard::start(profile).unwrap();
    let daemon = start(card.serial());
    let mut client = client(&daemon).await;
    set_up(&mut client, card.serial()).await;
    (card, daemon, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn selects_by_serial_among_two_cards_and_lists_serials_without_one() {
    let readers = TestReaders::acquire().unwrap();
    let old = readers.insert(Profile::yubikey_5_4(31_000_001)).unwrap();
    let new = readers.insert(Profile::yubikey_5_7(31_000_002)).unwrap();
    let daemon = TestDaemon::new()
        .yubikey("new", new.serial())
        .any_yubikey("any")
        .start()
        .unwrap();
    let mut client = client(&daemon).await;
    let backends = backends(&mut client).await;
    let by_name = |n: &str| backends.iter().find(|b| b.name == n).unwrap();
    let chosen = by_name("new");
    assert!(chosen.available, "{chosen:?}");
    assert_eq!(chosen.device.as_ref().unwrap().serial, "31000002");
    assert!(chosen.device.as_ref().unwrap().model.contains("5.7.1"));
    let any = by_name("any");
    assert!(!any.available);
    assert!(
        any.unavailable_reason.contains("31000001, 31000002")
            && any.unavailable_reason.contains("set `serial`"),
        "{}",
        any.unavailable_reason
    );
    let (out, _) = ok(notaryctl(
        &daemon,
        &["yubikey", "status", "--serial", "31000002"],
        &[],
    ));
    assert!(
        out.contains("YubiKey 31000002 (backend new), firmware 5.7.1"),
        "{out}"
    );
    assert!(out.contains("management key: factory default"), "{out}");
    drop(old);
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_changes_pin_puk_and_management_key_and_refuses_a_second_time() {
    let readers = TestReaders::acquire().unwrap();
    // Both management-key generations: 3DES (5.4) and AES-192 (5.7).
    let cards = [
        readers.insert(Profile::yubikey_5_4(32_000_001)).unwrap(),
        readers.insert(Profile::yubikey_5_7(32_000_002)).unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let new_pin = write(dir.path(), "new-pin", PIN);
    let new_puk = write(dir.path(), "new-puk", PUK);
    for card in &cards {
        let serial = card.serial().to_string();
        let daemon = start(card.serial());
        // Generation refuses a card that still has its factory management key.
        let mut client = client(&daemon).await;
        let st = client
            .generate_key(pb::GenerateKeyRequest {
                backend: "yk".into(),
                algorithm: pb::Algorithm::EcdsaP256 as i32,
                pin: FACTORY_PIN.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&st), Some(Reason::SetupNeeded), "{st:?}");
        assert!(st
            .message()
            .contains(&format!("notaryctl yubikey setup --serial {serial}")));

        // Without a terminal and without --yes nothing changes.
        let err = failed(notaryctl(
            &daemon,
            &[
                "yubikey",
                "setup",
                "--serial",
                &serial,
                "--factory-defaults",
            ],
            &[],
        ));
        assert!(err.contains("without confirmation: pass --yes"), "{err}");
        let setup = [
            "yubikey",
            "setup",
            "--serial",
            &serial,
            "--yes",
            "--factory-defaults",
            "--new-pin-file",
            &new_pin,
            "--new-puk-file",
            &new_puk,
        ];
        let (_, err) = ok(notaryctl(&daemon, &setup, &[]));
        assert!(err.contains("replace its management key"), "{err}");
        assert!(
            err.contains(&format!("YubiKey {serial} is set up")),
            "{err}"
        );
        let (out, _) = ok(notaryctl(&daemon, &["yubikey", "status"], &[]));
        assert!(out.contains("management key: changed"), "{out}");
        assert!(out.contains("PIN tries left: 3\n"), "{out}");

        // A second setup is refused by notaryctl and by the daemon.
        let err = failed(notaryctl(&daemon, &setup, &[]));
        assert!(
            err.contains("was set up already") && err.contains("--force"),
            "{err}"
        );
        let st = client
            .yubikey_setup(setup_again(card.serial()))
            .await
            .unwrap_err();
        assert_eq!(reason(&st), Some(Reason::AlreadySetUp), "{st:?}");
        // Forced, with the current (new) PIN and PUK from files.
        let forced = [
            "yubikey",
            "setup",
            "--serial",
            &serial,
            "--yes",
            "--force",
            "--pin-file",
            &new_pin,
            "--puk-file",
            &new_puk,
            "--new-pin-file",
            &new_pin,
            "--new-puk-file",
            &new_puk,
        ];
        ok(notaryctl(&daemon, &forced, &[]));
        // The new PIN is the PIN now: generation with it works.
        let key = generate(&mut client, CardKey::in_slot("9a")).await;
        assert_eq!(key.uri, format!("yubikey:serial={serial};slot=9a"));
        assert_eq!(card.pin_tries_left(), 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generates_with_each_policy_and_signs_p256_and_p384() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_7(33_000_001)).await;
    let k9a = generate(&mut client, CardKey::in_slot("9a")).await;
    let k9c = generate(
        &mut client,
        CardKey::in_slot("9c")
            .algorithm(Algorithm::EcdsaP384)
            .pin_policy(pb::PinPolicy::Always)
            .touch_policy(pb::TouchPolicy::Always),
    )
    .await;
    let k82 = generate(
        &mut client,
        CardKey::in_slot("82")
            .pin_policy(pb::PinPolicy::Never)
            .touch_policy(pb::TouchPolicy::Cached)
            .role("snapshot"),
    )
    .await;
    // The card holds what was asked: (alg, PIN policy, touch policy).
    assert_eq!(card.slot_key(0x9a), Some((0x11, 2, 1)));
    assert_eq!(card.slot_key(0x9c), Some((0x14, 3, 2)));
    assert_eq!(card.slot_key(0x82), Some((0x11, 1, 3)));

    let payload = targets_payload(1);
    let (_, r) = sign(&mut client, &k9a.key_id, payload.clone()).await;
    assert_verifies(&k9a, &payload, &r.unwrap());
    let snapshot =
        br#"{"_type":"Snapshot","expires":"2030-01-01T00:00:00Z","meta":{},"version":1}"#;
    let (_, r) = sign(&mut client, &k82.key_id, snapshot.to_vec()).await;
    assert_verifies(&k82, snapshot, &r.unwrap());

    // PIN always: each signature needs the PIN, VERIFY right before it.
    let (events, r) = sign(&mut client, &k9c.key_id, payload.clone()).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    assert!(events
        .iter()
        .any(|e| matches!(e, pb::progress::Kind::PinNeeded(p) if p.tries_left == 3)));
    for version in [2, 3] {
        card.clear_commands();
        let payload = targets_payload(version);
        let (events, r) = sign_as(
            &mut client,
            &k9c.key_id,
            payload.clone(),
            SignAs::default().pin(PIN),
        )
        .await;
        assert_verifies(&k9c, &payload, &r.unwrap());
        let touch = touch_events(&events);
        assert_eq!(touch.len(), 1, "{events:?}");
        assert_eq!(
            (touch[0].slot(), touch[0].device_serial.as_str()),
            (pb::PivSlot::Signature, "33000001")
        );
        let commands = card.commands();
        let sign_at = commands
            .iter()
            .rposition(|c| c.ins == ins::GENERAL_AUTHENTICATE && c.p2 == 0x9c)
            .unwrap();
        assert_eq!(commands[sign_at - 1].ins, ins::VERIFY, "{commands:?}");
        assert_eq!(commands[sign_at - 1].sw, 0x9000);
    }

    // Another machine (fresh daemon state) lists the keys from the card:
    // metadata for the public keys, record certificates for the labels.
    drop(client);
    drop(daemon);
    let other = start(card.serial());
    let mut client = self::client(&other).await;
    let keys = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    for key in [&k9a, &k9c, &k82] {
        let seen = keys.iter().find(|k| k.key_id == key.key_id).unwrap();
        assert_eq!(seen.uri, key.uri);
        assert_eq!(seen.label, key.label);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_2048_signs_with_host_side_pss() {
    let (card, _daemon, mut client) = ready_card(Profile::yubikey_5_4(33_000_002)).await;
    let key = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: pb::Algorithm::Rsa2048 as i32,
            role: pb::KeyRole::Targets as i32,
            slot: pb::PivSlot::KeyManagement as i32,
            touch_policy: pb::TouchPolicy::Never as i32,
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (key.keytype.as_str(), key.algorithm()),
        ("rsa", pb::Algorithm::Rsa2048)
    );
    assert_eq!(card.slot_key(0x9d), Some((0x07, 2, 1)));
    let payload = targets_payload(1);
    let (_, r) = sign(&mut client, &key.key_id, payload.clone()).await;
    let r = r.unwrap();
    assert_eq!(r.method(), pb::SignatureMethod::Rsapss);
    verify(
        &public(&key),
        SignatureMethod::RsaPss,
        &payload,
        &r.signature,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn firmware_without_metadata_lists_from_certificates_and_prompts_touch_when_slow() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_2(39_000_001)).await;
    let st = client
        .yubikey_setup(setup_again(card.serial()))
        .await
        .unwrap_err();
    assert_eq!(reason(&st), Some(Reason::AlreadySetUp), "{st:?}");
    let key = generate(
        &mut client,
        CardKey::in_slot("9a").touch_policy(pb::TouchPolicy::Always),
    )
    .await;
    drop(client);
    drop(daemon);

    // Another daemon cannot read policies (no GET METADATA before 5.3): it
    // finds the key through its slot certificate, and says "touch" only
    // when the signature does not come back quickly.
    let other = start(card.serial());
    let mut client = self::client(&other).await;
    let keys = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    let seen = keys.iter().find(|k| k.key_id == key.key_id).unwrap();
    assert_eq!(seen.label, key.label);
    card.set_touch(TouchMode::Manual);
    let payload = targets_payload(1);
    let mut stream = client
        .sign(pb::SignRequest {
            key_id: key.key_id.clone(),
            payload: payload.clone(),
            pin: PIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The card waits for a touch that only comes after the prompt.
    let first = stream.message().await.unwrap().unwrap();
    let Some(pb::sign_event::Event::Progress(pb::Progress {
        kind: Some(pb::progress::Kind::TouchNeeded(touch)),
    })) = first.event
    else {
        panic!("expected a touch prompt first, got {first:?}");
    };
    assert_eq!(touch.slot(), pb::PivSlot::Authentication);
    assert!(card.wait_for_touch_request(Duration::from_secs(20)));
    assert!(card.touch());
    let last = stream.message().await.unwrap().unwrap();
    let Some(pb::sign_event::Event::Result(result)) = last.event else {
        panic!("expected the signature, got {last:?}");
    };
    assert_verifies(&key, &payload, &result);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pins_show_tries_then_blocked_and_are_never_retried() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_4(34_000_001)).await;
    let key = generate(&mut client, CardKey::in_slot("9a")).await;
    ok(notaryctl(&daemon, &["key", "lock", "--backend", "yk"], &[]));
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("targets.json");
    std::fs::write(&payload, targets_payload(1)).unwrap();
    let payload = payload.to_string_lossy().into_owned();
    let wrong = write(dir.path(), "wrong-pin", "11111111");
    let sign_args = ["sign", "--key", &key.key_id, "--pin-file", &wrong, &payload];
    for left in [2, 1] {
        let err = failed(notaryctl(&daemon, &sign_args, &[]));
        assert!(
            err.contains(&format!("wrong PIN for backend yk (tries left: {left})")),
            "{err}"
        );
        assert_eq!(card.pin_tries_left(), left, "exactly one try per attempt");
    }
    let err = failed(notaryctl(&daemon, &sign_args, &[]));
    assert!(err.contains("PIN of backend yk is blocked"), "{err}");
    assert!(err.contains("ykman piv access unblock-pin"), "{err}");
    assert_eq!(card.pin_tries_left(), 0);
    // A blocked PIN stays blocked: the right PIN cannot sign either.
    let right = write(dir.path(), "pin", PIN);
    let err = failed(notaryctl(
        &daemon,
        &["sign", "--key", &key.key_id, "--pin-file", &right, &payload],
        &[],
    ));
    assert!(err.contains("is blocked"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn touch_prompt_before_the_signature_and_a_missed_touch_is_not_a_pin_error() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_7(35_000_001)).await;
    let key = generate(
        &mut client,
        CardKey::in_slot("9c").touch_policy(pb::TouchPolicy::Always),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let payload_path = dir.path().join("targets.json");
    std::fs::write(&payload_path, targets_payload(1)).unwrap();
    let payload_path = payload_path.to_string_lossy().into_owned();
    let pin = write(dir.path(), "pin", PIN);
    let args = [
        "sign",
        "--key",
        &key.key_id,
        "--pin-file",
        &pin,
        &payload_path,
    ];

    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    let (out, err) = ok(notaryctl(&daemon, &args, &[]));
    assert!(
        err.contains("Touch your YubiKey (serial 35000001, slot 9c)…"),
        "{err}"
    );
    let signature: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(signature["keyid"], key.key_id.as_str());
    // In the stream, the prompt comes before the signature.
    let (events, r) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    assert_eq!(touch_events(&events).len(), 1);
    assert_verifies(&key, &targets_payload(2), &r.unwrap());

    card.set_touch(TouchMode::Never);
    card.set_touch_timeout(Duration::from_millis(300));
    let tries = card.pin_tries_left();
    let err = failed(notaryctl(&daemon, &args, &[]));
    assert!(err.contains("touch timed out"), "{err}");
    assert!(!err.contains("wrong PIN"), "{err}");
    assert_eq!(card.pin_tries_left(), tries);
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(3)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::TouchTimeout));

    // notaryctl key generate: locked card, so the PIN comes from the file on
    // the second attempt; the touch for the slot certificate is announced.
    card.set_touch(TouchMode::Immediate);
    ok(notaryctl(&daemon, &["key", "lock", "--backend", "yk"], &[]));
    let (out, err) = ok(notaryctl(
        &daemon,
        &[
            "key",
            "generate",
            "--backend",
            "yk",
            "--slot",
            "84",
            "--pin-policy",
            "once",
            "--touch-policy",
            "always",
            "--role",
            "targets",
            "--gun",
            GUN,
            "--pin-file",
            &pin,
        ],
        &[],
    ));
    assert!(
        err.contains("Touch your YubiKey (serial 35000001) when it blinks"),
        "{err}"
    );
    assert!(
        err.contains("URI: yubikey:serial=35000001;slot=84"),
        "{err}"
    );
    assert_eq!(card.slot_key(0x84), Some((0x11, 2, 2)));
    assert!(!out.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_removed_and_inserted_again_signs_without_a_daemon_restart() {
    let (card, mut daemon, mut client) = ready_card(Profile::yubikey_5_7(36_000_001)).await;
    let key = generate(&mut client, CardKey::in_slot("83")).await;
    card.remove().unwrap();
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(1),
        SignAs::default().pin(PIN),
    )
    .await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::BackendUnavailable));
    card.reinsert().unwrap();
    // The card forgot its PIN with the re-insertion: the daemon asks again.
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(3),
        SignAs::default().pin(PIN),
    )
    .await;
    assert_verifies(&key, &targets_payload(3), &r.unwrap());
    // The same process served before and after: no restart, no crash.
    assert!(
        daemon.is_running(),
        "notary-keyd exited:\n{}",
        daemon.log_text()
    );
}

fn wait_for_log(daemon: &Daemon, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.log_text().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn released_on_sighup_another_client_uses_the_card_and_the_next_sign_reopens_it() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_7(37_000_001)).await;
    let key = generate(&mut client, CardKey::in_slot("9a")).await;
    // The daemon holds the card with the PIN verified ("PIN once").
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    assert_verifies(&key, &targets_payload(1), &r.unwrap());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for_log(&daemon, "device released (SIGHUP)", 1);

    // Another PC/SC client: the card is free of the daemon's session (a
    // signature needs the PIN again) and usable.
    let serial = card.serial();
    tokio::task::spawn_blocking(move || {
        let mut yk = yubikey::YubiKey::open_by_serial(yubikey::Serial(serial)).unwrap();
        let digest = [7u8; 32];
        let slot = yubikey::piv::SlotId::Authentication;
        let alg = yubikey::piv::AlgorithmId::EccP256;
        assert!(yubikey::piv::sign_data(&mut yk, &digest, alg, slot).is_err());
        yk.verify_pin(PIN.as_bytes()).unwrap();
        yubikey::piv::sign_data(&mut yk, &digest, alg, slot).unwrap();
    })
    .await
    .unwrap();

    // The daemon opens it again for the next signature (PIN needed again).
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(2),
        SignAs::default().pin(PIN),
    )
    .await;
    assert_verifies(&key, &targets_payload(2), &r.unwrap());
    wait_for_log(&daemon, "YubiKey opened", 2);
    // The same through the API, for notaryctl users.
    let (_, err) = ok(notaryctl(&daemon, &["yubikey", "release"], &[]));
    assert!(err.contains("Released yk"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn root_key_holds_its_notary_root_certificate_and_attests() {
    let (card, daemon, mut client) = ready_card(Profile::yubikey_5_7(38_000_001)).await;
    let root = generate(
        &mut client,
        CardKey::in_slot("9c")
            .touch_policy(pb::TouchPolicy::Always)
            .role("root"),
    )
    .await;
    let (out, _) = ok(notaryctl(
        &daemon,
        &["key", "cert", "issue-root", &root.key_id, "--gun", GUN],
        &[],
    ));
    assert!(out.contains("BEGIN CERTIFICATE"), "{out}");
    let issued = client
        .get_key(pb::GetKeyRequest {
            key: root.key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!issued.x509_key_id.is_empty());
    // The certificate lives on the card: another machine sees the x509 ID.
    let other = start(card.serial());
    let mut other_client = self::client(&other).await;
    let seen = other_client
        .get_key(pb::GetKeyRequest {
            key: issued.x509_key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.key_id, root.key_id);
    drop(other_client);
    drop(other);
    // Root metadata signs under the x509 ID.
    // (The other daemon's opening SELECTed the card: the PIN is needed again.)
    let (_, r) = sign_as(
        &mut client,
        &issued.x509_key_id,
        root_payload(),
        SignAs::default().role("root").gun(GUN).pin(PIN),
    )
    .await;
    let r = r.unwrap();
    assert_eq!(r.key_id, issued.x509_key_id);
    assert_verifies(&root, &root_payload(), &r);

    // Attestation: slot certificate for this key, then the intermediate;
    // the chain verifies against the virtual card's attestation root.
    let (pem, _) = ok(notaryctl(&daemon, &["key", "attest", &root.key_id], &[]));
    let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert_eq!(blocks.len(), 2, "{pem}");
    let dir = tempfile::tempdir().unwrap();
    let slot = write(dir.path(), "slot.pem", blocks[0].trim());
    let intermediate = write(dir.path(), "intermediate.pem", blocks[1].trim());
    let root_ca = write(
        dir.path(),
        "root.pem",
        notary_tuf::pem::encode("CERTIFICATE", &virtual_piv::root_certificate_der()).trim(),
    );
    let verified = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            &root_ca,
            "-untrusted",
            &intermediate,
            &slot,
        ])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Manual check on a real YubiKey (see docs/yubikey.md): set
/// NOTARY_TEST_YUBIKEY_SERIAL to its serial and NOTARY_KEYD_PIN to its PIN
/// (it must be set up already), then run
/// `cargo test -p softhsm-tests --test yubikey real_yubikey -- --ignored`.
/// It generates a key in slot 95 (override with NOTARY_TEST_YUBIKEY_SLOT;
/// the slot must be empty) with touch always: touch the key when it blinks.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real YubiKey: set NOTARY_TEST_YUBIKEY_SERIAL and NOTARY_KEYD_PIN"]
async fn real_yubikey() {
    let serial: u32 = std::env::var("NOTARY_TEST_YUBIKEY_SERIAL")
        .expect("NOTARY_TEST_YUBIKEY_SERIAL")
        .parse()
        .expect("a serial number");
    let pin = std::env::var("NOTARY_KEYD_PIN").expect("NOTARY_KEYD_PIN");
    let slot = std::env::var("NOTARY_TEST_YUBIKEY_SLOT").unwrap_or_else(|_| "95".into());
    let slot = pb::PivSlot::from_id(u8::from_str_radix(&slot, 16).expect("a hex slot"))
        .expect("a PIV slot for notary keys");
    let daemon = start(serial);
    let (out, _) = ok(notaryctl(&daemon, &["yubikey", "status"], &[]));
    println!("{out}");
    let mut client = client(&daemon).await;
    let key = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            gun: GUN.into(),
            slot: slot as i32,
            pin: pin.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    println!("generated {} at {}", key.key_id, key.uri);
    let (events, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(1),
        SignAs::default().pin(&pin),
    )
    .await;
    assert_eq!(touch_events(&events).len(), 1);
    assert_verifies(&key, &targets_payload(1), &r.unwrap());
    let (pem, _) = ok(notaryctl(&daemon, &["key", "attest", &key.key_id], &[]));
    println!("{pem}");
}
