//! Opening cards by serial, and unplugging them.

mod common;

use common::{assert_p256_signs, generate_p256, open, open_as_admin, PIN};
use virtual_piv::{Profile, TestReaders};
use yubikey::piv::SlotId;
use yubikey::{Error, Serial, YubiKey};

#[test]
fn opens_each_of_two_cards_by_serial_and_refuses_to_guess() {
    let readers = TestReaders::acquire().unwrap();
    let old = readers.insert(Profile::yubikey_5_4(21_000_001)).unwrap();
    let new = readers.insert(Profile::yubikey_5_7(21_000_002)).unwrap();

    let yk = open(&new);
    assert_eq!(yk.serial(), Serial(21_000_002));
    assert_eq!((yk.version().major, yk.version().minor), (5, 7));
    let yk = open(&old);
    assert_eq!(yk.serial(), Serial(21_000_001));
    assert_eq!((yk.version().major, yk.version().minor), (5, 4));

    // Without a serial the crate must not pick one of two cards.
    assert!(YubiKey::open().is_err());
    assert!(matches!(
        YubiKey::open_by_serial(Serial(21_000_003)),
        Err(Error::NotFound)
    ));
}

#[test]
fn removed_card_is_gone_and_comes_back_with_its_keys() {
    let readers = TestReaders::acquire().unwrap();
    let card = readers.insert(Profile::yubikey_5_4(21_000_010)).unwrap();
    let mut yk = open_as_admin(&card);
    let point = generate_p256(&mut yk, SlotId::Signature);

    card.remove().unwrap();
    assert!(yk.verify_pin(PIN).is_err(), "the old handle is dead");
    drop(yk);
    assert!(matches!(
        YubiKey::open_by_serial(Serial(21_000_010)),
        Err(Error::NotFound)
    ));

    card.reinsert().unwrap();
    let mut yk = open(&card);
    yk.verify_pin(PIN).unwrap();
    assert_p256_signs(&mut yk, SlotId::Signature, &point);
}
