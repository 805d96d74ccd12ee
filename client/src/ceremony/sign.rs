//! `ceremony sign BUNDLE --holder NAME` (offline): shows what is signed,
//! computed here from the bundle, takes the typed confirmation word, signs
//! with each of the holder's keys (new root, previous root) through the
//! daemon's ordinary `Sign`, verifies each signature at once, and appends
//! them. Nothing is written unless every signature was made.

use super::airgap;
use super::bundle::{manifest_digest, ROOT, TRANSCRIPT};
use super::clock;
use super::diff;
use super::digest::Digest;
use super::enroll::print_head;
use super::keyd::Keyd;
use super::plan::Holding;
use super::replay::{replay, Checked};
use super::transcript::{Action, Pending};
use anyhow::{anyhow, bail, Context, Result};
use notary_tuf::{PublicKey, Root};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// One of the holder's root keys and the roots it signs for.
struct HolderKey {
    listed_id: String,
    key: PublicKey,
    bare_id: String,
    roots: &'static str,
}

pub(crate) async fn sign(dir: &Path, name: &str, allow_network: bool, socket: &Path) -> Result<()> {
    let network = airgap::check(allow_network, "sign")?;
    let (now, _) = clock::now();
    let checked = replay(dir, now).context("the bundle does not replay; nothing was signed")?;
    let Some((root, mut envelope)) = checked.envelope()? else {
        bail!(
            "there is no root to sign yet: still to enroll: {}",
            checked
                .plan
                .still_to_enroll(&checked.enrollments)
                .join(", ")
        );
    };
    let mut steps = Pending::new(name);
    steps.record(
        Action::AirGapCheck,
        checked.plan_digest,
        Digest::of(network.as_bytes()),
        network,
    );
    let keys = holder_keys(&checked, &root, name)?;
    let already = checked.count(&root, &envelope, now)?;
    let todo: Vec<&HolderKey> = keys
        .iter()
        .filter(|k| !already.signed_by(&k.bare_id))
        .collect();
    if todo.is_empty() {
        println!("{name} has signed with every key they hold already.");
        println!("{}", already.line());
        return Ok(());
    }
    let mut keyd = Keyd::connect(socket).await?;
    let mut found = Vec::new();
    for k in &todo {
        match keyd.find_root_key(&k.key).await? {
            Some(device_key) => {
                let seen = format!(
                    "key {} ({}) on backend {} ({})",
                    k.listed_id, device_key.uri, device_key.backend, k.roots
                );
                steps.record(
                    Action::DeviceSeen,
                    checked.plan_digest,
                    Digest::of(seen.as_bytes()),
                    seen,
                );
                found.push((*k, device_key));
            }
            None => eprintln!(
                "warning: {name}'s key {} ({}) is not in notary-keyd: insert its device to sign \
                 with it too",
                k.listed_id, k.roots
            ),
        }
    }
    if found.is_empty() {
        bail!(
            "none of {name}'s keys is in notary-keyd ({}): insert {name}'s device and make sure \
             the daemon lists it (`notaryctl key list`)",
            todo.iter()
                .map(|k| k.listed_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let devices: BTreeMap<String, String> = checked
        .enrollments
        .values()
        .map(|e| {
            let attested = checked
                .attestations
                .get(&e.holder)
                .map(|a| a.describe())
                .unwrap_or_default();
            (
                e.key_id.clone(),
                format!("{} — {attested}", e.device.describe()),
            )
        })
        .collect();
    let digest = Digest::of(&envelope.signed_bytes);
    println!(
        "{}{}",
        if checked.plan.rehearsal {
            "REHEARSAL — this root must never be published.\n"
        } else {
            ""
        },
        diff::describe(
            &checked.plan.gun,
            &root,
            checked.previous_root(),
            &checked.names(),
            &devices
        )
    );
    println!(
        "SHA-256 of the canonical signed part of root v{}: {digest}\n{}",
        root.version,
        digest.aloud()
    );
    for (k, device_key) in &found {
        println!(
            "{name} signs with key {} ({}) on backend {}",
            k.listed_id, k.roots, device_key.backend
        );
    }
    steps.record(
        Action::HashShown,
        digest,
        digest,
        format!("SHA-256 of root v{} signed: {digest}", root.version),
    );
    let word = confirm(digest)?;
    steps.record(
        Action::ConfirmationTyped,
        digest,
        digest,
        format!("{name} typed the confirmation word {word:?}"),
    );
    for (k, device_key) in &found {
        keyd.sign_root(
            &mut envelope,
            &checked.plan.gun,
            &k.listed_id,
            &k.key,
            device_key,
        )
        .await?;
        if !checked.count(&root, &envelope, now)?.signed_by(&k.bare_id) {
            bail!(
                "the signature with key {} verifies but notary would not count it; nothing was \
                 written",
                k.listed_id
            );
        }
        steps.record(
            Action::SignatureVerified,
            digest,
            Digest::of(&envelope.to_bytes()),
            format!(
                "signature by {name}'s key {} ({}) verified",
                k.listed_id, k.roots
            ),
        );
    }
    checked.bundle.write(ROOT, &envelope.to_bytes())?;
    let votes = checked.count(&root, &envelope, now)?;
    if votes.complete() {
        let manifest = manifest_digest(&checked.bundle)?;
        steps.record(
            Action::BundleExported,
            digest,
            manifest,
            format!(
                "root v{} complete ({}); bundle files sha256 {manifest}",
                root.version,
                votes.line()
            ),
        );
    }
    let mut transcript = checked.transcript.clone();
    steps.append_to(&mut transcript);
    checked.bundle.write(TRANSCRIPT, &transcript.to_bytes())?;
    println!("{}", votes.line());
    if votes.complete() {
        println!("The bundle is complete: take it to the online machine for `notaryctl ceremony publish`.");
    }
    print_head(&transcript.head());
    Ok(())
}

/// The holder's keys: in the new root as a holder, in the previous root as
/// a kept or retired signer. A kept key is one key for both.
fn holder_keys(checked: &Checked, root: &Root, name: &str) -> Result<Vec<HolderKey>> {
    let plan = &checked.plan;
    let mut keys: Vec<HolderKey> = Vec::new();
    let mut add = |listed_id: &str, key: &PublicKey, roots: &'static str| -> Result<()> {
        if keys.iter().any(|k| k.listed_id == listed_id) {
            return Ok(());
        }
        keys.push(HolderKey {
            listed_id: listed_id.to_string(),
            bare_id: key.bare_key()?.key_id(),
            key: key.clone(),
            roots,
        });
        Ok(())
    };
    if let Some(holder) = plan.holders.iter().find(|h| h.name == name) {
        let id = match &holder.holding {
            Holding::Enroll(_) => checked
                .enrollments
                .get(name)
                .map(|e| e.x509_key_id.clone())
                .ok_or_else(|| anyhow!("{name} has not enrolled"))?,
            Holding::Keep(id) => id.clone(),
        };
        let key = root
            .keys
            .get(&id)
            .ok_or_else(|| anyhow!("{name}'s key {id} is not in the new root"))?;
        let roots = if matches!(holder.holding, Holding::Keep(_)) {
            "old and new root"
        } else {
            "new root"
        };
        add(&id, key, roots)?;
    }
    for retired in plan.retired.iter().filter(|r| r.name == name) {
        let key = checked
            .previous_root()
            .and_then(|p| p.keys.get(&retired.key))
            .ok_or_else(|| {
                anyhow!(
                    "{name}'s retired key {} is not in the previous root",
                    retired.key
                )
            })?;
        add(&retired.key, key, "old root")?;
    }
    if keys.is_empty() {
        bail!("{name} is not a holder of this ceremony (see plan.toml)");
    }
    Ok(keys)
}

/// The holder types the last word of the hash they just read: proof that
/// they read to the end, from this screen. Anything else signs nothing.
fn confirm(digest: Digest) -> Result<&'static str> {
    let word = digest.last_word();
    eprint!("To sign, type the last word of the SHA-256 words above: ");
    let mut typed = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut typed)
        .context("reading the confirmation word")?;
    let typed = typed.trim();
    if typed.is_empty() {
        bail!("no confirmation word typed; nothing was signed");
    }
    if !typed.eq_ignore_ascii_case(word) {
        bail!("{typed:?} is not the last word of the SHA-256 shown; nothing was signed");
    }
    Ok(word)
}
