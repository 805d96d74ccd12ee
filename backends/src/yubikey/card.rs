//! The seam below the YubiKey backend: what the backend asks of one open
//! PIV card, in this crate's types. `device.rs` implements it with the
//! `yubikey` crate over PC/SC; unit tests use an in-memory card.

use crate::piv::{PinPolicy, Slot, TouchPolicy};
use crate::Algorithm;
use notary_tuf::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CardError {
    /// No PC/SC service, no such card, or the card went away.
    #[error("{0}")]
    Absent(String),
    #[error("wrong PIN ({0} tries left)")]
    WrongPin(u8),
    #[error("PIN blocked")]
    PinBlocked,
    /// SW 6982: PIN not verified, touch not given, or management key not
    /// authenticated; the caller knows which from context.
    #[error("security status not satisfied")]
    SecurityStatus,
    #[error("not supported by this device")]
    NotSupported,
    #[error("{0}")]
    Other(String),
}

/// A slot's key as the device describes it (firmware 5.3+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotMeta {
    pub algorithm: Option<Algorithm>,
    pub pin_policy: Option<PinPolicy>,
    pub touch_policy: Option<TouchPolicy>,
    pub generated: Option<bool>,
    pub public: Option<PublicKey>,
}

/// PIN, PUK or management key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    Pin,
    Puk,
    ManagementKey,
}

/// What the device says about a credential (firmware 5.3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CredentialMeta {
    pub is_default: bool,
    pub tries_left: Option<u8>,
}

/// PIN state from a data-less VERIFY, which uses no try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PinState {
    pub verified: bool,
    pub tries_left: Option<u8>,
}

pub(crate) trait PivCard: Send {
    fn serial(&self) -> u32;
    fn firmware(&self) -> String;
    fn verify_pin(&mut self, pin: &[u8]) -> Result<(), CardError>;
    fn pin_state(&mut self) -> Result<PinState, CardError>;
    /// Drops the verified state (SELECT).
    fn forget_pin(&mut self) -> Result<(), CardError>;
    fn change_pin(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError>;
    fn change_puk(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError>;
    /// `None` on firmware without metadata (before 5.3).
    fn credential(&mut self, which: Credential) -> Result<Option<CredentialMeta>, CardError>;
    /// `Ok(None)` for an empty slot; `Err(NotSupported)` before 5.3.
    fn slot_meta(&mut self, slot: Slot) -> Result<Option<SlotMeta>, CardError>;
    /// Authenticates with the factory management key. Only `setup` calls
    /// this, after the person confirmed.
    fn authenticate_default_management_key(&mut self) -> Result<(), CardError>;
    /// Authenticates with the management key kept PIN-protected on the
    /// device (needs the PIN verified first).
    fn authenticate_protected_management_key(&mut self) -> Result<(), CardError>;
    /// Sets a fresh random management key (AES-192 on 5.7+, else 3DES) and
    /// stores it PIN-protected on the device.
    fn set_random_protected_management_key(&mut self) -> Result<(), CardError>;
    fn generate(
        &mut self,
        slot: Slot,
        algorithm: Algorithm,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    ) -> Result<PublicKey, CardError>;
    /// The raw private-key operation: EC returns a DER signature over
    /// `input` (a digest), RSA a raw block.
    fn sign(
        &mut self,
        slot: Slot,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, CardError>;
    fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>, CardError>;
    fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<(), CardError>;
    /// The attestation certificate for a slot's key (signed by the F9 key).
    fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, CardError>;
    /// The device's attestation intermediate (the F9 slot's certificate).
    fn attestation_intermediate(&mut self) -> Result<Vec<u8>, CardError>;
}

/// Finds and opens cards.
pub(crate) trait Connector: Send + Sync {
    /// Serials of the PIV cards present now (not counting one held open).
    fn serials(&self) -> Result<Vec<u32>, CardError>;
    fn open(&self, serial: u32) -> Result<Box<dyn PivCard>, CardError>;
}
