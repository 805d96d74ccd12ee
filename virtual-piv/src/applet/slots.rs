//! Key slots: GENERATE, GENERAL AUTHENTICATE (sign), GET METADATA, ATTEST.

use super::auth::{KEY_MGM, KEY_PIN, KEY_PUK};
use super::{PivApplet, TouchSensor};
use crate::apdu::{sw, Command, Response};
use crate::keys::{KeyError, KeyPair};
use crate::tlv::{self, tlv};
use std::time::{Duration, Instant};

pub(super) const PIN_POLICY_DEFAULT: u8 = 0;
pub(super) const PIN_POLICY_NEVER: u8 = 1;
pub(super) const PIN_POLICY_ONCE: u8 = 2;
pub(super) const PIN_POLICY_ALWAYS: u8 = 3;
pub(super) const TOUCH_POLICY_DEFAULT: u8 = 0;
pub(super) const TOUCH_POLICY_NEVER: u8 = 1;
pub(super) const TOUCH_POLICY_ALWAYS: u8 = 2;
pub(super) const TOUCH_POLICY_CACHED: u8 = 3;
/// A touch covers "cached" slots for this long.
const TOUCH_CACHE: Duration = Duration::from_secs(15);
const SLOT_ATTESTATION: u8 = 0xF9;

/// Metadata origin byte: generated on the card (import is not emulated).
const ORIGIN_GENERATED: u8 = 1;

pub(crate) struct SlotKey {
    pub key: KeyPair,
    pub pin_policy: u8,
    pub touch_policy: u8,
}

/// Slots that can hold a generated key: 9A, 9C, 9D, 9E and retired 82-95.
fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95)
}

/// The YubiKey's per-slot defaults: 9C signs with PIN always, 9E never.
fn default_pin_policy(slot: u8) -> u8 {
    match slot {
        0x9C => PIN_POLICY_ALWAYS,
        0x9E => PIN_POLICY_NEVER,
        _ => PIN_POLICY_ONCE,
    }
}

impl PivApplet {
    pub(super) fn generate(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY);
        }
        if cmd.p1 != 0 || !is_key_slot(cmd.p2) {
            return Response::status(sw::WRONG_P1P2);
        }
        let Some(params) = template(&cmd.data, 0xAC) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Ok(fields) = tlv::parse(&params) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let byte = |tag, default| match tlv::find(&fields, tag).as_deref() {
            None => Some(default),
            Some([b]) => Some(*b),
            Some(_) => None,
        };
        let (Some(alg), Some(pin_policy), Some(touch_policy)) = (
            byte(0x80, 0),
            byte(0xAA, PIN_POLICY_DEFAULT),
            byte(0xAB, TOUCH_POLICY_DEFAULT),
        ) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if pin_policy > PIN_POLICY_ALWAYS || touch_policy > TOUCH_POLICY_CACHED {
            return Response::status(sw::INCORRECT_DATA);
        }
        if alg == crate::keys::ALG_ED25519 && self.profile.version < [5, 7, 0] {
            return Response::status(sw::INCORRECT_DATA);
        }
        let key = match KeyPair::generate(alg) {
            Ok(key) => key,
            Err(_) => return Response::status(sw::INCORRECT_DATA),
        };
        let public = tlv(0x7F49, &key.public_tlvs());
        let slot = SlotKey {
            key,
            pin_policy: if pin_policy == PIN_POLICY_DEFAULT {
                default_pin_policy(cmd.p2)
            } else {
                pin_policy
            },
            touch_policy: if touch_policy == TOUCH_POLICY_DEFAULT {
                TOUCH_POLICY_NEVER
            } else {
                touch_policy
            },
        };
        self.slots.insert(cmd.p2, slot);
        Response::ok(public)
    }

    /// INS 87: management-key authentication for slot 9B, else a private-key
    /// operation subject to the slot's PIN and touch policies.
    pub(super) fn general_authenticate(
        &mut self,
        cmd: &Command,
        pin_just_verified: bool,
        touch: &dyn TouchSensor,
    ) -> Response {
        let Some(inner) = template(&cmd.data, 0x7C) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Ok(fields) = tlv::parse(&inner) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if cmd.p2 == KEY_MGM {
            return self.authenticate_mgm(cmd.p1, &fields, touch);
        }
        let Some(slot) = self.slots.get(&cmd.p2) else {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        };
        if slot.key.alg() != cmd.p1 {
            return Response::status(sw::INCORRECT_DATA);
        }
        let pin_ok = match slot.pin_policy {
            PIN_POLICY_NEVER => true,
            PIN_POLICY_ALWAYS => pin_just_verified,
            _ => self.session.pin_verified,
        };
        if !pin_ok {
            return Response::status(sw::SECURITY);
        }
        let Some(input) = tlv::find(&fields, 0x81) else {
            // 0x85 (ECDH / decipher) is not emulated.
            return Response::status(sw::INCORRECT_DATA);
        };
        let needs_touch = match slot.touch_policy {
            TOUCH_POLICY_ALWAYS => true,
            TOUCH_POLICY_CACHED => self.last_touch.is_none_or(|t| t.elapsed() > TOUCH_CACHE),
            _ => false,
        };
        if needs_touch {
            // A real YubiKey blinks for ~15 s, then answers 6982.
            if !touch.wait_for_touch(cmd.p2) {
                return Response::status(sw::SECURITY);
            }
            self.last_touch = Some(Instant::now());
        }
        let Some(slot) = self.slots.get(&cmd.p2) else {
            return Response::status(sw::NOT_FOUND);
        };
        match slot.key.sign(&input) {
            Ok(signature) => Response::ok(tlv(0x7C, &tlv(0x82, &signature))),
            Err(KeyError::BadInput | KeyError::UnsupportedAlgorithm) => {
                Response::status(sw::INCORRECT_DATA)
            }
        }
    }

    pub(super) fn metadata(&self, cmd: &Command) -> Response {
        if !self.profile.has_metadata() {
            return Response::status(sw::INS_NOT_SUPPORTED);
        }
        let body = match cmd.p2 {
            KEY_PIN | KEY_PUK => {
                let c = if cmd.p2 == KEY_PIN {
                    &self.pin
                } else {
                    &self.puk
                };
                [
                    tlv(0x01, &[0xFF]),
                    tlv(0x02, &[0x00, 0x00]),
                    tlv(0x05, &[u8::from(c.is_default())]),
                    tlv(0x06, &[c.tries(), c.left()]),
                ]
                .concat()
            }
            KEY_MGM => [
                tlv(0x01, &[self.mgm.alg()]),
                tlv(
                    0x02,
                    &[
                        0x00,
                        if self.mgm.touch_required {
                            TOUCH_POLICY_ALWAYS
                        } else {
                            TOUCH_POLICY_NEVER
                        },
                    ],
                ),
                tlv(0x05, &[u8::from(self.mgm.is_default())]),
            ]
            .concat(),
            slot => match self.slots.get(&slot) {
                Some(k) => [
                    tlv(0x01, &[k.key.alg()]),
                    tlv(0x02, &[k.pin_policy, k.touch_policy]),
                    tlv(0x03, &[ORIGIN_GENERATED]),
                    tlv(0x04, &k.key.public_tlvs()),
                ]
                .concat(),
                None => return Response::status(sw::REFERENCE_NOT_FOUND),
            },
        };
        Response::ok(body)
    }

    /// INS F9: an X.509 certificate for a key generated on this card.
    pub(super) fn attest(&self, cmd: &Command) -> Response {
        if cmd.p1 == SLOT_ATTESTATION || !is_key_slot(cmd.p1) {
            return Response::status(sw::WRONG_P1P2);
        }
        let Some(slot) = self.slots.get(&cmd.p1) else {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        };
        Response::ok(self.attestation.attest(
            &self.profile,
            cmd.p1,
            &slot.key.spki_der(),
            slot.pin_policy,
            slot.touch_policy,
        ))
    }
}

/// The value of `data` if it is exactly one TLV with `tag`.
fn template(data: &[u8], tag: u16) -> Option<Vec<u8>> {
    match tlv::parse(data).ok()?.as_slice() {
        [(t, value)] if *t == tag => Some(value.to_vec()),
        _ => None,
    }
}
