//! The certificates of an x509 root key and whether they chain to a pinned
//! CA, with the path checks of Go's `x509.Verify` that matter for notary's
//! CA pinning, and two of RFC 5280 that Go skips.
//!
//! A root key's PEM is notary's bundle: exactly one leaf (not a CA), first,
//! then CA certificates that may serve as intermediates (`parseAllCerts`).
//! A path runs from the leaf through intermediates to a certificate of the
//! pinned bundle. Every certificate that issues another on the path must be
//! a CA (basicConstraints CA:TRUE), may sign certificates (keyCertSign, when
//! it has a keyUsage extension; Go ignores keyUsage), must be valid now and
//! must allow the number of intermediates below it (pathLen). A bundle
//! certificate that is the leaf itself pins that leaf. Unlike Go, a bundle
//! certificate must be a CA to issue (a bundle file that also holds an
//! end-entity certificate does not let that certificate's key mint roots),
//! and extended key usage is not checked (Go's default demands serverAuth,
//! which a root certificate for code signing does not carry).

use crate::oids;
use crate::pem::{self, PemError};
use crate::rootcert::{is_sha1, verify_cert_signature};
use crate::signature::rsa_public_key;
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

/// Intermediates a path may pass through before it reaches the pinned CA.
const MAX_INTERMEDIATES: usize = 8;
/// notary refuses RSA keys below this size in every certificate it trusts.
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("PEM block {0:?} is not a CERTIFICATE")]
    NotCertificate(String),
    #[error("a CERTIFICATE block carries headers")]
    Headers,
    #[error("a certificate does not parse: {0}")]
    Der(String),
    #[error("it holds no certificate")]
    Empty,
    #[error("its first certificate is a CA certificate, not the leaf")]
    LeafIsCa,
    #[error("it holds more than one leaf (non-CA) certificate")]
    TwoLeaves,
    #[error("no certificate in it is usable now (each is expired, not yet valid, SHA-1 signed or has an RSA key under 2048 bits)")]
    NoUsableCa,
}

impl From<der::Error> for ChainError {
    fn from(e: der::Error) -> Self {
        ChainError::Der(e.to_string())
    }
}

/// A root key's certificates: the leaf and the CA certificates after it.
pub(crate) struct KeyChain {
    pub leaf: Certificate,
    pub intermediates: Vec<Certificate>,
}

/// Splits the PEM text of an x509 key as notary does, refusing what notary
/// refuses: anything but headerless CERTIFICATE blocks, a CA first, or a
/// second leaf.
pub(crate) fn key_chain(pem_text: &[u8]) -> Result<KeyChain, ChainError> {
    let mut certs = certificates(pem_text)?.into_iter();
    let leaf = certs.next().ok_or(ChainError::Empty)?;
    if is_ca(&leaf)? {
        return Err(ChainError::LeafIsCa);
    }
    let intermediates: Vec<Certificate> = certs.collect();
    for cert in &intermediates {
        if !is_ca(cert)? {
            return Err(ChainError::TwoLeaves);
        }
    }
    Ok(KeyChain {
        leaf,
        intermediates,
    })
}

/// The certificates of a pinned CA bundle that are usable at `now`; as in
/// notary, the others are skipped, and a bundle with none is an error.
pub(crate) fn usable_anchors(bundle_pem: &str, now: i64) -> Result<Vec<Certificate>, ChainError> {
    let usable: Vec<Certificate> = certificates(bundle_pem.as_bytes())?
        .into_iter()
        .filter(|cert| usable_at(cert, now))
        .collect();
    if usable.is_empty() {
        return Err(ChainError::NoUsableCa);
    }
    Ok(usable)
}

/// Whether a path leads from `chain`'s leaf to one of `anchors` at `now`.
pub(crate) fn chains_to(chain: &KeyChain, anchors: &[Certificate], now: i64) -> bool {
    if anchors.iter().any(|anchor| anchor == &chain.leaf) {
        return true;
    }
    let issuers: Vec<&Certificate> = chain
        .intermediates
        .iter()
        .filter(|cert| may_issue(cert, now))
        .collect();
    let anchors: Vec<&Certificate> = anchors.iter().filter(|a| may_issue(a, now)).collect();
    search(&chain.leaf, &issuers, &anchors, &mut Vec::new())
}

/// Depth-first path building: `below` holds the intermediates already on
/// the path under `cert`.
fn search<'a>(
    cert: &Certificate,
    issuers: &[&'a Certificate],
    anchors: &[&Certificate],
    below: &mut Vec<&'a Certificate>,
) -> bool {
    let depth = below.len();
    if anchors
        .iter()
        .any(|anchor| allows_depth(anchor, depth) && issued_by(cert, anchor))
    {
        return true;
    }
    if depth >= MAX_INTERMEDIATES {
        return false;
    }
    for &issuer in issuers {
        if below.contains(&issuer) || !allows_depth(issuer, depth) || !issued_by(cert, issuer) {
            continue;
        }
        below.push(issuer);
        if search(issuer, issuers, anchors, below) {
            return true;
        }
        below.pop();
    }
    false
}

fn certificates(pem_text: &[u8]) -> Result<Vec<Certificate>, ChainError> {
    let mut certs = Vec::new();
    for block in pem::parse_blocks(pem_text)? {
        if block.label != "CERTIFICATE" {
            return Err(ChainError::NotCertificate(block.label));
        }
        if block.has_headers {
            return Err(ChainError::Headers);
        }
        certs.push(Certificate::from_der(&block.der)?);
    }
    Ok(certs)
}

/// Go's `IsCA`: a basicConstraints extension that says CA:TRUE.
fn is_ca(cert: &Certificate) -> Result<bool, ChainError> {
    Ok(basic_constraints(cert)?.is_some_and(|bc| bc.ca))
}

fn basic_constraints(cert: &Certificate) -> Result<Option<BasicConstraints>, ChainError> {
    Ok(cert
        .tbs_certificate
        .get::<BasicConstraints>()?
        .map(|(_, bc)| bc))
}

/// A CA certificate that may sign certificates and is usable now.
fn may_issue(cert: &Certificate, now: i64) -> bool {
    let key_cert_sign = match cert.tbs_certificate.get::<KeyUsage>() {
        Ok(Some((_, usage))) => usage.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    matches!(is_ca(cert), Ok(true)) && key_cert_sign && usable_at(cert, now)
}

/// Within its validity window at `now`, not SHA-1 signed, no weak RSA key
/// (notary's ValidateCertificate, without its day of NotBefore leeway, as
/// Go's path checks have none).
fn usable_at(cert: &Certificate, now: i64) -> bool {
    let validity = &cert.tbs_certificate.validity;
    let unix = |t: &x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    if now < unix(&validity.not_before) || now > unix(&validity.not_after) {
        return false;
    }
    if is_sha1(&cert.signature_algorithm.oid) {
        return false;
    }
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != oids::RSA_ENCRYPTION {
        return true;
    }
    spki.to_der()
        .ok()
        .and_then(|der| rsa_public_key(&der).ok())
        .is_some_and(|key| key.n().bits() >= MIN_RSA_BITS)
}

/// Whether `issuer` may sit above `depth` intermediates (its pathLen).
fn allows_depth(issuer: &Certificate, depth: usize) -> bool {
    match basic_constraints(issuer) {
        Ok(Some(BasicConstraints {
            path_len_constraint: Some(max),
            ..
        })) => depth <= usize::from(max),
        Ok(_) => true,
        Err(_) => false,
    }
}

fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .is_ok_and(|spki| verify_cert_signature(cert, &spki).is_ok())
}
