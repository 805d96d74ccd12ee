//! notary-keyd's API and notary-signer's API (generated), the typed
//! failures both the daemon and its clients read (`Reason`, `Failure`), and
//! the API's enums beside notary's vocabulary (`convert`).

#![forbid(unsafe_code)]

/// notary-keyd's own API, `notary.keyd.v1`.
pub mod keyd {
    tonic::include_proto!("notary.keyd.v1");
}

/// notary-signer's API (`package proto` in notary 0.7), served for
/// notary-server.
pub mod signer {
    tonic::include_proto!("proto");
}

/// Encoded `FileDescriptorSet` of both APIs, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

pub mod convert;
mod reason;
mod redact;
pub mod secret_file;
pub mod socket;

pub use reason::{Failure, Reason};
