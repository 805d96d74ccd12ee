//! The PIV applet of a YubiKey 5: card state, session state, command
//! chaining, GET RESPONSE and the instruction dispatch.

mod auth;
mod objects;
mod slots;
#[cfg(test)]
mod tests;

use crate::apdu::{sw, Command, Response};
use crate::attest::DeviceAttestation;
use crate::credential::{Credential, DEFAULT_PIN, DEFAULT_PUK};
use crate::mgm::MgmKey;
use crate::profile::Profile;
use std::collections::BTreeMap;
use std::time::Instant;

pub(crate) use slots::SlotKey;

/// PIV application identifier (the YubiKey answers to any longer AID with this prefix).
pub(crate) const PIV_AID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

/// Largest response body in one short APDU; the rest waits for GET RESPONSE.
const MAX_RESPONSE_CHUNK: usize = 256;

/// Waits for the user's touch on behalf of the applet.
pub(crate) trait TouchSensor {
    /// Blocks until touched (`true`) or the touch timeout passed (`false`).
    fn wait_for_touch(&self, slot: u8) -> bool;
}

pub(crate) struct PivApplet {
    profile: Profile,
    pin: Credential,
    puk: Credential,
    mgm: MgmKey,
    slots: BTreeMap<u8, SlotKey>,
    objects: BTreeMap<u32, Vec<u8>>,
    attestation: DeviceAttestation,
    last_touch: Option<Instant>,
    session: Session,
}

/// Lost on power cycle, reset and SELECT, as on the real card.
#[derive(Default)]
struct Session {
    selected: bool,
    pin_verified: bool,
    /// PIN policy "always": VERIFY must be the command right before the sign.
    pin_just_verified: bool,
    mgm_authenticated: bool,
    /// Witness (mutual auth) or challenge (single auth) awaiting its answer.
    mgm_pending: Option<MgmPending>,
    chain: Option<Chain>,
    pending_response: Vec<u8>,
}

enum MgmPending {
    Witness(Vec<u8>),
    Challenge(Vec<u8>),
}

struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

impl PivApplet {
    pub(crate) fn new(profile: Profile) -> PivApplet {
        let mut applet = PivApplet {
            profile,
            pin: Credential::factory(DEFAULT_PIN),
            puk: Credential::factory(DEFAULT_PUK),
            mgm: MgmKey::factory(profile.default_mgm_alg()),
            slots: BTreeMap::new(),
            objects: BTreeMap::new(),
            attestation: DeviceAttestation::new(&profile),
            last_touch: None,
            session: Session::default(),
        };
        applet.store_attestation_certificate();
        applet
    }

    /// Power off/on or warm reset: all session state is gone.
    pub(crate) fn power_cycle(&mut self) {
        self.session = Session::default();
    }

    pub(crate) fn pin_tries_left(&self) -> u8 {
        self.pin.left()
    }

    pub(crate) fn puk_tries_left(&self) -> u8 {
        self.puk.left()
    }

    pub(crate) fn slot(&self, slot: u8) -> Option<&SlotKey> {
        self.slots.get(&slot)
    }

    /// Answers one raw command APDU.
    pub(crate) fn process(&mut self, raw: &[u8], touch: &dyn TouchSensor) -> Response {
        let Some(cmd) = Command::parse(raw) else {
            self.session.pin_just_verified = false;
            return Response::status(sw::WRONG_LENGTH);
        };
        if cmd.ins == INS_GET_RESPONSE {
            return self.next_response_chunk();
        }
        self.session.pending_response.clear();
        let pin_just_verified = std::mem::take(&mut self.session.pin_just_verified);
        if cmd.is_chained() {
            self.session.pin_just_verified = pin_just_verified;
            return self.add_to_chain(cmd);
        }
        let cmd = self.complete_chain(cmd);
        let response = self.dispatch(&cmd, pin_just_verified, touch);
        if cmd.ins == INS_VERIFY && !cmd.data.is_empty() && response.sw == sw::OK {
            self.session.pin_just_verified = true;
        }
        self.chunk(response)
    }

    fn dispatch(
        &mut self,
        cmd: &Command,
        pin_just_verified: bool,
        touch: &dyn TouchSensor,
    ) -> Response {
        if cmd.cla & !crate::apdu::CLA_CHAIN != 0 {
            return Response::status(sw::CLA_NOT_SUPPORTED);
        }
        if cmd.ins == INS_SELECT {
            return self.select(cmd);
        }
        if !self.session.selected {
            return Response::status(sw::INS_NOT_SUPPORTED);
        }
        match cmd.ins {
            INS_GET_VERSION => Response::ok(self.profile.version.to_vec()),
            INS_GET_SERIAL => Response::ok(self.profile.serial.to_be_bytes().to_vec()),
            INS_VERIFY => self.verify(cmd),
            INS_CHANGE_REFERENCE => self.change_reference(cmd),
            INS_RESET_RETRY => self.reset_retry(cmd),
            INS_GENERAL_AUTHENTICATE => self.general_authenticate(cmd, pin_just_verified, touch),
            INS_GENERATE => self.generate(cmd),
            INS_GET_DATA => self.get_data(cmd),
            INS_PUT_DATA => self.put_data(cmd),
            INS_GET_METADATA => self.metadata(cmd),
            INS_SET_MGM_KEY => self.set_mgm_key(cmd),
            INS_SET_PIN_RETRIES => self.set_pin_retries(cmd),
            INS_ATTEST => self.attest(cmd),
            INS_RESET => self.reset(),
            _ => Response::status(sw::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x04 || !cmd.data.starts_with(&PIV_AID) {
            return Response::status(sw::NOT_FOUND);
        }
        self.session = Session {
            selected: true,
            ..Session::default()
        };
        // Application property template: PIX with version, then the AID.
        let aid = crate::tlv::tlv(0x4F, &PIV_AID);
        let body = [
            crate::tlv::tlv(0x4F, &[0x00, 0x00, 0x10, 0x00, 0x01, 0x00]),
            crate::tlv::tlv(0x79, &aid),
        ]
        .concat();
        Response::ok(crate::tlv::tlv(0x61, &body))
    }

    /// Factory state except the device attestation key and its certificate.
    fn reset(&mut self) -> Response {
        if !(self.pin.is_blocked() && self.puk.is_blocked()) {
            return Response::status(sw::CONDITIONS);
        }
        self.pin = Credential::factory(DEFAULT_PIN);
        self.puk = Credential::factory(DEFAULT_PUK);
        self.mgm = MgmKey::factory(self.profile.default_mgm_alg());
        self.slots.clear();
        self.objects.clear();
        self.store_attestation_certificate();
        self.session = Session {
            selected: true,
            ..Session::default()
        };
        Response::ok(Vec::new())
    }

    fn add_to_chain(&mut self, cmd: Command) -> Response {
        match &mut self.session.chain {
            Some(chain) if (chain.ins, chain.p1, chain.p2) == (cmd.ins, cmd.p1, cmd.p2) => {
                chain.data.extend_from_slice(&cmd.data)
            }
            _ => {
                self.session.chain = Some(Chain {
                    ins: cmd.ins,
                    p1: cmd.p1,
                    p2: cmd.p2,
                    data: cmd.data,
                })
            }
        }
        Response::ok(Vec::new())
    }

    /// The last piece of a chain carries the header; earlier pieces' data goes first.
    fn complete_chain(&mut self, mut cmd: Command) -> Command {
        if let Some(chain) = self.session.chain.take() {
            if (chain.ins, chain.p1, chain.p2) == (cmd.ins, cmd.p1, cmd.p2) {
                let mut data = chain.data;
                data.extend_from_slice(&cmd.data);
                cmd.data = data;
            }
        }
        cmd
    }

    fn chunk(&mut self, mut response: Response) -> Response {
        if response.data.len() <= MAX_RESPONSE_CHUNK {
            return response;
        }
        self.session.pending_response = response.data.split_off(MAX_RESPONSE_CHUNK);
        response.sw = bytes_remaining(self.session.pending_response.len());
        response
    }

    fn next_response_chunk(&mut self) -> Response {
        if self.session.pending_response.is_empty() {
            return Response::status(sw::CONDITIONS);
        }
        let rest = std::mem::take(&mut self.session.pending_response);
        self.chunk(Response::ok(rest))
    }
}

/// `61xx`: more response bytes wait (`00` means 256 or more).
fn bytes_remaining(len: usize) -> u16 {
    0x6100 | u16::try_from(len).ok().filter(|&n| n < 256).unwrap_or(0)
}

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE: u8 = 0x24;
const INS_RESET_RETRY: u8 = 0x2C;
const INS_GENERATE: u8 = 0x47;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_SELECT: u8 = 0xA4;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_GET_DATA: u8 = 0xCB;
const INS_PUT_DATA: u8 = 0xDB;
const INS_GET_METADATA: u8 = 0xF7;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_ATTEST: u8 = 0xF9;
const INS_SET_PIN_RETRIES: u8 = 0xFA;
const INS_RESET: u8 = 0xFB;
const INS_GET_VERSION: u8 = 0xFD;
const INS_SET_MGM_KEY: u8 = 0xFF;
