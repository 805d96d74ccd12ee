//! The backend contract: a small core trait and optional capability traits.

use crate::import::KeyImport;
use crate::piv::PivAdmin;
use crate::{Algorithm, BackendError, KeyUri, TriesLeft};
use notary_tuf::PublicKey;
use secrecy::SecretString;

/// What a caller asks for when generating a key.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub algorithm: Algorithm,
    /// Human label stored with the key (CKA_LABEL, file metadata).
    pub label: String,
}

/// A key as a backend knows it: where it is and its public half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendKey {
    pub uri: KeyUri,
    pub public: PublicKey,
    pub algorithm: Algorithm,
    pub label: String,
}

/// Whether a backend can be used now, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Available,
    Unavailable(String),
}

/// Device facts for `backend list`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub manufacturer: String,
    pub model: String,
    pub label: String,
    pub serial: String,
}

/// Login state of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinStatus {
    pub logged_in: bool,
    pub tries_left: TriesLeft,
    pub blocked: bool,
}

/// The core contract. Calls block (device I/O); the daemon runs them on its
/// per-device work queues, never on the async reactor.
pub trait KeyBackend: Send + Sync {
    /// Backend type, as in the config (`soft`, `pkcs11`).
    fn kind(&self) -> &'static str;
    fn availability(&self) -> Availability;
    fn device_info(&self) -> DeviceInfo;
    /// Algorithms `generate` accepts.
    fn algorithms(&self) -> Vec<Algorithm>;
    /// How many operations the device can usefully run at once; the daemon
    /// sizes the device's work queue with it.
    fn concurrency(&self) -> usize {
        1
    }
    /// Whether signing with a key of `algorithm` is short in-process
    /// computation: tens of microseconds, no device I/O, never waiting for
    /// anything. The daemon then signs on its async worker, because handing
    /// such a signature to a blocking thread costs more than the signature.
    fn signs_in_place(&self, _algorithm: Algorithm) -> bool {
        false
    }
    fn list(&self) -> Result<Vec<BackendKey>, BackendError>;
    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError>;
    /// Signs `payload` in notary's encoding for the key's type: ECDSA raw
    /// r||s over SHA-256(payload), Ed25519 pure, RSA-PSS SHA-256 salt 32.
    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError>;
    fn delete(&self, uri: &KeyUri) -> Result<(), BackendError>;

    /// Certificates kept beside keys, if the backend can hold them.
    fn certificates(&self) -> Option<&dyn CertificateStore> {
        None
    }
    /// PIN login, if the backend has one.
    fn token_login(&self) -> Option<&dyn TokenLogin> {
        None
    }
    /// PIV slots, setup, attestation and card release (YubiKey).
    fn piv(&self) -> Option<&dyn PivAdmin> {
        None
    }
    /// Key attestation, if the device can vouch for its keys.
    fn attestation(&self) -> Option<&dyn KeyAttest> {
        None
    }
    /// How a key came onto the device, as a token without attestation
    /// reports it (PKCS#11).
    fn key_origin(&self) -> Option<&dyn KeyOriginReport> {
        None
    }
    /// Stock notary key files taken in for a migration, if the backend
    /// takes them (the software keystore).
    fn imports(&self) -> Option<&dyn KeyImport> {
        None
    }
}

/// What a PKCS#11 token says about a private key: CKA_LOCAL (generated on
/// the token) and CKA_NEVER_EXTRACTABLE. The token's word, not a signed
/// statement anyone else can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyOrigin {
    pub local: bool,
    pub never_extractable: bool,
}

pub trait KeyOriginReport: Send + Sync {
    fn key_origin(&self, uri: &KeyUri) -> Result<KeyOrigin, BackendError>;
}

/// A device's signed statement that it holds a key (for a TPM, TPM2_Certify
/// by an attestation key). The verifier checks `signature` over `attest`
/// with `signer_spki`, and that the name certified in `attest` is the name
/// of `key_public_area`, whose key is the notary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttestation {
    /// What the bytes are, e.g. `tpm2-certify`.
    pub format: &'static str,
    /// The signed statement (TPMS_ATTEST, marshalled).
    pub attest: Vec<u8>,
    /// DER ECDSA signature over SHA-256(attest).
    pub signature: Vec<u8>,
    /// DER SubjectPublicKeyInfo of the key that signed it.
    pub signer_spki: Vec<u8>,
    /// The certified key's device public area (TPMT_PUBLIC, marshalled).
    pub key_public_area: Vec<u8>,
}

/// Attestation of keys by the device that holds them.
pub trait KeyAttest: Send + Sync {
    /// Attests the key at `uri`, binding `nonce` (freshness) into the statement.
    fn attest(&self, uri: &KeyUri, nonce: &[u8]) -> Result<KeyAttestation, BackendError>;
}

/// X.509 certificates stored beside a key (PKCS#11 certificate object with
/// the key's CKA_ID, or a file beside a software key).
pub trait CertificateStore: Send + Sync {
    /// Stores `der`, replacing any certificate the key had.
    fn put_certificate(&self, uri: &KeyUri, der: &[u8]) -> Result<(), BackendError>;
    fn certificate(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, BackendError>;
}

/// Token login with a user PIN. Implementations never retry a PIN.
pub trait TokenLogin: Send + Sync {
    fn pin_status(&self) -> Result<PinStatus, BackendError>;
    fn login(&self, pin: &SecretString) -> Result<(), BackendError>;
    fn logout(&self) -> Result<(), BackendError>;
}
