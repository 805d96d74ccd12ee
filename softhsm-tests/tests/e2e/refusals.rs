//! Bad requests, locked tokens, missing devices and a broken audit log: each
//! gets a distinct status naming the problem, and the daemon keeps serving.

use crate::common;

use common::*;
use keyd_proto::keyd as pb;
use softhsm_tests::{connect, Rule, SoftHsm, TestDaemon};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_checks_and_bad_requests() {
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(
        &mut client,
        NewKey::on("soft").role("targets").gun("example.com/app"),
    )
    .await;

    // A targets key never signs a Root.
    let (_, r) = sign(&mut client, &key.key_id, root_payload()).await;
    let st = r.unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert_eq!(reason(&st), Some(Reason::PayloadType));
    // Nor for another role or GUN.
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(1),
        SignAs::default().role("snapshot"),
    )
    .await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::RoleMismatch));
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(1),
        SignAs::default().gun("other.org/x"),
    )
    .await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::GunMismatch));
    // Non-metadata and non-canonical payloads need sign-raw, which nobody has.
    let (_, r) = sign(&mut client, &key.key_id, b"just bytes".to_vec()).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::PayloadType));
    let spaced = br#"{ "_type": "Targets" }"#.to_vec();
    let (_, r) = sign(&mut client, &key.key_id, spaced).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::PayloadType));
    // Unknown key, empty request, bad role.
    let (_, r) = sign(&mut client, &"0".repeat(64), targets_payload(1)).await;
    let st = r.unwrap_err();
    assert_eq!(st.code(), Code::NotFound);
    assert!(st.message().contains("no key"), "{st:?}");
    let (_, r) = sign(&mut client, "", Vec::new()).await;
    assert_eq!(r.unwrap_err().code(), Code::InvalidArgument);
    let unbound = generate(
        &mut client,
        NewKey::on("soft").algorithm(Algorithm::Ed25519),
    )
    .await;
    let (_, r) = sign_as(
        &mut client,
        &unbound.key_id,
        targets_payload(1),
        SignAs::default().role("Targets/Bad"),
    )
    .await;
    assert_eq!(r.unwrap_err().code(), Code::InvalidArgument);
    // Bad generate requests.
    let st = client
        .generate_key(pb::GenerateKeyRequest {
            algorithm: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("unknown algorithm"), "{st:?}");
    let st = client
        .generate_key(pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            backend: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(st.message().contains("no backend named"), "{st:?}");
    // Delete needs the confirmation.
    let st = client
        .delete_key(pb::DeleteKeyRequest {
            key_id: key.key_id.clone(),
            confirm_key_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);

    // The daemon still serves, the key is intact and signs what it should.
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    r.unwrap();

    // Every decision is in the audit log, refusals included, payload only
    // as a digest.
    let audit = daemon.audit_lines();
    let denied: Vec<_> = audit.iter().filter(|l| l["allowed"] == false).collect();
    assert!(denied.len() >= 8, "{audit:#?}");
    let root_refusal = denied
        .iter()
        .find(|l| {
            l["key_id"] == key.key_id.as_str()
                && l["result"].as_str().unwrap_or("").contains("Root")
        })
        .expect("audit line for the refused Root signature");
    assert_eq!(root_refusal["operation"], "sign");
    assert_eq!(root_refusal["payload_sha256"].as_str().unwrap().len(), 64);
    assert!(root_refusal["uid"].is_u64());
    assert!(!daemon.audit_text().contains("consistent_snapshot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_signing_needs_an_explicit_rule() {
    let uid = nix::unistd::geteuid().as_raw();
    let tmp = tempfile::tempdir().unwrap();
    let raw_dir = tmp.path().join("raw");
    let daemon = TestDaemon::new()
        .soft("soft")
        .toml(&format!(
            "[[backend]]\nname = \"raw\"\ntype = \"soft\"\ndir = \"{}\"\n",
            raw_dir.display()
        ))
        .policy(
            Rule::uids(&[uid])
                .allow(&["sign-raw"])
                .keys(&["backend:raw"]),
        )
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let plain = generate(
        &mut client,
        NewKey::on("soft").algorithm(Algorithm::Ed25519),
    )
    .await;
    let (_, r) = sign(&mut client, &plain.key_id, b"bytes".to_vec()).await;
    assert_eq!(
        reason(&r.unwrap_err()),
        Some(Reason::PayloadType),
        "even the daemon's own uid needs a rule"
    );
    let raw = generate(&mut client, NewKey::on("raw").algorithm(Algorithm::Ed25519)).await;
    let (_, r) = sign(&mut client, &raw.key_id, b"bytes".to_vec()).await;
    let result = r.unwrap();
    softhsm_tests::openssl_verify(
        &raw.keytype,
        &raw.public,
        method_of(&result),
        b"bytes",
        &result.signature,
    )
    .unwrap();
    assert!(daemon
        .audit_lines()
        .iter()
        .any(|l| l["operation"] == "sign-raw" && l["allowed"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_and_the_daemon_keeps_serving() {
    let daemon = TestDaemon::new()
        .server("max_message_bytes = 65536")
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    let big = vec![b'x'; 200_000];
    let (_, r) = sign(&mut client, &key.key_id, big).await;
    let st = r.unwrap_err();
    assert!(
        matches!(st.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{st:?}"
    );
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_module_or_token_leaves_the_keystore_working() {
    let hsm = SoftHsm::new("present", "1234").unwrap();
    let absent_token = hsm
        .backend_toml("hsm")
        .unwrap()
        .replace("token = \"present\"", "token = \"absent\"");
    let daemon = TestDaemon::new()
        .soft("soft")
        .toml(
            "[[backend]]\nname = \"gone\"\ntype = \"pkcs11\"\nmodule = \"/nonexistent/libpkcs11.so\"\ntoken = \"x\"\npin = \"prompt\"\n",
        )
        .toml(&absent_token)
        .env("SOFTHSM2_CONF", hsm.conf().to_str().unwrap())
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let backends = backends(&mut client).await;
    let by_name = |n: &str| backends.iter().find(|b| b.name == n).unwrap().clone();
    let gone = by_name("gone");
    assert!(!gone.available);
    assert!(
        gone.unavailable_reason
            .contains("/nonexistent/libpkcs11.so"),
        "{gone:?}"
    );
    let hsm_backend = by_name("hsm");
    assert!(!hsm_backend.available);
    assert!(
        hsm_backend.unavailable_reason.contains("absent"),
        "{hsm_backend:?}"
    );
    assert!(
        hsm_backend.unavailable_reason.contains("present"),
        "lists tokens present: {hsm_backend:?}"
    );
    assert!(by_name("soft").available);

    let st = client
        .generate_key(pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            backend: "gone".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable, "{st:?}");
    let key = generate(&mut client, NewKey::on("soft").role("targets")).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_prompt_mode_wrong_pin_and_lock() {
    let hsm = SoftHsm::new("prompted", "4321").unwrap();
    let daemon = TestDaemon::new()
        .locked_softhsm(&hsm, "hsm", "")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    // Locked: generating needs a login.
    let st = client
        .generate_key(pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&st), Some(Reason::LoginRequired), "{st:?}");

    // A wrong PIN is reported with what the token says about tries left.
    let st = client
        .unlock(pb::UnlockRequest {
            backend: "hsm".into(),
            pin: "0000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unauthenticated, "{st:?}");
    assert_eq!(reason(&st), Some(Reason::WrongPin));
    // Typed facts, not message text: the backend, and tries when SoftHSM says.
    let failure = Failure::of(&st).expect("a keyd failure");
    assert_eq!(failure.backend.as_deref(), Some("hsm"), "{st:?}");
    assert!(
        st.message().to_lowercase().contains("tr"),
        "mentions tries: {st:?}"
    );

    client
        .unlock(pb::UnlockRequest {
            backend: "hsm".into(),
            pin: "4321".into(),
        })
        .await
        .unwrap();
    let key = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let (_, r) = sign(&mut client, &key.key_id, targets_payload(1)).await;
    r.unwrap();

    client
        .lock(pb::LockRequest {
            backend: "hsm".into(),
        })
        .await
        .unwrap();
    let (events, r) = sign(&mut client, &key.key_id, targets_payload(2)).await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::LoginRequired));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, pb::progress::Kind::PinNeeded(p) if p.backend == "hsm")),
        "PIN needed event: {events:?}"
    );
    // A PIN sent with the request works for that request.
    let (_, r) = sign_as(
        &mut client,
        &key.key_id,
        targets_payload(3),
        SignAs::default().pin("4321"),
    )
    .await;
    r.unwrap();

    // Exactly one wrong-PIN attempt reached the token: the daemon never
    // retried it.
    let wrong = daemon
        .audit_lines()
        .iter()
        .filter(|l| l["operation"] == "unlock" && l["allowed"] == false)
        .count();
    assert_eq!(wrong, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_configured_pin_marks_backend_unavailable() {
    let hsm = SoftHsm::new("wrongpin", "1111").unwrap();
    let pins = tempfile::tempdir().unwrap();
    let wrong = pins.path().join("hsm.pin");
    softhsm_tests::write_secret(&wrong, "2222\n").unwrap();
    let daemon = TestDaemon::new()
        .softhsm_pin(
            &hsm,
            "hsm",
            &format!("{{ file = \"{}\" }}", wrong.display()),
        )
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let backends = backends(&mut client).await;
    let hsm_backend = backends.iter().find(|b| b.name == "hsm").unwrap();
    assert!(!hsm_backend.available);
    assert!(
        hsm_backend.unavailable_reason.contains("PIN"),
        "{hsm_backend:?}"
    );
    assert!(
        !daemon.log_text().contains("2222"),
        "the PIN must never be logged"
    );
}

/// Caller text is bounded and checked before it is logged or audited: a
/// huge key name costs the audit log one short line, and a GUN that could
/// forge log lines is refused (security review findings 9 and 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_unprintable_caller_text_is_refused_before_the_audit_log() {
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let huge = format!("soft:{}", "\u{1}".repeat(1 << 20));
    let (_, r) = sign(&mut client, &huge, targets_payload(1)).await;
    let st = r.unwrap_err();
    assert_eq!(reason(&st), Some(Reason::InvalidArgument), "{st:?}");
    assert!(st.message().len() < 300, "{}", st.message().len());
    let (_, r) = sign(&mut client, "abc", targets_payload(1)).await;
    assert!(r.unwrap_err().message().contains("neither a key ID"));

    let st = client
        .generate_key(pb::GenerateKeyRequest {
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            gun: "example.com/x\n<3>notary-keyd: forged".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&st), Some(Reason::InvalidArgument), "{st:?}");
    assert!(st.message().contains("control character"), "{st:?}");
    let st = client
        .generate_key(pb::GenerateKeyRequest {
            gun: "a".repeat(256),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(st.message().contains("at most 255"), "{st:?}");
    let st = client
        .generate_key(pb::GenerateKeyRequest {
            label: "x".repeat(300),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(st.message().contains("label"), "{st:?}");

    // Every refusal is in the log, each line short, none made a key.
    let audit = daemon.audit_lines();
    assert_eq!(audit.len(), 5, "{audit:?}");
    for line in &audit {
        assert_eq!(line["allowed"], false, "{line}");
        assert!(line.to_string().len() < 1024, "{line}");
        assert!(line.get("gun").is_none(), "{line}");
    }
    assert!(client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys
        .is_empty());
}
