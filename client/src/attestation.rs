//! Checking a TPM2_Certify key attestation without trusting the daemon:
//! the attestation key signed the statement, the statement carries our
//! nonce, and the name it certifies is the name of a TPM public area that
//! holds exactly the notary key we were told about.
//!
//! What this cannot check is whether the attestation key belongs to the
//! TPM you think it does: compare its fingerprint with the one recorded
//! when the host was enrolled (docs/tpm.md).

use keyd_proto::keyd as pb;
use notary_tuf::{KeyType, PublicKey, SignatureMethod};
use sha2::{Digest, Sha256};

/// TPM_GENERATED_VALUE and TPM_ST_ATTEST_CERTIFY.
const TPM_GENERATED: u32 = 0xff54_4347;
const ST_ATTEST_CERTIFY: u16 = 0x8017;
/// TPM_ALG_SHA256, the name algorithm of the daemon's keys.
const ALG_SHA256: [u8; 2] = [0x00, 0x0b];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AttestationError {
    #[error("unknown attestation format {0:?} (this notaryctl checks tpm2-certify)")]
    Format(String),
    #[error("the attestation signature does not verify with the attestation key")]
    Signature,
    #[error("malformed TPMS_ATTEST: {0}")]
    Malformed(&'static str),
    #[error("the statement does not carry the nonce that was sent (a replayed statement?)")]
    Nonce,
    #[error("the certified name is not the name of the returned public area")]
    Name,
    #[error("the certified public area does not hold the key's notary public key")]
    KeyMismatch,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AttestationError> {
        if self.0.len() < n {
            return Err(AttestationError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, AttestationError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AttestationError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A TPM2B: a 16-bit size then that many bytes.
    fn sized(&mut self) -> Result<&'a [u8], AttestationError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Checks `a` for `key` and `nonce`; on success returns the SHA-256
/// fingerprint (hex) of the attestation key's SubjectPublicKeyInfo.
pub(crate) fn check(
    a: &pb::TpmCertify,
    key: &pb::Key,
    nonce: &[u8],
) -> Result<String, AttestationError> {
    if a.format != "tpm2-certify" {
        return Err(AttestationError::Format(a.format.clone()));
    }
    let signer = PublicKey::new(KeyType::Ecdsa, a.signer_public.clone());
    let raw = notary_tuf::signature::ecdsa_der_to_raw(&a.signature, 32)
        .map_err(|_| AttestationError::Signature)?;
    notary_tuf::verify(&signer, SignatureMethod::Ecdsa, &a.attest, &raw)
        .map_err(|_| AttestationError::Signature)?;

    let mut r = Reader(&a.attest);
    if r.u32()? != TPM_GENERATED {
        return Err(AttestationError::Malformed("not TPM-generated"));
    }
    if r.u16()? != ST_ATTEST_CERTIFY {
        return Err(AttestationError::Malformed("not a TPM2_Certify statement"));
    }
    r.sized()?; // qualifiedSigner
    if r.sized()? != nonce {
        return Err(AttestationError::Nonce);
    }
    r.take(17 + 8)?; // clockInfo, firmwareVersion
    let name = r.sized()?;
    let expected: Vec<u8> = ALG_SHA256
        .iter()
        .copied()
        .chain(Sha256::digest(&a.key_public_area))
        .collect();
    if name != expected.as_slice() {
        return Err(AttestationError::Name);
    }
    if !public_area_holds(&a.key_public_area, key) {
        return Err(AttestationError::KeyMismatch);
    }
    Ok(Sha256::digest(&a.signer_public)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The public area ends with the key's `unique` field: for ECC the TPM2B x
/// and y coordinates, for RSA the TPM2B modulus. The notary key is DER
/// SPKI, which ends with the uncompressed point (ECC) and contains the
/// modulus (RSA).
fn public_area_holds(area: &[u8], key: &pb::Key) -> bool {
    let spki = key.public.as_slice();
    match key.keytype.as_str() {
        "ecdsa" => [32usize, 48].into_iter().any(|n| {
            let point_len = 1 + 2 * n;
            if spki.len() < point_len || spki[spki.len() - point_len] != 0x04 {
                return false;
            }
            let point = &spki[spki.len() - 2 * n..];
            let (x, y) = point.split_at(n);
            let size = u16::try_from(n).unwrap_or(0).to_be_bytes();
            let tail: Vec<u8> = [&size[..], x, &size[..], y].concat();
            area.ends_with(&tail)
        }),
        "rsa" => {
            let mut r = Reader(area);
            // type, nameAlg, attributes, authPolicy, then RSA parameters:
            // symmetric (NULL), scheme + hash, keyBits, exponent.
            let modulus = (|| {
                r.take(2 + 2 + 4)?;
                r.sized()?;
                r.take(2 + 2 + 2 + 2 + 4)?;
                r.sized()
            })();
            match modulus {
                Ok(m) if m.len() >= 256 && r.0.is_empty() => spki.windows(m.len()).any(|w| w == m),
                _ => false,
            }
        }
        _ => false,
    }
}
