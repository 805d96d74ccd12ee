//! notary-keyd: keeps Notary signing keys in hardware and signs for
//! authorised callers over a Unix socket (and, when configured, for a
//! notary-server through notary-signer's API). The binary (`main.rs`)
//! only parses its arguments and calls [`run`].
//!
//! # Layout
//!
//! - The request path: `server` (the Unix socket, with `peer` reading the
//!   caller's credentials into `caller`, and `served` the connection each
//!   listener hands tonic), `service` (the `notary.keyd.v1`
//!   RPCs), `signer_api` (notary-signer's API over mutual TLS). Both APIs
//!   turn requests into typed values with `edge` and `wire`, sign through
//!   `signing` (the one signing core), report failures through `status`
//!   and record every decision with `audit`.
//! - Keys and devices: `registry` (every key the devices hold, joined with
//!   `state`'s bindings), `device` (one backend's queue, PIN cache, touch
//!   prompts, generation and release), `policy` (who may do what).
//! - Configuration and life: `config`, `check` (`--check-config`), `backends` (`[[backend]]` sections),
//!   `pin_source` (PIN files closed to others, systemd credentials),
//!   `start` (start-up), `lifecycle` (signals, watchdog), `reload`
//!   (SIGHUP), `root` (refusing to run as root), `systemd` (socket
//!   activation, readiness, journald's native protocol), `logging` (to
//!   journald under systemd, else stderr), `metrics` (Prometheus counters
//!   and their endpoint).

mod audit;
mod backends;
mod caller;
mod check;
mod config;
mod daemon_info;
mod device;
mod edge;
mod keystore_cli;
mod lifecycle;
mod limits;
mod logging;
mod metrics;
mod peer;
mod pin_source;
mod policy;
mod registry;
mod reload;
mod request_limit;
mod root;
mod served;
mod server;
mod service;
mod signer_api;
mod signing;
mod start;
mod state;
mod status;
mod systemd;
mod warn_throttle;
mod wire;

pub use logging::report_fatal;
pub use start::{offline_command, run, Args};

/// The daemon built in-process for the fuzz targets in `fuzz/`: the same
/// construction as [`run`], minus the socket, the TLS listener and the
/// signals, so a fuzz target can call every RPC of both APIs through tonic
/// without a connection. Compiled only with the `fuzzing` feature, which
/// nothing in the product enables.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
