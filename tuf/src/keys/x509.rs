//! `*-x509` keys: the key object's `public` is a certificate's PEM text.

use super::{KeyError, KeyType, PublicKey};
use crate::pem;
use der::{Decode, Encode};
use x509_cert::Certificate;

impl PublicKey {
    /// DER of the first certificate in the PEM text, chosen as notary does:
    /// the first `CERTIFICATE` block without headers that parses.
    pub fn x509_certificate_der(&self) -> Result<Vec<u8>, KeyError> {
        if !self.keytype().is_x509() {
            return Err(KeyError::NotX509(self.keytype()));
        }
        first_certificate(self.public_bytes()).map(|(der, _)| der)
    }

    /// The bare `ecdsa`/`rsa` key of the certificate. Its ID is notary's
    /// "canonical key ID", under which the private key is stored.
    pub fn bare_key(&self) -> Result<PublicKey, KeyError> {
        if !self.keytype().is_x509() {
            return Err(KeyError::NotX509(self.keytype()));
        }
        let (_, cert) = first_certificate(self.public_bytes())?;
        let bare = spki_key(&cert)?;
        if bare.keytype() != self.keytype().bare() {
            return Err(KeyError::CertKeyMismatch {
                cert: bare.keytype(),
                keytype: self.keytype(),
            });
        }
        Ok(bare)
    }

    /// An `ecdsa-x509` or `rsa-x509` key holding exactly `pem_text`: the ID
    /// covers the text, so it is kept byte for byte.
    pub fn from_certificate_pem(pem_text: &str) -> Result<PublicKey, KeyError> {
        let (_, cert) = first_certificate(pem_text.as_bytes())?;
        let keytype = match spki_key(&cert)?.keytype() {
            KeyType::Ecdsa => KeyType::EcdsaX509,
            KeyType::Rsa => KeyType::RsaX509,
            other => {
                return Err(KeyError::UnsupportedAlgorithm(format!(
                    "{other} in a certificate"
                )))
            }
        };
        Ok(PublicKey::new(keytype, pem_text.as_bytes().to_vec()))
    }
}

/// The first usable certificate in PEM text, as DER and parsed.
pub(crate) fn first_certificate(pem_text: &[u8]) -> Result<(Vec<u8>, Certificate), KeyError> {
    pem::parse_blocks(pem_text)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE" && !b.has_headers)
        .find_map(|b| Certificate::from_der(&b.der).ok().map(|c| (b.der, c)))
        .ok_or(KeyError::NoCertificate)
}

fn spki_key(cert: &Certificate) -> Result<PublicKey, KeyError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let der = spki.to_der().map_err(|e| KeyError::Spki(e.to_string()))?;
    PublicKey::from_spki_der(&der)
}
