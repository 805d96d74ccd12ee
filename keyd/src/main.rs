//! The `notary-keyd` binary: see the library (`lib.rs`) for the daemon.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match notary_keyd::run(notary_keyd::Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            notary_keyd::report_fatal(&error);
            ExitCode::FAILURE
        }
    }
}
