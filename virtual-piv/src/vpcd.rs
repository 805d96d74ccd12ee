//! vpcd's card-side wire protocol: every message is a 2-byte big-endian
//! length and a payload. One-byte payloads are control messages from the
//! reader; anything longer is a command APDU, answered with a response APDU.

use std::io::{self, Read, Write};

/// What the reader asks of the card.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    PowerOff,
    PowerOn,
    Reset,
    GetAtr,
    Apdu(Vec<u8>),
}

/// Reads one message; `Ok(None)` when vpcd closed the connection.
pub(crate) fn read_message(stream: &mut impl Read) -> io::Result<Option<Message>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut payload)?;
    Ok(Some(match payload.as_slice() {
        [0x00] => Message::PowerOff,
        [0x01] => Message::PowerOn,
        [0x02] => Message::Reset,
        [0x04] => Message::GetAtr,
        [other] => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown vpcd control byte {other:#04x}"),
            ))
        }
        _ => Message::Apdu(payload),
    }))
}

/// Sends an ATR or a response APDU.
pub(crate) fn write_message(stream: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "vpcd message too long"))?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_message(&mut wire, &[0x04]).unwrap();
        write_message(&mut wire, &[0x00, 0xA4, 0x04, 0x00]).unwrap();
        let mut reader = wire.as_slice();
        assert_eq!(read_message(&mut reader).unwrap(), Some(Message::GetAtr));
        assert_eq!(
            read_message(&mut reader).unwrap(),
            Some(Message::Apdu(vec![0x00, 0xA4, 0x04, 0x00]))
        );
        assert_eq!(read_message(&mut reader).unwrap(), None);
    }
}
