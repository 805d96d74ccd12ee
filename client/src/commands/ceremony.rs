//! `notaryctl ceremony plan|enroll|sign|status|verify|publish`: the
//! command line of an offline root-key ceremony (docs/ceremonies.md).

use super::repo::Context;
use crate::ceremony;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum CeremonyCommand {
    /// Online: write the plan, the single reviewed input, to a new bundle.
    ///
    /// Fetches what the offline steps cannot: for a new collection the
    /// server's timestamp key and (unless --snapshot-key) snapshot key and
    /// the targets key from notary-keyd; for --rotate the root this
    /// machine trusts, updated from the server. Prints the plan's SHA-256
    /// in hex and PGP words for the witness to read aloud.
    ///
    /// Example: notaryctl ceremony plan example.com/app --out /media/usb/ceremony
    ///   --holder alice=yubikey:serial=41000001 --holder bob=pkcs11:token=bob
    ///   --holder carol=pkcs11:token=carol --threshold 2 --targets-key 3f2a…
    Plan(ceremony::PlanArgs),

    /// Offline: generate a holder's root key on their device, have the
    /// daemon certify it for the GUN, check the device's attestation, and
    /// record it all in the bundle.
    ///
    /// Example: notaryctl ceremony enroll /media/usb/ceremony --holder alice
    Enroll(HolderArgs),

    /// Offline: show what is signed (SHA-256 in hex and words, and for a
    /// rotation what changes), ask for the confirmation word, sign with
    /// each of the holder's keys and record the signatures.
    ///
    /// Example: notaryctl ceremony sign /media/usb/ceremony --holder alice
    Sign(HolderArgs),

    /// Who has signed and who is still needed, counted as notary 0.7
    /// counts (one vote per distinct key), for the new root and, in a
    /// rotation, the previous one.
    Status(BundleArgs),

    /// Replay the whole bundle (plan hash, attestations, enrollments, every
    /// signature, the transcript chain) and print the transcript as a
    /// record for the witnesses to initial.
    Verify(BundleArgs),

    /// Online: upload a complete bundle's root and read the collection
    /// back as a fresh client. Refuses rehearsals and incomplete or
    /// unverifiable bundles.
    Publish(BundleArgs),
}

/// What an offline step needs: the bundle and whose turn it is.
#[derive(Debug, Args)]
pub(crate) struct HolderArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The holder, as the plan names them.
    #[arg(long)]
    pub holder: String,
    /// Go on although a network interface is up or a default route exists;
    /// the transcript records it.
    #[arg(long)]
    pub allow_network: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BundleArgs {
    /// The bundle directory.
    pub bundle: PathBuf,
}

pub(crate) async fn run(ctx: &Context, command: &CeremonyCommand) -> Result<()> {
    match command {
        CeremonyCommand::Plan(args) => ceremony::prepare(ctx, args).await,
        CeremonyCommand::Enroll(args) => {
            ceremony::enroll(
                &args.bundle,
                &args.holder,
                args.allow_network,
                &ctx.keyd_socket,
            )
            .await
        }
        CeremonyCommand::Sign(args) => {
            ceremony::sign(
                &args.bundle,
                &args.holder,
                args.allow_network,
                &ctx.keyd_socket,
            )
            .await
        }
        CeremonyCommand::Status(args) => ceremony::status(&args.bundle),
        CeremonyCommand::Verify(args) => ceremony::verify(&args.bundle),
        CeremonyCommand::Publish(args) => ceremony::publish(ctx, &args.bundle).await,
    }
}
