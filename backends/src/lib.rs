//! Key backends for notary-keyd.
//!
//! A backend owns private keys and never hands them out: it generates, lists,
//! reports public keys and signs. Optional capabilities (certificates beside
//! a key, token login, attestation, PIV slots) are separate traits a backend
//! may offer. This crate knows nothing of gRPC, callers or policy; the
//! daemon adds those.

#![forbid(unsafe_code)]

pub mod algorithm;
pub mod atomic_file;
pub mod backend;
pub mod dir_lock;
#[cfg(any(feature = "pkcs11", feature = "tpm", feature = "yubikey"))]
// TPM- or YubiKey-only builds use a subset (no PKCS#11 attribute encodings).
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
mod encoding;
pub mod error;
pub mod import;
pub mod piv;
pub mod uri;

#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(feature = "soft")]
pub mod soft;
#[cfg(feature = "tpm")]
pub mod tpm;
#[cfg(feature = "yubikey")]
pub mod yubikey;

pub use algorithm::Algorithm;
pub use backend::{
    Availability, BackendKey, CertificateStore, DeviceInfo, KeyAttest, KeyAttestation, KeyBackend,
    KeyOrigin, KeyOriginReport, KeySpec, PinStatus, TokenLogin,
};
pub use error::{BackendError, Precondition, TriesLeft};
pub use uri::KeyUri;
