//! Notary 0.7's TUF vocabulary, shared by the daemon and the client.
//!
//! Everything here follows what the stock notary writes and accepts
//! (see `docs/notary-protocol.md` in the repository); it knows nothing about
//! where private keys live.

pub mod keys;

pub use keys::{KeyType, PublicKey};
