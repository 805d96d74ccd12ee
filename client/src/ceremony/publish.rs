//! `ceremony publish BUNDLE` (online): refuses a rehearsal, a bundle that
//! does not replay, or one whose root does not meet both of notary's rules;
//! uploads the root (with targets, and the snapshot when notary-keyd holds
//! its key, for a new collection), then reads the collection back as a
//! fresh client would and checks that it trusts exactly this root.

use super::bundle::{ROOT, TRANSCRIPT};
use super::clock;
use super::digest::Digest;
use super::enroll::print_head;
use super::renewal;
use super::replay::replay;
use super::transcript::{Action, Pending};
use crate::collection::publish::publish as publish_collection;
use crate::collection::update::update;
use crate::commands::repo::Context;
use crate::remote::ROOT_LIMIT;
use crate::trust_dir::TrustDir;
use anyhow::{bail, Context as _, Result};
use notary_tuf::metadata::Role;
use notary_tuf::trust::validate_root;
use notary_tuf::Root;
use std::path::Path;

pub(crate) async fn publish(ctx: &Context, dir: &Path) -> Result<()> {
    let (now, _) = clock::now();
    let checked = replay(dir, now).context("the bundle does not replay; nothing was published")?;
    let plan = &checked.plan;
    let gun = plan.gun.as_str();
    if plan.rehearsal {
        bail!(
            "this is a REHEARSAL bundle (plan.toml says rehearsal = true): it is never published"
        );
    }
    let Some(votes) = checked.votes(now, &ctx.settings.pinning.pin_for(gun))? else {
        bail!("the bundle is incomplete: not every holder has enrolled, so there is no root yet");
    };
    if !votes.complete() {
        bail!(
            "the bundle is incomplete, nothing was published: {}",
            votes.failing().join("; ")
        );
    }
    let bytes = checked.bundle.read(ROOT)?;
    let previous = checked.previous_root();
    let accepted = validate_root(previous, &bytes, gun, &ctx.settings.pinning, now)
        .context("notaryctl's own client refuses the bundle's root; nothing was published")?;
    let root: Root = accepted.metadata;
    let mut remote = ctx.remote(gun)?;
    let on_server = remote.get_meta("root", ROOT_LIMIT).await?;
    if on_server.as_deref() == Some(bytes.as_slice()) {
        println!(
            "The server already has this root v{}; checking it as a fresh client.",
            root.version
        );
    } else {
        let expected = checked.previous.as_ref().map(|p| p.bytes.as_slice());
        if on_server.as_deref() != expected {
            match expected {
                None => bail!(
                    "{gun} exists on the notary server already; this bundle makes a new collection"
                ),
                Some(_) => bail!(
                    "the server's root of {gun} is not the root v{} this rotation replaces; \
                     nothing was published",
                    root.version - 1
                ),
            }
        }
        let gun_dir = ctx.gun_dir(gun)?;
        if previous.is_none() {
            match gun_dir.read_cached(&Role::Root)? {
                Some(cached) if cached != bytes => bail!(
                    "this machine's trust dir holds another root of {gun}; `notaryctl delete {gun}` \
                     forgets it"
                ),
                Some(_) => {}
                None => gun_dir.write_cached(&Role::Root, &bytes)?,
            }
        }
        let mut signer = ctx.signer(gun).await?;
        let done = publish_collection(
            &mut remote,
            &gun_dir,
            &mut signer,
            &ctx.settings.pinning,
            Some((root.clone(), bytes.clone())),
        )
        .await
        .context("the notary server refused the upload")?;
        println!("Uploaded {} for {gun}.", done.roles.join(", "));
    }
    read_back(
        ctx,
        gun,
        &bytes,
        checked.previous.as_ref().map(|p| p.bytes.as_slice()),
    )
    .await?;
    println!(
        "A fresh client{} trusts root v{} of {gun}: {}",
        if previous.is_some() {
            " that trusted the previous root"
        } else {
            ""
        },
        root.version,
        votes.line()
    );
    renewal::warn(gun, &root);
    let mut steps = Pending::new("publisher");
    steps.record(
        Action::Published,
        Digest::of(&bytes),
        Digest::of(&bytes),
        format!(
            "root v{} published to {} and read back by a fresh client",
            root.version,
            remote.url()
        ),
    );
    let mut transcript = checked.transcript.clone();
    steps.append_to(&mut transcript);
    match checked.bundle.write(TRANSCRIPT, &transcript.to_bytes()) {
        Ok(()) => print_head(&transcript.head()),
        Err(e) => eprintln!("warning: the publication is not recorded in the bundle: {e:#}"),
    }
    Ok(())
}

/// A client with its own empty trust dir (holding only the previous root
/// for a rotation) updates from the server; it must end at `root`.
async fn read_back(ctx: &Context, gun: &str, root: &[u8], previous: Option<&[u8]>) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = TrustDir::new(scratch.path().to_path_buf()).gun(gun)?;
    if let Some(bytes) = previous {
        dir.write_cached(&Role::Root, bytes)?;
    }
    let mut remote = ctx.remote(gun)?;
    let repo = update(&mut remote, &dir, &ctx.settings.pinning, false)
        .await
        .context("a fresh client cannot read the published collection")?;
    if repo.root.bytes != root {
        bail!(
            "a fresh client trusts root v{} of {gun}, not the root this bundle made",
            repo.root.checked.metadata.version
        );
    }
    Ok(())
}
