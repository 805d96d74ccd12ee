//! An open token: the slot it is in now, its facts, the anchor session that
//! holds the login, and the worker session pool.

use super::config::{Pkcs11Config, TokenSelector};
use super::errors::{describe, OpError};
use super::lock;
use super::module::{self, Module};
use super::session_pool::SessionPool;
use super::sign::SigningKey;
use crate::{Algorithm, DeviceInfo, PinStatus, TriesLeft};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a token could not be opened.
pub(super) struct OpenError {
    pub(super) reason: String,
    /// False when trying again would do harm (a rejected PIN burns a try).
    pub(super) retry: bool,
}

impl OpenError {
    fn retry(reason: String) -> Self {
        Self {
            reason,
            retry: true,
        }
    }
}

/// A C_Login that did not succeed.
pub(super) enum LoginFailure {
    WrongPin(TriesLeft),
    Blocked,
    Other(OpError),
}

// Field order is drop order: sessions close before the module is finalised.
pub(super) struct Token {
    pub(super) label: String,
    pub(super) serial: String,
    pub(super) info: DeviceInfo,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) pool: SessionPool,
    /// Private key handles by CKA_ID, so signing does no C_FindObjects.
    pub(super) keys: Mutex<HashMap<Vec<u8>, SigningKey>>,
    /// Login is per application, not per session, and ends when the last
    /// session closes: this session lives as long as the token is open so
    /// the login does too. Its lock also serialises login and logout.
    anchor: Mutex<Session>,
    slot: Slot,
    module: Arc<Module>,
}

impl Token {
    pub(super) fn open(config: &Pkcs11Config) -> Result<Token, OpenError> {
        let module = module::load(&config.module).map_err(OpenError::retry)?;
        let ctx = module.ctx().clone();
        let (slot, info) = find_token(&ctx, config).map_err(OpenError::retry)?;
        let label = info.label().to_string();
        let what = |e: &Error| {
            format!(
                "{} in {}: {}",
                config.token,
                config.module.display(),
                describe(e)
            )
        };
        let algorithms =
            supported_algorithms(&ctx, slot).map_err(|e| OpenError::retry(what(&e)))?;
        let anchor = ctx
            .open_rw_session(slot)
            .map_err(|e| OpenError::retry(what(&e)))?;
        let token = Token {
            label,
            serial: info.serial_number().to_string(),
            info: DeviceInfo {
                manufacturer: info.manufacturer_id().to_string(),
                model: info.model().to_string(),
                label: info.label().to_string(),
                serial: info.serial_number().to_string(),
            },
            algorithms,
            pool: SessionPool::new(ctx, slot, config.max_sessions),
            keys: Mutex::new(HashMap::new()),
            anchor: Mutex::new(anchor),
            slot,
            module,
        };
        if let Some(pin) = &config.pin {
            token.login(pin).map_err(|failure| match failure {
                LoginFailure::WrongPin(tries) => OpenError {
                    reason: token.pin_rejected(tries),
                    retry: false,
                },
                LoginFailure::Blocked => OpenError {
                    reason: format!(
                        "the user PIN of token {:?} is blocked: unblock it with the SO PIN or re-initialise the token",
                        token.label
                    ),
                    retry: false,
                },
                LoginFailure::Other(e) => OpenError::retry(format!(
                    "logging in to token {:?} failed: {}",
                    token.label,
                    e.into_backend(&"C_Login")
                )),
            })?;
        }
        Ok(token)
    }

    /// The reason recorded when the configured PIN is wrong.
    pub(super) fn pin_rejected(&self, tries: TriesLeft) -> String {
        format!(
            "configured PIN for token {:?} was rejected ({tries}); it will not be tried again: fix the PIN (its file, credential or variable) and restart notary-keyd (a reload does not reopen backends)",
            self.label
        )
    }

    fn ctx(&self) -> &Pkcs11 {
        self.module.ctx()
    }

    /// A read-write session for one write (generate, delete, store a
    /// certificate). It shares the application's login.
    pub(super) fn rw_session(&self) -> Result<Session, OpError> {
        Ok(self.ctx().open_rw_session(self.slot)?)
    }

    /// Whether the token still answers for itself (C_GetTokenInfo). A
    /// token whose storage became unreadable keeps its sessions but finds
    /// no objects; this is the call that fails then (SoftHSM:
    /// CKR_GENERAL_ERROR).
    pub(super) fn answers(&self) -> Result<(), Error> {
        self.ctx().get_token_info(self.slot).map(|_| ())
    }

    pub(super) fn logged_in(&self) -> Result<bool, OpError> {
        Ok(is_user(
            lock(&self.anchor).get_session_info()?.session_state(),
        ))
    }

    /// One C_Login with `pin`; never retried here.
    pub(super) fn login(&self, pin: &SecretString) -> Result<(), LoginFailure> {
        self.login_on(lock(&self.anchor), pin)
    }

    /// Logs in with the configured PIN unless someone already has (many
    /// workers can find the login gone at once; only one C_Login is made).
    pub(super) fn relogin(&self, pin: &SecretString) -> Result<(), LoginFailure> {
        // Held across the check and the login so concurrent callers queue.
        let anchor = lock(&self.anchor);
        match anchor.get_session_info() {
            Ok(info) if is_user(info.session_state()) => Ok(()),
            Ok(_) => self.login_on(anchor, pin),
            Err(e) => Err(LoginFailure::Other(e.into())),
        }
    }

    /// A login already in place says nothing about `pin`
    /// (`CKR_USER_ALREADY_LOGGED_IN` is not a check of it): the token is
    /// logged out and in again so that it checks this PIN. A wrong one
    /// therefore leaves the token logged out. The anchor lock is held
    /// throughout; callers keep other work off the token meanwhile.
    fn login_on(
        &self,
        anchor: MutexGuard<'_, Session>,
        pin: &SecretString,
    ) -> Result<(), LoginFailure> {
        // cryptoki's AuthPin is secrecy's SecretString: the PIN is exposed
        // only inside the C_Login call.
        match anchor.login(UserType::User, Some(pin)) {
            Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                self.logout_on(&anchor).map_err(LoginFailure::Other)?;
                let again = anchor.login(UserType::User, Some(pin));
                self.login_outcome(anchor, again)
            }
            first => self.login_outcome(anchor, first),
        }
    }

    fn login_outcome(
        &self,
        anchor: MutexGuard<'_, Session>,
        result: Result<(), Error>,
    ) -> Result<(), LoginFailure> {
        match result {
            Ok(()) => Ok(()),
            Err(Error::Pkcs11(RvError::PinIncorrect, _)) => {
                drop(anchor);
                // The flags say how bad it is only after the failure.
                match self.ctx().get_token_info(self.slot) {
                    Ok(info) if info.user_pin_locked() => Err(LoginFailure::Blocked),
                    Ok(info) => Err(LoginFailure::WrongPin(tries_left(&info))),
                    Err(_) => Err(LoginFailure::WrongPin(TriesLeft::Unknown)),
                }
            }
            Err(Error::Pkcs11(RvError::PinLocked, _)) => Err(LoginFailure::Blocked),
            Err(e) => Err(LoginFailure::Other(OpError::Call(e))),
        }
    }

    pub(super) fn logout(&self) -> Result<(), OpError> {
        self.logout_on(&lock(&self.anchor))
    }

    fn logout_on(&self, anchor: &Session) -> Result<(), OpError> {
        // Logout invalidates private object handles (SoftHSM reissues them).
        lock(&self.keys).clear();
        match anchor.logout() {
            Ok(()) | Err(Error::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn pin_status(&self) -> Result<PinStatus, OpError> {
        let info = self.ctx().get_token_info(self.slot)?;
        Ok(PinStatus {
            logged_in: self.logged_in()?,
            tries_left: tries_left(&info),
            blocked: info.user_pin_locked(),
        })
    }
}

fn is_user(state: SessionState) -> bool {
    matches!(state, SessionState::RoUser | SessionState::RwUser)
}

/// PKCS#11 only reports flags, never a count.
fn tries_left(info: &TokenInfo) -> TriesLeft {
    if info.user_pin_final_try() {
        TriesLeft::FinalTry
    } else if info.user_pin_count_low() {
        TriesLeft::Low
    } else {
        TriesLeft::Unknown
    }
}

fn find_token(ctx: &Pkcs11, config: &Pkcs11Config) -> Result<(Slot, TokenInfo), String> {
    let slots = ctx.get_slots_with_token().map_err(|e| {
        format!(
            "listing the slots of PKCS#11 module {}: {}",
            config.module.display(),
            describe(&e)
        )
    })?;
    let mut present = Vec::new();
    let mut matches = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if !info.token_initialized() {
            continue;
        }
        let hit = match &config.token {
            TokenSelector::Label(label) => info.label() == label,
            TokenSelector::Serial(serial) => info.serial_number() == serial,
        };
        present.push(format!(
            "{:?} (serial {})",
            info.label(),
            info.serial_number()
        ));
        if hit {
            matches.push((slot, info));
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => {
            let wanted = match &config.token {
                TokenSelector::Label(label) => format!("no token labelled {label:?}"),
                TokenSelector::Serial(serial) => format!("no token with serial {serial:?}"),
            };
            let seen = if present.is_empty() {
                "no initialised tokens present: is the device plugged in and initialised? \
                 For SoftHSM2, SOFTHSM2_CONF must name the config of the token directory \
                 `softhsm2-util --init-token` used (`softhsm2-util --show-slots` lists its tokens)"
                    .to_string()
            } else {
                format!("tokens present: {}", present.join(", "))
            };
            Err(format!(
                "{wanted} in PKCS#11 module {} ({seen})",
                config.module.display()
            ))
        }
        n => Err(format!(
            "{n} tokens match the {}: select the token by serial instead (tokens present: {})",
            config.token,
            present.join(", ")
        )),
    }
}

/// The algorithms the token can both generate and sign with, in sizes its
/// mechanism info allows. Each mechanism is asked about by itself
/// (C_GetMechanismInfo) rather than read from C_GetMechanismList: cryptoki
/// logs an ERROR for every listed vendor mechanism it has no name for,
/// about 30 on a healthy SoftHSM token.
fn supported_algorithms(ctx: &Pkcs11, slot: Slot) -> Result<Vec<Algorithm>, Error> {
    let info = |mech: MechanismType| match ctx.get_mechanism_info(slot, mech) {
        Ok(info) => Ok(Some(info)),
        Err(Error::Pkcs11(RvError::MechanismInvalid, _)) => Ok(None),
        Err(e) => Err(e),
    };
    let has = |gen: MechanismType, sign: MechanismType, bits: usize| -> Result<bool, Error> {
        let (Some(gen), Some(_)) = (info(gen)?, info(sign)?) else {
            return Ok(false);
        };
        // Some tokens report 0/0 when they do not say.
        Ok(gen.max_key_size() == 0 || (gen.min_key_size()..=gen.max_key_size()).contains(&bits))
    };
    let mut supported = Vec::new();
    for algorithm in Algorithm::ALL {
        let usable = match algorithm {
            Algorithm::EcdsaP256 => {
                has(MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA, 256)?
            }
            Algorithm::EcdsaP384 => {
                has(MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA, 384)?
            }
            Algorithm::Ed25519 => has(
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                MechanismType::EDDSA,
                256,
            )?,
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => has(
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                MechanismType::SHA256_RSA_PKCS_PSS,
                algorithm
                    .rsa_bits()
                    .and_then(|b| usize::try_from(b).ok())
                    .unwrap_or(0),
            )?,
        };
        if usable {
            supported.push(algorithm);
        }
    }
    tracing::debug!(?supported, "PKCS#11 token mechanisms probed");
    Ok(supported)
}
