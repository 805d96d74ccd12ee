//! Checkpoints: the chain head signed by the audit key. What is signed is
//! [`message`]: the head's `seq` and hash and the checkpoint's time, with a
//! fixed prefix so the bytes can never be mistaken for notary metadata or
//! anything else the key might be shown.

use super::key::AuditKey;
use super::line::Head;
use super::record::{now_rfc3339, Body, Kind};
use super::status::CheckpointInfo;
use super::AuditLog;
use crate::device::Device;
use base64::Engine;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The bytes the audit key signs for a checkpoint.
pub(crate) fn message(head_seq: u64, head: &str, time: &str) -> Vec<u8> {
    format!("notary-keyd audit checkpoint\nseq {head_seq}\nhead {head}\ntime {time}\n").into_bytes()
}

/// A checkpoint line's fields.
#[derive(Serialize)]
pub(crate) struct Checkpoint<'a> {
    pub(crate) time: &'a str,
    pub(crate) head_seq: u64,
    pub(crate) head: &'a str,
    pub(crate) key_id: &'a str,
    /// Present when signed: the ECDSA P-256 signature (notary's raw r||s,
    /// base64) over `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sig: Option<&'a str>,
    /// Present when the head could not be signed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<&'a str>,
}

/// Signs the chain head every `checkpoint_records` records or
/// `checkpoint_seconds` seconds (if anything was written), and once more
/// when stopped. Each checkpoint also goes to the daemon's log (the
/// journal under systemd) with the head as structured fields, so a copy
/// of the head exists outside the audit files.
pub(crate) struct Checkpointer {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    /// `key` is the audit key, or why there is none (each checkpoint then
    /// records that reason instead of a signature).
    pub(crate) fn start(
        log: AuditLog,
        key: Result<Arc<AuditKey>, String>,
        devices: &[Arc<Device>],
        every: Duration,
    ) -> Checkpointer {
        let device = key
            .as_ref()
            .ok()
            .and_then(|k| devices.iter().find(|d| d.name == k.backend).cloned());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let last = tokio::select! {
                    _ = log.shared.checkpoint_due.notified() => false,
                    _ = tokio::time::sleep(every) => false,
                    _ = stopped.changed() => true,
                };
                let (head, unsigned) = log.shared.begin_checkpoint();
                if unsigned > 0 {
                    checkpoint(&log, key.as_deref(), device.as_deref(), head).await;
                }
                if last {
                    break;
                }
            }
        });
        Checkpointer { stop, task }
    }

    /// Signs the last checkpoint and waits until it is written.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn checkpoint(
    log: &AuditLog,
    key: Result<&AuditKey, &String>,
    device: Option<&Device>,
    head: Head,
) {
    let time = now_rfc3339();
    let head_hex = head.hash_hex();
    let signed = match key {
        Ok(key) => key
            .sign(device, message(head.seq, &head_hex, &time))
            .await
            .map(|sig| base64::engine::general_purpose::STANDARD.encode(sig)),
        Err(why) => Err(format!("no audit key: {why}")),
    };
    let key_id = key.map_or("", |k| k.key_id.as_str());
    let fields = Checkpoint {
        time: &time,
        head_seq: head.seq,
        head: &head_hex,
        key_id,
        sig: signed.as_ref().ok().map(String::as_str),
        error: signed.as_ref().err().map(String::as_str),
    };
    let written = log.write(Body::of(Kind::Checkpoint, &fields)).await;
    let segment = log.shared.snapshot().segment;
    match (&signed, written) {
        (Ok(_), Ok(seq)) => {
            log.shared.checkpointed(CheckpointInfo {
                seq,
                time: time.clone(),
                head_seq: head.seq,
                head: head_hex.clone(),
            });
            tracing::info!(
                audit_seq = head.seq,
                audit_head = %head_hex,
                checkpoint_seq = seq,
                segment = %segment.display(),
                audit_key = %key_id,
                "audit checkpoint: chain head signed"
            );
        }
        (Err(why), written) => tracing::error!(
            audit_seq = head.seq,
            audit_head = %head_hex,
            segment = %segment.display(),
            error = %why,
            recorded = written.is_ok(),
            "audit checkpoint: the chain head could not be signed"
        ),
        (Ok(_), Err(e)) => tracing::error!(
            audit_seq = head.seq,
            audit_head = %head_hex,
            segment = %segment.display(),
            error = %e,
            "audit checkpoint: signed, but the audit log refused it"
        ),
    }
}
