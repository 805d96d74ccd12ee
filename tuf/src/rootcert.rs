//! Notary's root certificate profile, built around a key held in hardware.
//!
//! The caller signs the TBS bytes we return (SHA-256, raw r||s, exactly as it
//! signs metadata) and hands the signature back to [`assemble_root_cert`].

mod build;
mod check;
mod name;

pub use build::{assemble_root_cert, root_cert_tbs};
pub(crate) use check::{check_common_name, is_sha1, validate_certificate, verify_cert_signature};
pub use check::{check_root_cert, check_trusted_root_cert, root_cert_common_name};

use crate::keys::KeyError;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("notary root certificates need an ECDSA key (P-256 or P-384)")]
    NeedEcdsa,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the GUN is empty")]
    EmptyGun,
    #[error("serial number must be a positive integer")]
    ZeroSerial,
    #[error("validity period cannot be encoded: {0}")]
    BadValidity(String),
    #[error("certificate DER: {0}")]
    Der(String),
    #[error("TBS certificate is not in DER canonical form")]
    TbsNotCanonical,
    #[error("TBS certificate must use ecdsa-with-SHA256, found {0}")]
    TbsAlgorithm(String),
    #[error("raw ECDSA signature must be {expected} bytes (r||s), got {got}")]
    SignatureLength { expected: usize, got: usize },
    #[error("certificate subject has no common name")]
    NoCommonName,
    #[error("certificate CN {cn:?} does not match GUN {gun:?}")]
    GunMismatch { cn: String, gun: String },
    #[error("certificate validity window is invalid (NotBefore after NotAfter)")]
    InvalidWindow,
    #[error("certificate is not valid before {not_before} (Unix), more than a day from now")]
    NotYetValid { not_before: i64 },
    #[error("certificate expired at {not_after} (Unix)")]
    Expired { not_after: i64 },
    #[error("certificate uses a SHA-1 signature algorithm")]
    Sha1,
    #[error("certificate RSA key has {0} bits; notary needs at least 2048")]
    RsaTooSmall(usize),
    #[error("unsupported certificate signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("certificate self-signature does not verify")]
    BadSelfSignature,
}

impl From<der::Error> for CertError {
    fn from(e: der::Error) -> Self {
        CertError::Der(e.to_string())
    }
}
