//! Which YubiKey the card pretends to be.

use crate::mgm::{ALG_3DES, ALG_AES192};

/// Serial and firmware version; the firmware decides the factory
/// management-key algorithm (AES-192 from 5.7, 3DES before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub serial: u32,
    pub version: [u8; 3],
}

impl Profile {
    /// YubiKey 5 with firmware 5.2.7: no GET METADATA yet (6D00), so keys
    /// and policies can only be learnt from certificates; 3DES management key.
    pub fn yubikey_5_2(serial: u32) -> Profile {
        Profile {
            serial,
            version: [5, 2, 7],
        }
    }

    /// YubiKey 5 with firmware 5.4.3: 3DES default management key.
    pub fn yubikey_5_4(serial: u32) -> Profile {
        Profile {
            serial,
            version: [5, 4, 3],
        }
    }

    /// YubiKey 5 with firmware 5.7.1: AES-192 default management key.
    pub fn yubikey_5_7(serial: u32) -> Profile {
        Profile {
            serial,
            version: [5, 7, 1],
        }
    }

    pub fn default_mgm_alg(&self) -> u8 {
        if self.version >= [5, 7, 0] {
            ALG_AES192
        } else {
            ALG_3DES
        }
    }

    /// GET METADATA (INS F7) exists from firmware 5.3.
    pub fn has_metadata(&self) -> bool {
        self.version >= [5, 3, 0]
    }
}
