//! Notary's checks on a root certificate (trustpinning + ValidateCertificate).

use super::name::read_common_name;
use super::CertError;
use crate::keys::{ecdsa_curve, first_certificate, KeyType, PublicKey};
use crate::oids;
use crate::signature::{ecdsa_verifies, rsa_public_key, EcdsaEncoding};
use der::Encode;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384};
use x509_cert::Certificate;

/// One day of leeway for NotBefore, as notary allows for clock skew.
const NOT_BEFORE_LEEWAY: i64 = 86_400;
const MIN_RSA_BITS: usize = 2048;

/// Checks the first certificate in `pem` the way notary accepts a root key:
/// CN equals `gun` (or is a `prefix*` wildcard matching it), the validity
/// window holds at `now_unix` (NotBefore up to a day ahead), no SHA-1, RSA at
/// least 2048 bits. A self-issued certificate must also carry a valid
/// self-signature; a CA-issued one is left to trust pinning.
pub fn check_root_cert(pem: &str, gun: &str, now_unix: i64) -> Result<(), CertError> {
    check(pem, gun, Some(now_unix))
}

/// [`check_root_cert`] without the validity window at a given time: how
/// notary accepts the certificates of the root it already trusts when it
/// checks a rotation (`validRootLeafCerts` without expiry).
pub fn check_trusted_root_cert(pem: &str, gun: &str) -> Result<(), CertError> {
    check(pem, gun, None)
}

fn check(pem: &str, gun: &str, now_unix: Option<i64>) -> Result<(), CertError> {
    let (_, cert) = first_certificate(pem.as_bytes())?;
    let tbs = &cert.tbs_certificate;
    check_common_name(&cert, gun)?;
    validate_certificate(&cert, now_unix)?;
    if tbs.issuer == tbs.subject {
        let spki = tbs.subject_public_key_info.to_der()?;
        verify_cert_signature(&cert, &spki)?;
    }
    Ok(())
}

/// The common name of the first certificate in `pem`: for a root
/// certificate in notary's profile, the GUN it is for (a CN ending in `*`
/// covers every GUN it prefixes).
pub fn root_cert_common_name(pem: &str) -> Result<String, CertError> {
    let (_, cert) = first_certificate(pem.as_bytes())?;
    read_common_name(&cert.tbs_certificate.subject).ok_or(CertError::NoCommonName)
}

/// Notary's MatchCNToGun on the subject's common name.
pub(crate) fn check_common_name(cert: &Certificate, gun: &str) -> Result<(), CertError> {
    let cn = read_common_name(&cert.tbs_certificate.subject).ok_or(CertError::NoCommonName)?;
    if !cn_matches_gun(&cn, gun) {
        return Err(CertError::GunMismatch {
            cn,
            gun: gun.to_string(),
        });
    }
    Ok(())
}

/// Notary's ValidateCertificate: a sane validity window, no SHA-1, RSA of at
/// least 2048 bits, and with `now_unix` also not expired (NotBefore up to a
/// day ahead). Notary skips the expiry part for a previous root's keys.
pub(crate) fn validate_certificate(
    cert: &Certificate,
    now_unix: Option<i64>,
) -> Result<(), CertError> {
    let tbs = &cert.tbs_certificate;
    let not_before = unix(&tbs.validity.not_before);
    let not_after = unix(&tbs.validity.not_after);
    if not_before > not_after {
        return Err(CertError::InvalidWindow);
    }
    if is_sha1(&cert.signature_algorithm.oid) {
        return Err(CertError::Sha1);
    }
    let spki = tbs.subject_public_key_info.to_der()?;
    let key = PublicKey::from_spki_der(&spki)?;
    if key.keytype() == KeyType::Rsa {
        let bits = rsa_public_key(&spki)?.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(CertError::RsaTooSmall(bits));
        }
    }
    let Some(now_unix) = now_unix else {
        return Ok(());
    };
    if now_unix.saturating_add(NOT_BEFORE_LEEWAY) < not_before {
        return Err(CertError::NotYetValid { not_before });
    }
    if now_unix > not_after {
        return Err(CertError::Expired { not_after });
    }
    Ok(())
}

/// Notary refuses certificates signed with SHA-1 anywhere in a root's trust.
pub(crate) fn is_sha1(alg: &der::asn1::ObjectIdentifier) -> bool {
    [
        oids::SHA1_WITH_RSA,
        oids::DSA_WITH_SHA1,
        oids::ECDSA_WITH_SHA1,
    ]
    .contains(alg)
}

/// Notary's MatchCNToGun: a CN ending in `*` is a prefix of the GUN.
fn cn_matches_gun(cn: &str, gun: &str) -> bool {
    match cn.strip_suffix('*') {
        Some(_) => gun.starts_with(cn.trim_end_matches('*')),
        None => cn == gun,
    }
}

fn unix(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Checks that `cert` was signed by the holder of `issuer_spki` (DER SPKI).
pub(crate) fn verify_cert_signature(
    cert: &Certificate,
    issuer_spki: &[u8],
) -> Result<(), CertError> {
    let spki = issuer_spki;
    let tbs = cert.tbs_certificate.to_der()?;
    let sig = cert
        .signature
        .as_bytes()
        .ok_or(CertError::BadSelfSignature)?;
    let alg = cert.signature_algorithm.oid;
    let ok = if alg == oids::ECDSA_WITH_SHA256 || alg == oids::ECDSA_WITH_SHA384 {
        let digest = if alg == oids::ECDSA_WITH_SHA256 {
            Sha256::digest(&tbs).to_vec()
        } else {
            Sha384::digest(&tbs).to_vec()
        };
        let curve = ecdsa_curve(spki).map_err(|_| CertError::BadSelfSignature)?;
        ecdsa_verifies(curve, spki, &digest, sig, EcdsaEncoding::Der)
    } else if alg == oids::SHA256_WITH_RSA {
        let key = rsa_public_key(spki)?;
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            sig,
        )
        .is_ok()
    } else {
        return Err(CertError::UnsupportedAlgorithm(alg.to_string()));
    };
    if ok {
        Ok(())
    } else {
        Err(CertError::BadSelfSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_cn_is_a_prefix() {
        assert!(cn_matches_gun("example.com/app", "example.com/app"));
        assert!(!cn_matches_gun("example.com/app", "example.com/app2"));
        assert!(cn_matches_gun("example.com/*", "example.com/app"));
        assert!(cn_matches_gun("example.com/**", "example.com/app"));
        assert!(!cn_matches_gun("example.org/*", "example.com/app"));
        assert!(cn_matches_gun("*", "anything"));
    }
}
