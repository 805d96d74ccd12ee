//! Data objects: GET DATA and PUT DATA (certificates, CHUID, admin data...).

use super::PivApplet;
use crate::apdu::{sw, Command, Response};
use crate::tlv::{self, tlv};

/// Discovery object (7E): PIV AID and PIN usage policy.
const DISCOVERY: [u8; 20] = [
    0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
    0x2F, 0x02, 0x40, 0x00,
];
/// "Printed information": where ykman and the crate keep the PIN-protected
/// management key, so reading it needs the PIN.
const OBJ_PRINTED: u32 = 0x5F_C109;
/// Certificate of the device attestation key (slot F9).
const OBJ_ATTESTATION_CERT: u32 = 0x5F_FF01;

impl PivApplet {
    pub(super) fn get_data(&self, cmd: &Command) -> Response {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Response::status(sw::WRONG_P1P2);
        }
        let Some(id) = object_id(&cmd.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if id == 0x7E {
            return Response::ok(DISCOVERY.to_vec());
        }
        if id == OBJ_PRINTED && !self.session.pin_verified {
            return Response::status(sw::SECURITY);
        }
        match self.objects.get(&id) {
            Some(value) => Response::ok(tlv(0x53, value)),
            None => Response::status(sw::NOT_FOUND),
        }
    }

    /// Stores the content of the `53` TLV; an empty one deletes the object.
    pub(super) fn put_data(&mut self, cmd: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY);
        }
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Response::status(sw::WRONG_P1P2);
        }
        let Ok(fields) = tlv::parse(&cmd.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let (Some(id), Some(value)) = (tlv::find(&fields, 0x5C), tlv::find(&fields, 0x53)) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(id) = id_from_bytes(&id) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if value.is_empty() {
            self.objects.remove(&id);
        } else {
            self.objects.insert(id, value);
        }
        Response::ok(Vec::new())
    }

    /// Certificate object format: `70 <DER> 71 <compression> FE <LRC>`.
    pub(super) fn store_attestation_certificate(&mut self) {
        let value = [
            tlv(0x70, self.attestation.cert_der()),
            tlv(0x71, &[0]),
            tlv(0xFE, &[]),
        ]
        .concat();
        self.objects.insert(OBJ_ATTESTATION_CERT, value);
    }
}

/// The object id from a GET DATA body `5C <len> <id>`.
fn object_id(data: &[u8]) -> Option<u32> {
    match tlv::parse(data).ok()?.as_slice() {
        [(0x5C, id)] => id_from_bytes(id),
        _ => None,
    }
}

fn id_from_bytes(id: &[u8]) -> Option<u32> {
    (1..=3)
        .contains(&id.len())
        .then(|| id.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}
