//! Touch as the test controls it: delayed, never (timeout), by hand,
//! cached; and a card pulled out while it waits.

mod common;

use common::{open_as_admin, PIN};
use sha2::{Digest, Sha256};
use std::time::Duration;
use virtual_piv::{Profile, TestCard, TouchMode};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Error, PinPolicy, TouchPolicy, YubiKey};

const SLOT: SlotId = SlotId::Authentication;

fn card_with_touch_key(serial: u32, touch: TouchPolicy) -> (TestCard, YubiKey) {
    let card = TestCard::start(Profile::yubikey_5_4(serial)).unwrap();
    let mut yk = open_as_admin(&card);
    piv::generate(&mut yk, SLOT, AlgorithmId::EccP256, PinPolicy::Once, touch).unwrap();
    (card, yk)
}

fn sign(yk: &mut YubiKey) -> Result<(), Error> {
    piv::sign_data(yk, &Sha256::digest(b"m"), AlgorithmId::EccP256, SLOT).map(drop)
}

#[test]
fn touch_after_a_delay_signs() {
    let (card, mut yk) = card_with_touch_key(24_000_001, TouchPolicy::Always);
    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    sign(&mut yk).unwrap();
    assert_eq!(card.touch_requests(), 1);
    sign(&mut yk).unwrap();
    assert_eq!(
        card.touch_requests(),
        2,
        "touch policy always: every signature"
    );
}

#[test]
fn no_touch_times_out_with_security_status_and_leaves_the_pin_alone() {
    let (card, mut yk) = card_with_touch_key(24_000_002, TouchPolicy::Always);
    card.set_touch(TouchMode::Never);
    card.set_touch_timeout(Duration::from_millis(500));
    // What a YubiKey answers after ~15 s of blinking: 6982.
    assert_eq!(sign(&mut yk), Err(Error::AuthenticationError));
    assert_eq!(card.touch_requests(), 1);
    assert_eq!(card.pin_tries_left(), 3);

    card.set_touch(TouchMode::Immediate);
    sign(&mut yk).unwrap();
}

#[test]
fn test_touches_by_hand_while_the_card_waits() {
    let (card, mut yk) = card_with_touch_key(24_000_003, TouchPolicy::Always);
    card.set_touch(TouchMode::Manual);
    assert!(!card.touch(), "nothing to touch yet");
    std::thread::scope(|s| {
        let signer = s.spawn(|| sign(&mut yk));
        assert!(card.wait_for_touch_request(Duration::from_secs(30)));
        assert!(card.touch());
        signer.join().unwrap().unwrap();
    });
}

#[test]
fn cached_touch_covers_the_next_signature() {
    let (card, mut yk) = card_with_touch_key(24_000_004, TouchPolicy::Cached);
    sign(&mut yk).unwrap();
    sign(&mut yk).unwrap();
    assert_eq!(card.touch_requests(), 1);
}

#[test]
fn card_pulled_while_waiting_for_touch_fails_the_signature() {
    let (card, mut yk) = card_with_touch_key(24_000_005, TouchPolicy::Always);
    card.set_touch(TouchMode::Manual);
    std::thread::scope(|s| {
        let signer = s.spawn(|| sign(&mut yk));
        assert!(card.wait_for_touch_request(Duration::from_secs(30)));
        card.remove().unwrap();
        assert!(signer.join().unwrap().is_err());
    });
    drop(yk);
    card.reinsert().unwrap();
    let mut yk = common::open(&card);
    yk.verify_pin(PIN).unwrap();
    card.set_touch(TouchMode::Immediate);
    sign(&mut yk).unwrap();
}
