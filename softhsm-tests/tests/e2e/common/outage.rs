//! One device fails while a client signs on the software keystore: the
//! cycle the fault tests of faults_backends.rs and faults_pcscd.rs share.

use super::{generate, sign, targets_payload, NewKey};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::faults::{wait_backend, SignLoop};
use softhsm_tests::{connect, Daemon};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// How long a device may take to be noticed gone or back (a safety net
/// against hangs, not a measured time).
const LIMIT: Duration = Duration::from_secs(90);

async fn sign_with(
    client: &mut KeydClient<Channel>,
    key: &pb::Key,
    version: u32,
) -> Result<(), tonic::Status> {
    let payload = targets_payload(version);
    let (_, result) = sign(client, &key.key_id, payload.clone()).await;
    let r = result?;
    let public = notary_tuf::PublicKey::new(key.keytype.parse().unwrap(), key.public.clone());
    notary_tuf::verify(
        &public,
        r.method().notary().unwrap(),
        &payload,
        &r.signature,
    )
    .unwrap_or_else(|e| panic!("a signature by {} does not verify: {e}", key.key_id));
    Ok(())
}

/// Signs with `key` until the outcome is `ok` (or not); every refusal on
/// the way must be "unavailable". Returns the last refusal.
async fn until_signing_is(
    client: &mut KeydClient<Channel>,
    key: &pb::Key,
    ok: bool,
) -> Option<tonic::Status> {
    let deadline = Instant::now() + LIMIT;
    let mut version = 1000;
    loop {
        version += 1;
        let outcome = sign_with(client, key, version).await;
        if let Err(status) = &outcome {
            assert_eq!(
                status.code(),
                tonic::Code::Unavailable,
                "a broken device must make its requests unavailable: {status:?}"
            );
        }
        if outcome.is_ok() == ok {
            return outcome.err();
        }
        assert!(
            Instant::now() < deadline,
            "signing with {} never became ok={ok}",
            key.key_id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Breaks the device behind `broken` (on `backend`) with `fail`, repairs it
/// with `repair`, and checks everything the file's header promises. The
/// reason shown meanwhile must contain one of `reason_has`.
pub(crate) async fn outage(
    daemon: &mut Daemon,
    backend: &str,
    broken: &pb::Key,
    healthy: &pb::Key,
    reason_has: &[&str],
    fail: impl FnOnce(),
    repair: impl FnOnce(),
) {
    let pid = daemon.pid();
    let signer = SignLoop::start(&daemon.socket, healthy).await.unwrap();
    signer.serves(5, LIMIT).await.unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    sign_with(&mut client, broken, 1).await.unwrap();

    fail();
    let refused = until_signing_is(&mut client, broken, false).await;
    let reason = wait_backend(daemon, backend, false, LIMIT).await.unwrap();
    eprintln!("backend {backend} unavailable: {reason}");
    assert!(
        reason_has.iter().any(|r| reason.contains(r)),
        "backend list gives no reason naming the fault: {reason:?} (the request said {refused:?})"
    );
    // The other backend serves while this one is down.
    signer.serves(20, LIMIT).await.unwrap();

    repair();
    until_signing_is(&mut client, broken, true).await;
    wait_backend(daemon, backend, true, LIMIT).await.unwrap();
    assert!(
        daemon.is_running(),
        "the daemon died:\n{}",
        daemon.log_text()
    );
    assert_eq!(daemon.pid(), pid, "the daemon was restarted");
    let signed = signer.stop().await.unwrap();
    assert!(
        signed >= 25,
        "only {signed} signatures on the healthy backend"
    );
}

/// Sets a YubiKey up and makes a key in slot 9a that signs with neither
/// PIN nor touch, bound to role targets.
pub(crate) async fn card_key(
    client: &mut KeydClient<Channel>,
    backend: &str,
    serial: u32,
) -> pb::Key {
    client
        .yubikey_setup(pb::YubiKeySetupRequest {
            serial,
            current_pin: "123456".into(),
            new_pin: "24681357".into(),
            current_puk: "12345678".into(),
            new_puk: "13572468".into(),
            force: false,
        })
        .await
        .unwrap();
    client
        .generate_key(pb::GenerateKeyRequest {
            backend: backend.into(),
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            role: pb::KeyRole::Targets as i32,
            slot: pb::PivSlot::Authentication as i32,
            pin_policy: pb::PinPolicy::Never as i32,
            touch_policy: pb::TouchPolicy::Never as i32,
            pin: "24681357".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// A key on the software keystore bound to role targets.
pub(crate) async fn soft_key(client: &mut KeydClient<Channel>) -> pb::Key {
    generate(client, NewKey::on("soft").role("targets")).await
}
