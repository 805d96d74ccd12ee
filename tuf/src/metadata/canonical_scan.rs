//! One pass over bytes that are already canonical JSON, reading the
//! top-level `_type` without building a `serde_json::Value`.
//!
//! The signing path checks every payload; parsing it into a tree and
//! re-encoding it cost about 6% of the daemon's CPU per signature. This scan
//! accepts exactly the bytes `canonicalize` reproduces unchanged: no
//! whitespace, object keys in strictly increasing byte order, integers below
//! 2^53 without sign on zero or leading zeros, strings that escape only `"`
//! and `\` and hold no raw control bytes (JSON forbids those, so
//! `canonicalize` cannot read them back). Anything else returns `None`, and
//! the caller falls back to the full parse, which also names the problem.

use std::borrow::Cow;

/// serde_json refuses deeper nesting; refusing here too keeps the scan's
/// recursion bounded.
const MAX_DEPTH: usize = 128;
const MAX_EXACT: u64 = 1 << 53;

/// The decoded top-level `_type` string, if `bytes` are canonical JSON
/// of an object that has a string `_type`.
pub(super) fn canonical_type(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let mut scan = Scan { bytes, at: 0 };
    let found = scan.object(0, true)?;
    if scan.at != bytes.len() {
        return None;
    }
    found
}

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth, false).map(drop),
            b'[' => self.array(depth),
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// An object; at the top level also returns its `_type` string.
    fn object(&mut self, depth: usize, top: bool) -> Option<Option<Cow<'a, str>>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let mut found = None;
        let mut previous: Option<Cow<'a, [u8]>> = None;
        if self.eat(b'}').is_some() {
            return Some(found);
        }
        loop {
            let key = self.string()?;
            if previous.as_deref().is_some_and(|p| p >= key.as_ref()) {
                return None;
            }
            self.eat(b':')?;
            if top && key.as_ref() == b"_type" {
                found = Some(self.string_value()?);
            } else {
                self.value(depth + 1)?;
            }
            previous = Some(key);
            if self.eat(b'}').is_some() {
                return Some(found);
            }
            self.eat(b',')?;
        }
    }

    /// `_type` must be a string; anything else is left to the full parse.
    fn string_value(&mut self) -> Option<Cow<'a, str>> {
        match self.string()? {
            Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
            Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.value(depth + 1)?;
            if self.eat(b']').is_some() {
                return Some(());
            }
            self.eat(b',')?;
        }
    }

    /// A string literal's decoded bytes (borrowed unless it has escapes).
    fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        self.eat(b'"')?;
        let start = self.at;
        let mut decoded: Option<Vec<u8>> = None;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => break,
                b'\\' => {
                    let escaped = *self.bytes.get(self.at + 1)?;
                    if escaped != b'"' && escaped != b'\\' {
                        return None;
                    }
                    decoded
                        .get_or_insert_with(|| self.bytes[start..self.at].to_vec())
                        .push(escaped);
                    self.at += 2;
                }
                0x00..=0x1f => return None,
                _ => {
                    if let Some(d) = decoded.as_mut() {
                        d.push(b);
                    }
                    self.at += 1;
                }
            }
        }
        let raw = &self.bytes[start..self.at];
        self.at += 1;
        // JSON text is UTF-8; serde_json refuses anything else.
        std::str::from_utf8(raw).ok()?;
        Some(match decoded {
            Some(d) => Cow::Owned(d),
            None => Cow::Borrowed(raw),
        })
    }

    fn integer(&mut self) -> Option<()> {
        let negative = self.eat(b'-').is_some();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        match digits {
            [] => return None,
            [b'0'] if negative => return None,
            [b'0'] => {}
            [b'0', ..] => return None,
            _ if digits.len() > 16 => return None,
            _ => {}
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        (n < MAX_EXACT).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;

    /// The scan and the full parse must agree: whatever the scan accepts,
    /// `canonicalize` gives back unchanged, with the same `_type`.
    fn agrees(input: &[u8]) -> bool {
        let slow = canonicalize(input)
            .ok()
            .filter(|c| c == input)
            .and_then(|c| {
                let v: serde_json::Value = serde_json::from_slice(&c).ok()?;
                v.get("_type")?.as_str().map(str::to_string)
            });
        let fast = canonical_type(input).map(|t| t.into_owned());
        assert_eq!(fast, slow, "input {:?}", String::from_utf8_lossy(input));
        fast.is_some()
    }

    #[test]
    fn agrees_with_the_full_parse() {
        let cases: &[&[u8]] = &[
            br#"{"_type":"Root","version":1}"#,
            br#"{"_type":"Targets","a":{"b":[1,-2,0,{"c":null,"d":true,"e":false}]}}"#,
            br#"{"_type":"Root"}"#,
            br#"{"A":1,"_type":"Snapshot","z":[]}"#,
            br#"{"_type":"Ro\"ot"}"#,
            br#"{"_type":"x\\y","k\"":"v"}"#,
            br#"{"_type":"Root","version":9007199254740991}"#,
            br#"{"_type":"Root","version":9007199254740992}"#,
            br#"{"_type":"Root","version":-9007199254740991}"#,
            br#"{"_type":"Root","version":1.0}"#,
            br#"{"_type":"Root","version":1e2}"#,
            br#"{"_type":"Root","version":-0}"#,
            br#"{"_type":"Root","version":01}"#,
            br#"{"_type":"Root","version":-}"#,
            br#"{"_type": "Root"}"#,
            br#" {"_type":"Root"}"#,
            br#"{"_type":"Root"} "#,
            br#"{"version":1,"_type":"Root"}"#,
            br#"{"_type":"Root","_type":"Targets"}"#,
            br#"{"_type":"Root","a":1,"a":2}"#,
            br#"{"_type":1}"#,
            br#"{"_type":"\u0052oot"}"#,
            br#"{"_type":"Root","s":"a\/b"}"#,
            br#"{"_type":"Root","s":"a\nb"}"#,
            b"{\"_type\":\"Root\",\"s\":\"a\nb\"}",
            b"{\"_type\":\"Root\",\"s\":\"a\x7fb\"}",
            b"{\"_type\":\"Root\",\"s\":\"\xff\"}",
            "{\"_type\":\"Root\",\"é\":1,\"😀\":2,\"｡\":3}".as_bytes(),
            "{\"_type\":\"Root\",\"｡\":3,\"😀\":2}".as_bytes(),
            br#"{"_type":"Root","a":[1,]}"#,
            br#"{"_type":"Root",}"#,
            br#"{"_type":"Root""#,
            br#"["Root"]"#,
            br#""Root""#,
            br#"{}"#,
            br#"{"a":{"_type":"Root"}}"#,
            b"",
            b"nul",
        ];
        for case in cases {
            let _ = agrees(case);
        }
    }

    #[test]
    fn agrees_on_truncated_and_edited_real_metadata() {
        for name in [
            "root",
            "targets",
            "targets_releases",
            "snapshot",
            "timestamp",
        ] {
            let path = format!(
                "{}/tests/data/notary-0.7/local/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let Ok(text) = std::fs::read(&path) else {
                panic!("fixture {path} is missing");
            };
            let envelope: serde_json::Value = serde_json::from_slice(&text).unwrap();
            let signed = crate::to_canonical_vec(&envelope["signed"]).unwrap();
            assert!(canonical_type(&signed).is_some(), "{name}");
            for end in 0..signed.len() {
                let _ = agrees(&signed[..end]);
            }
            // Single-byte edits at a spread of positions.
            for at in (0..signed.len()).step_by(5) {
                for byte in *b" \"\\0-.e{}[],:a\x01\xff" {
                    let mut edited = signed.clone();
                    edited[at] = byte;
                    let _ = agrees(&edited);
                }
            }
        }
    }

    /// A small deterministic generator (xorshift), so the property test
    /// needs no extra crate and every run checks the same cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        const WORDS: [&str; 9] = ["_type", "a", "b", "\"q\\", "é", "😀", "Root", "", "\u{7f}x"];
        const NUMBERS: [i64; 6] = [0, 1, -1, 9_007_199_254_740_991, -9_007_199_254_740_991, 42];
        match rng.below(if depth > 3 { 4 } else { 7 }) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 0),
            2 => json!(NUMBERS[rng.below(NUMBERS.len())]),
            3 => json!(WORDS[rng.below(WORDS.len())]),
            4 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let mut map = Map::new();
                for _ in 0..rng.below(5) {
                    map.insert(
                        WORDS[rng.below(WORDS.len())].to_string(),
                        random_value(rng, depth + 1),
                    );
                }
                Value::Object(map)
            }
        }
    }

    #[test]
    fn agrees_on_random_documents_and_their_mutations() {
        const BYTES: &[u8] = b" \"\\:,{}[]0-1.eE_tnx\x01\x7f\xc3\xa9\xff";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..4000 {
            let mut doc = random_value(&mut rng, 0);
            if !doc.is_object() {
                doc = serde_json::json!({ "a": doc });
            }
            if let (Some(map), true) = (doc.as_object_mut(), rng.below(3) > 0) {
                let types = ["Root", "Targets", "Snapshot", "Timestamp", "root"];
                map.insert("_type".into(), types[rng.below(types.len())].into());
            }
            let canonical = crate::to_canonical_vec(&doc).unwrap();
            accepted += usize::from(agrees(&canonical));
            for _ in 0..4 {
                let mut edited = canonical.clone();
                let at = rng.below(edited.len() + 1);
                match rng.below(3) {
                    0 if at < edited.len() => edited[at] = BYTES[rng.below(BYTES.len())],
                    1 => edited.insert(at, BYTES[rng.below(BYTES.len())]),
                    _ if at < edited.len() => {
                        edited.remove(at);
                    }
                    _ => {}
                }
                let _ = agrees(&edited);
            }
        }
        // Most documents got a string `_type`: the scan must have said yes
        // to them, not merely no to everything.
        assert!(accepted > 2000, "only {accepted} of 4000 accepted");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| {
            let mut v = b"{\"_type\":\"Root\",\"a\":".to_vec();
            v.extend(std::iter::repeat_n(b'[', n));
            v.extend(std::iter::repeat_n(b']', n));
            v.push(b'}');
            v
        };
        assert!(canonical_type(&deep(100)).is_some());
        assert!(canonical_type(&deep(100_000)).is_none());
    }
}
