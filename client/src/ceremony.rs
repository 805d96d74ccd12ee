//! Offline root-key ceremonies: an M-of-N root made on hardware tokens,
//! signed holder by holder on an air-gapped machine, and published so that
//! stock notary trusts it. Everything moves in a bundle directory (see
//! `bundle`); every step replays the bundle before it adds to it, and
//! records what it did in the hash-chained transcript.

mod airgap;
mod bundle;
mod device;
mod diff;
mod digest;
mod enrollment;
mod plan;
mod replay;
mod root_builder;
mod transcript;
mod votes;
mod words;
