//! PIN and PUK: counters, blocking, unblocking, change, reset.

mod common;

use common::{generate_p256, open, open_as_admin, PIN};
use virtual_piv::{Profile, TestCard};
use yubikey::piv::{self, SlotId};
use yubikey::Error;

#[test]
fn wrong_pins_count_down_then_block_and_the_puk_unblocks() {
    let card = TestCard::start(Profile::yubikey_5_7(22_000_001)).unwrap();
    let mut yk = open(&card);
    assert_eq!(yk.get_pin_retries().unwrap(), 3);

    assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries: 2 }));
    assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries: 1 }));
    // A right PIN restores the counter.
    yk.verify_pin(PIN).unwrap();
    assert_eq!(card.pin_tries_left(), 3);

    for tries in [2, 1, 0] {
        assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries }));
    }
    // Blocked: even the right PIN is refused and nothing counts further.
    assert_eq!(yk.verify_pin(PIN), Err(Error::WrongPin { tries: 0 }));
    assert_eq!(yk.get_pin_retries().unwrap(), 0);

    yk.unblock_pin(b"12345678", b"654321").unwrap();
    assert_eq!(yk.verify_pin(PIN), Err(Error::WrongPin { tries: 2 }));
    yk.verify_pin(b"654321").unwrap();
}

#[test]
fn pin_and_puk_change_and_metadata_reports_defaults() {
    let card = TestCard::start(Profile::yubikey_5_4(22_000_002)).unwrap();
    let mut yk = open(&card);
    let pin = piv::metadata(
        &mut yk,
        SlotId::Management(yubikey::piv::ManagementSlotId::Pin),
    )
    .unwrap();
    assert_eq!(pin.default, Some(true));
    assert_eq!(
        pin.retries.map(|r| (r.retry_count, r.remaining_count)),
        Some((3, 3))
    );

    yk.change_pin(PIN, b"24681357").unwrap();
    yk.change_puk(b"12345678", b"87654321").unwrap();
    assert_eq!(
        yk.change_pin(PIN, b"11111111"),
        Err(Error::WrongPin { tries: 2 })
    );
    yk.verify_pin(b"24681357").unwrap();
    // Too short a new PIN is refused without using a try.
    assert!(yk.change_pin(b"24681357", b"123").is_err());
    let pin = piv::metadata(
        &mut yk,
        SlotId::Management(yubikey::piv::ManagementSlotId::Pin),
    )
    .unwrap();
    assert_eq!(pin.default, Some(false));
    assert_eq!(pin.retries.map(|r| r.remaining_count), Some(3));
}

#[test]
fn reset_needs_pin_and_puk_blocked_and_wipes_keys() {
    let card = TestCard::start(Profile::yubikey_5_4(22_000_003)).unwrap();
    let mut yk = open_as_admin(&card);
    generate_p256(&mut yk, SlotId::Authentication);
    yk.change_pin(PIN, b"99999999").unwrap();
    assert!(yk.reset_device().is_err(), "PIN and PUK not blocked yet");

    for _ in 0..3 {
        let _ = yk.verify_pin(b"000000");
    }
    yk.block_puk().unwrap();
    assert_eq!(card.puk_tries_left(), 0);
    yk.reset_device().unwrap();

    assert!(card.slot_key(0x9A).is_none());
    yk.verify_pin(PIN).unwrap();
    assert!(matches!(
        piv::metadata(&mut yk, SlotId::Authentication),
        Err(Error::NotFound)
    ));
}

#[test]
fn pin_retries_can_be_raised_and_reset_pin_and_puk_to_factory() {
    let card = TestCard::start(Profile::yubikey_5_7(22_000_004)).unwrap();
    let mut yk = open_as_admin(&card);
    yk.change_pin(PIN, b"31415926").unwrap();
    yk.verify_pin(b"31415926").unwrap();
    yk.set_pin_retries(5, 4).unwrap();
    assert_eq!((card.pin_tries_left(), card.puk_tries_left()), (5, 4));
    // As on a YubiKey, the new limits come with the factory PIN and PUK.
    yk.verify_pin(PIN).unwrap();
    assert_eq!(yk.verify_pin(b"000000"), Err(Error::WrongPin { tries: 4 }));
}
