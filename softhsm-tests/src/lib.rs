//! Every end-to-end test of notary-keyd (`tests/e2e/`, one test binary
//! with a module per area) and the benches (`keyd-bench`, `repo-bench`,
//! `soak`), and what they share: real SoftHSM2 tokens and swtpm TPMs in
//! temp dirs, the real `notary-keyd` (configured through [`TestDaemon`],
//! the one place that writes its TOML) and `notaryctl` binaries on temp
//! sockets, and a gRPC client for them.
//! Debian's notary-server and notary CLI (`notary_stack`), an attacker's
//! notary server (`hostile`), faults injected into them (`faults`), and a
//! Debian 12 container with systemd as PID 1 (`container`).
//! Every process started here is stopped by its pid when its guard drops.

#![forbid(unsafe_code)]

pub mod ceremony;
pub mod client;
pub mod container;
pub mod daemon;
pub mod faults;
pub mod hostile;
pub mod http_request;
pub mod notary_stack;
pub mod notaryctl_cli;
pub mod notify;
mod process;
mod secret;
pub mod softhsm;
pub mod swtpm;
mod test_daemon;
pub mod tls_server;
pub mod verify;

pub use client::connect;
pub use daemon::{audit_chain, bin_path, Daemon};
pub use notify::NotifyListener;
pub use process::output_within;
pub use secret::write_secret;
pub use softhsm::SoftHsm;
pub use swtpm::Swtpm;
pub use test_daemon::{Audit, Rule, TestDaemon};
pub use verify::openssl_verify;
