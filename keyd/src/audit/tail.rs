//! Opening the log at start: the directory, the lock that keeps a second
//! daemon out, and the tail of the newest segment, whose last line the
//! chain continues from. A tail that does not parse stops the start,
//! naming the line, until an operator begins a new chain (`new_chain`),
//! which the new segment's header records.

use super::line::{self, Head, Link};
use super::record::{now_rfc3339, Body, Kind, SegmentHeader, FORMAT};
use super::segment::{self, End, Segment, SPARE};
use super::AuditError;
use keyd_backends::dir_lock::{lock_dir, DirLock, LockError};
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Where writing continues.
pub(crate) struct Tail {
    pub(crate) segment: Segment,
    pub(crate) needs_header: bool,
    pub(crate) head: Head,
    pub(crate) lock: DirLock,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error(transparent)]
    Io(#[from] AuditError),
    #[error("another process writes the audit log in {0} (its .lock is held)")]
    Locked(String),
    #[error(
        "audit log {path} line {line}: {problem}. Nothing was changed. Check the log with \
         `notary-keyd audit verify {dir}`; to keep it as it is and continue in a new chain, run \
         `notary-keyd audit new-chain --reason TEXT` (the reason is recorded)"
    )]
    Damaged {
        path: String,
        dir: String,
        line: usize,
        problem: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::io(path, &e)
}

/// Creates the directory (0700) if needed and takes its lock.
pub(crate) fn lock(dir: &Path) -> Result<DirLock, OpenError> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
    }
    lock_dir(dir).map_err(|e| match e {
        LockError::Open { path, error } => io(&path)(error).into(),
        LockError::Held => OpenError::Locked(dir.display().to_string()),
    })
}

/// Opens the log in `dir` for writing; a new log gets its first segment
/// of `size` bytes.
pub(crate) fn open(dir: &Path, size: u64) -> Result<Tail, OpenError> {
    let lock = lock(dir)?;
    let _ = std::fs::remove_file(dir.join(SPARE));
    let segments = segment::list(dir).map_err(io(dir))?;
    let Some((index, path)) = segments.last().cloned() else {
        let path = dir.join(segment::file_name(1));
        segment::prepare(&path, size).map_err(io(&path))?;
        segment::sync_dir(dir).map_err(io(dir))?;
        return Ok(Tail {
            segment: Segment::open(1, path.clone(), 0).map_err(io(&path))?,
            needs_header: true,
            head: Head::GENESIS,
            lock,
        });
    };
    let (head, at) = match last_line(dir, index, &path)? {
        Some(found) => found,
        // A crash between making a segment and writing its header: the
        // chain continues from the segment before.
        None => {
            let before = segments.iter().rev().nth(1);
            let head = match before {
                Some((i, p)) => last_line(dir, *i, p)?.map_or(Head::GENESIS, |(h, _)| h),
                None => Head::GENESIS,
            };
            return Ok(Tail {
                segment: Segment::open(index, path.clone(), 0).map_err(io(&path))?,
                needs_header: true,
                head,
                lock,
            });
        }
    };
    Ok(Tail {
        segment: Segment::open(index, path.clone(), at as u64).map_err(io(&path))?,
        needs_header: false,
        head,
        lock,
    })
}

/// The head after segment `index`'s last line and where its records end,
/// or `None` for a segment without records.
fn last_line(dir: &Path, index: u64, path: &Path) -> Result<Option<(Head, usize)>, OpenError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let damaged = |at: usize, problem: String| OpenError::Damaged {
        path: path.display().to_string(),
        dir: dir.display().to_string(),
        line: segment::line_number(&bytes, at),
        problem,
    };
    let at = match segment::records_end(&bytes) {
        End::Clean { at: 0 } => return Ok(None),
        End::Clean { at } => at,
        End::Torn { from } => {
            return Err(damaged(
                from,
                "is cut short or altered (not a whole line)".into(),
            ))
        }
    };
    let first_end = bytes.iter().position(|&b| b == b'\n').unwrap_or(at);
    let header = Link::parse(&bytes[..first_end]);
    if !matches!(&header, Ok(l) if l.kind == "segment" && l.segment == Some(index)) {
        return Err(damaged(0, format!("is not the header of segment {index}")));
    }
    let start = bytes[..at - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let last = &bytes[start..at - 1];
    let link = Link::parse(last).map_err(|e| damaged(start, format!("does not parse ({e})")))?;
    Ok(Some((Head::after(link.seq, last), at)))
}

/// Begins a new chain in a new segment: the operator's answer to a tail
/// that cannot be read, or to a chain that must not be continued. The old
/// segments stay as they are. Returns the new segment's path.
pub(crate) fn new_chain(dir: &Path, size: u64, reason: &str) -> Result<PathBuf, OpenError> {
    let _lock = lock(dir)?;
    let segments = segment::list(dir).map_err(io(dir))?;
    let after = match segments.last() {
        None => "no earlier segment".to_string(),
        Some((index, path)) => match last_line(dir, *index, path) {
            Ok(Some((head, _))) => format!(
                "{} ends at seq {} (hash {})",
                segment::file_name(*index),
                head.seq,
                head.hash_hex()
            ),
            Ok(None) => format!("{} has no records", segment::file_name(*index)),
            Err(e) => e.to_string(),
        },
    };
    let index = segments.last().map_or(1, |(i, _)| i + 1);
    let path = dir.join(segment::file_name(index));
    segment::prepare(&path, size).map_err(io(&path))?;
    segment::sync_dir(dir).map_err(io(dir))?;
    let mut seg = Segment::open(index, path.clone(), 0).map_err(io(&path))?;
    let time = now_rfc3339();
    let header = SegmentHeader {
        time: &time,
        segment: index,
        format: FORMAT,
        new_chain: Some(reason),
        after: Some(&after),
    };
    let mut buf = Vec::new();
    line::append(&mut buf, &Head::GENESIS, &Body::of(Kind::Segment, &header));
    seg.write(&buf).map_err(io(&path))?;
    Ok(path)
}
