//! Loading the notary 0.7 fixture collections shipped in tests/data.

#![allow(dead_code)] // each test binary uses a different part

pub(crate) mod certs;

use notary_tuf::metadata::parse_expires;
use notary_tuf::{Metadata, PublicKey, Root, SignedEnvelope, Targets};
use std::path::PathBuf;

pub(crate) const GUN: &str = "example.com/notary-keyd/test";
pub(crate) const COLLECTIONS: [&str; 2] = ["local", "remote-ed25519"];
pub(crate) const FILES: [&str; 5] = [
    "root.json",
    "targets.json",
    "targets_releases.json",
    "snapshot.json",
    "timestamp.json",
];

/// A moment when the fixtures' certificates are valid (just after creation).
pub(crate) fn fixture_now() -> i64 {
    parse_expires("2026-11-25T13:00:00Z").unwrap()
}

/// A file under tests/data.
pub(crate) fn read_data(relative: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data", relative]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file of a fixture collection.
pub(crate) fn read(collection: &str, file: &str) -> Vec<u8> {
    read_data(&format!("notary-0.7/{collection}/{file}"))
}

pub(crate) fn envelope(collection: &str, file: &str) -> SignedEnvelope {
    SignedEnvelope::parse(&read(collection, file)).unwrap()
}

pub(crate) fn root(collection: &str) -> Root {
    envelope(collection, "root.json").decode().unwrap()
}

pub(crate) fn targets(collection: &str) -> Targets {
    Targets::from_signed(&envelope(collection, "targets.json").signed).unwrap()
}

/// The root role's x509 certificate key.
pub(crate) fn root_cert_key(collection: &str) -> PublicKey {
    let root = root(collection);
    let id = &root.role("root").unwrap().keyids[0];
    root.keys[id].clone()
}
