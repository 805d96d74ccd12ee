//! One open TPM context with the storage key loaded and one long-lived,
//! salted HMAC session reused for every authorized command.
//!
//! The session is salted with the storage key, so its session key (and so
//! every HMAC and the parameter encryption) depends on a secret that never
//! crossed the bus; auth values are only ever used as HMAC keys, never sent.
//! Reusing it costs nothing per command, where a new session per command
//! costs two round trips and key exchanges (about 8x on swtpm).

use super::errors::DaState;
use super::templates;
use std::str::FromStr;
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::{CapabilityType, PropertyTag, SessionType};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::resource_handles::Provision;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Attest, Auth, CapabilityData, Data, Digest, HashcheckTicket, Private, Public, Signature,
    SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::{Context, Result};

/// TPM2_HT_TRANSIENT and TPM2_HT_LOADED_SESSION handle ranges.
const TRANSIENT_FIRST: u32 = 0x8000_0000;
const LOADED_SESSION_FIRST: u32 = 0x0200_0000;
/// The owner's persistent handles end here (the platform's start above).
const PERSISTENT_LAST: u32 = 0x817F_FFFF;

pub(super) struct Connection {
    ctx: Context,
    primary: KeyHandle,
    session: AuthSession,
    /// The one signing key kept loaded: TPMs hold only a few transient
    /// objects (3 on swtpm), and the storage key already takes one.
    loaded: Option<Loaded>,
}

struct Loaded {
    id: String,
    handle: KeyHandle,
    /// A persistent object is only closed in the TSS, never flushed.
    persistent: bool,
}

impl Connection {
    /// Connects, recreates the storage key under the owner hierarchy (with
    /// `owner_auth` if the hierarchy has one) and starts the session.
    pub(super) fn open(tcti: &str, owner_auth: Option<Auth>) -> Result<Connection> {
        let mut ctx = Context::new(TctiNameConf::from_str(tcti)?)?;
        flush_leftovers(&mut ctx);
        if let Some(auth) = owner_auth {
            ctx.tr_set_auth(Hierarchy::Owner.into(), auth)?;
        }
        // No salt key exists before the primary: this one command runs in
        // an unsalted HMAC session, which still never sends the owner auth.
        let primary = ctx
            .execute_with_nullauth_session(|c| {
                c.create_primary(
                    Hierarchy::Owner,
                    templates::storage_primary()?,
                    None,
                    None,
                    None,
                    None,
                )
            })?
            .key_handle;
        let session = match start_salted_session(&mut ctx, primary) {
            Ok(s) => s,
            Err(e) => {
                let _ = ctx.flush_context(primary.into());
                return Err(e);
            }
        };
        Ok(Connection {
            ctx,
            primary,
            session,
            loaded: None,
        })
    }

    /// Runs an authorized command in the long-lived session.
    fn authorized<T>(&mut self, f: impl FnOnce(&mut Context) -> Result<T>) -> Result<T> {
        self.ctx.execute_with_session(Some(self.session), f)
    }

    /// Creates a key under the storage key; returns its public and wrapped
    /// private areas. The auth value travels encrypted (parameter encryption).
    pub(super) fn create(
        &mut self,
        template: Public,
        auth: Option<Auth>,
    ) -> Result<(Public, Private)> {
        let (primary, session) = (self.primary, self.session);
        set_parameter_encryption(&mut self.ctx, session, true)?;
        let created = self.authorized(|c| c.create(primary, template, auth, None, None, None));
        set_parameter_encryption(&mut self.ctx, session, false)?;
        let created = created?;
        Ok((created.out_public, created.out_private))
    }

    /// The key `id` loaded from its blob, reusing it when already loaded.
    pub(super) fn load(
        &mut self,
        id: &str,
        public: &Public,
        private: &[u8],
        auth: Option<Auth>,
    ) -> Result<KeyHandle> {
        if let Some(handle) = self.cached(id) {
            return Ok(handle);
        }
        let primary = self.primary;
        let private = Private::try_from(private.to_vec())?;
        let public = public.clone();
        let handle = self.authorized(|c| c.load(primary, private, public))?;
        self.keep(id, handle, false, auth)
    }

    /// The key `id` at persistent handle `at`, and the public area found
    /// there (the caller checks it is still the key).
    pub(super) fn open_persistent(
        &mut self,
        id: &str,
        at: u32,
        auth: Option<Auth>,
    ) -> Result<(KeyHandle, Public)> {
        let handle = match self.cached(id) {
            Some(handle) => handle,
            None => {
                let tpm_handle = TpmHandle::Persistent(PersistentTpmHandle::new(at)?);
                let object = self.ctx.tr_from_tpm_public(tpm_handle)?;
                self.keep(id, object.into(), true, auth)?
            }
        };
        let (public, _, _) = self
            .ctx
            .execute_without_session(|c| c.read_public(handle))?;
        Ok((handle, public))
    }

    fn cached(&mut self, id: &str) -> Option<KeyHandle> {
        match &self.loaded {
            Some(loaded) if loaded.id == id => Some(loaded.handle),
            _ => {
                self.unload();
                None
            }
        }
    }

    fn keep(
        &mut self,
        id: &str,
        handle: KeyHandle,
        persistent: bool,
        auth: Option<Auth>,
    ) -> Result<KeyHandle> {
        self.loaded = Some(Loaded {
            id: id.to_string(),
            handle,
            persistent,
        });
        if let Some(auth) = auth {
            if let Err(e) = self.ctx.tr_set_auth(handle.into(), auth) {
                self.unload();
                return Err(e);
            }
        }
        Ok(handle)
    }

    /// Makes `key` persistent at the first free owner handle from `from`;
    /// returns the handle.
    pub(super) fn persist(&mut self, key: KeyHandle, from: u32) -> Result<u32> {
        let (data, _) = self
            .ctx
            .execute_without_session(|c| c.get_capability(CapabilityType::Handles, from, 256))?;
        let used: Vec<TpmHandle> = match data {
            CapabilityData::Handles(list) => list.into_inner(),
            _ => Vec::new(),
        };
        let free = (from..=PERSISTENT_LAST)
            .find(|h| {
                PersistentTpmHandle::new(*h)
                    .is_ok_and(|p| !used.contains(&TpmHandle::Persistent(p)))
            })
            .ok_or(tss_esapi::Error::WrapperError(
                tss_esapi::WrapperErrorKind::InvalidParam,
            ))?;
        let target = Persistent::Persistent(PersistentTpmHandle::new(free)?);
        let mut made =
            self.authorized(|c| c.evict_control(Provision::Owner, key.into(), target))?;
        let _ = self.ctx.tr_close(&mut made);
        Ok(free)
    }

    /// Removes the persistent object at `at` (the key is being deleted).
    pub(super) fn evict(&mut self, at: u32) -> Result<()> {
        self.unload();
        let handle = PersistentTpmHandle::new(at)?;
        let object = self.ctx.tr_from_tpm_public(TpmHandle::Persistent(handle))?;
        let target = Persistent::Persistent(handle);
        self.authorized(|c| c.evict_control(Provision::Owner, object, target))?;
        Ok(())
    }

    /// The TPM manufacturer, as the TPM reports it.
    pub(super) fn vendor(&mut self) -> String {
        tss_esapi::utils::get_tpm_vendor(&mut self.ctx).unwrap_or_else(|_| "unknown".into())
    }

    /// Unloads `id` if it is the loaded key (it is being deleted).
    pub(super) fn forget(&mut self, id: &str) {
        if self.loaded.as_ref().is_some_and(|l| l.id == id) {
            self.unload();
        }
    }

    /// Flushes the loaded key (after delete, or to make room).
    pub(super) fn unload(&mut self) {
        if let Some(loaded) = self.loaded.take() {
            let mut object = ObjectHandle::from(loaded.handle);
            let _ = if loaded.persistent {
                self.ctx.tr_close(&mut object)
            } else {
                self.ctx.flush_context(object)
            };
        }
    }

    pub(super) fn sign(
        &mut self,
        key: KeyHandle,
        digest: Digest,
        scheme: SignatureScheme,
    ) -> Result<Signature> {
        let ticket = null_ticket()?;
        self.authorized(|c| c.sign(key, digest, scheme, ticket))
    }

    /// TPM2_Certify of `key` by the owner-hierarchy attestation key, over
    /// `nonce`. Returns the attestation, its signature and the AK public.
    pub(super) fn certify(
        &mut self,
        key: KeyHandle,
        nonce: Data,
    ) -> Result<(Attest, Signature, Public)> {
        let ak = self.ctx.execute_with_nullauth_session(|c| {
            c.create_primary(
                Hierarchy::Owner,
                templates::attestation_primary()?,
                None,
                None,
                None,
                None,
            )
        })?;
        let session = self.session;
        // Session 1 authorizes the certified key (its auth value), session
        // 2 the attestation key (empty auth, no DA).
        let result = self
            .ctx
            .execute_with_sessions((Some(session), Some(AuthSession::Password), None), |c| {
                c.certify(key.into(), ak.key_handle, nonce, SignatureScheme::Null)
            });
        let _ = self.ctx.flush_context(ak.key_handle.into());
        let (attest, signature) = result?;
        Ok((attest, signature, ak.out_public))
    }

    /// The TPM's dictionary-attack counters.
    pub(super) fn da_state(&mut self) -> Result<DaState> {
        let (data, _) = self.ctx.execute_without_session(|c| {
            c.get_capability(
                CapabilityType::TpmProperties,
                tss_esapi::constants::tss::TPM2_PT_LOCKOUT_COUNTER,
                4,
            )
        })?;
        let value = |tag| match &data {
            CapabilityData::TpmProperties(list) => list.find(tag).map_or(0, |p| p.value()),
            _ => 0,
        };
        Ok(DaState {
            failures: value(PropertyTag::LockoutCounter),
            max_failures: value(PropertyTag::MaxAuthFail),
            interval_s: value(PropertyTag::LockoutInterval),
        })
    }
}

impl Drop for Connection {
    /// Without a resource manager (swtpm, /dev/tpm0) objects outlive the
    /// connection, so give back what we hold.
    fn drop(&mut self) {
        self.unload();
        let _ = self.ctx.flush_context(self.primary.into());
        let _ = self
            .ctx
            .flush_context(ObjectHandle::from(SessionHandle::from(self.session)));
    }
}

fn start_salted_session(ctx: &mut Context, primary: KeyHandle) -> Result<AuthSession> {
    let session = ctx
        .start_auth_session(
            Some(primary),
            None,
            None,
            SessionType::Hmac,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )?
        .ok_or(tss_esapi::Error::WrapperError(
            tss_esapi::WrapperErrorKind::WrongValueFromTpm,
        ))?;
    set_parameter_encryption(ctx, session, false)?;
    Ok(session)
}

/// Command parameter encryption (the session's decrypt attribute) is only
/// switched on for TPM2_Create, whose first parameter carries the new key's
/// auth value. A signature's digest is not secret (it is the hash of
/// metadata that will be published), and encrypting it halves swtpm's
/// signing rate. Responses (signatures, public areas) are never secret.
/// Changing attributes is local to the TSS: no TPM round trip.
fn set_parameter_encryption(ctx: &mut Context, session: AuthSession, on: bool) -> Result<()> {
    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .with_decrypt(on)
        .build();
    ctx.tr_sess_set_attributes(session, attributes, mask)
}

/// TPM2_Sign's validation ticket for a digest the TPM did not hash itself.
fn null_ticket() -> Result<HashcheckTicket> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: tss_esapi::constants::tss::TPM2_ST_HASHCHECK,
        hierarchy: tss_esapi::constants::tss::TPM2_RH_NULL,
        digest: Default::default(),
    })
}

/// Flushes transient objects and sessions a previous process left in the
/// TPM. Behind a resource manager (tpmrm0, tabrmd) a new connection sees
/// none, so this only acts on a TPM we have to ourselves (swtpm, tpm0),
/// where leftovers would exhaust its few object slots.
fn flush_leftovers(ctx: &mut Context) {
    for first in [TRANSIENT_FIRST, LOADED_SESSION_FIRST] {
        let listed =
            ctx.execute_without_session(|c| c.get_capability(CapabilityType::Handles, first, 64));
        let Ok((CapabilityData::Handles(handles), _)) = listed else {
            continue;
        };
        for handle in handles.into_inner() {
            let leftover = match handle {
                TpmHandle::Transient(_)
                | TpmHandle::LoadedSession(_)
                | TpmHandle::HmacSession(_)
                | TpmHandle::PolicySession(_) => handle,
                _ => continue,
            };
            match ctx.tr_from_tpm_public(leftover) {
                Ok(object) => {
                    if ctx.flush_context(object).is_ok() {
                        tracing::info!(handle = ?leftover, "flushed a TPM object left by an earlier connection");
                    }
                }
                Err(e) => {
                    tracing::debug!(handle = ?leftover, error = %e, "cannot flush leftover TPM handle")
                }
            }
        }
    }
}
