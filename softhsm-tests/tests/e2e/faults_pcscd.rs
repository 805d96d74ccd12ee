//! pcscd killed and started again while a client signs on the software
//! keystore: the YubiKey backend is unavailable, with the reason, and then
//! serves again in the same daemon process. The pcscd is this test's own
//! (faults::PrivatePcscd); the one the other tests share is left alone.

use crate::common;

use common::outage::{card_key, outage, soft_key};
use softhsm_tests::faults::{wait_backend, PrivatePcscd};
use softhsm_tests::{connect, TestDaemon};
use std::time::Duration;
use virtual_piv::{Profile, VirtualYubiKey};

#[tokio::test(flavor = "multi_thread")]
async fn pcscd_killed_and_started_again() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a private pcscd needs root (a mount namespace of its own)");
        return;
    }
    let mut pcscd = PrivatePcscd::start().unwrap();
    let card = VirtualYubiKey::insert_new(pcscd.port, Profile::yubikey_5_7(7_170_001));
    let socket = pcscd.socket();
    let mut daemon = TestDaemon::new()
        .yubikey("yk", card.serial())
        .soft("soft")
        .env("PCSCLITE_CSOCK_NAME", socket.to_str().unwrap())
        .start()
        .unwrap();
    // pcscd notices the card a poll after it connected.
    wait_backend(&daemon, "yk", true, Duration::from_secs(60))
        .await
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let on_card = card_key(&mut client, "yk", card.serial()).await;
    let on_soft = soft_key(&mut client).await;
    let pcscd = std::cell::RefCell::new(&mut pcscd);
    outage(
        &mut daemon,
        "yk",
        &on_card,
        &on_soft,
        &["pcscd", "PC/SC", "no YubiKey", "not found"],
        || pcscd.borrow_mut().kill().unwrap(),
        || pcscd.borrow_mut().start_again().unwrap(),
    )
    .await;
}
