//! `publish GUN`.

use super::Context;
use crate::ceremony::renewal;
use crate::collection::publish::publish;
use crate::collection::signer::KeydSigner;
use crate::collection::update::cached_root;
use crate::remote::Remote;
use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// Globally unique name of the collection, e.g. example.com/org/app.
    pub gun: String,
}

pub(crate) async fn run(ctx: &Context, args: &PublishArgs) -> Result<()> {
    let mut remote = ctx.remote(&args.gun)?;
    let mut signer = ctx.signer(&args.gun).await?;
    publish_and_report(ctx, &args.gun, &mut remote, &mut signer).await
}

/// Publishes right away for `-p`.
pub(crate) async fn publish_if(ctx: &Context, gun: &str, publish: bool) -> Result<()> {
    if publish {
        let mut remote = ctx.remote(gun)?;
        let mut signer = ctx.signer(gun).await?;
        publish_and_report(ctx, gun, &mut remote, &mut signer).await?;
    }
    Ok(())
}

pub(crate) async fn publish_and_report(
    ctx: &Context,
    gun: &str,
    remote: &mut Remote,
    signer: &mut KeydSigner,
) -> Result<()> {
    let dir = ctx.gun_dir(gun)?;
    if !dir.changelist().list()?.is_empty() {
        println!("Pushing changes to {gun}");
    }
    let done = publish(remote, &dir, signer, &ctx.settings.pinning, None).await?;
    if let Some(root) = cached_root(&dir)? {
        renewal::warn(gun, &root.checked.metadata);
    }
    if done.roles.is_empty() {
        println!("No unpublished changes for {gun}");
        return Ok(());
    }
    ctx.note(format!(
        "published {} staged change(s); uploaded {}",
        done.changes,
        done.roles.join(", ")
    ));
    println!("Successfully published changes for repository {gun}");
    Ok(())
}
