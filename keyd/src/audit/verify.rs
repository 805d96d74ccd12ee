//! `notary-keyd audit verify`: checks a log offline, from its files alone
//! (copies will do; nothing is written, no lock is taken). It follows the
//! chain across segments: every `seq` one more than the last, every `prev`
//! the hash of the line before, no segment missing, no torn line; checks
//! every checkpoint's signature with the audit public key and that the
//! head it signs is the one in the log; and lists the requests whose
//! outcome never came (a crash while a device worked: a signature may
//! exist). The first bad record ends the check and is named.

use super::checkpoint;
use super::line::{Head, Link};
use super::segment::{self, End};
use base64::Engine;
use notary_tuf::{PublicKey, SignatureMethod};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

/// How far back a checkpoint may name its head (the writer appends it a
/// few batches after it reads the head).
const RECENT: usize = 1 << 16;

/// The first bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) seq: Option<u64>,
    pub(crate) problem: String,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.path.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// A request whose outcome is not in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenRequest {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastCheckpoint {
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) head_seq: u64,
    pub(crate) key_id: String,
}

/// What was checked, and the verdict.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) segments: Vec<PathBuf>,
    pub(crate) records: u64,
    pub(crate) first_seq: Option<u64>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) first_time: Option<String>,
    pub(crate) last_time: Option<String>,
    pub(crate) checkpoints: u64,
    pub(crate) last_checkpoint: Option<LastCheckpoint>,
    /// Checkpoints the daemon could not sign, with why.
    pub(crate) unsigned_checkpoints: Vec<String>,
    pub(crate) open_requests: Vec<OpenRequest>,
    /// New chains begun by an operator: where, and the recorded reason.
    pub(crate) restarts: Vec<String>,
    /// The first line checked does not begin a chain: earlier segments
    /// were not given (or were rotated out).
    pub(crate) starts_mid_chain: bool,
    pub(crate) bad: Option<Bad>,
}

impl Report {
    pub(crate) fn intact(&self) -> bool {
        self.bad.is_none()
    }
}

/// Checks the segments at `paths` (segment files, or directories whose
/// `audit-NNNNNN.jsonl` files are taken) against the audit `keys`.
pub(crate) fn verify(paths: &[PathBuf], keys: &[PublicKey]) -> Report {
    let mut check = Check {
        keys: keys.iter().map(|k| (k.key_id(), k.clone())).collect(),
        report: Report::default(),
        last: None,
        recent: VecDeque::with_capacity(RECENT),
        open: BTreeMap::new(),
        chain_first: 0,
        last_index: None,
    };
    if let Err(bad) = check.all(paths) {
        check.report.bad = Some(bad);
    }
    check.report.open_requests = check.open.into_values().collect();
    check.report
}

struct Check {
    keys: Vec<(String, PublicKey)>,
    report: Report,
    /// The line before: where it is, its head.
    last: Option<(PathBuf, usize, Head)>,
    /// (seq, hash) of recent lines, consecutive, for checkpoint heads.
    recent: VecDeque<Head>,
    open: BTreeMap<u64, OpenRequest>,
    /// The first seq of the chain being checked.
    chain_first: u64,
    last_index: Option<u64>,
}

fn bad(path: &Path, line: usize, seq: Option<u64>, problem: impl Into<String>) -> Bad {
    Bad {
        path: path.to_path_buf(),
        line,
        seq,
        problem: problem.into(),
    }
}

/// The segment number in a file's header line.
fn header_index(path: &Path) -> Result<u64, Bad> {
    use std::io::Read;
    let mut first = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut first))
        .map_err(|e| bad(path, 1, None, format!("cannot read: {e}")))?;
    let end = first
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(first.len());
    match Link::parse(&first[..end]) {
        Ok(link) if link.kind == "segment" => link
            .segment
            .ok_or_else(|| bad(path, 1, Some(link.seq), "the header names no segment")),
        Ok(link) => Err(bad(
            path,
            1,
            Some(link.seq),
            "the first line is not a segment header",
        )),
        Err(e) => Err(bad(
            path,
            1,
            None,
            format!("the first line is not a segment header ({e})"),
        )),
    }
}

impl Check {
    fn all(&mut self, paths: &[PathBuf]) -> Result<(), Bad> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let listed = segment::list(path)
                    .map_err(|e| bad(path, 0, None, format!("cannot list: {e}")))?;
                files.extend(listed.into_iter().map(|(_, p)| p));
            } else {
                files.push(path.clone());
            }
        }
        if files.is_empty() {
            return Err(Bad {
                path: paths.first().cloned().unwrap_or_default(),
                line: 0,
                seq: None,
                problem: "no audit segments found".into(),
            });
        }
        let mut ordered = Vec::with_capacity(files.len());
        for path in files {
            ordered.push((header_index(&path)?, path));
        }
        ordered.sort();
        for pair in ordered.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(bad(
                    &pair[1].1,
                    1,
                    None,
                    format!("segment {} is also {}", pair[0].0, pair[0].1.display()),
                ));
            }
        }
        for (index, path) in ordered {
            self.report.segments.push(path.clone());
            self.segment(index, &path)?;
        }
        Ok(())
    }

    fn segment(&mut self, index: u64, path: &Path) -> Result<(), Bad> {
        if let Some(before) = self.last_index {
            if index != before + 1 {
                let missing = if index == before + 2 {
                    format!("segment {} is missing", before + 1)
                } else {
                    format!("segments {} to {} are missing", before + 1, index - 1)
                };
                return Err(bad(path, 1, None, missing));
            }
        }
        self.last_index = Some(index);
        let bytes =
            std::fs::read(path).map_err(|e| bad(path, 0, None, format!("cannot read: {e}")))?;
        let (records, torn) = match segment::records_end(&bytes) {
            End::Clean { at } => (&bytes[..at], None),
            End::Torn { from } => (&bytes[..from], Some(from)),
        };
        let mut last_time = None;
        for (i, line) in records.split_inclusive(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let number = i + 1;
            let link = Link::parse(line)
                .map_err(|e| bad(path, number, None, format!("not a record ({e})")))?;
            self.line(index, path, number, line, &link)?;
            if let Some(t) = link.time {
                last_time = Some(t);
            }
        }
        if let Some(t) = last_time {
            self.report.last_time = Some(t.to_string());
        }
        if let Some(from) = torn {
            return Err(bad(
                path,
                segment::line_number(&bytes, from),
                None,
                "torn line: a write was cut short, or the line was altered",
            ));
        }
        Ok(())
    }

    fn line(
        &mut self,
        index: u64,
        path: &Path,
        number: usize,
        line: &[u8],
        link: &Link<'_>,
    ) -> Result<(), Bad> {
        let seq = Some(link.seq);
        let here = |problem: String| bad(path, number, seq, problem);
        let is_header = link.kind == "segment";
        if number == 1 && !(is_header && link.segment == Some(index)) {
            return Err(here(format!(
                "the first line is not the header of segment {index}"
            )));
        }
        if number > 1 && is_header {
            return Err(here(
                "a segment header inside a segment: this line was inserted".into(),
            ));
        }
        if link.begins_chain() {
            match (&link.new_chain, &self.last, index) {
                (Some(reason), _, _) => self.report.restarts.push(format!(
                    "segment {index} ({}) begins a new chain: {reason}",
                    path.display()
                )),
                (None, None, 1) => {}
                (None, _, _) => {
                    return Err(here("begins a new chain without a recorded reason".into()))
                }
            }
            self.chain_first = 1;
            self.recent.clear();
        } else {
            match &self.last {
                Some((last_path, last_number, last)) => {
                    if link.seq != last.seq + 1 {
                        return Err(here(if link.seq > last.seq + 1 {
                            let (from, to) = (last.seq + 1, link.seq - 1);
                            if from == to {
                                format!(
                                    "seq {from} is missing before this line (a record was removed)"
                                )
                            } else {
                                format!("seqs {from} to {to} are missing before this line (records were removed)")
                            }
                        } else {
                            format!(
                                "seq {} after seq {}: this line was moved or inserted",
                                link.seq, last.seq
                            )
                        }));
                    }
                    if !link.follows(&last.hash) {
                        return Err(bad(
                            last_path,
                            *last_number,
                            Some(last.seq),
                            format!(
                                "its hash is not the one the next line ({} line {number}) names: \
                                 this line was edited or replaced",
                                path.display()
                            ),
                        ));
                    }
                }
                None => {
                    self.report.starts_mid_chain = true;
                    self.chain_first = link.seq;
                }
            }
        }
        let head = Head::after(link.seq, line);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(head);
        self.last = Some((path.to_path_buf(), number, head));
        self.report.records += 1;
        self.report.first_seq.get_or_insert(link.seq);
        self.report.last_seq = Some(link.seq);
        if self.report.first_time.is_none() {
            self.report.first_time = link.time.map(str::to_string);
        }
        match link.kind {
            "checkpoint" => self.checkpoint(link).map_err(here),
            "request" => {
                let who = match (&link.uid, &link.client) {
                    (Some(uid), _) => format!("uid {uid}"),
                    (None, Some(c)) => format!("client {c:?}"),
                    _ => "an unknown caller".into(),
                };
                self.open.insert(
                    link.seq,
                    OpenRequest {
                        path: path.to_path_buf(),
                        line: number,
                        seq: link.seq,
                        time: link.time.unwrap_or("").to_string(),
                        what: format!(
                            "{} with key {} by {who}",
                            link.operation.as_deref().unwrap_or("?"),
                            link.key_id.as_deref().unwrap_or("?")
                        ),
                    },
                );
                Ok(())
            }
            "outcome" => {
                let request = link
                    .request
                    .ok_or_else(|| here("an outcome that names no request".into()))?;
                if self.open.remove(&request).is_none() && request >= self.chain_first {
                    return Err(here(format!(
                        "the outcome of request seq {request}, which is not an open request in the log"
                    )));
                }
                Ok(())
            }
            "segment" | "start" | "decision" => Ok(()),
            other => Err(here(format!("unknown kind {other:?}"))),
        }
    }

    fn checkpoint(&mut self, link: &Link<'_>) -> Result<(), String> {
        let (Some(head_seq), Some(head), Some(time)) = (link.head_seq, link.head, link.time) else {
            return Err("a checkpoint without head_seq, head or time".into());
        };
        let key_id = link.key_id.as_deref().unwrap_or("");
        let Some(sig) = link.sig else {
            let why = link.error.as_deref().unwrap_or("no reason given");
            self.report.unsigned_checkpoints.push(format!(
                "seq {}: head seq {head_seq} not signed: {why}",
                link.seq
            ));
            return Ok(());
        };
        if head_seq >= link.seq {
            return Err(format!("signs head seq {head_seq}, which is not before it"));
        }
        if let Some(first) = self.recent.front() {
            if head_seq >= first.seq {
                let at = (head_seq - first.seq) as usize;
                let known = self.recent.get(at).map(Head::hash_hex);
                if known.as_deref() != Some(head) {
                    return Err(format!(
                        "signs head {head} for seq {head_seq}, but that line's hash is {}",
                        known.unwrap_or_default()
                    ));
                }
            }
        }
        let Some((_, key)) = self.keys.iter().find(|(id, _)| id == key_id) else {
            return Err(format!(
                "signed by audit key {key_id}, which was not given (--key)"
            ));
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| "the signature is not base64".to_string())?;
        notary_tuf::verify(
            key,
            SignatureMethod::Ecdsa,
            &checkpoint::message(head_seq, head, time),
            &signature,
        )
        .map_err(|_| {
            format!("the signature does not verify with audit key {key_id}: a forged or altered checkpoint")
        })?;
        self.report.checkpoints += 1;
        self.report.last_checkpoint = Some(LastCheckpoint {
            seq: link.seq,
            time: time.to_string(),
            head_seq,
            key_id: key_id.to_string(),
        });
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &PathBuf| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        match (self.segments.first(), self.segments.last()) {
            (Some(a), Some(b)) if self.segments.len() > 1 => writeln!(
                f,
                "segments: {} ({} … {})",
                self.segments.len(),
                name(a),
                name(b)
            )?,
            (Some(a), _) => writeln!(f, "segments: 1 ({})", a.display())?,
            _ => writeln!(f, "segments: none")?,
        }
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => writeln!(f, "records: {} (seq {a} to {b})", self.records)?,
            _ => writeln!(f, "records: 0")?,
        }
        if self.starts_mid_chain {
            writeln!(
                f,
                "note: the first segment given continues an earlier one (older segments were not given or were removed by keep)"
            )?;
        }
        if let (Some(a), Some(b)) = (&self.first_time, &self.last_time) {
            writeln!(f, "time: {a} to {b}")?;
        }
        match &self.last_checkpoint {
            Some(c) => {
                writeln!(
                    f,
                    "checkpoints: {} verified; the last at seq {} ({}) signs seq {} with audit key {}",
                    self.checkpoints, c.seq, c.time, c.head_seq, c.key_id
                )?;
                if let Some(last) = self.last_seq {
                    let after = last.saturating_sub(c.seq);
                    if after > 0 {
                        writeln!(
                            f,
                            "after the last checkpoint: {after} records not yet signed"
                        )?;
                    }
                }
            }
            None => writeln!(f, "checkpoints: none verified")?,
        }
        for u in &self.unsigned_checkpoints {
            writeln!(f, "unsigned checkpoint: {u}")?;
        }
        for r in &self.restarts {
            writeln!(f, "new chain: {r}")?;
        }
        if self.open_requests.is_empty() {
            writeln!(f, "open requests: none")?;
        }
        for r in &self.open_requests {
            writeln!(
                f,
                "open request: {} line {} (seq {}, {}): {}; no outcome recorded, a signature may exist",
                r.path.display(),
                r.line,
                r.seq,
                r.time,
                r.what
            )?;
        }
        match &self.bad {
            None => write!(f, "verdict: intact"),
            Some(b) => write!(f, "verdict: NOT INTACT: {b}"),
        }
    }
}
