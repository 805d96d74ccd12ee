//! Signing in notary's encodings, with private key handles cached by CKA_ID.

use super::errors::OpError;
use super::lock;
use super::token::Token;
use crate::encoding::{self, Curve};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use sha2::{Digest, Sha256};

/// What signing needs to know about a key.
#[derive(Clone, Copy, Debug)]
pub(super) enum KeyKind {
    Ecdsa(Curve),
    Ed25519,
    /// Modulus length in bytes, to restore dropped leading zeros.
    Rsa(usize),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct SigningKey {
    pub(super) handle: ObjectHandle,
    pub(super) kind: KeyKind,
}

/// Notary's RSA-PSS: SHA-256, MGF1-SHA-256, 32-byte salt.
const PSS: PkcsPssParams = PkcsPssParams {
    hash_alg: MechanismType::SHA256,
    mgf: PkcsMgfType::MGF1_SHA256,
    s_len: cryptoki::types::Ulong::new(32),
};

impl Token {
    pub(super) fn sign(&self, id: &[u8], payload: &[u8]) -> Result<Vec<u8>, OpError> {
        self.pool.with_session(|session| {
            let cached = lock(&self.keys).get(id).copied();
            let key = match cached {
                Some(key) => key,
                None => self.find_signing_key(session, id)?,
            };
            match sign_with(session, key, payload) {
                Err(e) if e.stale_handle() => {
                    lock(&self.keys).remove(id);
                    let key = self.find_signing_key(session, id)?;
                    sign_with(session, key, payload)
                }
                result => result,
            }
        })
    }

    /// Finds the private key and caches its handle. Object handles are valid
    /// in every session of this application until logout.
    fn find_signing_key(&self, session: &Session, id: &[u8]) -> Result<SigningKey, OpError> {
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ];
        let mut found = session.find_objects(&template)?;
        if found.is_empty() {
            // Private keys are invisible until login: tell "locked" from
            // "absent". Another worker may have logged in again between the
            // search and this check, so a logged-in token is searched once more.
            if !self.logged_in()? {
                return Err(OpError::NotLoggedIn);
            }
            found = session.find_objects(&template)?;
        }
        let Some(&handle) = found.first() else {
            return Err(OpError::KeyNotFound);
        };
        let key = SigningKey {
            handle,
            kind: key_kind(session, handle)?,
        };
        self.remember(id, key);
        Ok(key)
    }

    pub(super) fn remember(&self, id: &[u8], key: SigningKey) {
        lock(&self.keys).insert(id.to_vec(), key);
    }
}

fn key_kind(session: &Session, handle: ObjectHandle) -> Result<KeyKind, OpError> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::Modulus,
        ],
    )?;
    let mut key_type = None;
    let mut params = None;
    let mut modulus_len = 0;
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::Modulus(n) => modulus_len = n.len(),
            _ => {}
        }
    }
    let unsupported =
        |what: String| OpError::Backend(crate::BackendError::UnsupportedAlgorithm(what));
    match key_type {
        Some(KeyType::EC) => params
            .as_deref()
            .and_then(Curve::from_params)
            .map(KeyKind::Ecdsa)
            .ok_or_else(|| unsupported("ECDSA on a curve other than P-256/P-384".into())),
        Some(KeyType::EC_EDWARDS) if params.as_deref().is_some_and(encoding::is_ed25519_params) => {
            Ok(KeyKind::Ed25519)
        }
        Some(KeyType::RSA) => Ok(KeyKind::Rsa(modulus_len)),
        Some(other) => Err(unsupported(format!("PKCS#11 key type {other}"))),
        None => Err(unsupported("private key without CKA_KEY_TYPE".into())),
    }
}

fn sign_with(session: &Session, key: SigningKey, payload: &[u8]) -> Result<Vec<u8>, OpError> {
    match key.kind {
        // Hash on the host and use plain CKM_ECDSA: SoftHSM (and others) lack
        // CKM_ECDSA_SHA256, and notary signs SHA-256 for P-384 as well.
        KeyKind::Ecdsa(curve) => {
            let digest = Sha256::digest(payload);
            let sig = session.sign(&Mechanism::Ecdsa, key.handle, &digest)?;
            encoding::ecdsa_raw_signature(&sig, curve)
                .map_err(|e| OpError::Backend(crate::BackendError::Device(e)))
        }
        KeyKind::Ed25519 => Ok(session.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            key.handle,
            payload,
        )?),
        KeyKind::Rsa(modulus_len) => {
            let sig = session.sign(&Mechanism::Sha256RsaPkcsPss(PSS), key.handle, payload)?;
            Ok(encoding::left_pad(sig, modulus_len))
        }
    }
}
