//! The writer thread: group commit into the current segment, rotation.
//!
//! It takes every record that is waiting, chains them after the head, and
//! writes them with one `O_DSYNC` write into the segment's free space, then
//! answers them all (records nobody waits for wait a few milliseconds for
//! one somebody does, see `Writer::run`): a write per request behind a lock would cap the daemon
//! far below what its devices can sign. A batch that does not fit begins a
//! new segment first, so a batch is written whole or not at all. If the
//! write fails, every record in that batch gets the error (its caller must
//! not return its result), the head stays where it was, and the bytes the
//! failed write may have left are blanked, so no torn line remains and the
//! next batch continues the chain.

use super::line::{self, Head, LINK_OVERHEAD};
use super::record::{now_rfc3339, Body, Kind, SegmentHeader, FORMAT};
use super::segment::{self, Segment};
use super::spare::Spare;
use super::status::Shared;
use super::AuditError;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Answers a record with its `seq` once it is on disk.
pub(crate) type Ack = oneshot::Sender<Result<u64, AuditError>>;

pub(crate) struct Job {
    pub(crate) body: Body,
    /// `None`: nobody waits (the record is still written durably).
    pub(crate) ack: Option<Ack>,
}

/// The longest a record nobody waits for stays off the disk.
const UNWAITED_DELAY: Duration = Duration::from_millis(5);

/// Room kept for a segment header.
const HEADER_ROOM: u64 = 512;

pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    pub(crate) keep: usize,
    pub(crate) segment: Segment,
    /// The current segment has no header yet.
    pub(crate) needs_header: bool,
    pub(crate) head: Head,
    pub(crate) spare: Spare,
    pub(crate) shared: Arc<Shared>,
}

impl Writer {
    /// Writes what is waiting whenever someone waits for a record. Records
    /// nobody waits for (outcomes, abandoned requests) are held for up to
    /// `UNWAITED_DELAY` to ride with the next request record: after a reply
    /// its outcome would otherwise take a durable write of its own, which
    /// the next request then waits behind.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut batch = Vec::new();
        // When the oldest record in `batch`, which nobody waits for, came.
        let mut held_since: Option<Instant> = None;
        loop {
            let next = match held_since {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(since) => rx.recv_timeout(UNWAITED_DELAY.saturating_sub(since.elapsed())),
            };
            match next {
                Ok(job) => {
                    batch.push(job);
                    batch.extend(rx.try_iter());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let since = *held_since.get_or_insert_with(Instant::now);
            if batch.iter().any(|job| job.ack.is_some()) || since.elapsed() >= UNWAITED_DELAY {
                self.commit(std::mem::take(&mut batch), &mut buf);
                held_since = None;
            }
        }
        if !batch.is_empty() {
            self.commit(batch, &mut buf);
        }
    }

    fn commit(&mut self, batch: Vec<Job>, buf: &mut Vec<u8>) {
        let mut rest = batch.into_iter().peekable();
        while rest.peek().is_some() {
            let room =
                self.segment
                    .room()
                    .saturating_sub(if self.needs_header { HEADER_ROOM } else { 0 });
            let mut size = 0u64;
            let mut part = Vec::new();
            while let Some(job) = rest.next_if(|job| {
                let need = (job.body.json.len() + LINK_OVERHEAD) as u64;
                let fits = size + need <= room;
                if fits {
                    size += need;
                }
                fits
            }) {
                part.push(job);
            }
            if part.is_empty() && self.segment.pos == 0 {
                // Larger than a whole segment: `MAX_FIELD` and
                // `MIN_SEGMENT` keep this from happening.
                let err = AuditError::io(
                    &self.segment.path,
                    &std::io::Error::other("record larger than a segment"),
                );
                answer(rest.next().into_iter(), &Err(err));
                continue;
            }
            if part.is_empty() {
                if let Err(e) = self.rotate() {
                    tracing::error!(error = %e, "audit segment rotation failed; refusing the affected requests");
                    answer(rest, &Err(e));
                    return;
                }
                continue;
            }
            if let Err(e) = self.write(part, buf) {
                tracing::error!(error = %e, "audit write failed; refusing the affected requests");
                answer(rest, &Err(e));
                return;
            }
        }
    }

    /// Writes `part`, which fits the current segment, and answers it.
    fn write(&mut self, part: Vec<Job>, buf: &mut Vec<u8>) -> Result<(), AuditError> {
        buf.clear();
        let mut head = self.head;
        if self.needs_header {
            let time = now_rfc3339();
            let header = SegmentHeader {
                time: &time,
                segment: self.segment.index,
                format: FORMAT,
                new_chain: None,
                after: None,
            };
            head = line::append(buf, &head, &Body::of(Kind::Segment, &header));
        }
        let mut seqs = Vec::with_capacity(part.len());
        let mut counted = 0u64;
        for job in &part {
            head = line::append(buf, &head, &job.body);
            seqs.push(head.seq);
            if job.body.kind != Kind::Checkpoint {
                counted += 1;
            }
        }
        let started = Instant::now();
        match self.segment.write(buf) {
            Ok(()) => {
                crate::metrics::AUDIT.wrote(part.len(), started.elapsed());
                self.head = head;
                self.needs_header = false;
                self.shared.written(&self.segment, head, counted);
                for (job, seq) in part.into_iter().zip(seqs) {
                    if let Some(ack) = job.ack {
                        let _ = ack.send(Ok(seq));
                    }
                }
                Ok(())
            }
            Err(e) => {
                let err = AuditError::io(&self.segment.path, &e);
                answer(part.into_iter(), &Err(err.clone()));
                Err(err)
            }
        }
    }

    /// Closes the current segment and begins the next with the spare, then
    /// deletes the oldest segments beyond `keep`.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let index = self.segment.index + 1;
        let path = self.dir.join(segment::file_name(index));
        self.spare
            .take(&path)
            .map_err(|e| AuditError::io(&path, &e))?;
        self.segment =
            Segment::open(index, path.clone(), 0).map_err(|e| AuditError::io(&path, &e))?;
        self.needs_header = true;
        tracing::info!(segment = %path.display(), "audit log: new segment");
        self.prune();
        Ok(())
    }

    fn prune(&self) {
        if self.keep == 0 {
            return;
        }
        let segments = match segment::list(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list audit segments to prune");
                return;
            }
        };
        let excess = segments.len().saturating_sub(self.keep);
        for (_, path) in segments.into_iter().take(excess) {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(segment = %path.display(), "audit log: removed the oldest segment (keep)")
                }
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "cannot remove an old audit segment")
                }
            }
        }
    }
}

fn answer(jobs: impl Iterator<Item = Job>, result: &Result<u64, AuditError>) {
    for job in jobs {
        if let Some(ack) = job.ack {
            let _ = ack.send(result.clone());
        }
    }
}
