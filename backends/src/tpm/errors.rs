//! What a TSS error means for the backend: the TPM is gone, an auth value
//! was refused, the TPM is in dictionary-attack lockout, or an ordinary
//! command failure.

use bitfield::BitRange;
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};
use tss_esapi::Error;

/// TSS2 return-code layers (bits 16..24) that mean the path to the TPM
/// broke: the TCTI (socket, device) and the resource managers.
const LAYER_TPM: u32 = 0;
const LAYER_TCTI: u32 = 10;
const LAYER_RESMGR: u32 = 11;
const LAYER_RESMGR_TPM: u32 = 12;

#[derive(Debug)]
pub(super) enum Failure {
    /// The TPM cannot be reached (swtpm stopped, device gone, resource
    /// manager restarted), or the TSS lost track of the connection.
    Gone(String),
    /// An auth HMAC check failed. `counted` is true when it counted toward
    /// dictionary-attack lockout (TPM_RC_AUTH_FAIL) rather than not
    /// (TPM_RC_BAD_AUTH).
    AuthRejected { counted: bool },
    /// TPM_RC_LOCKOUT: DA-protected objects cannot be used for now.
    Lockout,
    /// Anything else the TPM refused.
    Other(String),
}

fn raw_code(code: &Tss2ResponseCode) -> u32 {
    match code {
        Tss2ResponseCode::Success => 0,
        Tss2ResponseCode::FormatZero(rc) => rc.bit_range(31, 0),
        Tss2ResponseCode::FormatOne(rc) => rc.bit_range(31, 0),
    }
}

pub(super) fn classify(e: &Error) -> Failure {
    let Error::Tss2Error(code) = e else {
        return Failure::Other(e.to_string());
    };
    let raw = raw_code(code);
    let layer = (raw >> 16) & 0xff;
    if layer != LAYER_TPM && layer != LAYER_RESMGR_TPM {
        return if layer == LAYER_TCTI || layer == LAYER_RESMGR {
            Failure::Gone(format!("{e} (TSS code {raw:#x})"))
        } else {
            // ESAPI/SYS/MU errors outside a TPM response leave the TSS
            // session state unknown; treat the connection as lost.
            Failure::Gone(format!("TSS error {raw:#x}: {e}"))
        };
    }
    use Tss2ResponseCodeKind as K;
    match code.kind() {
        // Our storage key and session vanished: the TPM was restarted (or
        // a resource manager lost our context) while we were connected.
        Some(
            K::ReferenceH0
            | K::ReferenceH1
            | K::ReferenceH2
            | K::ReferenceH3
            | K::ReferenceH4
            | K::ReferenceH5
            | K::ReferenceH6
            | K::ReferenceS0
            | K::ReferenceS1
            | K::ReferenceS2
            | K::ReferenceS3
            | K::ReferenceS4
            | K::ReferenceS5
            | K::ReferenceS6
            | K::Initialize,
        ) => Failure::Gone(format!(
            "the TPM was restarted and lost the objects and session of this connection ({e})"
        )),
        Some(Tss2ResponseCodeKind::AuthFail) => Failure::AuthRejected { counted: true },
        Some(Tss2ResponseCodeKind::BadAuth) => Failure::AuthRejected { counted: false },
        Some(Tss2ResponseCodeKind::Lockout) => Failure::Lockout,
        _ => Failure::Other(format!("{e} (TPM code {raw:#x})")),
    }
}

/// The TPM's dictionary-attack state (TPM_PT_LOCKOUT_*).
#[derive(Clone, Copy, Debug)]
pub(super) struct DaState {
    pub failures: u32,
    pub max_failures: u32,
    /// Seconds after which one failure is forgotten.
    pub interval_s: u32,
}

impl DaState {
    pub(super) fn tries_left(&self) -> u32 {
        self.max_failures.saturating_sub(self.failures)
    }

    /// Seconds until the TPM accepts a DA-protected auth again.
    pub(super) fn lockout_seconds(&self) -> u64 {
        let excess = u64::from(self.failures.saturating_sub(self.max_failures)) + 1;
        excess * u64::from(self.interval_s)
    }

    pub(super) fn lockout_message(&self) -> String {
        format!(
            "the TPM is in dictionary-attack lockout ({} failed authorizations, limit {}); \
             it accepts key auth again in about {} s (one failure is forgiven every {} s), \
             or sooner if the lockout owner runs `tpm2_dictionarylockout --clear-lockout`",
            self.failures,
            self.max_failures,
            self.lockout_seconds(),
            self.interval_s
        )
    }
}
