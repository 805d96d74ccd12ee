//! What the fuzz targets share: the stock notary 0.7 collections from
//! `tuf/tests/data/notary-0.7`, compiled in so a target needs no files at
//! run time, and the moment at which their certificates are valid; and,
//! for `daemon_rpc`, the daemon served in-process (`daemon`) and the raw
//! gRPC call into it (`grpc`).

pub mod daemon;
pub mod grpc;

use notary_tuf::metadata::parse_expires;
use notary_tuf::{Metadata, Root, SignedEnvelope, Targets, Timestamp};

/// The GUN every fixture collection was made for.
pub const GUN: &str = "example.com/notary-keyd/test";

/// One collection as notary-server served it.
pub struct Collection {
    pub root: &'static [u8],
    pub targets: &'static [u8],
    pub releases: &'static [u8],
    pub snapshot: &'static [u8],
    pub timestamp: &'static [u8],
}

macro_rules! fixture {
    ($dir:literal, $file:literal) => {
        include_bytes!(concat!(
            "../../tuf/tests/data/notary-0.7/",
            $dir,
            "/",
            $file
        ))
    };
}

macro_rules! collection {
    ($dir:literal) => {
        Collection {
            root: fixture!($dir, "root.json"),
            targets: fixture!($dir, "targets.json"),
            releases: fixture!($dir, "targets_releases.json"),
            snapshot: fixture!($dir, "snapshot.json"),
            timestamp: fixture!($dir, "timestamp.json"),
        }
    };
}

/// `local` (the server's own timestamp key) and `remote-ed25519` (through
/// notary-signer).
pub const COLLECTIONS: [Collection; 2] = [collection!("local"), collection!("remote-ed25519")];

impl Collection {
    pub fn files(&self) -> [&'static [u8]; 5] {
        [
            self.root,
            self.targets,
            self.releases,
            self.snapshot,
            self.timestamp,
        ]
    }

    pub fn trusted_root(&self) -> Root {
        decode(self.root)
    }

    pub fn trusted_targets(&self) -> Targets {
        decode(self.targets)
    }

    pub fn trusted_timestamp(&self) -> Timestamp {
        decode(self.timestamp)
    }
}

/// Decodes a fixture file; the fixtures are part of the build, so a failure
/// here is a broken checkout, not a finding.
fn decode<T: Metadata>(file: &[u8]) -> T {
    match SignedEnvelope::parse(file).and_then(|e| e.decode()) {
        Ok(metadata) => metadata,
        Err(e) => panic!("fixture does not decode: {e}"),
    }
}

/// Just after the fixtures were made: their certificates and metadata are
/// valid then.
pub fn fixture_now() -> i64 {
    match parse_expires("2026-11-25T13:00:00Z") {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// The canonical `signed` bytes of every fixture file: the only documents
/// the fixtures' keys ever signed.
pub fn signed_documents() -> Vec<Vec<u8>> {
    COLLECTIONS
        .iter()
        .flat_map(|c| c.files())
        .filter_map(|file| SignedEnvelope::parse(file).ok())
        .map(|envelope| envelope.signed_bytes)
        .collect()
}
