//! A trusted collection: verifying it from the server, staging and
//! publishing changes, signing with notary-keyd.

pub(crate) mod apply;
pub(crate) mod expiry;
mod floor;
pub(crate) mod publish;
pub(crate) mod signer;
pub(crate) mod update;
