//! PIV capabilities beyond the core contract (YubiKey): slots with PIN and
//! touch policies, device setup, status, attestation, releasing the card.
//! Plain types and one trait, so the daemon needs no PIV crate.

use crate::{Algorithm, BackendError, BackendKey, KeySpec, KeyUri};
use secrecy::SecretString;
use std::fmt;
use std::str::FromStr;

// One definition serves the backends and the attestation checks of
// notary-tuf, which cannot depend on this crate.
pub use notary_tuf::ceremony::{PinPolicy, TouchPolicy};

/// How long a YubiKey waits for a touch before it refuses (about 15 s).
pub const TOUCH_TIMEOUT_MS: u32 = 15_000;

/// A PIV key slot that may hold a notary key: 9a, 9c, 9d, 9e or 82–95.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(u8);

impl Slot {
    /// Every key slot, retired slots first: they are the ones meant for
    /// extra keys, so automatic placement fills them before 9a–9e.
    pub fn all() -> impl Iterator<Item = Slot> {
        (0x82..=0x95).chain([0x9a, 0x9c, 0x9d, 0x9e]).map(Slot)
    }

    pub fn id(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Slot {
    type Error = String;
    fn try_from(id: u8) -> Result<Slot, String> {
        match id {
            0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95 => Ok(Slot(id)),
            other => Err(format!(
                "slot {other:02x} cannot hold a notary key: use 9a, 9c, 9d, 9e or 82-95"
            )),
        }
    }
}

impl FromStr for Slot {
    type Err = String;
    fn from_str(s: &str) -> Result<Slot, String> {
        let id = u8::from_str_radix(s, 16)
            .map_err(|_| format!("slot {s:?} is not a PIV slot: use 9a, 9c, 9d, 9e or 82-95"))?;
        Slot::try_from(id)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

/// Where and how to generate a key on a PIV device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivKeyOptions {
    /// `None`: the first empty slot (retired slots first).
    pub slot: Option<Slot>,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
    /// Recorded in the slot's certificate, so another machine sees them.
    pub role: String,
    pub gun: String,
}

impl Default for PivKeyOptions {
    /// PIN once, touch always: what yubikey-agent and age-plugin-yubikey
    /// chose, and what a signing key held by a person should have.
    fn default() -> Self {
        PivKeyOptions {
            slot: None,
            pin_policy: PinPolicy::Once,
            touch_policy: TouchPolicy::Always,
            role: String::new(),
            gun: String::new(),
        }
    }
}

/// One occupied slot as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivSlotInfo {
    pub slot: Slot,
    pub algorithm: Option<Algorithm>,
    /// `None` when the firmware has no metadata command (before 5.3).
    pub pin_policy: Option<PinPolicy>,
    pub touch_policy: Option<TouchPolicy>,
    /// True when the device generated the key (false: imported).
    pub generated_on_device: Option<bool>,
    pub key_id: Option<String>,
    pub label: String,
}

/// A device's state as `notaryctl yubikey status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PivStatus {
    pub serial: u32,
    pub firmware: String,
    pub pin_tries_left: Option<u8>,
    pub puk_tries_left: Option<u8>,
    /// Whether the factory PIN / PUK / management key are still set.
    pub default_pin: Option<bool>,
    pub default_puk: Option<bool>,
    pub default_management_key: Option<bool>,
    pub slots: Vec<PivSlotInfo>,
}

/// What a person types for `notaryctl yubikey setup`.
pub struct SetupSecrets {
    pub current_pin: SecretString,
    pub new_pin: SecretString,
    pub current_puk: SecretString,
    pub new_puk: SecretString,
}

/// Whether the next operation with a key needs a touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchNeed {
    Required,
    /// Policy unknown (old firmware): say so only if the call takes long.
    Unknown,
    NotNeeded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchHint {
    pub need: TouchNeed,
    pub serial: String,
    pub slot: String,
    pub timeout_ms: u32,
}

/// Proof that a key was generated on the device: the slot's attestation
/// certificate and the device's attestation intermediate that signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    pub slot_certificate_der: Vec<u8>,
    pub intermediate_der: Vec<u8>,
}

/// A PIV device's operations beyond `KeyBackend`.
pub trait PivAdmin: Send + Sync {
    fn status(&self) -> Result<PivStatus, BackendError>;
    /// Changes PIN and PUK and replaces the management key with a random
    /// one stored PIN-protected on the device. Refused when the device was
    /// set up already, unless `force`.
    fn setup(&self, secrets: &SetupSecrets, force: bool) -> Result<(), BackendError>;
    /// Closes the card so other PC/SC clients can use it; the next
    /// operation opens it again (by serial).
    fn release(&self) -> Result<(), BackendError>;
    fn generate_in_slot(
        &self,
        spec: &KeySpec,
        options: &PivKeyOptions,
    ) -> Result<BackendKey, BackendError>;
    fn attest(&self, uri: &KeyUri) -> Result<Attestation, BackendError>;
    fn touch_hint(&self, uri: &KeyUri) -> Result<TouchHint, BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_parse_and_print() {
        for s in ["9a", "9c", "9d", "9e", "82", "95"] {
            assert_eq!(s.parse::<Slot>().unwrap().to_string(), s);
        }
        assert_eq!("9C".parse::<Slot>().unwrap().to_string(), "9c");
        for bad in ["9b", "f9", "96", "81", "zz", ""] {
            let err = bad.parse::<Slot>().unwrap_err();
            assert!(err.contains("9a, 9c, 9d, 9e or 82-95"), "{err}");
        }
        assert_eq!(Slot::all().count(), 24);
        assert_eq!(Slot::all().next().unwrap().to_string(), "82");
    }

    #[test]
    fn policies_default_to_pin_once_touch_always() {
        let d = PivKeyOptions::default();
        assert_eq!(
            (d.pin_policy, d.touch_policy),
            (PinPolicy::Once, TouchPolicy::Always)
        );
    }
}
