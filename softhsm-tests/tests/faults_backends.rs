//! One device fails while the others keep serving: swtpm killed and
//! started again, the virtual YubiKey pulled out and put back, the SoftHSM
//! token directory made unreadable. Throughout, a client signs on the
//! software keystore without a single failure; the broken backend's
//! requests are refused as unavailable, `notaryctl backend list` shows it
//! unavailable with the reason, and it serves again once repaired, in the
//! same daemon process. (pcscd killed and restarted: faults_pcscd.rs.)

mod common;

use common::{generate, sign, targets_payload};
use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use softhsm_tests::faults::{wait_backend, SignLoop};
use softhsm_tests::{connect, write_secret, Daemon, SoftHsm, Swtpm};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use virtual_piv::{Profile, TestCard};

/// How long a device may take to be noticed gone or back (a safety net
/// against hangs, not a measured time).
const LIMIT: Duration = Duration::from_secs(90);
const SOFT: &str = "[[backend]]\nname = \"soft\"\ntype = \"soft\"\n";

async fn sign_with(
    client: &mut KeydClient<Channel>,
    key: &pb::Key,
    version: u32,
) -> Result<(), tonic::Status> {
    let payload = targets_payload(version);
    let (_, result) = sign(client, &key.key_id, payload.clone(), "", "", "").await;
    let r = result?;
    let public = notary_tuf::PublicKey::new(key.keytype.parse().unwrap(), key.public.clone());
    notary_tuf::verify(&public, r.method.parse().unwrap(), &payload, &r.signature)
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
async fn outage(
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

#[tokio::test(flavor = "multi_thread")]
async fn swtpm_killed_and_started_again() {
    let mut tpm = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("key.auth");
    write_secret(&auth, "tpm key auth\n").unwrap();
    let config = format!("{}\n{SOFT}", tpm.backend_toml("tpm", &auth));
    let mut daemon = Daemon::start(&config, &[]).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_tpm = generate(&mut client, "tpm", "ecdsa", "p256", 0, "targets", "").await;
    let on_soft = generate(&mut client, "soft", "ecdsa", "p256", 0, "targets", "").await;
    let tpm = std::cell::RefCell::new(&mut tpm);
    outage(
        &mut daemon,
        "tpm",
        &on_tpm,
        &on_soft,
        &["TPM unavailable"],
        || tpm.borrow_mut().kill().unwrap(),
        || tpm.borrow_mut().start_again().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_yubikey_pulled_out_and_put_back() {
    let card = TestCard::start(Profile::yubikey_5_7(7_160_001)).unwrap();
    let config = format!(
        "[[backend]]\nname = \"yk\"\ntype = \"yubikey\"\nserial = {}\n\n{SOFT}",
        card.serial()
    );
    let mut daemon = Daemon::start(&config, &[]).unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    client
        .yubikey_setup(pb::YubiKeySetupRequest {
            serial: card.serial(),
            current_pin: "123456".into(),
            new_pin: "24681357".into(),
            current_puk: "12345678".into(),
            new_puk: "13572468".into(),
            force: false,
        })
        .await
        .unwrap();
    let on_card = client
        .generate_key(pb::GenerateKeyRequest {
            backend: "yk".into(),
            algorithm: "ecdsa".into(),
            curve: "p256".into(),
            role: "targets".into(),
            slot: "9a".into(),
            pin_policy: "never".into(),
            touch_policy: "never".into(),
            pin: "24681357".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let on_soft = generate(&mut client, "soft", "ecdsa", "p256", 0, "targets", "").await;
    outage(
        &mut daemon,
        "yk",
        &on_card,
        &on_soft,
        &["not found", "no YubiKey"],
        || card.remove().unwrap(),
        || card.reinsert().unwrap(),
    )
    .await;
}

/// The daemon's own user, as on a release host (root would read the
/// directory whatever its mode).
const DAEMON_USER: (u32, u32) = (65534, 65534);

#[tokio::test(flavor = "multi_thread")]
async fn the_softhsm_token_directory_made_unreadable() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run the daemon as its own user");
        return;
    }
    let hsm = SoftHsm::new("faults", "1357").unwrap();
    let root_may_use =
        "[[policy]]\nuids = [0]\nallow = [\"list\", \"sign\", \"generate\"]\nkeys = [\"*\"]\n";
    let config = format!(
        "{}\n{SOFT}\n{root_may_use}",
        hsm.backend_toml("hsm").unwrap()
    );
    let (uid, gid) = DAEMON_USER;
    hsm.give_to(uid, gid).unwrap();
    let conf = hsm.conf();
    let mut daemon = Daemon::start_as(
        uid,
        gid,
        &config,
        &[("SOFTHSM2_CONF", conf.to_str().unwrap())],
    )
    .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_hsm = generate(&mut client, "hsm", "ecdsa", "p256", 0, "targets", "").await;
    let on_soft = generate(&mut client, "soft", "ecdsa", "p256", 0, "targets", "").await;
    let tokens = hsm.token_dir();
    let mode =
        |m: u32| std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(m)).unwrap();
    outage(
        &mut daemon,
        "hsm",
        &on_hsm,
        &on_soft,
        &["Permission denied", "token"],
        || mode(0o000),
        || mode(0o700),
    )
    .await;
}
