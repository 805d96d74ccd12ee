//! A virtual YubiKey 5 for tests: the PIV applet (serial, firmware 5.4 or
//! 5.7 profile, PIN/PUK counters, 3DES/AES management key, P-256, P-384 and
//! RSA-2048 keys with PIN and touch policies, metadata, certificates and
//! objects, attestation, reset, chaining and GET RESPONSE) behind vpcd, so
//! the real `yubikey` crate reaches it through pcscd like a USB YubiKey.
//!
//! A test takes the virtual readers with [`TestReaders::acquire`] (which
//! starts the shared pcscd when needed) and plugs cards in with
//! [`TestReaders::insert`]; [`TestCard::start`] does both for one card.
//! Touch, removal and re-insertion are driven through the card's handle.
//! Never use this crate outside tests: its keys are not protected.

#![forbid(unsafe_code)]

mod apdu;
mod applet;
mod attest;
mod card;
mod credential;
mod fixture;
mod keys;
mod mgm;
pub mod pcscd;
mod profile;
mod tlv;
mod vpcd;

pub use attest::root_certificate_der;
pub use card::{LoggedCommand, TouchMode, VirtualYubiKey, ATR, YUBIKEY_TOUCH_TIMEOUT};
pub use credential::{DEFAULT_PIN, DEFAULT_PUK};
pub use fixture::{reader_name, TestCard, TestReaders};
pub use mgm::DEFAULT_KEY as DEFAULT_MGM_KEY;
pub use profile::Profile;

/// Instruction bytes, for filtering [`VirtualYubiKey::commands`].
pub mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GENERATE: u8 = 0x47;
    pub const SELECT: u8 = 0xA4;
    pub const PUT_DATA: u8 = 0xDB;
    pub const SET_MANAGEMENT_KEY: u8 = 0xFF;
}
