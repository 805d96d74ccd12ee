//! The `notaryctl` binary: see the library (`lib.rs`) for the client.

#![forbid(unsafe_code)]

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    notaryctl::main().await
}
