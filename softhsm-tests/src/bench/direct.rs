//! The baseline: signing on the SoftHSM token in this process through
//! cryptoki, the way the daemon's PKCS#11 backend signs, without the daemon.
//!
//! One `Pkcs11` context and one login for the process (login is per
//! application in PKCS#11); each worker thread gets its own session, because
//! a `Session` runs one operation at a time and is not `Sync`.

use super::{Alg, Window};
use anyhow::{bail, Context, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};
use softhsm_tests::softhsm::MODULE;
use std::time::Duration;

/// Notary's RSA-PSS, as the daemon uses it: SHA-256, MGF1-SHA-256, salt 32.
const PSS: PkcsPssParams = PkcsPssParams {
    hash_alg: MechanismType::SHA256,
    mgf: PkcsMgfType::MGF1_SHA256,
    s_len: cryptoki::types::Ulong::new(32),
};

pub(crate) struct DirectToken {
    ctx: Pkcs11,
    slot: Slot,
    /// Keeps the login alive: closing every session logs the user out.
    anchor: Session,
}

/// What one direct run did inside its window.
pub(crate) struct DirectRun {
    pub ops: u64,
    pub seconds: f64,
    /// CPU time this process spent during the whole run (warm-up included).
    pub cpu: Duration,
}

impl DirectRun {
    pub(crate) fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

impl DirectToken {
    /// Loads the module (reading `SOFTHSM2_CONF` from this process's
    /// environment), finds the token by label and logs in once.
    pub(crate) fn open(label: &str, pin: &str) -> Result<DirectToken> {
        let ctx = Pkcs11::new(MODULE).with_context(|| format!("loading {MODULE}"))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .context("C_Initialize")?;
        let mut found = None;
        for slot in ctx.get_slots_with_token()? {
            let info = ctx.get_token_info(slot)?;
            if info.token_initialized() && info.label() == label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.with_context(|| format!("no token labelled {label:?}"))?;
        let anchor = ctx.open_ro_session(slot)?;
        anchor
            .login(UserType::User, Some(&AuthPin::from(pin)))
            .context("C_Login")?;
        Ok(DirectToken { ctx, slot, anchor })
    }

    /// The private key with this CKA_ID. Object handles are valid in every
    /// session of this application.
    pub(crate) fn find_key(&self, cka_id: &[u8]) -> Result<ObjectHandle> {
        let found = self.anchor.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(cka_id.to_vec()),
        ])?;
        match found.as_slice() {
            [handle] => Ok(*handle),
            [] => bail!("no private key with CKA_ID {}", hex::encode(cka_id)),
            _ => bail!(
                "{} private keys with CKA_ID {}",
                found.len(),
                hex::encode(cka_id)
            ),
        }
    }

    /// One signature, exactly as the daemon's backend makes it.
    pub(crate) fn sign_once(&self, key: ObjectHandle, alg: Alg, payload: &[u8]) -> Result<Vec<u8>> {
        Ok(sign(&self.anchor, key, alg, payload)?)
    }

    /// `threads` OS threads, each with its own session, sign in a loop from
    /// now until the end of a window that opens after `warmup`.
    pub(crate) fn run(
        &self,
        key: ObjectHandle,
        alg: Alg,
        payload: &[u8],
        threads: usize,
        warmup: Duration,
        measure: Duration,
    ) -> Result<DirectRun> {
        // Sessions are opened before the clock starts and moved into the
        // threads (Session is Send).
        let sessions = (0..threads)
            .map(|_| self.ctx.open_ro_session(self.slot))
            .collect::<Result<Vec<_>, _>>()?;
        let cpu0 = super::procfs::cpu_time("self")?;
        let window = Window::after(warmup, measure);
        let workers = sessions
            .into_iter()
            .map(|session| {
                move || -> Result<()> {
                    sign(&session, key, alg, payload)?;
                    Ok(())
                }
            })
            .collect();
        let ops = super::count_in_window(window, workers)?;
        Ok(DirectRun {
            ops,
            seconds: window.seconds(),
            cpu: super::procfs::cpu_time("self")?.saturating_sub(cpu0),
        })
    }
}

/// The daemon's signing path (backends/src/pkcs11/sign.rs): SHA-256 on the
/// host then CKM_ECDSA; CKM_EDDSA (pure); CKM_SHA256_RSA_PKCS_PSS, salt 32.
fn sign(
    session: &Session,
    key: ObjectHandle,
    alg: Alg,
    payload: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    match alg {
        Alg::EcdsaP256 => {
            let digest = Sha256::digest(payload);
            session.sign(&Mechanism::Ecdsa, key, &digest)
        }
        Alg::Ed25519 => session.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            key,
            payload,
        ),
        Alg::Rsa3072 => session.sign(&Mechanism::Sha256RsaPkcsPss(PSS), key, payload),
    }
}
