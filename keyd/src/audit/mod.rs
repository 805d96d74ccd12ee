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
pub mod cli;
pub mod config;
pub mod key;
mod line;
mod record;
pub mod rpc;
mod segment;
mod spare;
mod status;
mod tail;
pub mod verify;
mod writer;

pub use checkpoint::Checkpointer;
pub use config::AuditConfig;
pub use key::AuditKey;
pub use record::{now_rfc3339, AuditRecord};
pub use status::Snapshot;
pub use tail::{new_chain, OpenError};

use record::{Body, Kind, Start};
use spare::Spare;
use status::Shared;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;
use writer::{Job, Writer};

#[derive(Debug, thiserror::Error, Clone)]
#[error("audit log {path} cannot be written: {message}")]
pub struct AuditError {
    pub path: String,
    pub message: String,
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
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl AuditLog {
    /// Opens the log (continuing its chain), starts the writer and records
    /// the start.
    pub async fn open(config: &AuditConfig) -> Result<AuditLog, OpenError> {
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
    pub fn snapshot(&self) -> Snapshot {
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

    /// Writes one record durably; resolves after its batch's write.
    pub async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        self.write(Body::of(Kind::Decision, &record))
            .await
            .map(drop)
    }
}

/// The record of a request whose handler can be dropped before it finishes
/// (a unary call whose client went away, or whose deadline passed while a
/// device was signing). Normally `finish` hands the record back to be
/// written with the outcome; if the handler is dropped first, the record is
/// written anyway, saying so, so no decision leaves the log without a line.
pub struct InFlight {
    log: AuditLog,
    record: AuditRecord,
    finished: bool,
}

impl InFlight {
    pub fn new(log: &AuditLog, record: AuditRecord) -> InFlight {
        InFlight {
            log: log.clone(),
            record,
            finished: false,
        }
    }

    pub fn record_mut(&mut self) -> &mut AuditRecord {
        &mut self.record
    }

    pub fn finish(mut self) -> AuditRecord {
        self.finished = true;
        std::mem::take(&mut self.record)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            let mut record = std::mem::take(&mut self.record);
            record.allowed = false;
            record.result = "abandoned before the reply: the caller went away or its deadline \
                             passed; a device may have signed, nothing was returned"
                .into();
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
}

#[cfg(test)]
mod tests;
