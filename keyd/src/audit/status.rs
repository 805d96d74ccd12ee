//! What the writer shares with the rest of the daemon: where the chain
//! stands (for `notaryctl audit status`), and when a checkpoint is due.

use super::line::Head;
use super::segment::Segment;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::Notify;

/// The last signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckpointInfo {
    /// Its own line.
    pub(crate) seq: u64,
    pub(crate) time: String,
    /// The head it signs.
    pub(crate) head_seq: u64,
    pub(crate) head: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) head: Head,
    pub(crate) segment: PathBuf,
    pub(crate) segment_bytes: u64,
    pub(crate) segment_size: u64,
    pub(crate) last_checkpoint: Option<CheckpointInfo>,
}

pub(crate) struct Shared {
    snapshot: Mutex<Snapshot>,
    /// Records (other than checkpoints) since the last checkpoint began.
    unsigned: AtomicU64,
    /// After this many unsigned records the checkpointer is woken.
    every: u64,
    pub(crate) checkpoint_due: Notify,
}

impl Shared {
    pub(crate) fn new(head: Head, segment: &Segment, every: u64) -> Shared {
        Shared {
            snapshot: Mutex::new(Snapshot {
                head,
                segment: segment.path.clone(),
                segment_bytes: segment.pos,
                segment_size: segment.size,
                last_checkpoint: None,
            }),
            unsigned: AtomicU64::new(0),
            every,
            checkpoint_due: Notify::new(),
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The writer wrote up to `head`, `counted` of them records to sign.
    pub(crate) fn written(&self, segment: &Segment, head: Head, counted: u64) {
        {
            let mut s = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
            s.head = head;
            s.segment.clone_from(&segment.path);
            s.segment_bytes = segment.pos;
            s.segment_size = segment.size;
        }
        let before = self.unsigned.fetch_add(counted, Ordering::Relaxed);
        if before < self.every && before + counted >= self.every {
            self.checkpoint_due.notify_one();
        }
    }

    /// A checkpoint is about to sign the head: what is written from now
    /// on counts toward the next one. Returns how many records it covers.
    pub(crate) fn begin_checkpoint(&self) -> (Head, u64) {
        let unsigned = self.unsigned.swap(0, Ordering::Relaxed);
        (self.snapshot().head, unsigned)
    }

    pub(crate) fn checkpointed(&self, info: CheckpointInfo) {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_checkpoint = Some(info);
    }
}
