//! The virtual YubiKey's PIV applet (APDU parsing, BER-TLV, chaining, GET
//! RESPONSE, PIN/PUK and management-key state), driven as pcscd drives it:
//! a factory-fresh card per input connects to this process, which plays
//! vpcd and sends the input's commands over the card's real socket.
//!
//! Input: a selector byte (the firmware profile), then chunks of one length
//! byte and that many bytes. A one-byte chunk is a reader control message
//! (power off, power on, reset, get ATR); any other chunk is a command
//! APDU. Oracle: the card answers every command with a status word and
//! never hangs up (a panic in the card's thread aborts the run).

#![no_main]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use virtual_piv::{Profile, VirtualYubiKey};

/// vpcd's control bytes: power off, power on, reset, get ATR.
const CONTROL: [u8; 4] = [0x00, 0x01, 0x02, 0x04];
const GET_ATR: u8 = 0x04;

fn reader() -> &'static TcpListener {
    static READER: OnceLock<TcpListener> = OnceLock::new();
    READER.get_or_init(|| {
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind the reader port: {e}"))
    })
}

fn send(stream: &mut TcpStream, payload: &[u8]) {
    let Ok(len) = u16::try_from(payload.len()) else {
        panic!("chunk longer than a vpcd frame");
    };
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream
        .write_all(&frame)
        .unwrap_or_else(|e| panic!("the card stopped reading: {e}"));
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .unwrap_or_else(|e| panic!("the card hung up instead of answering: {e}"));
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut payload)
        .unwrap_or_else(|e| panic!("the card's answer was cut short: {e}"));
    payload
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let profile = match selector % 3 {
        0 => Profile::yubikey_5_2(1),
        1 => Profile::yubikey_5_4(2),
        _ => Profile::yubikey_5_7(3),
    };
    let listener = reader();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let card = VirtualYubiKey::insert_new(port, profile);
    let (mut stream, _) = listener
        .accept()
        .unwrap_or_else(|e| panic!("the card did not connect: {e}"));
    // One small frame per command, each waiting for its answer.
    let _ = stream.set_nodelay(true);
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if let [byte] = chunk {
            let control = CONTROL[usize::from(byte % 4)];
            send(&mut stream, &[control]);
            if control == GET_ATR {
                assert!(!receive(&mut stream).is_empty(), "empty ATR");
            }
        } else {
            send(&mut stream, chunk);
            let answer = receive(&mut stream);
            assert!(
                answer.len() >= 2,
                "answer without a status word: {answer:02x?}"
            );
        }
    }
    drop(card);
});
