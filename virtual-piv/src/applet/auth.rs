//! PIN, PUK and management-key commands.

use super::{MgmPending, PivApplet, TouchSensor};
use crate::apdu::{sw, Command, Response};
use crate::credential::unpad;
use crate::mgm::MgmKey;
use crate::tlv::{self, tlv};
use rand_core::{OsRng, RngCore};

pub(super) const KEY_PIN: u8 = 0x80;
pub(super) const KEY_PUK: u8 = 0x81;
pub(super) const KEY_MGM: u8 = 0x9B;
const PIN_BLOCK: usize = 8;
const MIN_PIN_LEN: usize = 6;

impl PivApplet {
    /// VERIFY: with a PIN it uses a try; empty only reports; P1=FF un-verifies.
    pub(super) fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != KEY_PIN {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        match (cmd.p1, cmd.data.len()) {
            (0xFF, 0) => {
                self.session.pin_verified = false;
                Response::ok(Vec::new())
            }
            (0x00, 0) if self.session.pin_verified => Response::ok(Vec::new()),
            (0x00, 0) => Response::status(self.pin.status()),
            (0x00, PIN_BLOCK) => {
                let result = self.pin.check(unpad(&cmd.data));
                self.session.pin_verified = result.is_ok();
                status_of(result)
            }
            (0x00, _) => Response::status(sw::INCORRECT_DATA),
            _ => Response::status(sw::WRONG_P1P2),
        }
    }

    /// CHANGE REFERENCE DATA for the PIN (P2=80) or PUK (P2=81).
    pub(super) fn change_reference(&mut self, cmd: &Command) -> Response {
        let Some((current, new)) = split_pins(&cmd.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let credential = match cmd.p2 {
            KEY_PIN => &mut self.pin,
            KEY_PUK => &mut self.puk,
            _ => return Response::status(sw::REFERENCE_NOT_FOUND),
        };
        let result = credential.check(current);
        if result.is_ok() {
            credential.set(new);
        }
        if cmd.p2 == KEY_PIN {
            self.session.pin_verified = false;
        }
        status_of(result)
    }

    /// RESET RETRY COUNTER: the PUK sets a new PIN and unblocks it.
    pub(super) fn reset_retry(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != KEY_PIN {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        let Some((puk, new_pin)) = split_pins(&cmd.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let result = self.puk.check(puk);
        if result.is_ok() {
            self.pin.reset_to(new_pin);
        }
        status_of(result)
    }

    /// SET PIN RETRIES (YubiKey): needs the management key and the PIN;
    /// PIN and PUK go back to their factory values, as on the real key.
    pub(super) fn set_pin_retries(&mut self, cmd: &Command) -> Response {
        if !(self.session.mgm_authenticated && self.session.pin_verified) {
            return Response::status(sw::SECURITY);
        }
        if !(1..=15).contains(&cmd.p1) || !(1..=15).contains(&cmd.p2) {
            return Response::status(sw::WRONG_P1P2);
        }
        self.pin.set_tries(cmd.p1);
        self.puk.set_tries(cmd.p2);
        self.session.pin_verified = false;
        Response::ok(Vec::new())
    }

    /// SET MANAGEMENT KEY (YubiKey): P2=FE additionally requires touch to authenticate.
    pub(super) fn set_mgm_key(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY);
        }
        if cmd.p1 != 0xFF || !matches!(cmd.p2, 0xFE | 0xFF) {
            return Response::status(sw::WRONG_P1P2);
        }
        let key = match cmd.data.as_slice() {
            [alg, KEY_MGM, len, key @ ..] if usize::from(*len) == key.len() => {
                MgmKey::new(*alg, key)
            }
            _ => None,
        };
        let Some(mut key) = key else {
            return Response::status(sw::INCORRECT_DATA);
        };
        key.touch_required = cmd.p2 == 0xFE;
        self.mgm = key;
        Response::ok(Vec::new())
    }

    /// GENERAL AUTHENTICATE on slot 9B: mutual (witness, then challenge) or
    /// single (challenge, then response) authentication.
    pub(super) fn authenticate_mgm(
        &mut self,
        alg: u8,
        fields: &[(u16, &[u8])],
        touch: &dyn TouchSensor,
    ) -> Response {
        if alg != self.mgm.alg() {
            return Response::status(sw::INCORRECT_DATA);
        }
        let field = |tag| tlv::find(fields, tag);
        let pending = self.session.mgm_pending.take();
        self.session.mgm_authenticated = false;
        match (field(0x80), field(0x81), field(0x82)) {
            // Mutual step 1: the card sends an encrypted witness.
            (Some(w), None, None) if w.is_empty() => {
                let witness = self.random_block();
                let Some(encrypted) = self.mgm.encrypt(&witness) else {
                    return Response::status(sw::INCORRECT_DATA);
                };
                self.session.mgm_pending = Some(MgmPending::Witness(witness));
                Response::ok(tlv(0x7C, &tlv(0x80, &encrypted)))
            }
            // Mutual step 2: decrypted witness back, host challenge to encrypt.
            (Some(witness), Some(challenge), None) => {
                let Some(MgmPending::Witness(expected)) = pending else {
                    return Response::status(sw::CONDITIONS);
                };
                if witness != expected || !self.touch_for_mgm(touch) {
                    return Response::status(sw::SECURITY);
                }
                let Some(answer) = self.mgm.encrypt(&challenge) else {
                    return Response::status(sw::INCORRECT_DATA);
                };
                self.session.mgm_authenticated = true;
                Response::ok(tlv(0x7C, &tlv(0x82, &answer)))
            }
            // Single step 1: the card sends a plain challenge.
            (None, Some(c), None) if c.is_empty() => {
                let challenge = self.random_block();
                self.session.mgm_pending = Some(MgmPending::Challenge(challenge.clone()));
                Response::ok(tlv(0x7C, &tlv(0x81, &challenge)))
            }
            // Single step 2: the host's encryption of it.
            (None, None, Some(response)) => {
                let Some(MgmPending::Challenge(challenge)) = pending else {
                    return Response::status(sw::CONDITIONS);
                };
                if self.mgm.encrypt(&challenge) != Some(response) || !self.touch_for_mgm(touch) {
                    return Response::status(sw::SECURITY);
                }
                self.session.mgm_authenticated = true;
                Response::ok(Vec::new())
            }
            _ => Response::status(sw::INCORRECT_DATA),
        }
    }

    fn touch_for_mgm(&mut self, touch: &dyn TouchSensor) -> bool {
        !self.mgm.touch_required || touch.wait_for_touch(KEY_MGM)
    }

    fn random_block(&self) -> Vec<u8> {
        let mut block = vec![0u8; self.mgm.block_len()];
        OsRng.fill_bytes(&mut block);
        block
    }
}

/// Old (or PUK) and new value, each 8 bytes padded with FF; new ones must be 6-8 long.
fn split_pins(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data.len() != 2 * PIN_BLOCK {
        return None;
    }
    let (current, new) = data.split_at(PIN_BLOCK);
    let new = unpad(new);
    (new.len() >= MIN_PIN_LEN).then_some((unpad(current), new))
}

fn status_of(result: Result<(), u16>) -> Response {
    match result {
        Ok(()) => Response::ok(Vec::new()),
        Err(sw) => Response::status(sw),
    }
}
