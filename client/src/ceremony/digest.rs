//! SHA-256 digests as the ceremony shows and stores them: hex in files, hex
//! and PGP words on screen.

use super::words;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Digest([u8; 32]);

impl Digest {
    /// The start of a hash chain: no previous entry.
    pub(super) const ZERO: Digest = Digest([0; 32]);

    pub(super) fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub(super) fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The 32 PGP words on one line.
    pub(super) fn words(&self) -> String {
        words::words(&self.0).join(" ")
    }

    /// Hex and words, one numbered line per four bytes, to read aloud.
    pub(super) fn aloud(&self) -> String {
        words::aloud(&self.0)
    }

    /// The last word of [`Digest::words`]: what a holder types to confirm.
    pub(super) fn last_word(&self) -> &'static str {
        words::words(&self.0).last().copied().unwrap_or_default()
    }

    pub(super) fn parse_hex(text: &str) -> Result<Digest, String> {
        let bytes = hex::decode(text).map_err(|e| format!("{text:?} is not hex: {e}"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{text:?} is not a SHA-256 (64 hex digits)"))?;
        Ok(Digest(array))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_last_word() {
        let d = Digest::of(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            d.hex(),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(Digest::parse_hex(&d.hex()).unwrap(), d);
        // Byte 31 (0x92) is at an odd position: the three-syllable list.
        assert_eq!(d.last_word(), "misnomer");
        assert!(d.words().ends_with(" misnomer"));
        assert!(Digest::parse_hex("abcd").is_err());
        assert!(Digest::parse_hex(&"zz".repeat(32)).is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
