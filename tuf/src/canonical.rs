//! Notary's canonical JSON (`github.com/docker/go/canonical/json`, OLPC style).
//!
//! Object keys sorted by bytes, no whitespace, strings escape only `"` and
//! `\` (every other byte is written raw), numbers are integers. This is what
//! notary signs and hashes; it is neither JCS nor serde_json's default output.

use serde_json::{Map, Number, Value};

/// Notary decodes numbers into float64 before re-encoding, so only integers
/// below 2^53 survive that trip unchanged.
const MAX_EXACT: u64 = 1 << 53;

#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("canonical JSON: input is not valid JSON: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("canonical JSON: value cannot be turned into JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("canonical JSON: non-integer number {0}")]
    NonInteger(String),
    #[error("canonical JSON: number {0} is not exactly representable (notary reads numbers as float64, so |n| must be below 2^53)")]
    OutOfRange(String),
}

/// Encodes a JSON value canonically.
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

/// Parses JSON bytes and re-encodes them canonically, as notary's verifiers do.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    let value: Value = serde_json::from_slice(bytes).map_err(CanonicalError::Parse)?;
    to_canonical_vec(&value)
}

/// Serializes any serde value canonically.
pub fn to_canonical<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(v).map_err(CanonicalError::Serialize)?;
    to_canonical_vec(&value)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(integer(n)?.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    // Sort explicitly: serde_json's map order depends on crate features
    // (preserve_order) that another crate in the build may switch on.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(item, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string literal in canonical form.
pub(crate) fn string_literal(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(s, &mut out);
    out
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn integer(n: &Number) -> Result<i64, CanonicalError> {
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() >= MAX_EXACT {
            return Err(CanonicalError::OutOfRange(i.to_string()));
        }
        return Ok(i);
    }
    if let Some(u) = n.as_u64() {
        // Only reached for u64 values above i64::MAX.
        return Err(CanonicalError::OutOfRange(u.to_string()));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(CanonicalError::NonInteger(n.to_string()));
    }
    if f.abs() >= MAX_EXACT as f64 {
        return Err(CanonicalError::OutOfRange(n.to_string()));
    }
    // Exact: |f| < 2^53 and integral. `-0.0` becomes 0, as in Go's int64(f).
    Ok(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize(text.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn sorts_keys_by_bytes_and_drops_whitespace() {
        assert_eq!(
            canon(
                r#"{ "b": 1, "a": [1, 2, {"z": null, "_y": true}], "B": false, "é": 0, "aa": "x" }"#
            ),
            r#"{"B":false,"a":[1,2,{"_y":true,"z":null}],"aa":"x","b":1,"é":0}"#
        );
        // Byte order, not UTF-16 order: U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80).
        assert_eq!(canon(r#"{"😀":1,"｡":2}"#), r#"{"｡":2,"😀":1}"#);
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        let v = json!({"s": "q\"b\\n\nt\tc\u{1}d\u{7f}<>&\u{2028}é😀"});
        let out = to_canonical_vec(&v).unwrap();
        let mut expected = b"{\"s\":\"q\\\"b\\\\n\nt\tc\x01d\x7f<>&".to_vec();
        expected.extend_from_slice("\u{2028}é😀\"}".as_bytes());
        assert_eq!(out, expected);
    }

    #[test]
    fn unicode_escapes_in_input_are_written_raw() {
        let out = canonicalize(br#"["\u0000\u001f\u00e9\ud83d\ude00\/"]"#).unwrap();
        assert_eq!(out, "[\"\u{0}\u{1f}é😀/\"]".as_bytes());
    }

    #[test]
    fn numbers_must_be_integers() {
        assert_eq!(canon("[1.0, -0.0, 1e2, -5, 0]"), "[1,0,100,-5,0]");
        let err = canonicalize(b"[1.5]").unwrap_err();
        assert_eq!(err.to_string(), "canonical JSON: non-integer number 1.5");
        assert!(matches!(
            canonicalize(b"[9007199254740992]"),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert!(matches!(
            canonicalize(b"[-9007199254740992]"),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert!(matches!(
            canonicalize(b"[18446744073709551615]"),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert!(matches!(
            canonicalize(b"[9.1e15]"),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert_eq!(canon("[9007199254740991]"), "[9007199254740991]");
    }

    #[test]
    fn nested_and_empty_values() {
        assert_eq!(
            canon(r#"{"o":{},"a":[],"n":{"y":[{"b":2,"a":1}],"x":""}}"#),
            r#"{"a":[],"n":{"x":"","y":[{"a":1,"b":2}]},"o":{}}"#
        );
        assert_eq!(canon("  \"top\" "), "\"top\"");
        assert!(matches!(
            canonicalize(b"{\"a\":1"),
            Err(CanonicalError::Parse(_))
        ));
    }

    #[test]
    fn serializes_structs_through_serde() {
        #[derive(serde::Serialize)]
        struct S {
            z: u32,
            a: &'static str,
        }
        assert_eq!(
            to_canonical(&S { z: 1, a: "x" }).unwrap(),
            br#"{"a":"x","z":1}"#
        );
    }
}
