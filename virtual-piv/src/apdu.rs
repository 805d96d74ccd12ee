//! Short command APDUs in, response APDUs out.

/// ISO 7816 / PIV status words the card answers with.
pub(crate) mod sw {
    pub(crate) const OK: u16 = 0x9000;
    /// Security status not satisfied: PIN, management key or touch missing.
    pub(crate) const SECURITY: u16 = 0x6982;
    /// PIN or PUK blocked.
    pub(crate) const BLOCKED: u16 = 0x6983;
    pub(crate) const CONDITIONS: u16 = 0x6985;
    pub(crate) const INCORRECT_DATA: u16 = 0x6A80;
    /// File or application (data object, AID) not found.
    pub(crate) const NOT_FOUND: u16 = 0x6A82;
    /// Referenced data (a key in a slot) not found.
    pub(crate) const REFERENCE_NOT_FOUND: u16 = 0x6A88;
    pub(crate) const WRONG_P1P2: u16 = 0x6B00;
    pub(crate) const WRONG_LENGTH: u16 = 0x6700;
    pub(crate) const INS_NOT_SUPPORTED: u16 = 0x6D00;
    pub(crate) const CLA_NOT_SUPPORTED: u16 = 0x6E00;

    /// `63Cx`: verification failed, `tries` left.
    pub(crate) fn tries_left(tries: u8) -> u16 {
        0x63C0 | u16::from(tries.min(0x0F))
    }
}

/// Command chaining bit in CLA (ISO 7816-4 5.1.1).
pub(crate) const CLA_CHAIN: u8 = 0x10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
}

impl Command {
    /// Parses a short APDU (cases 1-4; a lone fifth byte is Le, ignored).
    pub(crate) fn parse(raw: &[u8]) -> Option<Command> {
        let (header, body) = raw.split_at_checked(4)?;
        let data = match body {
            [] | [_] => Vec::new(),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                // Le may follow the data; anything else is malformed.
                if rest.len() != lc && rest.len() != lc + 1 {
                    return None;
                }
                rest[..lc].to_vec()
            }
        };
        Some(Command {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
        })
    }

    pub(crate) fn is_chained(&self) -> bool {
        self.cla & CLA_CHAIN != 0
    }
}

/// Response data plus status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub(crate) fn ok(data: Vec<u8>) -> Response {
        Response { data, sw: sw::OK }
    }

    pub(crate) fn status(sw: u16) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        out.extend_from_slice(&self.sw.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_case() {
        let c = Command::parse(&[0, 0xFD, 0, 0, 0]).unwrap();
        assert!(c.data.is_empty());
        let c = Command::parse(&[0x10, 0xDB, 0x3F, 0xFF, 2, 0xAA, 0xBB]).unwrap();
        assert_eq!(c.data, vec![0xAA, 0xBB]);
        assert!(c.is_chained());
        let c = Command::parse(&[0, 0x87, 0x11, 0x9A, 1, 7, 0]).unwrap();
        assert_eq!(c.data, vec![7]);
        assert!(Command::parse(&[0, 0x87, 0x11, 0x9A, 3, 7]).is_none());
        assert!(Command::parse(&[0, 0x87]).is_none());
    }
}
