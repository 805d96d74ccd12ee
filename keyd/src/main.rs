//! The `notary-keyd` binary: see the library (`lib.rs`) for the daemon.

#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    notary_keyd::run(notary_keyd::Args::parse()).await
}
