//! Every end-to-end test of notary-keyd, in one test binary: the real
//! `notary-keyd` and `notaryctl` binaries against real SoftHSM2 tokens,
//! swtpm, pcscd with virtual PIV cards, Debian's notary-server and notary
//! CLI, attackers that are real processes, and a container with systemd
//! as PID 1. One module per area; `common` holds what several share.
//!
//! Build the binaries first (`cargo build --workspace --bins`), then run an
//! area by its module path, e.g. `cargo test -p softhsm-tests --test e2e
//! signer_api::`, or one test by its name.

mod common;

// Signing through the Unix socket, and the policy that decides it.
mod keystore_encryption;
mod pin_handling;
mod policy_bindings;
mod refusals;
mod signing;

// Hardware backends: SoftHSM2 is everywhere; the TPM (swtpm) and YubiKeys (virtual PIV cards).
mod tpm;
mod tpm_attest;
mod tpm_publish;
mod yubikey;
mod yubikey_publish;

// notaryctl as a notary client, against Debian's notary-server and the stock CLI.
mod ceremony;
mod migrate;
mod notary_dropin;
mod notary_stack;
mod notaryctl;
mod repo_failures;
mod repo_interop;
mod repo_lifecycle;

// notary-signer's API behind a stock notary-server.
mod signer_api;

// Attacks: a hostile server, neighbour and caller.
mod hostile_caller;
mod hostile_neighbour;
mod hostile_server;

// Faults: crashes, dying devices and servers.
mod faults_backends;
mod faults_crash;
mod faults_crash_publish;
mod faults_pcscd;
mod faults_server;

// The audit log, metrics and configuration checks.
mod audit_log;
mod check_config;
mod metrics;

// Operating systems: systemd units, systemd as PID 1, the Debian package.
mod deb_package;
mod systemd_pid1;
mod systemd_service;
mod systemd_units;
