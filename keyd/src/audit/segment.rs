//! Segment files: `audit-000001.jsonl`, `audit-000002.jsonl`, … in the log's
//! directory. A segment is made at its full size before it is used, filled
//! with spaces and ending in a newline, so writing a record only overwrites
//! blocks the file already has: with `O_DSYNC` that is one durable write,
//! with no size or allocation change to flush and no `ENOSPC` halfway
//! through a record. The records fill it from the start; what follows the
//! last record is spaces and newlines (free space), which JSON-lines
//! readers skip as whitespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
/// The next segment while it is being made; never a segment itself.
pub(crate) const SPARE: &str = ".audit-next.jsonl.tmp";

pub(crate) fn file_name(index: u64) -> String {
    format!("{PREFIX}{index:06}{SUFFIX}")
}

/// The segment number in a file name made by `file_name`.
pub(crate) fn index_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(index) = entry.file_name().to_str().and_then(index_of) {
            found.push((index, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Where a segment's records end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The records are `bytes[..at]`, each line ending in a newline; the
    /// rest is free space.
    Clean { at: usize },
    /// Bytes that are neither a whole line nor free space, starting at
    /// `from` (a write cut short, or an edit): the records before `from`
    /// are whole.
    Torn { from: usize },
}

fn is_free(b: u8) -> bool {
    b == b' ' || b == b'\n'
}

/// Finds the end of the records in a segment's bytes. A record line never
/// starts with a space or is empty, so the free space is the run of spaces
/// and newlines at the end, minus the newline of the last record.
pub(crate) fn records_end(bytes: &[u8]) -> End {
    let Some(last) = bytes.iter().rposition(|&b| !is_free(b)) else {
        return End::Clean { at: 0 };
    };
    let line_start = bytes[..last]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    match bytes.get(last + 1) {
        Some(b'\n') => End::Clean { at: last + 2 },
        _ => End::Torn { from: line_start },
    }
}

/// 1-based line number of byte `at`.
pub(crate) fn line_number(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Makes `path` a segment of `size` bytes of free space and syncs it.
/// A partial file (the disk filled up) is removed again.
pub(crate) fn prepare(path: &Path, size: u64) -> io::Result<()> {
    let made = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let chunk = vec![b' '; 1 << 20];
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(chunk.len() as u64) as usize;
            file.write_all_at(&chunk[..n], at)?;
            at += n as u64;
        }
        file.write_all_at(b"\n", size - 1)?;
        file.sync_all()
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segment being written: every write is durable when it returns.
pub(crate) struct Segment {
    pub(crate) index: u64,
    pub(crate) path: PathBuf,
    file: File,
    /// Where the next record goes.
    pub(crate) pos: u64,
    pub(crate) size: u64,
    /// The end of what a failed write may have left behind; the next
    /// write blanks up to here, so no fragment survives a failed write.
    dirty_end: u64,
}

impl Segment {
    /// Opens a made segment whose records end at `pos`.
    pub(crate) fn open(index: u64, path: PathBuf, pos: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_DSYNC)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Segment {
            index,
            path,
            file,
            pos,
            size,
            dirty_end: pos,
        })
    }

    /// Free bytes left (the last byte stays a newline).
    pub(crate) fn room(&self) -> u64 {
        self.size.saturating_sub(self.pos + 1)
    }

    /// Writes whole lines at the end of the records, durably. On failure
    /// nothing counts as written, and whatever part of `lines` reached the
    /// file is blanked (now, or by the next write if that fails too).
    pub(crate) fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        let len = lines.len() as u64;
        if len > self.room() {
            return Err(io::Error::other("segment full"));
        }
        let end = self.pos + len;
        let result = if self.dirty_end > end {
            let mut padded = Vec::with_capacity((self.dirty_end - self.pos) as usize);
            padded.extend_from_slice(lines);
            padded.resize((self.dirty_end - self.pos) as usize, b' ');
            self.file.write_all_at(&padded, self.pos)
        } else {
            self.file.write_all_at(lines, self.pos)
        };
        match result {
            Ok(()) => {
                self.pos = end;
                self.dirty_end = end;
                Ok(())
            }
            Err(e) => {
                self.dirty_end = self.dirty_end.max(end);
                self.blank();
                Err(e)
            }
        }
    }

    /// Overwrites the bytes a failed write may have left with spaces.
    fn blank(&mut self) {
        let n = (self.dirty_end - self.pos) as usize;
        if self.file.write_all_at(&vec![b' '; n], self.pos).is_ok() {
            self.dirty_end = self.pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(7), "audit-000007.jsonl");
        assert_eq!(index_of("audit-000007.jsonl"), Some(7));
        assert_eq!(index_of("audit-1234567.jsonl"), Some(1234567));
        assert_eq!(index_of("audit.jsonl"), None);
        assert_eq!(index_of(SPARE), None);
        assert_eq!(index_of("audit-00007.jsonl"), None);
    }

    #[test]
    fn ends_are_found() {
        assert_eq!(records_end(b"      \n"), End::Clean { at: 0 });
        assert_eq!(records_end(b"{a}\n{b}\n    \n"), End::Clean { at: 8 });
        assert_eq!(records_end(b"{a}\n{b}\n"), End::Clean { at: 8 });
        assert_eq!(records_end(b"{a}\n{b   \n"), End::Torn { from: 4 });
        assert_eq!(records_end(b"{a}\n{b"), End::Torn { from: 4 });
        assert_eq!(line_number(b"{a}\n{b", 4), 2);
    }

    #[test]
    fn a_failed_write_leaves_no_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        prepare(&path, 64).unwrap();
        let mut seg = Segment::open(1, path.clone(), 0).unwrap();
        seg.write(b"{\"a\":1}\n").unwrap();
        // Pretend a longer write failed after reaching the file.
        seg.file.write_all_at(b"{\"torn", seg.pos).unwrap();
        seg.dirty_end = seg.pos + 6;
        seg.write(b"{}\n").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(records_end(&bytes), End::Clean { at: 11 });
        assert_eq!(bytes.len(), 64);
        assert!(seg.write(&[b'x'; 64]).is_err(), "larger than the room left");
    }
}
