//! Offline root-key ceremonies: an M-of-N root made on hardware tokens,
//! signed holder by holder on an air-gapped machine, and published so that
//! stock notary trusts it. Everything moves in a bundle directory (see
//! `bundle`); every step replays the bundle before it adds to it, and
//! records what it did in the hash-chained transcript.

mod airgap;
mod bundle;
mod clock;
mod device;
mod diff;
mod digest;
mod enroll;
mod enrollment;
mod keyd;
mod plan;
mod prepare;
mod publish;
pub(crate) mod renewal;
mod replay;
mod report;
mod root_builder;
mod sign;
mod transcript;
mod votes;
mod words;

pub(crate) use enroll::enroll;
pub(crate) use prepare::{prepare, PlanArgs};
pub(crate) use publish::publish;
pub(crate) use report::{status, verify};
pub(crate) use sign::sign;
