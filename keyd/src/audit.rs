//! The audit log: one JSON line per decision, on disk before the reply.
//!
//! Records go to one writer thread. It takes every record that is waiting,
//! writes them, calls fsync once, then answers them all (group commit): an
//! fsync per request behind a lock would cap the daemon far below what its
//! devices can sign. If a write or fsync fails, every record in that batch
//! gets the error, and the caller must not return its result.

use crate::status::refusal;
use keyd_proto::Reason;
use notary_tuf::metadata::{Gun, Role};
use serde::{Serialize, Serializer};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use tokio::sync::oneshot;
use tonic::Status;

#[derive(Debug, Serialize, Clone, Default)]
pub(crate) struct AuditRecord {
    pub time: String,
    /// Unix-socket callers: their uid and gid (SO_PEERCRED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The uid's user name, when the configuration resolved one for it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Signer-API callers: the subject of their TLS client certificate.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// `sign`, `generate`, `delete`, … or a signer-API method.
    pub operation: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_text")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_text")]
    pub gun: Option<Gun>,
    /// Hex SHA-256 of the signed payload; the payload itself is never logged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub payload_sha256: String,
    pub allowed: bool,
    /// `ok`, or the error that ended the request.
    pub result: String,
}

/// A role or GUN as the text notary writes.
fn as_text<S: Serializer, T: std::fmt::Display>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error, Clone)]
#[error("audit log {path} cannot be written: {message}")]
pub(crate) struct AuditError {
    pub path: String,
    pub message: String,
}

type Ack = oneshot::Sender<Result<(), AuditError>>;

#[derive(Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<(AuditRecord, Ack)>,
    path: PathBuf,
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl AuditLog {
    /// Opens (creating with mode 0600) the log and starts the writer thread.
    pub(crate) fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let fail = |e: std::io::Error| AuditError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = open_log(path).map_err(fail)?;
        let (tx, rx) = mpsc::channel::<(AuditRecord, Ack)>();
        let display = path.display().to_string();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer_loop(file, rx, display))
            .map_err(fail)?;
        Ok(AuditLog {
            tx,
            path: path.to_path_buf(),
        })
    }

    /// Writes one record durably; resolves after its batch's fsync.
    pub(crate) async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        let gone = || AuditError {
            path: self.path.display().to_string(),
            message: "audit writer stopped".into(),
        };
        self.tx.send((record, ack_tx)).map_err(|_| gone())?;
        ack_rx.await.map_err(|_| gone())?
    }
}

impl AuditLog {
    /// Starts the record of an operation that uses or changes a key: the
    /// work fills it in through `Audited::record`, and `Audited::close`
    /// writes it with the outcome.
    pub(crate) fn begin(&self, record: AuditRecord) -> Audited {
        Audited {
            in_flight: InFlight::new(self, record),
        }
    }
}

/// An operation's record while its work runs. Closing it commits a success
/// (a failed write turns it into an error, so no result leaves the daemon
/// unrecorded) or records the refusal (which is sent even when the write
/// fails: refusing is safe). Dropped before closing, it is written anyway,
/// as abandoned.
pub(crate) struct Audited {
    in_flight: InFlight,
}

impl Audited {
    pub(crate) fn record(&mut self) -> &mut AuditRecord {
        self.in_flight.record_mut()
    }

    pub(crate) async fn close<T>(self, outcome: Result<T, Status>) -> Result<T, Status> {
        let log = self.in_flight.log.clone();
        let mut record = self.in_flight.finish();
        record.allowed = outcome.is_ok();
        match outcome {
            Ok(value) => {
                record.result = "ok".into();
                log.record(record).await.map_err(|e| {
                    refusal(Reason::AuditFailed, format!("{e}; the result was withheld"))
                })?;
                Ok(value)
            }
            Err(status) => {
                record.result = status.message().to_string();
                if let Err(e) = log.record(record).await {
                    tracing::error!(error = %e, "audit write failed for a refused request");
                }
                Err(status)
            }
        }
    }
}

/// The record of a request whose handler can be dropped before it finishes
/// (a unary call whose client went away, or whose deadline passed while a
/// device was signing). Normally `finish` hands the record back to be
/// written with the outcome; if the handler is dropped first, the record is
/// written anyway, saying so, so no decision leaves the log without a line.
struct InFlight {
    log: AuditLog,
    record: AuditRecord,
    finished: bool,
}

impl InFlight {
    fn new(log: &AuditLog, record: AuditRecord) -> InFlight {
        InFlight {
            log: log.clone(),
            record,
            finished: false,
        }
    }

    fn record_mut(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    fn finish(mut self) -> AuditRecord {
        self.finished = true;
        std::mem::take(&mut self.record)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            let mut record = std::mem::take(&mut self.record);
            record.result = "abandoned before the reply: the caller went away or its deadline \
                             passed; a device may have signed, nothing was returned"
                .into();
            // Nobody waits for this write; the writer still fsyncs it.
            let (ack, _) = oneshot::channel();
            if self.log.tx.send((record, ack)).is_err() {
                tracing::error!(path = %self.log.path.display(), "audit writer stopped; an abandoned request is unrecorded");
            }
        }
    }
}

fn writer_loop(mut file: File, rx: mpsc::Receiver<(AuditRecord, Ack)>, path: String) {
    let mut line = Vec::with_capacity(512);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        line.clear();
        for (record, _) in &batch {
            // Serialising our own struct cannot fail; a failure would only
            // drop that line's content, and the write below still fsyncs.
            if serde_json::to_writer(&mut line, record).is_ok() {
                line.push(b'\n');
            }
        }
        let result = file
            .write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| AuditError {
                path: path.clone(),
                message: e.to_string(),
            });
        if let Err(e) = &result {
            tracing::error!(error = %e, "audit write failed; refusing the affected requests");
        }
        for (_, ack) in batch {
            let _ = ack.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_all_land_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                log.record(AuditRecord {
                    uid: Some(i),
                    operation: "sign".into(),
                    allowed: true,
                    result: "ok".into(),
                    ..Default::default()
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut uids: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["uid"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        uids.sort_unstable();
        assert_eq!(uids, (0..64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_abandoned_request_is_still_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let mut in_flight = InFlight::new(
            &log,
            AuditRecord {
                operation: "sign".into(),
                ..Default::default()
            },
        );
        in_flight.record_mut().key_id = "k1".into();
        drop(in_flight);
        // A later record's fsync covers the abandoned one written before it.
        log.record(AuditRecord::default()).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["key_id"], "k1");
        assert!(
            first["result"].as_str().unwrap().starts_with("abandoned"),
            "{first}"
        );
        assert_eq!(first["allowed"], false);
    }

    #[tokio::test]
    async fn write_failure_is_reported() {
        // /dev/full accepts opens and fails every write with ENOSPC.
        let log = AuditLog::open(Path::new("/dev/full")).unwrap();
        let err = log.record(AuditRecord::default()).await.unwrap_err();
        assert!(err.to_string().contains("/dev/full"), "{err}");
    }
}
