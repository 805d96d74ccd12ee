//! Trust pinning from notary's client config (`trust_pinning`), with
//! notary's precedence: exact `certs` GUN, the longest matching wildcard
//! `certs` entry, the longest matching `ca` prefix, then TOFU unless disabled.

use super::TrustError;
use crate::keys::first_certificate;
use crate::pem;
use crate::rootcert::{verify_cert_signature, CertError};
use der::{Decode, Encode};
use serde::Deserialize;
use std::collections::BTreeMap;
use x509_cert::Certificate;

/// Intermediates a chain may pass through before reaching the pinned CA.
const MAX_CHAIN: usize = 8;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct TrustPinning {
    /// GUN (or `prefix*`) to the x509 key IDs (as in root.json) it may use.
    #[serde(default)]
    pub certs: BTreeMap<String, Vec<String>>,
    /// GUN prefix to a CA bundle. The config holds a file path; the caller
    /// replaces it with the bundle's PEM text before verification.
    #[serde(default)]
    pub ca: BTreeMap<String, String>,
    #[serde(default)]
    pub disable_tofu: bool,
}

/// How a first root of a GUN is to be trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Pin<'a> {
    Certs(&'a [String]),
    Ca {
        prefix: &'a str,
        bundle_pem: &'a str,
    },
    Tofu,
    Refuse,
}

impl TrustPinning {
    pub fn pin_for(&self, gun: &str) -> Pin<'_> {
        if let Some(ids) = self.certs.get(gun) {
            return Pin::Certs(ids);
        }
        let wildcard = self
            .certs
            .iter()
            .filter_map(|(pattern, ids)| {
                let prefix = pattern.strip_suffix('*')?;
                gun.starts_with(prefix).then_some((prefix.len(), ids))
            })
            .max_by_key(|(len, _)| *len);
        if let Some((_, ids)) = wildcard {
            return Pin::Certs(ids);
        }
        let ca = self
            .ca
            .iter()
            .filter(|(prefix, _)| gun.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len());
        if let Some((prefix, bundle_pem)) = ca {
            return Pin::Ca { prefix, bundle_pem };
        }
        if self.disable_tofu {
            Pin::Refuse
        } else {
            Pin::Tofu
        }
    }
}

/// Whether the leaf of `key_pem` (the PEM text of an x509 root key, leaf then
/// intermediates) chains up to a certificate of `bundle_pem` at `now`.
pub(crate) fn chains_to_ca(
    key_pem: &[u8],
    prefix: &str,
    bundle_pem: &str,
    now: i64,
) -> Result<bool, TrustError> {
    let bad_bundle = |source: CertError| TrustError::BadCaBundle {
        prefix: prefix.to_string(),
        source,
    };
    let cas = certificates(bundle_pem.as_bytes()).map_err(bad_bundle)?;
    for ca in &cas {
        check_ca(ca, now).map_err(bad_bundle)?;
    }
    let Ok((_, leaf)) = first_certificate(key_pem) else {
        return Ok(false);
    };
    let intermediates = certificates(key_pem).unwrap_or_default();
    let mut current = leaf;
    for _ in 0..MAX_CHAIN {
        if cas.iter().any(|ca| issued_by(&current, ca)) {
            return Ok(true);
        }
        match intermediates.iter().find(|i| issued_by(&current, i)) {
            Some(next) if next != &current => current = next.clone(),
            _ => return Ok(false),
        }
    }
    Ok(false)
}

fn certificates(pem_text: &[u8]) -> Result<Vec<Certificate>, CertError> {
    pem::parse_blocks(pem_text)
        .map_err(|e| CertError::Der(e.to_string()))?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| Certificate::from_der(&b.der).map_err(CertError::from))
        .collect()
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

fn check_ca(ca: &Certificate, now: i64) -> Result<(), CertError> {
    let validity = &ca.tbs_certificate.validity;
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if i64::try_from(not_after).unwrap_or(i64::MAX) < now {
        return Err(CertError::Expired {
            not_after: i64::try_from(not_after).unwrap_or(i64::MAX),
        });
    }
    if crate::rootcert::is_sha1(&ca.signature_algorithm.oid) {
        return Err(CertError::Sha1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_exact_wildcard_ca_tofu() {
        let mut pins = TrustPinning::default();
        assert_eq!(pins.pin_for("a.com/x"), Pin::Tofu);
        pins.ca.insert("a.com/".into(), "PEM1".into());
        pins.ca.insert("a.com/x".into(), "PEM2".into());
        assert_eq!(
            pins.pin_for("a.com/xy"),
            Pin::Ca {
                prefix: "a.com/x",
                bundle_pem: "PEM2"
            }
        );
        pins.certs.insert("a.com/*".into(), vec!["w1".into()]);
        pins.certs.insert("a.com/x*".into(), vec!["w2".into()]);
        assert_eq!(pins.pin_for("a.com/xy"), Pin::Certs(&["w2".to_string()]));
        pins.certs.insert("a.com/xy".into(), vec!["e".into()]);
        assert_eq!(pins.pin_for("a.com/xy"), Pin::Certs(&["e".to_string()]));
        let no_tofu = TrustPinning {
            disable_tofu: true,
            ..TrustPinning::default()
        };
        assert_eq!(no_tofu.pin_for("b.com/x"), Pin::Refuse);
    }
}
