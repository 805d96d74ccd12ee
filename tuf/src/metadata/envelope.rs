//! The signed envelope `{"signed":{…},"signatures":[…]}`.

use super::payload::{type_of, MetadataType};
use super::types::Metadata;
use super::MetadataError;
use crate::canonical::{string_literal, to_canonical, to_canonical_vec};
use crate::Signature;
use serde_json::Value;

/// A metadata file: the `signed` object, its canonical bytes (what the
/// signatures cover) and the signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEnvelope {
    pub signed_bytes: Vec<u8>,
    pub signed: Value,
    pub signatures: Vec<Signature>,
}

impl SignedEnvelope {
    /// Reads a metadata file. `signed_bytes` is the canonical re-encoding of
    /// `signed`, as notary's verifiers compute it, not the file substring.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let value: Value = serde_json::from_slice(bytes).map_err(MetadataError::Json)?;
        let mut object = match value {
            Value::Object(object) => object,
            _ => return Err(MetadataError::NotObject("metadata envelope")),
        };
        let signed = object
            .remove("signed")
            .ok_or(MetadataError::MissingField("signed"))?;
        // Go reads a missing or null list as empty; verification then
        // reports "no signatures".
        let signatures = match object.remove("signatures") {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => serde_json::from_value(list).map_err(MetadataError::Signatures)?,
        };
        let mut envelope = Self::from_signed(signed)?;
        envelope.signatures = signatures;
        Ok(envelope)
    }

    /// An unsigned envelope around a `signed` object.
    pub fn from_signed(signed: Value) -> Result<Self, MetadataError> {
        if !signed.is_object() {
            return Err(MetadataError::NotObject("\"signed\""));
        }
        Ok(Self {
            signed_bytes: to_canonical_vec(&signed)?,
            signed,
            signatures: Vec::new(),
        })
    }

    /// An unsigned envelope around typed metadata.
    pub fn from_metadata<T: Metadata>(metadata: &T) -> Result<Self, MetadataError> {
        let signed_bytes = to_canonical(metadata)?;
        let signed = serde_json::from_slice(&signed_bytes).map_err(MetadataError::Json)?;
        Ok(Self {
            signed_bytes,
            signed,
            signatures: Vec::new(),
        })
    }

    /// The `_type` of `signed`.
    pub fn metadata_type(&self) -> Result<MetadataType, MetadataError> {
        type_of(&self.signed)
    }

    /// Decodes `signed` as `T`, checking `_type` first.
    pub fn decode<T: Metadata>(&self) -> Result<T, MetadataError> {
        T::from_signed(&self.signed)
    }

    /// The file bytes exactly as notary writes them: Go's `json.Marshal` of
    /// its envelope struct, so `signed` comes first, there is no whitespace,
    /// and Go's HTML escaping applies inside strings. Control bytes in
    /// strings, which Go cannot write at all, are `\u` escapes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"{\"signed\":".to_vec();
        out.extend_from_slice(&self.signed_bytes);
        out.extend_from_slice(b",\"signatures\":[");
        for (i, sig) in self.signatures.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"keyid\":");
            out.extend_from_slice(&string_literal(&sig.keyid));
            out.extend_from_slice(b",\"method\":");
            out.extend_from_slice(&string_literal(sig.method.as_str()));
            out.extend_from_slice(b",\"sig\":");
            out.extend_from_slice(&string_literal(&crate::b64::encode(&sig.sig)));
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        escape_for_file(&out)
    }
}

/// Go's encoder writes `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, also
/// inside the pre-encoded `signed` (a RawMessage). Control bytes, which
/// canonical JSON leaves raw, become `\u00XX` as well: JSON forbids them raw
/// (Go refuses to write such a file, and no reader would take it back).
/// These bytes only occur inside strings (the file has no whitespace), so a
/// byte-level pass is exact. Verifiers re-canonicalise, so signatures are
/// unaffected.
fn escape_for_file(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            control @ 0x00..=0x1F => out.extend_from_slice(format!("\\u{control:04x}").as_bytes()),
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if json.get(i + 1) == Some(&0x80)
                && matches!(json.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                let last = if json[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(b"\\u202");
                out.push(last);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignatureMethod;

    #[test]
    fn parses_and_writes_signed_first() {
        let file = br#"{"signed":{"_type":"Timestamp","version":1},"signatures":[{"keyid":"ab","method":"eddsa","sig":"AQID"}]}"#;
        let env = SignedEnvelope::parse(file).unwrap();
        assert_eq!(env.signed_bytes, br#"{"_type":"Timestamp","version":1}"#);
        assert_eq!(env.signatures[0].method, SignatureMethod::Eddsa);
        assert_eq!(env.metadata_type().unwrap(), MetadataType::Timestamp);
        assert_eq!(env.to_bytes(), file);
    }

    #[test]
    fn recanonicalises_signed_and_accepts_missing_signatures() {
        let env = SignedEnvelope::parse(br#"{ "signed": { "b": 1, "a": 2 } }"#).unwrap();
        assert_eq!(env.signed_bytes, br#"{"a":2,"b":1}"#);
        assert!(env.signatures.is_empty());
        assert_eq!(
            env.to_bytes(),
            br#"{"signed":{"a":2,"b":1},"signatures":[]}"#
        );
    }

    #[test]
    fn escapes_like_go_in_the_file_but_not_in_signed_bytes() {
        let env = SignedEnvelope::parse(
            "{\"signed\":{\"t\":\"<a&b>\u{2028}\u{2029}é\"},\"signatures\":[]}".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            env.signed_bytes,
            "{\"t\":\"<a&b>\u{2028}\u{2029}é\"}".as_bytes()
        );
        assert_eq!(
            env.to_bytes(),
            "{\"signed\":{\"t\":\"\\u003ca\\u0026b\\u003e\\u2028\\u2029é\"},\"signatures\":[]}"
                .as_bytes()
        );
        // The escaped file reads back to the same canonical bytes.
        assert_eq!(
            SignedEnvelope::parse(&env.to_bytes()).unwrap().signed_bytes,
            env.signed_bytes
        );
    }

    #[test]
    fn escapes_control_bytes_in_the_file() {
        let env = SignedEnvelope::parse(br#"{"signed":{"":"\n\u0000\u001f"}}"#).unwrap();
        assert_eq!(env.signed_bytes, b"{\"\":\"\n\x00\x1f\"}");
        let file = env.to_bytes();
        assert_eq!(
            file,
            br#"{"signed":{"":"\u000a\u0000\u001f"},"signatures":[]}"#
        );
        assert_eq!(SignedEnvelope::parse(&file).unwrap(), env);
    }

    #[test]
    fn refuses_malformed_envelopes() {
        assert!(matches!(
            SignedEnvelope::parse(b"[]"),
            Err(MetadataError::NotObject(_))
        ));
        assert!(matches!(
            SignedEnvelope::parse(br#"{"signatures":[]}"#),
            Err(MetadataError::MissingField("signed"))
        ));
        assert!(matches!(
            SignedEnvelope::parse(br#"{"signed":[],"signatures":[]}"#),
            Err(MetadataError::NotObject(_))
        ));
        assert!(matches!(
            SignedEnvelope::parse(
                br#"{"signed":{},"signatures":[{"keyid":"a","method":"ed25519","sig":""}]}"#
            ),
            Err(MetadataError::Signatures(_))
        ));
        assert!(matches!(
            SignedEnvelope::parse(br#"{"signed":{"n":0.5}}"#),
            Err(MetadataError::Canonical(_))
        ));
    }
}
