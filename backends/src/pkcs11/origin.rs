//! CKA_LOCAL and CKA_NEVER_EXTRACTABLE of a private key: PKCS#11's only
//! word on where a key came from, for tokens without attestation.

use super::errors::OpError;
use super::token::Token;
use crate::KeyOrigin;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};

impl Token {
    pub(super) fn key_origin(&self, id: &[u8]) -> Result<KeyOrigin, OpError> {
        self.pool.with_session(|session| {
            let template = [
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ];
            // Private keys are invisible until login.
            let Some(&handle) = session.find_objects(&template)?.first() else {
                return Err(if self.logged_in()? {
                    OpError::KeyNotFound
                } else {
                    OpError::NotLoggedIn
                });
            };
            let mut origin = KeyOrigin {
                local: false,
                never_extractable: false,
            };
            for attribute in session.get_attributes(
                handle,
                &[AttributeType::Local, AttributeType::NeverExtractable],
            )? {
                match attribute {
                    Attribute::Local(local) => origin.local = local,
                    Attribute::NeverExtractable(never) => origin.never_extractable = never,
                    _ => {}
                }
            }
            Ok(origin)
        })
    }
}
