//! The applet on its own: malformed and out-of-order commands get status
//! words, never a panic; chaining and GET RESPONSE reassemble.

use super::*;
use crate::apdu::sw;
use crate::mgm::DEFAULT_KEY;

struct NoTouch;

impl TouchSensor for NoTouch {
    fn wait_for_touch(&self, _slot: u8) -> bool {
        false
    }
}

fn applet() -> PivApplet {
    let mut applet = PivApplet::new(Profile::yubikey_5_4(1));
    assert_eq!(
        send(&mut applet, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]).sw,
        sw::OK
    );
    applet
}

fn send(applet: &mut PivApplet, apdu: &[u8]) -> Response {
    applet.process(apdu, &NoTouch)
}

fn authenticate(applet: &mut PivApplet) {
    let witness = send(applet, &[0, 0x87, 3, 0x9B, 4, 0x7C, 2, 0x80, 0]);
    assert_eq!(witness.sw, sw::OK);
    let key = MgmKey::new(3, &DEFAULT_KEY).unwrap();
    let plain = key.decrypt(&witness.data[4..12]).unwrap();
    let mut step2 = vec![0, 0x87, 3, 0x9B, 22, 0x7C, 20, 0x80, 8];
    step2.extend_from_slice(&plain);
    step2.extend_from_slice(&[0x81, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    let answer = send(applet, &step2);
    assert_eq!(answer.sw, sw::OK);
    assert_eq!(
        answer.data[4..],
        key.encrypt(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap()[..]
    );
}

#[test]
fn garbage_gets_status_words() {
    let mut a = PivApplet::new(Profile::yubikey_5_7(1));
    assert_eq!(send(&mut a, &[0, 0xFD]).sw, sw::WRONG_LENGTH);
    assert_eq!(
        send(&mut a, &[0, 0xFD, 0, 0, 0]).sw,
        sw::INS_NOT_SUPPORTED,
        "not selected"
    );
    assert_eq!(
        send(&mut a, &[0, 0xA4, 4, 0, 2, 0xD2, 0x76]).sw,
        sw::NOT_FOUND
    );
    let mut a = applet();
    assert_eq!(send(&mut a, &[0, 0x99, 0, 0, 0]).sw, sw::INS_NOT_SUPPORTED);
    assert_eq!(
        send(&mut a, &[0x80, 0xFD, 0, 0, 0]).sw,
        sw::CLA_NOT_SUPPORTED
    );
    assert_eq!(
        send(&mut a, &[0, 0x87, 0x11, 0x9A, 2, 0x7C, 9]).sw,
        sw::INCORRECT_DATA
    );
    assert_eq!(
        send(&mut a, &[0, 0x20, 0, 0x80, 3, 1, 2, 3]).sw,
        sw::INCORRECT_DATA
    );
    assert_eq!(
        send(&mut a, &[0, 0xC0, 0, 0, 0]).sw,
        sw::CONDITIONS,
        "nothing pending"
    );
    assert_eq!(a.pin_tries_left(), 3, "no malformed command used a try");
}

#[test]
fn generate_needs_the_management_key_and_a_known_algorithm() {
    let mut a = applet();
    let p256 = [0, 0x47, 0, 0x9A, 5, 0xAC, 3, 0x80, 1, 0x11];
    assert_eq!(send(&mut a, &p256).sw, sw::SECURITY);
    authenticate(&mut a);
    assert_eq!(
        send(&mut a, &[0, 0x47, 0, 0x9A, 5, 0xAC, 3, 0x80, 1, 0x42]).sw,
        sw::INCORRECT_DATA
    );
    assert_eq!(
        send(&mut a, &[0, 0x47, 0, 0x9B, 5, 0xAC, 3, 0x80, 1, 0x11]).sw,
        sw::WRONG_P1P2
    );
    let r = send(&mut a, &p256);
    assert_eq!(r.sw, sw::OK);
    assert_eq!(r.data[..5], [0x7F, 0x49, 0x43, 0x86, 0x41]);
}

#[test]
fn chained_put_data_reads_back_through_get_response() {
    let mut a = applet();
    authenticate(&mut a);
    let value: Vec<u8> = (0..600u16).map(|i| i as u8).collect();
    let mut body = vec![0x5C, 3, 0x5F, 0xC1, 0x05, 0x53, 0x82, 0x02, 0x58];
    body.extend_from_slice(&value);
    let pieces: Vec<&[u8]> = body.chunks(255).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let cla = if i + 1 < pieces.len() { 0x10 } else { 0 };
        let mut apdu = vec![cla, 0xDB, 0x3F, 0xFF, piece.len() as u8];
        apdu.extend_from_slice(piece);
        assert_eq!(send(&mut a, &apdu).sw, sw::OK);
    }
    let mut r = send(&mut a, &[0, 0xCB, 0x3F, 0xFF, 5, 0x5C, 3, 0x5F, 0xC1, 0x05]);
    let mut read = Vec::new();
    while r.sw & 0xFF00 == 0x6100 {
        read.extend_from_slice(&r.data);
        r = send(&mut a, &[0, 0xC0, 0, 0, 0]);
    }
    assert_eq!(r.sw, sw::OK);
    read.extend_from_slice(&r.data);
    assert_eq!(read[..4], [0x53, 0x82, 0x02, 0x58]);
    assert_eq!(read[4..], value[..]);
}

#[test]
fn select_forgets_pin_and_management_key() {
    let mut a = applet();
    authenticate(&mut a);
    assert_eq!(
        send(
            &mut a,
            &[0, 0x20, 0, 0x80, 8, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF]
        )
        .sw,
        sw::OK
    );
    assert_eq!(send(&mut a, &[0, 0x20, 0, 0x80, 0]).sw, sw::OK);
    assert_eq!(
        send(&mut a, &[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 3, 8]).sw,
        sw::OK
    );
    assert_eq!(send(&mut a, &[0, 0x20, 0, 0x80, 0]).sw, 0x63C3);
    assert_eq!(
        send(&mut a, &[0, 0x47, 0, 0x9A, 5, 0xAC, 3, 0x80, 1, 0x11]).sw,
        sw::SECURITY
    );
}
