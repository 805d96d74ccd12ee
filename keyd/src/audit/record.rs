//! What the log says: the record of a decision the service made, and the
//! records the log writes about itself (segment headers, starts,
//! checkpoints). Each is serialised to a JSON object here, in the caller's
//! thread; the writer only puts the chain fields in front (`line.rs`).

use notary_tuf::metadata::{Gun, Role};
use serde::{Serialize, Serializer};

/// Caller-supplied text is cut to this many bytes per field, so a refused
/// request costs the log a line of bounded size (review finding 9) and no
/// record outgrows a segment (`config::MIN_SEGMENT`).
pub(crate) const MAX_FIELD: usize = 1024;

/// The version of the line format, named in every segment header.
pub(crate) const FORMAT: &str = "notary-keyd-audit/2";

#[derive(Debug, Serialize, Clone, Default)]
pub(crate) struct AuditRecord {
    #[serde(serialize_with = "bounded")]
    pub(crate) time: String,
    /// Unix-socket callers: their uid and gid (SO_PEERCRED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gid: Option<u32>,
    /// The uid's user name, when the configuration resolved one for it.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "bounded")]
    pub(crate) user: String,
    /// Signer-API callers: the subject of their TLS client certificate.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "bounded")]
    pub(crate) client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pid: Option<i32>,
    /// `sign`, `generate`, `delete`, … or a signer-API method.
    #[serde(serialize_with = "bounded")]
    pub(crate) operation: String,
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "bounded")]
    pub(crate) key_id: String,
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "bounded")]
    pub(crate) backend: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_text")]
    pub(crate) role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_text")]
    pub(crate) gun: Option<Gun>,
    /// Hex SHA-256 of the signed payload; the payload itself is never logged.
    #[serde(skip_serializing_if = "String::is_empty", serialize_with = "bounded")]
    pub(crate) payload_sha256: String,
    pub(crate) allowed: bool,
    /// `ok`, or the error that ended the request.
    #[serde(serialize_with = "bounded")]
    pub(crate) result: String,
}

/// A role or GUN as the text notary writes (both are bounded by their
/// own parsers).
fn as_text<S: Serializer, T: std::fmt::Display>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Text longer than `MAX_FIELD` is cut at a character boundary and says
/// how long it was.
fn bounded<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if text.len() <= MAX_FIELD {
        return s.serialize_str(text);
    }
    let mut end = MAX_FIELD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    s.collect_str(&format_args!("{}… ({} bytes)", &text[..end], text.len()))
}

/// What a line is. Every line of the log has exactly one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first line of every segment.
    Segment,
    /// The daemon started writing (after a restart, the chain continues).
    Start,
    /// A request decided and finished in one record.
    Decision,
    /// A request that passed its checks, written before its device works:
    /// until its outcome follows, a signature may exist.
    Request,
    /// What became of a request (`request` names its `seq`).
    Outcome,
    /// A signed checkpoint of the chain head, or a note that one failed.
    Checkpoint,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Start => "start",
            Kind::Decision => "decision",
            Kind::Request => "request",
            Kind::Outcome => "outcome",
            Kind::Checkpoint => "checkpoint",
        }
    }
}

/// A record's fields as a JSON object, ready for the writer.
pub(crate) struct Body {
    pub(crate) kind: Kind,
    pub(crate) json: Vec<u8>,
}

impl Body {
    pub(crate) fn of(kind: Kind, fields: &impl Serialize) -> Body {
        // Our own types hold only strings, numbers and booleans, which
        // always serialise; an empty object keeps the line well-formed
        // should that ever change.
        let json = serde_json::to_vec(fields).unwrap_or_else(|_| b"{}".to_vec());
        Body { kind, json }
    }
}

/// The first line of a segment.
#[derive(Serialize)]
pub(crate) struct SegmentHeader<'a> {
    pub(crate) time: &'a str,
    pub(crate) segment: u64,
    pub(crate) format: &'static str,
    /// Set when this segment begins a new chain: the operator's reason.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_opt"
    )]
    pub(crate) new_chain: Option<&'a str>,
    /// With `new_chain`: how the previous segment ended.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_opt"
    )]
    pub(crate) after: Option<&'a str>,
}

fn bounded_opt<S: Serializer>(text: &Option<&str>, s: S) -> Result<S::Ok, S::Error> {
    bounded(text.unwrap_or(""), s)
}

/// The outcome of a request record: the record as the request filled it
/// in, and the `seq` of the request line it answers.
#[derive(Serialize)]
pub(crate) struct OutcomeOf<'a> {
    pub(crate) request: u64,
    #[serde(flatten)]
    pub(crate) record: &'a AuditRecord,
}

/// The daemon began writing to the log.
#[derive(Serialize)]
pub(crate) struct Start<'a> {
    pub(crate) time: &'a str,
    pub(crate) version: &'static str,
    pub(crate) pid: u32,
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_caller_text_is_cut() {
        let record = AuditRecord {
            key_id: "é".repeat(MAX_FIELD),
            result: "short".into(),
            ..Default::default()
        };
        let body = Body::of(Kind::Decision, &record);
        let value: serde_json::Value = serde_json::from_slice(&body.json).unwrap();
        let key_id = value["key_id"].as_str().unwrap();
        assert!(key_id.len() < MAX_FIELD + 32, "{}", key_id.len());
        assert!(
            key_id.ends_with(&format!("({} bytes)", 2 * MAX_FIELD)),
            "{key_id}"
        );
        assert_eq!(value["result"], "short");
        assert!(value.get("client").is_none());
    }
}
