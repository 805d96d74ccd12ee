//! The TPM backend through the real daemon against a real swtpm: every
//! algorithm signs and verifies (RSA-PSS with notary's salt length),
//! Ed25519 is refused, keys survive daemon and TPM restarts, a wrong auth
//! value is refused once and never retried, lockout is reported with its
//! duration, and a TPM that vanishes comes back without a daemon restart.

use crate::common;

use common::*;
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::{connect, openssl_verify, Daemon, Swtpm, TestDaemon};
use std::path::{Path, PathBuf};
use tonic::transport::Channel;
use tonic::Code;

const GUN: &str = "example.com/app";

fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    softhsm_tests::write_secret(&path, &format!("{value}\n")).unwrap();
    path
}

/// Checks `result` with the notary verifier against `key`.
fn verify(key: &pb::Key, payload: &[u8], result: &pb::SignResult) {
    let public = notary_tuf::PublicKey::new(key.keytype.parse().unwrap(), key.public.clone());
    let method = result.method().notary().unwrap();
    notary_tuf::verify(&public, method, payload, &result.signature)
        .unwrap_or_else(|e| panic!("notary verifier rejects {}: {e}", key.algorithm().word()));
    openssl_verify(
        &key.keytype,
        &key.public,
        method_of(result),
        payload,
        &result.signature,
    )
    .unwrap();
}

async fn sign_ok(client: &mut KeydClient<Channel>, key: &pb::Key, version: u32) {
    let payload = targets_payload(version);
    let (_, result) = sign_as(
        client,
        &key.key_id,
        payload.clone(),
        SignAs::default().targets(GUN),
    )
    .await;
    let result = result.unwrap_or_else(|s| panic!("sign with {}: {s:?}", key.algorithm));
    verify(key, &payload, &result);
}

/// Signs until the daemon has reconnected to the TPM. Each failed try must
/// say the TPM is unavailable; the daemon reconnects on the next request or
/// within its idle retry interval, so a bounded number of tries suffices.
async fn sign_after_reconnect(client: &mut KeydClient<Channel>, key: &pb::Key) {
    for version in 100..400 {
        let payload = targets_payload(version);
        let (_, result) = sign_as(
            client,
            &key.key_id,
            payload.clone(),
            SignAs::default().targets(GUN),
        )
        .await;
        match result {
            Ok(r) => return verify(key, &payload, &r),
            Err(s) => {
                assert_eq!(s.code(), Code::Unavailable, "{s:?}");
                assert!(s.message().contains("TPM unavailable"), "{s:?}");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the daemon never reconnected to the TPM");
}

/// Signs expecting a refusal; returns the status.
async fn sign_refused(
    client: &mut KeydClient<Channel>,
    key: &pb::Key,
    version: u32,
) -> tonic::Status {
    let payload = targets_payload(version);
    let (_, result) = sign_as(client, &key.key_id, payload, SignAs::default().targets(GUN)).await;
    match result {
        Ok(r) => panic!("signing with {} succeeded: {r:?}", key.key_id),
        Err(s) => s,
    }
}

/// Restarts the daemon after writing `value` into the secret file `name`.
async fn restart_with_secret(
    daemon: &mut Daemon,
    dir: &Path,
    name: &str,
    value: &str,
) -> KeydClient<Channel> {
    daemon.stop().unwrap();
    write_secret(dir, name, value);
    daemon.restart().unwrap();
    connect(&daemon.socket).await.unwrap()
}

fn lockout_counter(tpm: &Swtpm) -> u32 {
    let out = tpm.tool(&["tpm2_getcap", "properties-variable"]).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("TPM2_PT_LOCKOUT_COUNTER"))
        .unwrap_or_else(|| panic!("no lockout counter in {out}"));
    let hex = line.rsplit("0x").next().unwrap().trim();
    u32::from_str_radix(hex, 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_signs_and_ed25519_is_refused() {
    let tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("tpm key auth").unwrap();
    let daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    for (i, (alg, curve, bits)) in [
        ("ecdsa", "p256", 0),
        ("ecdsa", "p384", 0),
        ("rsa", "", 2048),
        ("rsa", "", 3072),
    ]
    .into_iter()
    .enumerate()
    {
        let key = generate(
            &mut client,
            NewKey::on("tpm")
                .algorithm(algorithm(alg, curve, bits))
                .targets(GUN),
        )
        .await;
        assert!(key.uri.starts_with("tpm:id="), "{key:?}");
        assert_eq!(key.backend, "tpm");
        sign_ok(&mut client, &key, u32::try_from(i).unwrap() + 1).await;
    }

    let refused = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "tpm".into(),
            algorithm: pb::Algorithm::Ed25519 as i32,
            role: pb::KeyRole::Targets as i32,
            gun: GUN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("TPM 2.0 has no EdDSA"),
        "{refused:?}"
    );
    let listed = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.keys.len(), 4, "the refused key left nothing behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_daemon_and_swtpm_restarts() {
    let mut tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("restart auth").unwrap();
    let mut daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let ec = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;
    let rsa = generate(
        &mut client,
        NewKey::on("tpm").algorithm(Algorithm::Rsa2048).targets(GUN),
    )
    .await;
    sign_ok(&mut client, &ec, 1).await;

    // The blobs are in the daemon's state directory, not in TPM NV.
    let blobs = std::fs::read_dir(daemon.state_dir.join("tpm-tpm"))
        .unwrap()
        .count();
    // Two keys, and the audit key: made in the TPM when there is one.
    assert_eq!(blobs, 3);

    daemon.restart().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let ids = |keys: Vec<pb::Key>| {
        let mut ids: Vec<String> = keys.into_iter().map(|k| k.key_id).collect();
        ids.sort();
        ids
    };
    let mut expected = vec![ec.key_id.clone(), rsa.key_id.clone()];
    expected.sort();
    let listed = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(listed.keys), expected);
    sign_ok(&mut client, &ec, 2).await;
    sign_ok(&mut client, &rsa, 3).await;

    // swtpm restarted with the same state: the daemon notices on its own.
    tpm.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    tpm.start_again().unwrap();
    sign_after_reconnect(&mut client, &ec).await;
    sign_ok(&mut client, &rsa, 4).await;
    let listed = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(listed.keys), expected);
    // The same process served before and after: no restart, no crash.
    assert!(
        daemon.is_running(),
        "notary-keyd exited:\n{}",
        daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_auth_is_refused_once_and_never_retried() {
    let tpm = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = write_secret(dir.path(), "key.auth", "the right auth");
    let mut daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;
    sign_ok(&mut client, &key, 1).await;

    daemon.stop().unwrap();
    assert_eq!(lockout_counter(&tpm), 0);
    write_secret(dir.path(), "key.auth", "a wrong auth");
    daemon.restart().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    let first = sign_refused(&mut client, &key, 2).await;
    assert_eq!(first.code(), Code::Unauthenticated, "{first:?}");
    assert_eq!(reason(&first), Some(Reason::WrongAuth));
    assert!(
        first.message().contains("rejected the key's auth value"),
        "{first:?}"
    );
    assert!(first.message().contains("not retried"), "{first:?}");
    assert_eq!(tries_left(&first), Some(2));

    // The backend stops using the refused value: the next request does not
    // reach the TPM's auth check at all.
    let second = sign_refused(&mut client, &key, 3).await;
    assert_eq!(second.code(), Code::Unavailable, "{second:?}");
    assert!(second.message().contains("fix key_auth"), "{second:?}");

    // Exactly one failed authorization reached the TPM.
    daemon.stop().unwrap();
    assert_eq!(lockout_counter(&tpm), 1);

    // The key itself is intact: the right auth signs again.
    write_secret(dir.path(), "key.auth", "the right auth");
    daemon.restart().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    sign_ok(&mut client, &key, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_is_reported_with_its_duration() {
    let tpm = Swtpm::start().unwrap();
    // One failure locks DA-protected keys for 120 s (the lockout auth is
    // empty on a fresh TPM).
    tpm.tool(&[
        "tpm2_dictionarylockout",
        "--setup-parameters",
        "--max-tries=1",
        "--recovery-time=120",
        "--lockout-recovery-time=120",
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = write_secret(dir.path(), "key.auth", "the right auth");
    let mut daemon = TestDaemon::new().tpm(&tpm, "tpm", &auth).start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;

    let mut client = restart_with_secret(&mut daemon, dir.path(), "key.auth", "a wrong auth").await;
    let wrong = sign_refused(&mut client, &key, 1).await;
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");

    // Even the right value is now refused by the TPM, and the daemon says
    // why and for how long instead of burning more tries.
    let mut client =
        restart_with_secret(&mut daemon, dir.path(), "key.auth", "the right auth").await;
    let locked = sign_refused(&mut client, &key, 2).await;
    assert_eq!(locked.code(), Code::FailedPrecondition, "{locked:?}");
    assert_eq!(reason(&locked), Some(Reason::AuthLockout));
    assert!(
        locked.message().contains("dictionary-attack lockout"),
        "{locked:?}"
    );
    assert!(locked.message().contains("about 120 s"), "{locked:?}");
    daemon.stop().unwrap();
    assert_eq!(lockout_counter(&tpm), 1, "the lockout answer cost no try");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swtpm_killed_mid_run_then_back_without_daemon_restart() {
    let mut tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("vanishing auth").unwrap();
    let mut daemon = TestDaemon::new()
        .tpm(&tpm, "tpm", &auth)
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let tpm_key = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;
    let soft_key = generate(&mut client, NewKey::on("soft").targets(GUN)).await;
    sign_ok(&mut client, &tpm_key, 1).await;

    tpm.kill().unwrap();
    let gone = sign_refused(&mut client, &tpm_key, 2).await;
    assert_eq!(gone.code(), Code::Unavailable, "{gone:?}");
    assert!(gone.message().contains("TPM unavailable"), "{gone:?}");
    let backends = client
        .list_backends(pb::ListBackendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let tpm_status = backends.backends.iter().find(|b| b.name == "tpm").unwrap();
    assert!(!tpm_status.available, "{tpm_status:?}");
    assert!(
        tpm_status.unavailable_reason.contains("TPM unavailable"),
        "{tpm_status:?}"
    );
    // The other backend is unaffected.
    sign_ok(&mut client, &soft_key, 3).await;

    tpm.start_again().unwrap();
    sign_after_reconnect(&mut client, &tpm_key).await;
    // The same process served before and after: no restart, no crash.
    assert!(
        daemon.is_running(),
        "notary-keyd exited:\n{}",
        daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_auth_opens_the_owner_hierarchy_and_a_wrong_one_is_reported() {
    let tpm = Swtpm::start().unwrap();
    tpm.tool(&["tpm2_changeauth", "-c", "owner", "owner secret"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = write_secret(dir.path(), "key.auth", "key secret");
    let owner = write_secret(dir.path(), "owner.auth", "owner secret");
    let owner_auth = format!("owner_auth = {{ file = \"{}\" }}\n", owner.display());
    let mut daemon = TestDaemon::new()
        .tpm_with(&tpm, "tpm", &auth, &owner_auth)
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(
        &mut client,
        NewKey::on("tpm")
            .algorithm(Algorithm::EcdsaP384)
            .targets(GUN),
    )
    .await;
    sign_ok(&mut client, &key, 1).await;

    let mut client = restart_with_secret(
        &mut daemon,
        dir.path(),
        "owner.auth",
        "not the owner secret",
    )
    .await;
    let backends = client
        .list_backends(pb::ListBackendsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let tpm_status = backends.backends.iter().find(|b| b.name == "tpm").unwrap();
    assert!(!tpm_status.available, "{tpm_status:?}");
    assert!(
        tpm_status
            .unavailable_reason
            .contains("rejected the configured owner_auth"),
        "{tpm_status:?}"
    );
    assert!(
        !daemon.log_text().contains("owner secret"),
        "auth values are never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_from_keeps_new_keys_at_persistent_handles() {
    let tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("persistent auth").unwrap();
    let mut daemon = TestDaemon::new()
        .tpm_with(&tpm, "tpm", &auth, "persist_from = 0x81010100\n")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let first = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;
    let second = generate(
        &mut client,
        NewKey::on("tpm")
            .algorithm(Algorithm::EcdsaP384)
            .targets(GUN),
    )
    .await;
    sign_ok(&mut client, &first, 1).await;
    sign_ok(&mut client, &second, 2).await;

    daemon.stop().unwrap();
    let handles = tpm.tool(&["tpm2_getcap", "handles-persistent"]).unwrap();
    assert!(handles.contains("0x81010100"), "{handles}");
    assert!(handles.contains("0x81010101"), "{handles}");

    // After a restart the keys are used from their handles.
    daemon.restart().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    sign_ok(&mut client, &first, 3).await;
    sign_ok(&mut client, &second, 4).await;

    // Deleting a key evicts it from its handle.
    client
        .delete_key(pb::DeleteKeyRequest {
            key_id: first.key_id.clone(),
            confirm_key_id: first.key_id.clone(),
        })
        .await
        .unwrap();
    sign_ok(&mut client, &second, 5).await;
    daemon.stop().unwrap();
    let handles = tpm.tool(&["tpm2_getcap", "handles-persistent"]).unwrap();
    // The audit key, made at the first start, took 0x81010100.
    assert!(handles.contains("0x81010100"), "{handles}");
    assert!(!handles.contains("0x81010101"), "{handles}");
    assert!(handles.contains("0x81010102"), "{handles}");
}
