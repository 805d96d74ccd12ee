//! `ceremony status` (who has signed, in words) and `ceremony verify` (the
//! whole bundle replayed, and the transcript printed as a record for the
//! witnesses to initial). Both work offline from the bundle alone.

use super::clock;
use super::digest::Digest;
use super::enroll::print_head;
use super::plan::Holding;
use super::renewal;
use super::replay::{replay, Checked};
use anyhow::{bail, Result};
use std::fmt::Write;
use std::path::Path;

fn heading(checked: &Checked) -> String {
    format!(
        "Ceremony {}\nPlan sha256 {}",
        checked.plan.summary(),
        checked.plan_digest
    )
}

fn holders(checked: &Checked) -> String {
    let mut out = String::from("Holders:\n");
    for h in &checked.plan.holders {
        let state = match (&h.holding, checked.enrollments.get(&h.name)) {
            (Holding::Keep(id), _) => format!("keeps key {id} of the previous root"),
            (Holding::Enroll(device), None) => format!("not enrolled yet ({})", device.describe()),
            (Holding::Enroll(_), Some(e)) => format!(
                "enrolled key {} on {} — {}",
                e.x509_key_id,
                e.device.describe(),
                checked
                    .attestations
                    .get(&h.name)
                    .map(|a| a.describe())
                    .unwrap_or_default()
            ),
        };
        let _ = writeln!(out, "  {:<12} {state}", h.name);
    }
    for r in &checked.plan.retired {
        let _ = writeln!(
            out,
            "  {:<12} retires key {} (may sign for the previous root)",
            r.name, r.key
        );
    }
    out
}

/// Prints the state of the ceremony; fails only if the bundle does not
/// replay or its root is refused outright.
pub(crate) fn status(dir: &Path) -> Result<()> {
    let (now, _) = clock::now();
    let checked = replay(dir, now)?;
    println!("{}", heading(&checked));
    print!("{}", holders(&checked));
    let Some(votes) = checked.votes(now)? else {
        println!("Signing starts when every holder has enrolled.");
        return Ok(());
    };
    if let Some((root, envelope)) = checked.envelope()? {
        let digest = Digest::of(&envelope.signed_bytes);
        println!(
            "New root v{} (SHA-256 of its signed part {digest}):\n{}",
            root.version,
            digest.aloud()
        );
        if let Some(warning) = renewal::due(&checked.plan.gun, &root, now) {
            println!("warning: {warning}");
        }
    }
    if let Some(previous) = checked.previous_root() {
        if let Some(warning) = renewal::due(&checked.plan.gun, previous, now) {
            println!("warning: {warning}; finish this ceremony first");
        }
    }
    println!("{}", votes.line());
    for note in votes.notes() {
        println!("note: {note}");
    }
    let duplicates = votes.duplicated();
    if !duplicates.is_empty() {
        bail!("{}", duplicates.join("; "));
    }
    if checked.plan.rehearsal {
        println!("REHEARSAL bundle: `ceremony publish` refuses it.");
    } else if votes.complete() {
        println!("Complete: ready for `notaryctl ceremony publish`.");
    }
    print_head(&checked.transcript.head());
    Ok(())
}

/// Replays everything and prints the transcript as a record to initial.
pub(crate) fn verify(dir: &Path) -> Result<()> {
    let (now, _) = clock::now();
    let checked = replay(dir, now)?;
    println!("{}\n", heading(&checked));
    for e in checked.transcript.entries() {
        println!("[{}] {}  {}  {}", e.seq, e.time, e.actor, e.action);
        println!("    {}", e.detail);
        print_hash("inputs ", &e.inputs_sha256);
        if e.outputs_sha256 != e.inputs_sha256 {
            print_hash("outputs", &e.outputs_sha256);
        }
        println!("    Witness initials: ____________\n");
    }
    print!("{}", holders(&checked));
    let signatures = checked.signed.as_ref().map_or(0, |s| s.signatures.len());
    println!(
        "Verified: the transcript chain ({} entries), the plan, {} attestation root \
         certificate(s), {}{} enrollment(s) with their attestations, and root.json with {signatures} \
         signature(s).",
        checked.transcript.entries().len(),
        checked.anchors.len(),
        if checked.previous.is_some() {
            "the previous root, "
        } else {
            ""
        },
        checked.enrollments.len()
    );
    if let Some(votes) = checked.votes(now)? {
        println!("{}", votes.line());
        for note in votes.notes() {
            println!("note: {note}");
        }
    }
    print_head(&checked.transcript.head());
    println!("Compare the chain head with the words written on paper after the last step.");
    Ok(())
}

fn print_hash(label: &str, digest: &Digest) {
    println!("    {label} {digest}");
    println!("            {}", digest.words());
}
