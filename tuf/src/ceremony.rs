//! What an offline root ceremony checks before it trusts its own output:
//! notary 0.7's root rules, counted one vote per distinct key, and the
//! YubiKey PIV attestation that ties a root key to the device it was made on.

mod piv;
mod root_rules;

pub use piv::{verify_piv_attestation, PivAttestation, PivAttestationError};
pub use root_rules::{check_structure, tally, CountedKey, Excluded, RootPass, Tally};
