//! The audit log: one hash-chained JSON line per decision, on disk before
//! the reply, in segments that rotate by size, with the chain head signed
//! by the daemon's audit key at checkpoints.
//!
//! - `record`: what a line says; `line`: the chain fields every line
//!   begins with; `segment`: the files and their preallocated free space;
//!   `spare`: the next segment, made ahead of time; `writer`: group commit
//!   and rotation; `tail`: continuing the chain at start; `status`: what
//!   the writer shares; `verify`: the offline check; `config`: `[audit]`.

mod checkpoint;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod key;
mod line;
mod record;
pub(crate) mod rpc;
mod segment;
mod spare;
mod status;
mod tail;
pub(crate) mod verify;
mod writer;

pub(crate) use checkpoint::Checkpointer;
pub(crate) use config::AuditConfig;
pub(crate) use key::AuditKey;
pub(crate) use record::{now_rfc3339, AuditRecord};
pub(crate) use status::Snapshot;
pub(crate) use tail::{new_chain, OpenError};

use crate::status::refusal;
use keyd_proto::Reason;
use record::{Body, Kind, Start};
use spare::Spare;
use status::Shared;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;
use tonic::Status;
use writer::{Job, Writer};

#[derive(Debug, thiserror::Error, Clone)]
#[error("audit log {path} cannot be written: {message}")]
pub(crate) struct AuditError {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl AuditError {
    fn io(path: &Path, e: &std::io::Error) -> AuditError {
        AuditError {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    dir: PathBuf,
    /// The runtime that opened the log, which lives as long as the daemon:
    /// an abandoned request's outcome is recorded there, not on the signer
    /// API's thread, whose runtime ends as soon as that API stops.
    runtime: tokio::runtime::Handle,
}

impl AuditLog {
    /// Opens the log (continuing its chain), starts the writer and records
    /// the start.
    pub(crate) async fn open(config: &AuditConfig) -> Result<AuditLog, OpenError> {
        let size = config.max_size.0;
        let tail = tail::open(&config.dir, size)?;
        let io = |e: std::io::Error| OpenError::Io(AuditError::io(&config.dir, &e));
        let spare = Spare::start(&config.dir, size).map_err(io)?;
        let shared = Arc::new(Shared::new(
            tail.head,
            &tail.segment,
            config.checkpoint_records,
        ));
        let writer = Writer {
            dir: config.dir.clone(),
            keep: config.keep,
            segment: tail.segment,
            needs_header: tail.needs_header,
            head: tail.head,
            spare,
            shared: Arc::clone(&shared),
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let lock = tail.lock;
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let _lock = lock;
                writer.run(rx);
            })
            .map_err(io)?;
        let log = AuditLog {
            tx,
            shared,
            dir: config.dir.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let time = now_rfc3339();
        let start = Start {
            time: &time,
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
        };
        log.write(Body::of(Kind::Start, &start)).await?;
        Ok(log)
    }

    /// Where the chain stands.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    fn gone(&self) -> AuditError {
        AuditError {
            path: self.dir.display().to_string(),
            message: "audit writer stopped".into(),
        }
    }

    /// Writes one line durably; resolves with its `seq` once it is on disk.
    async fn write(&self, body: Body) -> Result<u64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Job {
                body,
                ack: Some(ack),
            })
            .map_err(|_| self.gone())?;
        done.await.map_err(|_| self.gone())?
    }

    /// Starts the record of an operation decided in one record: the work
    /// fills it in through `Audited::record`, and `Audited::close` writes
    /// it with the outcome.
    pub(crate) fn begin(&self, record: AuditRecord) -> Audited {
        Audited {
            log: self.clone(),
            record,
            closed: false,
        }
    }

    /// Writes one record durably; resolves after its batch's write.
    pub(crate) async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        self.write(Body::of(Kind::Decision, &record))
            .await
            .map(drop)
    }

    /// Starts writing the record of a request, before its checks and its
    /// device's work, so the write overlaps them: what is asked, by whom,
    /// the payload's digest, and a `result` that says the outcome is
    /// pending. The reply must wait for [`Requested::durable`]; the outcome
    /// follows with [`Requested::outcome`] (or, if the request is dropped
    /// first, as abandoned), carrying the record as the request filled it in.
    pub(crate) fn request(&self, record: AuditRecord) -> Requested {
        let mut asked = record;
        asked.allowed = true;
        asked.result = PENDING.into();
        let (ack, receipt) = oneshot::channel();
        let sent = self.tx.send(Job {
            body: Body::of(Kind::Request, &asked),
            ack: Some(ack),
        });
        Requested {
            log: self.clone(),
            record: asked,
            receipt: sent.ok().map(|()| receipt),
            seq: None,
            done: false,
        }
    }

    fn append_outcome(&self, request: u64, record: &AuditRecord) {
        let job = Job {
            body: Body::of(Kind::Outcome, &record::OutcomeOf { request, record }),
            ack: None,
        };
        if self.tx.send(job).is_err() {
            tracing::error!(
                request,
                "audit writer stopped; a request's outcome is unrecorded"
            );
        }
    }
}

/// An operation's record while its work runs. Closing it commits a success
/// (a failed write turns it into an error, so no result leaves the daemon
/// unrecorded) or records the refusal (which is sent even when the write
/// fails: refusing is safe). Dropped before closing, it is written anyway,
/// as abandoned.
pub(crate) struct Audited {
    log: AuditLog,
    record: AuditRecord,
    closed: bool,
}

impl Audited {
    pub(crate) fn record(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    pub(crate) async fn close<T>(mut self, outcome: Result<T, Status>) -> Result<T, Status> {
        self.closed = true;
        let mut record = std::mem::take(&mut self.record);
        record.allowed = outcome.is_ok();
        match outcome {
            Ok(value) => {
                record.result = "ok".into();
                self.log.record(record).await.map_err(|e| withheld(&e))?;
                Ok(value)
            }
            Err(status) => {
                record.result = status.message().to_string();
                if let Err(e) = self.log.record(record).await {
                    tracing::error!(error = %e, "audit write failed for a refused request");
                }
                Err(status)
            }
        }
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let mut record = std::mem::take(&mut self.record);
        record.allowed = false;
        record.result = ABANDONED.into();
        // Nobody waits for this write; it is still durable.
        let job = Job {
            body: Body::of(Kind::Decision, &record),
            ack: None,
        };
        if self.log.tx.send(job).is_err() {
            tracing::error!(dir = %self.log.dir.display(), "audit writer stopped; an abandoned request is unrecorded");
        }
    }
}

/// The status of a result withheld because its audit record is not on disk.
pub(crate) fn withheld(e: &AuditError) -> Status {
    refusal(Reason::AuditFailed, format!("{e}; the result was withheld"))
}

const PENDING: &str = "pending: the outcome follows";

const ABANDONED: &str = "abandoned before the reply: the caller went away or its deadline \
                         passed; a device may have signed, nothing was returned";

const UNDELIVERED: &str = "not delivered: the result was made, but the caller had gone";

/// A request record on its way to disk (see [`AuditLog::request`]).
pub(crate) struct Requested {
    log: AuditLog,
    record: AuditRecord,
    receipt: Option<oneshot::Receiver<Result<u64, AuditError>>>,
    seq: Option<u64>,
    done: bool,
}

impl Requested {
    /// The record the outcome will carry, for the request to fill in.
    pub(crate) fn record_mut(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    /// Waits until the request record is on disk. An error means it is
    /// not, and the request's result must be withheld.
    pub(crate) async fn durable(&mut self) -> Result<u64, AuditError> {
        if let Some(seq) = self.seq {
            return Ok(seq);
        }
        let receipt = self.receipt.take().ok_or_else(|| self.log.gone())?;
        let seq = receipt.await.map_err(|_| self.log.gone())??;
        self.seq = Some(seq);
        Ok(seq)
    }

    /// Appends the request's outcome. Nobody waits for it: the reply waited
    /// for the request record, which already says a signature may exist.
    pub(crate) async fn outcome(mut self, allowed: bool, result: &str) {
        self.done = true;
        // Without a request record there is nothing to follow; the
        // refusal the caller got says why.
        if let Ok(seq) = self.durable().await {
            self.record.allowed = allowed;
            self.record.result = result.to_string();
            let time = now_rfc3339();
            self.record.time = time;
            self.log.append_outcome(seq, &self.record);
        }
    }

    /// The result was made but its caller had gone before it could be sent.
    pub(crate) async fn undelivered(self) {
        self.outcome(false, UNDELIVERED).await;
    }
}

impl Drop for Requested {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let log = self.log.clone();
        let mut record = std::mem::take(&mut self.record);
        let (seq, receipt) = (self.seq, self.receipt.take());
        let abandon = async move {
            let seq = match (seq, receipt) {
                (Some(seq), _) => seq,
                (None, Some(receipt)) => match receipt.await {
                    Ok(Ok(seq)) => seq,
                    _ => return,
                },
                (None, None) => return,
            };
            record.allowed = false;
            record.result = ABANDONED.into();
            record.time = now_rfc3339();
            log.append_outcome(seq, &record);
        };
        drop(self.log.runtime.spawn(abandon));
    }
}

#[cfg(test)]
mod tests;
