//! The hash chain, line by line. Every line is one JSON object that begins
//! with `"seq"` (1, 2, 3, … across segments and restarts), `"prev"` (hex
//! SHA-256 of the previous line's bytes, without its newline; 64 zeros for
//! the first line of a chain) and `"kind"`, followed by the record's own
//! fields. Removing, editing, inserting or moving a line breaks a `seq` or
//! a `prev` after it.

use super::record::Body;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::Write;

/// The last line written: its sequence number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: [u8; 32],
}

impl Head {
    /// Before the first line of a chain.
    pub(crate) const GENESIS: Head = Head {
        seq: 0,
        hash: [0; 32],
    };

    /// The head after `line` (its bytes without the newline).
    pub(crate) fn after(seq: u64, line: &[u8]) -> Head {
        Head {
            seq,
            hash: Sha256::digest(line).into(),
        }
    }

    pub(crate) fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// Upper bound of what `append` adds to a body: the chain fields, the
/// longest kind, the closing brace and the newline.
pub(crate) const LINK_OVERHEAD: usize = 128;

/// Appends the line that follows `head` to `out` (with its newline) and
/// returns the new head.
pub(crate) fn append(out: &mut Vec<u8>, head: &Head, body: &Body) -> Head {
    let start = out.len();
    let seq = head.seq + 1;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"seq\":{seq},\"prev\":\"{}\",\"kind\":\"{}\"",
        head.hash_hex(),
        body.kind.as_str()
    );
    match body.json.strip_prefix(b"{") {
        Some(b"}") | None => out.push(b'}'),
        Some(rest) => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
    }
    let next = Head::after(seq, &out[start..]);
    out.push(b'\n');
    next
}

/// The fields of a line that the chain and the verifier read. Strings the
/// daemon writes without escapes are borrowed; caller text may be escaped.
#[derive(Debug, Deserialize)]
pub(crate) struct Link<'a> {
    pub(crate) seq: u64,
    #[serde(borrow)]
    pub(crate) prev: &'a str,
    #[serde(borrow)]
    pub(crate) kind: &'a str,
    #[serde(default, borrow)]
    pub(crate) time: Option<&'a str>,
    /// segment: its number, and whether it begins a new chain.
    #[serde(default)]
    pub(crate) segment: Option<u64>,
    #[serde(default, borrow)]
    pub(crate) new_chain: Option<Cow<'a, str>>,
    /// outcome: the `seq` of its request.
    #[serde(default)]
    pub(crate) request: Option<u64>,
    /// checkpoint: the head it signs, and by which key.
    #[serde(default)]
    pub(crate) head_seq: Option<u64>,
    #[serde(default, borrow)]
    pub(crate) head: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) sig: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) error: Option<Cow<'a, str>>,
    /// request: what was asked, by whom (for reporting open requests).
    #[serde(default, borrow)]
    pub(crate) operation: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) key_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) uid: Option<u32>,
    #[serde(default, borrow)]
    pub(crate) client: Option<Cow<'a, str>>,
}

impl<'a> Link<'a> {
    pub(crate) fn parse(line: &'a [u8]) -> Result<Link<'a>, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// Whether `prev` names `hash`, without allocating.
    pub(crate) fn follows(&self, hash: &[u8; 32]) -> bool {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(hash, &mut buf).is_ok() && self.prev.as_bytes() == buf
    }

    /// The first line of a chain: seq 1 after 64 zeros.
    pub(crate) fn begins_chain(&self) -> bool {
        self.seq == 1 && self.follows(&Head::GENESIS.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Body, Kind};
    use super::*;

    #[test]
    fn lines_chain_and_parse_back() {
        let mut out = Vec::new();
        let body = Body {
            kind: Kind::Decision,
            json: br#"{"operation":"sign","allowed":true}"#.to_vec(),
        };
        let first = append(&mut out, &Head::GENESIS, &body);
        let empty = Body {
            kind: Kind::Start,
            json: b"{}".to_vec(),
        };
        let second = append(&mut out, &first, &empty);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let a = Link::parse(lines[0].as_bytes()).unwrap();
        assert!(a.begins_chain());
        assert_eq!(a.kind, "decision");
        assert_eq!(a.operation.as_deref(), Some("sign"));
        let b = Link::parse(lines[1].as_bytes()).unwrap();
        assert_eq!(b.seq, 2);
        assert!(b.follows(&first.hash));
        assert_eq!(first, Head::after(1, lines[0].as_bytes()));
        assert_eq!(second, Head::after(2, lines[1].as_bytes()));
        assert!(lines[0].len() - body.json.len() < LINK_OVERHEAD);
    }
}
