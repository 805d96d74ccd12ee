//! Key pair generation on the token.

use super::errors::OpError;
use super::objects::{read_public_key, KeyObject};
use super::sign::{KeyKind, SigningKey};
use super::token::Token;
use crate::encoding::{self, Curve};
use crate::{Algorithm, BackendError, KeySpec};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use rand_core::{OsRng, RngCore};

impl Token {
    pub(super) fn generate(&self, spec: &KeySpec) -> Result<KeyObject, OpError> {
        // Random, so keys made by other tools or other daemons never collide.
        let mut id = vec![0u8; 16];
        OsRng
            .try_fill_bytes(&mut id)
            .map_err(|e| BackendError::Device(format!("no randomness for CKA_ID: {e}")))?;
        let label = spec.label.as_bytes().to_vec();
        let (mechanism, params, kind) = key_pair_params(spec.algorithm)?;

        let mut public = vec![
            Attribute::Token(true),
            // Listable while the token is locked.
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
        ];
        public.extend(params);
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
        ];

        let session = self.rw_session()?;
        let (public_handle, private_handle) =
            session.generate_key_pair(&mechanism, &public, &private)?;
        let key = match read_public_key(&session, public_handle, id, spec.label.clone()) {
            Ok(key) if key.algorithm == spec.algorithm => key,
            // Not what we asked for, or unreadable: leave nothing half-made.
            result => {
                for handle in [private_handle, public_handle] {
                    if let Err(e) = session.destroy_object(handle) {
                        tracing::warn!(token = %self.label, "could not remove a generated key that failed checks: {e}");
                    }
                }
                return Err(match result {
                    Ok(key) => BackendError::Device(format!(
                        "token generated {} when {} was asked for",
                        key.algorithm, spec.algorithm
                    ))
                    .into(),
                    Err(unusable) => unusable.into_op(),
                });
            }
        };
        // First sign needs no search.
        self.remember(
            &key.id,
            SigningKey {
                handle: private_handle,
                kind,
            },
        );
        Ok(key)
    }
}

/// Mechanism, algorithm-specific public template attributes, and the key's kind.
fn key_pair_params(
    algorithm: Algorithm,
) -> Result<(Mechanism<'static>, Vec<Attribute>, KeyKind), OpError> {
    Ok(
        match (Curve::for_algorithm(algorithm), algorithm.rsa_bits()) {
            (Some(curve), _) => {
                let params = curve
                    .params()
                    .map_err(|e| BackendError::Device(format!("encoding EC parameters: {e}")))?;
                (
                    Mechanism::EccKeyPairGen,
                    vec![Attribute::EcParams(params)],
                    KeyKind::Ecdsa(curve),
                )
            }
            (None, Some(bits)) => {
                let bits = bits as usize;
                (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(bits.try_into()?),
                        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                    ],
                    KeyKind::Rsa(bits / 8),
                )
            }
            (None, None) => (
                Mechanism::EccEdwardsKeyPairGen,
                vec![Attribute::EcParams(encoding::ED25519_PARAMS.to_vec())],
                KeyKind::Ed25519,
            ),
        },
    )
}
