//! A trusted collection: verifying it from the server, staging and
//! publishing changes, signing with notary-keyd.

pub(crate) mod apply;
pub(crate) mod expiry;
pub(crate) mod publish;
pub(crate) mod signer;
pub(crate) mod update;
