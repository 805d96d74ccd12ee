//! The `notary-keyd` binary: see the library (`lib.rs`) for the daemon.

#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = notary_keyd::Args::parse();
    if let Some(code) = notary_keyd::offline_command(&args) {
        return code;
    }
    match notary_keyd::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            notary_keyd::report_fatal(&error);
            ExitCode::FAILURE
        }
    }
}
