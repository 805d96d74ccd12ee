//! Key discovery and deletion: public key and certificate objects paired by
//! CKA_ID. Public objects are readable without login, so keys can be listed
//! while the token is still locked.

use super::errors::OpError;
use super::lock;
use super::token::Token;
use crate::encoding::{self, Curve};
use crate::{Algorithm, BackendKey, KeyUri};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;
use der::Decode;
use notary_tuf::PublicKey;
use std::collections::HashSet;
use x509_cert::Certificate;

/// A key as found on the token.
pub(super) struct KeyObject {
    pub(super) id: Vec<u8>,
    pub(super) label: String,
    pub(super) algorithm: Algorithm,
    pub(super) public: PublicKey,
}

/// Why an object was skipped: a failed call, or contents we cannot use.
pub(super) enum Unusable {
    Call(OpError),
    Content(String),
}

impl From<cryptoki::error::Error> for Unusable {
    fn from(e: cryptoki::error::Error) -> Self {
        Unusable::Call(e.into())
    }
}

impl Unusable {
    pub(super) fn into_op(self) -> OpError {
        match self {
            Unusable::Call(e) => e,
            Unusable::Content(reason) => OpError::Backend(crate::BackendError::Device(reason)),
        }
    }
}

impl Token {
    pub(super) fn list(&self) -> Result<Vec<BackendKey>, OpError> {
        self.pool.with_session(|session| {
            let mut keys = Vec::new();
            let mut seen = HashSet::new();
            for handle in session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])? {
                self.collect(session, handle, read_public_key, &mut seen, &mut keys)?;
            }
            // Some tokens (PIV) hold a key as private key + certificate only.
            for handle in session.find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
            ])? {
                self.collect(session, handle, read_certificate_key, &mut seen, &mut keys)?;
            }
            Ok(keys)
        })
    }

    /// Adds the key `read` finds in `handle` unless its CKA_ID was seen;
    /// skips (with a warning) what cannot be decoded.
    fn collect(
        &self,
        session: &Session,
        handle: ObjectHandle,
        read: fn(&Session, ObjectHandle, Vec<u8>, String) -> Result<KeyObject, Unusable>,
        seen: &mut HashSet<Vec<u8>>,
        keys: &mut Vec<BackendKey>,
    ) -> Result<(), OpError> {
        let (id, label) = match id_and_label(session, handle) {
            Ok(found) => found,
            Err(e) if e.token_gone() => return Err(e),
            Err(e) => {
                tracing::warn!(token = %self.label, handle = ?handle, "skipping object whose CKA_ID/CKA_LABEL cannot be read: {}", e.into_backend(&"reading object"));
                return Ok(());
            }
        };
        if seen.contains(&id) {
            return Ok(());
        }
        if id.is_empty() {
            tracing::warn!(token = %self.label, object = %label, "skipping key object without CKA_ID: it cannot be addressed by a key URI");
            return Ok(());
        }
        match read(session, handle, id.clone(), label.clone()) {
            Ok(key) => {
                seen.insert(id);
                keys.push(self.backend_key(&key));
            }
            Err(Unusable::Call(e)) if e.token_gone() => return Err(e),
            Err(Unusable::Call(e)) => {
                tracing::warn!(token = %self.label, object = %label, id = %hex::encode(&id), "skipping key object: {}", e.into_backend(&"reading key"));
            }
            Err(Unusable::Content(reason)) => {
                tracing::warn!(token = %self.label, object = %label, id = %hex::encode(&id), "skipping key object: {reason}");
            }
        }
        Ok(())
    }

    pub(super) fn backend_key(&self, key: &KeyObject) -> BackendKey {
        BackendKey {
            uri: KeyUri::new("pkcs11")
                .with("token", &self.label)
                .with("object", &key.label)
                .with_bytes("id", &key.id),
            public: key.public.clone(),
            algorithm: key.algorithm,
            label: key.label.clone(),
        }
    }

    /// Destroys the private key, public key and certificates with this CKA_ID.
    pub(super) fn delete(&self, id: &[u8]) -> Result<(), OpError> {
        // Without login the private key is invisible and would be left behind.
        if !self.logged_in()? {
            return Err(OpError::NotLoggedIn);
        }
        let session = self.rw_session()?;
        let mut handles = Vec::new();
        for class in [
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::CERTIFICATE,
        ] {
            handles.extend(
                session.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?,
            );
        }
        if handles.is_empty() {
            return Err(OpError::KeyNotFound);
        }
        lock(&self.keys).remove(id);
        for handle in handles {
            session.destroy_object(handle)?;
        }
        Ok(())
    }
}

fn id_and_label(session: &Session, handle: ObjectHandle) -> Result<(Vec<u8>, String), OpError> {
    let mut id = Vec::new();
    let mut label = String::new();
    for attr in session.get_attributes(handle, &[AttributeType::Id, AttributeType::Label])? {
        match attr {
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
            _ => {}
        }
    }
    Ok((id, label))
}

/// Decodes a public key object into a notary key.
pub(super) fn read_public_key(
    session: &Session,
    handle: ObjectHandle,
    id: Vec<u8>,
    label: String,
) -> Result<KeyObject, Unusable> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let (mut key_type, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    let missing = |what: &str| Unusable::Content(format!("public key object has no {what}"));
    let (algorithm, public) = match key_type {
        Some(KeyType::EC) => {
            let params = params.ok_or_else(|| missing("CKA_EC_PARAMS"))?;
            let curve = Curve::from_params(&params).ok_or_else(|| {
                Unusable::Content(format!(
                    "EC key on a curve other than P-256/P-384 (CKA_EC_PARAMS {})",
                    hex::encode(&params)
                ))
            })?;
            let value = point.ok_or_else(|| missing("CKA_EC_POINT"))?;
            let raw =
                encoding::ec_point(&value, encoding::uncompressed_len(curve)).ok_or_else(|| {
                    Unusable::Content("CKA_EC_POINT is not an uncompressed point".into())
                })?;
            (
                curve.algorithm(),
                encoding::ecdsa_public(curve, raw).map_err(Unusable::Content)?,
            )
        }
        Some(KeyType::EC_EDWARDS) => {
            if !params.as_deref().is_some_and(encoding::is_ed25519_params) {
                return Err(Unusable::Content(
                    "EdDSA key on a curve other than Ed25519".into(),
                ));
            }
            let value = point.ok_or_else(|| missing("CKA_EC_POINT"))?;
            let raw = encoding::ec_point(&value, 32).ok_or_else(|| {
                Unusable::Content("CKA_EC_POINT is not a 32-byte Ed25519 key".into())
            })?;
            (
                Algorithm::Ed25519,
                encoding::ed25519_public(raw).map_err(Unusable::Content)?,
            )
        }
        Some(KeyType::RSA) => {
            let n = modulus.ok_or_else(|| missing("CKA_MODULUS"))?;
            let e = exponent.ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?;
            encoding::rsa_public(&n, &e).map_err(Unusable::Content)?
        }
        Some(other) => return Err(Unusable::Content(format!("unsupported key type {other}"))),
        None => return Err(missing("CKA_KEY_TYPE")),
    };
    Ok(KeyObject {
        id,
        label,
        algorithm,
        public,
    })
}

/// The key a certificate object certifies.
fn read_certificate_key(
    session: &Session,
    handle: ObjectHandle,
    id: Vec<u8>,
    label: String,
) -> Result<KeyObject, Unusable> {
    let value = certificate_value(session, handle)?;
    let cert = Certificate::from_der(&value)
        .map_err(|e| Unusable::Content(format!("certificate is not valid DER X.509: {e}")))?;
    let (algorithm, public) =
        encoding::public_from_spki(&cert.tbs_certificate.subject_public_key_info)
            .map_err(Unusable::Content)?;
    Ok(KeyObject {
        id,
        label,
        algorithm,
        public,
    })
}

pub(super) fn certificate_value(
    session: &Session,
    handle: ObjectHandle,
) -> Result<Vec<u8>, Unusable> {
    session
        .get_attributes(handle, &[AttributeType::Value])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| Unusable::Content("certificate object has no CKA_VALUE".into()))
}
