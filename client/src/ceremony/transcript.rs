//! `transcript.jsonl`: one JSON object per line, each naming the SHA-256 of
//! the line before it, so an edited, reordered or removed line breaks the
//! chain at the first line after it. The chain head (SHA-256 of the last
//! line) is read aloud and written on paper at the end of every step; it is
//! what makes the removal of the last lines, or a rewritten bundle, visible.

use super::clock;
use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Action {
    #[serde(rename = "plan accepted")]
    PlanAccepted,
    #[serde(rename = "air-gap check")]
    AirGapCheck,
    #[serde(rename = "device seen")]
    DeviceSeen,
    #[serde(rename = "key generated")]
    KeyGenerated,
    #[serde(rename = "hash shown")]
    HashShown,
    #[serde(rename = "confirmation typed")]
    ConfirmationTyped,
    #[serde(rename = "signature made and verified")]
    SignatureVerified,
    #[serde(rename = "bundle exported")]
    BundleExported,
    #[serde(rename = "published")]
    Published,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// One line. `detail` says in words what the hashes stand for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Entry {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: Action,
    pub inputs_sha256: Digest,
    pub outputs_sha256: Digest,
    pub prev_sha256: Digest,
    pub detail: String,
}

/// What to record; the transcript adds seq, time and the chain link.
pub(super) struct Step {
    pub action: Action,
    pub inputs: Digest,
    pub outputs: Digest,
    pub detail: String,
}

/// The steps of one command by one actor, each stamped when it happens and
/// appended together at the end: a command that fails part-way leaves the
/// transcript as it was.
pub(super) struct Pending {
    actor: String,
    steps: Vec<(Step, String)>,
}

impl Pending {
    pub(super) fn new(actor: &str) -> Pending {
        Pending {
            actor: actor.to_string(),
            steps: Vec::new(),
        }
    }

    pub(super) fn record(
        &mut self,
        action: Action,
        inputs: Digest,
        outputs: Digest,
        detail: String,
    ) {
        let (_, time) = clock::now();
        let step = Step {
            action,
            inputs,
            outputs,
            detail,
        };
        self.steps.push((step, time));
    }

    pub(super) fn append_to(self, transcript: &mut Transcript) {
        for (step, time) in self.steps {
            transcript.append(&self.actor, step, time);
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum TranscriptError {
    #[error("transcript.jsonl is empty: the bundle has no plan accepted")]
    Empty,
    #[error("transcript.jsonl line {line} is not a transcript entry ({why})")]
    Malformed { line: usize, why: String },
    #[error("transcript.jsonl ends in a partial line (no newline after line {line})")]
    PartialLine { line: usize },
    #[error(
        "transcript.jsonl line {line} has seq {found} where {expected} was expected: a line \
         was removed, added or moved before it"
    )]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "transcript.jsonl line {line} (seq {seq}, {action}) does not chain to the line before \
         it: that line was edited, or lines were removed or reordered"
    )]
    Chain {
        line: usize,
        seq: u64,
        action: Action,
    },
}

/// A transcript whose chain has been checked.
#[derive(Clone, Debug, Default)]
pub(super) struct Transcript {
    entries: Vec<Entry>,
    lines: Vec<Vec<u8>>,
}

impl Transcript {
    /// Parses and checks every link; names the first line that breaks.
    pub(super) fn parse(bytes: &[u8]) -> Result<Transcript, TranscriptError> {
        let mut transcript = Transcript::default();
        if bytes.is_empty() {
            return Err(TranscriptError::Empty);
        }
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or(TranscriptError::PartialLine {
                line: bytes.split(|b| *b == b'\n').count(),
            })?;
        for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let entry: Entry =
                serde_json::from_slice(raw).map_err(|e| TranscriptError::Malformed {
                    line,
                    why: e.to_string(),
                })?;
            let expected = i as u64;
            if entry.seq != expected {
                return Err(TranscriptError::Sequence {
                    line,
                    expected,
                    found: entry.seq,
                });
            }
            if entry.prev_sha256 != transcript.head() {
                return Err(TranscriptError::Chain {
                    line,
                    seq: entry.seq,
                    action: entry.action,
                });
            }
            transcript.entries.push(entry);
            transcript.lines.push(raw.to_vec());
        }
        Ok(transcript)
    }

    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// SHA-256 of the last line; [`Digest::ZERO`] before the first.
    pub(super) fn head(&self) -> Digest {
        self.lines
            .last()
            .map_or(Digest::ZERO, |line| Digest::of(line))
    }

    /// Appends `actor`'s step at `time` (RFC 3339) and returns its entry.
    pub(super) fn append(&mut self, actor: &str, step: Step, time: String) -> &Entry {
        let entry = Entry {
            seq: self.entries.len() as u64,
            time,
            actor: actor.to_string(),
            action: step.action,
            inputs_sha256: step.inputs,
            outputs_sha256: step.outputs,
            prev_sha256: self.head(),
            detail: step.detail,
        };
        // A struct of strings and hex digests always serialises.
        let line = serde_json::to_vec(&entry).unwrap_or_default();
        self.lines.push(line);
        self.entries.push(entry);
        &self.entries[self.entries.len() - 1]
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out
    }

    /// The last entry of `action`, if any.
    pub(super) fn last(&self, action: Action) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.action == action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        let mut t = Transcript::default();
        for (i, action) in [
            Action::PlanAccepted,
            Action::AirGapCheck,
            Action::KeyGenerated,
            Action::SignatureVerified,
        ]
        .into_iter()
        .enumerate()
        {
            t.append(
                "alice",
                Step {
                    action,
                    inputs: Digest::of(&[i as u8]),
                    outputs: Digest::of(b"out"),
                    detail: format!("step {i}"),
                },
                "2026-01-01T00:00:00Z".into(),
            );
        }
        t
    }

    fn lines(t: &Transcript) -> Vec<String> {
        String::from_utf8(t.to_bytes())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn join(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    #[test]
    fn round_trips_and_chains() {
        let t = sample();
        let back = Transcript::parse(&t.to_bytes()).unwrap();
        assert_eq!(back.entries(), t.entries());
        assert_eq!(back.head(), t.head());
        assert_eq!(t.entries()[0].prev_sha256, Digest::ZERO);
        assert_eq!(t.last(Action::KeyGenerated).unwrap().seq, 2);
        let first = lines(&t).remove(0);
        assert!(first.starts_with(r#"{"seq":0,"time":"2026-01-01T00:00:00Z","actor":"alice","action":"plan accepted","inputs_sha256":""#), "{first}");
    }

    #[test]
    fn names_the_line_an_edit_reorder_or_removal_breaks() {
        let t = sample();
        let mut edited = lines(&t);
        edited[1] = edited[1].replace("step 1", "step one");
        assert_eq!(
            Transcript::parse(&join(&edited)).unwrap_err(),
            TranscriptError::Chain {
                line: 3,
                seq: 2,
                action: Action::KeyGenerated
            }
        );
        let mut reordered = lines(&t);
        reordered.swap(1, 2);
        assert!(matches!(
            Transcript::parse(&join(&reordered)).unwrap_err(),
            TranscriptError::Sequence {
                line: 2,
                expected: 1,
                found: 2
            }
        ));
        let mut removed = lines(&t);
        removed.remove(2);
        assert!(matches!(
            Transcript::parse(&join(&removed)).unwrap_err(),
            TranscriptError::Sequence {
                line: 3,
                expected: 2,
                found: 3
            }
        ));
        let mut partial = t.to_bytes();
        partial.pop();
        assert!(matches!(
            Transcript::parse(&partial).unwrap_err(),
            TranscriptError::PartialLine { line: 4 }
        ));
        assert_eq!(Transcript::parse(b"").unwrap_err(), TranscriptError::Empty);
        let mut extra = lines(&t);
        extra[0] = extra[0].replacen('{', r#"{"note":"x","#, 1);
        assert!(matches!(
            Transcript::parse(&join(&extra)).unwrap_err(),
            TranscriptError::Malformed { line: 1, .. }
        ));
    }

    #[test]
    fn actions_read_as_words() {
        assert_eq!(
            Action::SignatureVerified.to_string(),
            "signature made and verified"
        );
        assert_eq!(Action::AirGapCheck.to_string(), "air-gap check");
    }
}
