//! Replaying a bundle from its files alone: the transcript's chain, the
//! plan and its hash, the attestation roots and previous root the plan
//! names, every enrollment and its attestation, the root rebuilt from them,
//! and every signature in root.json; each file must be what the transcript
//! last recorded for it. Every step that signs or publishes starts here,
//! and refuses a bundle that does not replay, naming the step.

use super::bundle::{Bundle, PREVIOUS_ROOT, ROOT, TRANSCRIPT};
use super::digest::Digest;
use super::enrollment::{Attestation, Enrollment};
use super::plan::{Kind, Plan};
use super::root_builder;
use super::transcript::{Action, Entry, Transcript};
use super::votes::{Names, Votes};
use anyhow::Result;
use notary_tuf::{pem, Root, SignedEnvelope};
use std::collections::BTreeMap;
use std::path::Path;

/// Why a bundle is refused: the step, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {problem}")]
pub(super) struct Refusal {
    pub step: String,
    pub problem: String,
}

fn refuse(step: impl Into<String>, problem: impl std::fmt::Display) -> Refusal {
    Refusal {
        step: step.into(),
        problem: format!("{problem:#}"),
    }
}

fn at(entry: &Entry) -> String {
    format!("transcript seq {}, {}", entry.seq, entry.action)
}

/// The previous root of a rotation, as the bundle carries it.
pub(super) struct Previous {
    pub root: Root,
    pub bytes: Vec<u8>,
}

/// A bundle that replayed.
pub(super) struct Checked {
    pub bundle: Bundle,
    pub plan: Plan,
    pub plan_digest: Digest,
    pub anchors: Vec<Vec<u8>>,
    pub previous: Option<Previous>,
    pub enrollments: BTreeMap<String, Enrollment>,
    pub attestations: BTreeMap<String, Attestation>,
    pub transcript: Transcript,
    /// The new root, once every holder has enrolled.
    pub root: Option<Root>,
    /// root.json: the new root with its signatures, after the first one.
    pub signed: Option<SignedEnvelope>,
}

impl Checked {
    pub(super) fn previous_root(&self) -> Option<&Root> {
        self.previous.as_ref().map(|p| &p.root)
    }

    pub(super) fn names(&self) -> Names {
        Names::of(&self.plan, &self.enrollments, self.previous_root())
    }

    /// The new root and the signatures so far (none before the first).
    pub(super) fn envelope(&self) -> Result<Option<(Root, SignedEnvelope)>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let envelope = match &self.signed {
            Some(signed) => signed.clone(),
            None => SignedEnvelope::from_metadata(root)?,
        };
        Ok(Some((root.clone(), envelope)))
    }

    /// The votes for the signatures so far (none before every holder enrolled).
    pub(super) fn votes(&self, now: i64) -> Result<Option<Votes>> {
        let Some((root, envelope)) = self.envelope()? else {
            return Ok(None);
        };
        Ok(Some(self.count(&root, &envelope, now)?))
    }

    /// The votes for `envelope`, a signed copy of the new root `root`.
    pub(super) fn count(&self, root: &Root, envelope: &SignedEnvelope, now: i64) -> Result<Votes> {
        Votes::count(
            envelope,
            root,
            self.previous_root(),
            &self.plan.gun,
            now,
            self.names(),
        )
    }
}

/// Replays the bundle in `dir` at `now` (Unix seconds).
pub(super) fn replay(dir: &Path, now: i64) -> Result<Checked, Refusal> {
    let bundle = Bundle::open(dir).map_err(|e| refuse("bundle", e))?;
    let transcript = bundle.transcript().map_err(|e| refuse(TRANSCRIPT, e))?;
    let (plan, plan_digest) = bundle.plan().map_err(|e| refuse("plan.toml", e))?;
    match transcript.entries().first() {
        Some(e) if e.action == Action::PlanAccepted && e.inputs_sha256 == plan_digest => {}
        Some(e) => {
            return Err(refuse(
                format!("plan.toml ({})", at(e)),
                format!(
                    "the transcript accepted a plan with sha256 {}, the bundle's plan.toml has {plan_digest}",
                    e.inputs_sha256
                ),
            ))
        }
        None => return Err(refuse(TRANSCRIPT, "it has no entries")),
    }
    let mut anchors = Vec::new();
    for (i, file) in plan.attestation_roots.iter().enumerate() {
        let step = format!("attestation root {} ({})", i + 1, file.file);
        let bytes = bundle.read(&file.file).map_err(|e| refuse(&step, e))?;
        if Digest::of(&bytes) != file.sha256 {
            return Err(refuse(&step, "its sha256 is not the one the plan names"));
        }
        let blocks = pem::parse_blocks(&bytes).map_err(|e| refuse(&step, e))?;
        anchors.extend(
            blocks
                .into_iter()
                .filter(|b| b.label == "CERTIFICATE")
                .map(|b| b.der),
        );
    }
    let previous = match &plan.kind {
        Kind::Rotation(expected) => {
            let bytes = bundle
                .read(&expected.file)
                .map_err(|e| refuse(PREVIOUS_ROOT, e))?;
            if Digest::of(&bytes) != expected.sha256 {
                return Err(refuse(
                    PREVIOUS_ROOT,
                    "its sha256 is not the one the plan names",
                ));
            }
            let root: Root = SignedEnvelope::parse(&bytes)
                .and_then(|e| e.decode())
                .map_err(|e| refuse(PREVIOUS_ROOT, e))?;
            plan.check_previous_root(&root, now)
                .map_err(|e| refuse(PREVIOUS_ROOT, e))?;
            Some(Previous { root, bytes })
        }
        Kind::NewCollection(_) => None,
    };
    let (enrollments, attestations) =
        enrollments(&bundle, &plan, plan_digest, &anchors, &transcript, now)?;
    let previous_root = previous.as_ref().map(|p| &p.root);
    let root = if plan.still_to_enroll(&enrollments).is_empty() {
        Some(
            root_builder::build(&plan, &enrollments, previous_root)
                .map_err(|e| refuse("new root", e))?,
        )
    } else {
        None
    };
    let signed = signed_root(
        &bundle,
        &transcript,
        root.as_ref(),
        previous_root,
        &plan.gun,
        now,
    )?;
    Ok(Checked {
        bundle,
        plan,
        plan_digest,
        anchors,
        previous,
        enrollments,
        attestations,
        transcript,
        root,
        signed,
    })
}

type Enrolled = (BTreeMap<String, Enrollment>, BTreeMap<String, Attestation>);

/// Each enrollment must be a planned holder's, recorded by the transcript
/// exactly as it is, and verify.
fn enrollments(
    bundle: &Bundle,
    plan: &Plan,
    plan_digest: Digest,
    anchors: &[Vec<u8>],
    transcript: &Transcript,
    now: i64,
) -> Result<Enrolled, Refusal> {
    let files = bundle.enrollments().map_err(|e| refuse("enrollments", e))?;
    let recorded: Vec<&Entry> = transcript
        .entries()
        .iter()
        .filter(|e| e.action == Action::KeyGenerated)
        .collect();
    for entry in &recorded {
        if !files.contains_key(&entry.actor) {
            return Err(refuse(
                format!("enrollment of {} ({})", entry.actor, at(entry)),
                format!(
                    "{} is missing from the bundle",
                    Bundle::enrollment_file(&entry.actor)
                ),
            ));
        }
    }
    let mut enrollments = BTreeMap::new();
    let mut attestations = BTreeMap::new();
    for (name, (enrollment, digest)) in files {
        let file = Bundle::enrollment_file(&name);
        let Some(entry) = recorded.iter().rev().find(|e| e.actor == name) else {
            return Err(refuse(
                format!("enrollment of {name}"),
                format!("{file} is in the bundle but no transcript step generated it"),
            ));
        };
        let step = format!("enrollment of {name} ({})", at(entry));
        if entry.outputs_sha256 != digest {
            return Err(refuse(
                step,
                format!("{file} is not the file this step wrote: it was changed afterwards"),
            ));
        }
        let attestation = enrollment
            .verify(plan, plan_digest, anchors, now)
            .map_err(|e| refuse(&step, e))?;
        attestations.insert(name.clone(), attestation);
        enrollments.insert(name, enrollment);
    }
    Ok((enrollments, attestations))
}

/// root.json, if any signature has been made: the file the last signature
/// step wrote, with the rebuilt root as its `signed`, and only signatures
/// that verify against a key of the new or the previous root.
fn signed_root(
    bundle: &Bundle,
    transcript: &Transcript,
    root: Option<&Root>,
    previous: Option<&Root>,
    gun: &str,
    now: i64,
) -> Result<Option<SignedEnvelope>, Refusal> {
    let bytes = bundle.read_optional(ROOT).map_err(|e| refuse(ROOT, e))?;
    let last = transcript.last(Action::SignatureVerified);
    let (bytes, entry) = match (bytes, last) {
        (None, None) => return Ok(None),
        (None, Some(entry)) => {
            return Err(refuse(
                format!("root.json ({})", at(entry)),
                "the file is missing, but the transcript recorded a signature",
            ))
        }
        (Some(_), None) => {
            return Err(refuse(
                ROOT,
                "it is in the bundle but no transcript step signed it",
            ))
        }
        (Some(bytes), Some(entry)) => (bytes, entry),
    };
    let step = format!("root.json ({})", at(entry));
    if Digest::of(&bytes) != entry.outputs_sha256 {
        return Err(refuse(
            step,
            "it is not the file this step wrote: it was changed after the last signature",
        ));
    }
    let envelope = SignedEnvelope::parse(&bytes).map_err(|e| refuse(&step, e))?;
    let Some(root) = root else {
        return Err(refuse(step, "it exists before every holder has enrolled"));
    };
    let expected = SignedEnvelope::from_metadata(root).map_err(|e| refuse(&step, e))?;
    if envelope.signed_bytes != expected.signed_bytes {
        return Err(refuse(
            step,
            "its signed part is not the root the plan and the enrollments make",
        ));
    }
    let votes = Votes::count(&envelope, root, previous, gun, now, Names::default())
        .map_err(|e| refuse(&step, e))?;
    let tallies = votes.previous.iter().chain(std::iter::once(&votes.new));
    for t in tallies.clone() {
        if let Some(problem) = t.problems.first() {
            return Err(refuse(&step, problem));
        }
    }
    for sig in &envelope.signatures {
        let known = tallies
            .clone()
            .any(|t| t.keys.iter().any(|k| k.notary_id == sig.keyid));
        if !known {
            return Err(refuse(
                &step,
                format!(
                    "it carries a signature by key {}, which is no root key of the new or the \
                     previous root",
                    sig.keyid
                ),
            ));
        }
    }
    Ok(Some(envelope))
}
