//! The `notary-keyd` binary: see the library (`lib.rs`) for the daemon.

#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// `--version`: the version and the backends compiled into this build.
const LONG_VERSION: &str = match (cfg!(feature = "tpm"), cfg!(feature = "yubikey")) {
    (true, true) => concat!(
        env!("CARGO_PKG_VERSION"),
        "\nbackends: soft, pkcs11, tpm, yubikey"
    ),
    (true, false) => concat!(env!("CARGO_PKG_VERSION"), "\nbackends: soft, pkcs11, tpm"),
    (false, true) => concat!(
        env!("CARGO_PKG_VERSION"),
        "\nbackends: soft, pkcs11, yubikey"
    ),
    (false, false) => concat!(env!("CARGO_PKG_VERSION"), "\nbackends: soft, pkcs11"),
};

#[tokio::main]
async fn main() -> ExitCode {
    let matches = notary_keyd::Args::command()
        .long_version(LONG_VERSION)
        .get_matches();
    let args = notary_keyd::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(code) = notary_keyd::offline_command(&args).await {
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
