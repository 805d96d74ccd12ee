//! Signing on a slot: the PIN step each policy needs, the touch cache, and
//! telling a missed touch from a missing PIN (the card answers both with
//! SW 6982).

use super::card::{CardError, PivCard};
use super::session::{Session, SlotFacts};
use super::YubiKeyBackend;
use crate::encoding::{ecdsa_raw_signature, left_pad, Curve};
use crate::piv::{PinPolicy, Slot, TouchHint, TouchNeed, TouchPolicy, TOUCH_TIMEOUT_MS};
use crate::{Algorithm, BackendError, KeyUri};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// How long one touch covers a touch-cached slot.
const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// Makes sure the PIN is verified as the slot's policy wants, right before
/// the private-key operation. Never retries: a wrong PIN is reported.
/// Returns whether the PIN is known to be verified now.
pub(super) fn prepare_pin(
    card: &mut dyn PivCard,
    policy: Option<PinPolicy>,
    pin: Option<&SecretString>,
) -> Result<bool, BackendError> {
    let verify = |card: &mut dyn PivCard, pin: &SecretString| {
        card.verify_pin(pin.expose_secret().as_bytes())
            .map(|()| true)
            .map_err(BackendError::from)
    };
    match policy {
        Some(PinPolicy::Never) => Ok(false),
        // VERIFY must be the command immediately before the signature.
        Some(PinPolicy::Always) => match pin {
            Some(pin) => verify(card, pin),
            None => Err(BackendError::LoginRequired),
        },
        Some(PinPolicy::Once) | None => {
            if card.pin_state()?.verified {
                return Ok(true);
            }
            match pin {
                Some(pin) => verify(card, pin),
                // Unknown policy: the card will say if it wants the PIN.
                None if policy.is_none() => Ok(false),
                None => Err(BackendError::LoginRequired),
            }
        }
    }
}

/// The bytes the card signs: for ECDSA, SHA-256 of the payload, left-padded
/// to the curve size (which leaves the number unchanged); for RSA, the
/// EMSA-PSS encoded message.
fn card_input(algorithm: Algorithm, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
    let size = match algorithm {
        Algorithm::EcdsaP256 => 32,
        Algorithm::EcdsaP384 => 48,
        Algorithm::Rsa2048 => {
            let mut salt = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
            return super::pss::encode(payload, 2048, &salt)
                .ok_or_else(|| BackendError::UnsupportedAlgorithm(algorithm.to_string()));
        }
        other => return Err(BackendError::UnsupportedAlgorithm(other.to_string())),
    };
    let digest = Sha256::digest(payload);
    let mut input = vec![0u8; size - digest.len()];
    input.extend_from_slice(&digest);
    Ok(input)
}

/// The card's answer as notary's signature: raw r||s for ECDSA (the card
/// gives DER), the full-length block for RSA.
fn raw_signature(algorithm: Algorithm, der: &[u8]) -> Result<Vec<u8>, BackendError> {
    let bad = |e: String| BackendError::Device(format!("card signature: {e}"));
    match (algorithm, Curve::for_algorithm(algorithm)) {
        (_, Some(curve)) => ecdsa_raw_signature(der, curve).map_err(bad),
        (Algorithm::Rsa2048, None) if der.len() <= 256 => Ok(left_pad(der.to_vec(), 256)),
        (other, _) => Err(BackendError::UnsupportedAlgorithm(other.to_string())),
    }
}

impl Session {
    /// Signs `payload` with a slot's key, PIN first as its policy wants.
    pub(super) fn sign_slot(
        &mut self,
        card: &mut dyn PivCard,
        slot: Slot,
        payload: &[u8],
        pin: Option<&SecretString>,
    ) -> Result<Vec<u8>, BackendError> {
        let Some(facts) = self.facts(card, slot)? else {
            return Err(BackendError::KeyNotFound(format!(
                "YubiKey {} slot {slot} is empty",
                card.serial()
            )));
        };
        let input = card_input(facts.algorithm, payload)?;
        let pin_verified = prepare_pin(card, facts.pin_policy, pin)?;
        match card.sign(slot, facts.algorithm, &input) {
            Ok(der) => {
                if facts.touch_policy != Some(TouchPolicy::Never) {
                    self.last_touch = Some(Instant::now());
                }
                raw_signature(facts.algorithm, &der)
            }
            Err(CardError::SecurityStatus) => {
                Err(refusal(card.serial(), slot, &facts, pin_verified))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// True when a signature with this slot would stop for a missing PIN.
    fn pin_missing(&self, card: &mut dyn PivCard, facts: &SlotFacts) -> Result<bool, BackendError> {
        Ok(match facts.pin_policy {
            Some(PinPolicy::Always) => self.pending_pin.is_none(),
            Some(PinPolicy::Once) => self.pending_pin.is_none() && !card.pin_state()?.verified,
            _ => false,
        })
    }

    pub(super) fn touch_need(&self, facts: &SlotFacts) -> TouchNeed {
        match facts.touch_policy {
            Some(TouchPolicy::Always) => TouchNeed::Required,
            Some(TouchPolicy::Cached) => match self.last_touch {
                Some(t) if t.elapsed() < TOUCH_CACHE => TouchNeed::NotNeeded,
                _ => TouchNeed::Required,
            },
            Some(TouchPolicy::Never) => TouchNeed::NotNeeded,
            None => TouchNeed::Unknown,
        }
    }
}

/// Why the card refused (SW 6982): with the PIN verified or not needed and
/// a touch policy, the touch did not come; otherwise the PIN is missing.
fn refusal(serial: u32, slot: Slot, facts: &SlotFacts, pin_verified: bool) -> BackendError {
    let pin_settled = pin_verified || facts.pin_policy == Some(PinPolicy::Never);
    let may_need_touch = facts.touch_policy != Some(TouchPolicy::Never);
    if pin_settled && may_need_touch {
        BackendError::TouchTimeout(format!(
            "YubiKey {serial} slot {slot} was not touched within its timeout; \
             sign again and touch the key while it blinks"
        ))
    } else {
        BackendError::LoginRequired
    }
}

impl YubiKeyBackend {
    pub(super) fn sign_with_card(
        &self,
        uri: &KeyUri,
        payload: &[u8],
    ) -> Result<Vec<u8>, BackendError> {
        // A PIN a person gave serves this signature only.
        let pin = self.lock_session()?.pending_pin.take();
        self.with_card(|card, session| {
            let slot = self.slot_of(uri, card.serial())?;
            session.sign_slot(card, slot, payload, pin.as_ref())
        })
        .map(|(_, sig)| sig)
    }

    pub(super) fn hint(&self, uri: &KeyUri) -> Result<TouchHint, BackendError> {
        self.with_card(|card, session| {
            let slot = self.slot_of(uri, card.serial())?;
            let need = match session.facts(card, slot)? {
                // A signature that will stop for the PIN first needs no
                // touch prompt yet.
                Some(facts) if session.pin_missing(card, &facts)? => TouchNeed::NotNeeded,
                Some(facts) => session.touch_need(&facts),
                None => TouchNeed::Unknown,
            };
            Ok(TouchHint {
                need,
                serial: card.serial().to_string(),
                slot: slot.to_string(),
                timeout_ms: TOUCH_TIMEOUT_MS,
            })
        })
        .map(|(_, hint)| hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p384_input_is_the_digest_left_padded() {
        let input = card_input(Algorithm::EcdsaP384, b"x").unwrap();
        assert_eq!(input.len(), 48);
        assert!(input[..16].iter().all(|&b| b == 0));
        assert_eq!(&input[16..], Sha256::digest(b"x").as_slice());
        assert_eq!(card_input(Algorithm::EcdsaP256, b"x").unwrap().len(), 32);
        assert!(card_input(Algorithm::Ed25519, b"x").is_err());
        assert_eq!(card_input(Algorithm::Rsa2048, b"x").unwrap().len(), 256);
    }
}
