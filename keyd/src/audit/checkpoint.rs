//! Checkpoints: the chain head signed by the audit key. What is signed is
//! [`message`]: the head's `seq` and hash and the checkpoint's time, with a
//! fixed prefix so the bytes can never be mistaken for notary metadata or
//! anything else the key might be shown.

use serde::Serialize;

/// The bytes the audit key signs for a checkpoint.
pub fn message(head_seq: u64, head: &str, time: &str) -> Vec<u8> {
    format!("notary-keyd audit checkpoint\nseq {head_seq}\nhead {head}\ntime {time}\n").into_bytes()
}

/// A checkpoint line's fields.
#[derive(Serialize)]
pub struct Checkpoint<'a> {
    pub time: &'a str,
    pub head_seq: u64,
    pub head: &'a str,
    pub key_id: &'a str,
    /// Present when signed: the ECDSA P-256 signature (notary's raw r||s,
    /// base64) over `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<&'a str>,
    /// Present when the head could not be signed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}
