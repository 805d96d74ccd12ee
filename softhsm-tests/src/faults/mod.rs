//! What the fault-injection tests (`tests/faults_*.rs`) need beyond the
//! rest of the harness: a daemon killed at an exact system call, checks
//! that what it left on disk is whole, a filesystem that fills up, a pcscd
//! of its own to kill, a notary-server front end that fails on request, and a signer that keeps one backend busy while
//! another one fails.

mod backend_state;
mod front;
mod inject;
mod on_disk;
mod pcscd;
mod sign_loop;

pub use backend_state::{backend_state, wait_backend};
pub use front::FaultyFront;
pub use inject::{KillAt, WriteStep};
pub use on_disk::{leftovers, StateFile};
pub use pcscd::PrivatePcscd;
pub use sign_loop::SignLoop;
