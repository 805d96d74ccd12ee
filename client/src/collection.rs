//! A trusted collection: verifying it from the server, staging and
//! publishing changes, signing with notary-keyd.

pub mod apply;
pub mod expiry;
mod floor;
pub mod publish;
pub mod signer;
pub mod update;
