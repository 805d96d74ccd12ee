//! One device fails while the others keep serving: swtpm killed and
//! started again, the virtual YubiKey pulled out and put back, the SoftHSM
//! token directory made unreadable. Throughout, a client signs on the
//! software keystore without a single failure; the broken backend's
//! requests are refused as unavailable, `notaryctl backend list` shows it
//! unavailable with the reason, and it serves again once repaired, in the
//! same daemon process. (pcscd killed and restarted: faults_pcscd.rs.)

use crate::common;

use common::outage::{card_key, outage, soft_key};
use common::{generate, NewKey};
use softhsm_tests::{connect, Rule, SoftHsm, Swtpm, TestDaemon};
use std::os::unix::fs::PermissionsExt;
use virtual_piv::{Profile, TestCard};

#[tokio::test(flavor = "multi_thread")]
async fn swtpm_killed_and_started_again() {
    let mut tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("tpm key auth").unwrap();
    let mut daemon = TestDaemon::new()
        .tpm(&tpm, "tpm", &auth)
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_tpm = generate(&mut client, NewKey::on("tpm").role("targets")).await;
    let on_soft = soft_key(&mut client).await;
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
    let mut daemon = TestDaemon::new()
        .yubikey("yk", card.serial())
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_card = card_key(&mut client, "yk", card.serial()).await;
    let on_soft = soft_key(&mut client).await;
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
    let (uid, gid) = DAEMON_USER;
    let config = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .soft("soft")
        .policy(
            Rule::uids(&[0])
                .allow(&["list", "sign", "generate"])
                .keys(&["*"]),
        )
        .run_as(uid, gid);
    hsm.give_to(uid, gid).unwrap();
    let mut daemon = config.start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_hsm = generate(&mut client, NewKey::on("hsm").role("targets")).await;
    let on_soft = soft_key(&mut client).await;
    let tokens = hsm.token_dir();
    let mode =
        |m: u32| std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(m)).unwrap();
    outage(
        &mut daemon,
        "hsm",
        &on_hsm,
        &on_soft,
        &["token directory", "stopped answering"],
        || mode(0o000),
        || mode(0o700),
    )
    .await;
}
