//! PKCS#11 backend (cryptoki): keys on a token found by label or serial.
//!
//! The backend never fails to construct. A missing module or token makes it
//! Unavailable with a reason, and it tries again at most every
//! `REOPEN_INTERVAL` when used; a rejected configured PIN makes it
//! Unavailable for good (retrying would burn PIN tries).

mod certs;
mod config;
mod errors;
mod keygen;
mod module;
mod objects;
mod origin;
mod session_pool;
mod sign;
mod token;

pub use config::{default_max_sessions, Pkcs11Config, TokenSelector};

use crate::{
    Algorithm, Availability, BackendError, BackendKey, CertificateStore, DeviceInfo, KeyBackend,
    KeyOrigin, KeyOriginReport, KeySpec, KeyUri, PinStatus, TokenLogin,
};
use errors::OpError;
use secrecy::SecretString;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};
use token::{LoginFailure, Token};

/// How often an unavailable backend looks for its module or token again.
const REOPEN_INTERVAL: Duration = Duration::from_secs(5);

pub struct Pkcs11Backend {
    name: String,
    config: Pkcs11Config,
    state: RwLock<State>,
}

enum State {
    Ready(Arc<Token>),
    Down {
        reason: String,
        /// When to try opening again; `None` = not until the config changes.
        retry_at: Option<Instant>,
    },
}

impl fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Backend")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Backend {
    /// Opens the token now; on failure the backend is Unavailable with the reason.
    pub fn open(name: &str, config: Pkcs11Config) -> Pkcs11Backend {
        let backend = Pkcs11Backend {
            name: name.to_string(),
            config,
            state: RwLock::new(State::Down {
                reason: "not opened yet".into(),
                retry_at: Some(Instant::now()),
            }),
        };
        // The outcome is recorded in `state` and logged.
        let _ = backend.token();
        backend
    }

    /// The open token, reopening it if it is down and due a retry.
    fn token(&self) -> Result<Arc<Token>, BackendError> {
        if let Some(ready) = self.current()? {
            return Ok(ready);
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Someone may have reopened it (or failed to) while we waited.
        if let Some(ready) = check(&state)? {
            return Ok(ready);
        }
        match Token::open(&self.config) {
            Ok(token) => {
                let token = Arc::new(token);
                tracing::info!(backend = %self.name, token = %token.label, serial = %token.serial, "PKCS#11 token opened");
                *state = State::Ready(token.clone());
                Ok(token)
            }
            Err(e) => {
                tracing::warn!(backend = %self.name, "PKCS#11 backend unavailable: {}", e.reason);
                *state = State::Down {
                    reason: e.reason.clone(),
                    retry_at: e.retry.then(|| Instant::now() + REOPEN_INTERVAL),
                };
                Err(BackendError::Unavailable(e.reason))
            }
        }
    }

    fn current(&self) -> Result<Option<Arc<Token>>, BackendError> {
        check(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes `token` out of service; dropping it closes its sessions. `retry`
    /// false keeps it down until the config changes.
    fn take_down(&self, token: &Arc<Token>, reason: &str, retry: bool) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Only if it is still the current token, not one reopened since.
        if matches!(&*state, State::Ready(current) if Arc::ptr_eq(current, token)) {
            tracing::warn!(backend = %self.name, "PKCS#11 backend unavailable: {reason}");
            *state = State::Down {
                reason: reason.to_string(),
                retry_at: retry.then(Instant::now),
            };
        }
    }

    /// Takes the token down unless it still answers for itself: its
    /// storage may have become unreadable (it then finds no objects, and
    /// only a fresh C_Initialize sees them again, once they can be read).
    fn check_answers(&self, token: &Arc<Token>) -> Result<(), BackendError> {
        token.answers().map_err(|e| {
            let reason = format!(
                "token {:?} stopped answering ({}; is its storage readable?); it is reopened \
                 on the next request",
                token.label,
                errors::describe(&e)
            );
            self.take_down(token, &reason, true);
            BackendError::Unavailable(reason)
        })
    }

    /// Maps an operation's failure, taking the token down if it is gone.
    fn fail(&self, token: &Arc<Token>, err: OpError, what: &dyn fmt::Display) -> BackendError {
        // A key the daemon knows is missing: gone for good, or the token
        // can no longer read its objects.
        if matches!(err, OpError::KeyNotFound) {
            if let Err(unavailable) = self.check_answers(token) {
                return unavailable;
            }
        }
        let gone = err.token_gone();
        let err = err.into_backend(what);
        if gone {
            if let BackendError::Unavailable(reason) = &err {
                self.take_down(token, reason, true);
            }
        }
        err
    }

    /// Runs `op` on the token. If it needs a login: with a configured PIN,
    /// log in once and run it once more; in prompt mode, LoginRequired.
    fn run<T>(
        &self,
        token: &Arc<Token>,
        what: &dyn fmt::Display,
        op: impl Fn(&Token) -> Result<T, OpError>,
    ) -> Result<T, BackendError> {
        let result = match op(token) {
            Err(e) if e.needs_login() => {
                self.relogin(token)?;
                op(token)
            }
            other => other,
        };
        result.map_err(|e| self.fail(token, e, what))
    }

    fn relogin(&self, token: &Arc<Token>) -> Result<(), BackendError> {
        let Some(pin) = &self.config.pin else {
            return Err(BackendError::LoginRequired);
        };
        tracing::info!(backend = %self.name, "PKCS#11 login was lost; logging in again with the configured PIN");
        match token.relogin(pin) {
            Ok(()) => Ok(()),
            Err(LoginFailure::WrongPin(tries)) => {
                let reason = token.pin_rejected(tries);
                self.take_down(token, &reason, false);
                Err(BackendError::Unavailable(reason))
            }
            Err(LoginFailure::Blocked) => {
                self.take_down(token, "the token's user PIN is blocked", false);
                Err(BackendError::PinBlocked)
            }
            Err(LoginFailure::Other(e)) => Err(self.fail(token, e, &"logging in again")),
        }
    }

    /// The CKA_ID a URI names, after checking it is for this token.
    fn key_id<'u>(&self, token: &Token, uri: &'u KeyUri) -> Result<&'u [u8], BackendError> {
        if uri.scheme() != "pkcs11" {
            return Err(BackendError::InvalidUri {
                uri: uri.to_string(),
                reason: "not a pkcs11: URI".into(),
            });
        }
        let id = uri.require_bytes("id")?;
        let other_token = uri
            .get_bytes("token")
            .is_some_and(|t| t != token.label.as_bytes())
            || uri
                .get_bytes("serial")
                .is_some_and(|s| s != token.serial.as_bytes());
        if other_token {
            return Err(BackendError::KeyNotFound(uri.to_string()));
        }
        Ok(id)
    }
}

fn check(state: &State) -> Result<Option<Arc<Token>>, BackendError> {
    match state {
        State::Ready(token) => Ok(Some(token.clone())),
        State::Down { reason, retry_at } => match retry_at {
            Some(at) if Instant::now() >= *at => Ok(None),
            _ => Err(BackendError::Unavailable(reason.clone())),
        },
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the data consistent enough for our uses.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyBackend for Pkcs11Backend {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn availability(&self) -> Availability {
        match self.token().and_then(|t| self.check_answers(&t)) {
            Ok(()) => Availability::Available,
            Err(e) => Availability::Unavailable(match e {
                BackendError::Unavailable(reason) => reason,
                other => other.to_string(),
            }),
        }
    }

    fn device_info(&self) -> DeviceInfo {
        match self.current() {
            Ok(Some(token)) => token.info.clone(),
            // What the config says we are looking for.
            _ => match &self.config.token {
                TokenSelector::Label(label) => DeviceInfo {
                    label: label.clone(),
                    ..DeviceInfo::default()
                },
                TokenSelector::Serial(serial) => DeviceInfo {
                    serial: serial.clone(),
                    ..DeviceInfo::default()
                },
            },
        }
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        self.token()
            .map(|t| t.algorithms.clone())
            .unwrap_or_default()
    }

    fn concurrency(&self) -> usize {
        self.config.max_sessions.max(1)
    }

    fn list(&self) -> Result<Vec<BackendKey>, BackendError> {
        self.run(&self.token()?, &"listing keys", |token| token.list())
    }

    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        let token = self.token()?;
        if !token.algorithms.contains(&spec.algorithm) {
            return Err(BackendError::UnsupportedAlgorithm(format!(
                "{} (token {:?} lacks the mechanisms for it)",
                spec.algorithm, token.label
            )));
        }
        let what = format!("generating a {} key", spec.algorithm);
        let key = self.run(&token, &what, |token| token.generate(spec))?;
        Ok(token.backend_key(&key))
    }

    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        let token = self.token()?;
        let id = self.key_id(&token, uri)?;
        self.run(&token, uri, |token| token.sign(id, payload))
    }

    fn delete(&self, uri: &KeyUri) -> Result<(), BackendError> {
        let token = self.token()?;
        let id = self.key_id(&token, uri)?;
        self.run(&token, uri, |token| token.delete(id))
    }

    fn certificates(&self) -> Option<&dyn CertificateStore> {
        Some(self)
    }

    fn token_login(&self) -> Option<&dyn TokenLogin> {
        Some(self)
    }

    fn key_origin(&self) -> Option<&dyn KeyOriginReport> {
        Some(self)
    }
}

impl KeyOriginReport for Pkcs11Backend {
    fn key_origin(&self, uri: &KeyUri) -> Result<KeyOrigin, BackendError> {
        let token = self.token()?;
        let id = self.key_id(&token, uri)?;
        self.run(&token, uri, |token| token.key_origin(id))
    }
}

impl CertificateStore for Pkcs11Backend {
    fn put_certificate(&self, uri: &KeyUri, der: &[u8]) -> Result<(), BackendError> {
        let token = self.token()?;
        let id = self.key_id(&token, uri)?;
        self.run(&token, uri, |token| token.put_certificate(id, der))
    }

    fn certificate(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, BackendError> {
        let token = self.token()?;
        let id = self.key_id(&token, uri)?;
        self.run(&token, uri, |token| token.certificate(id))
    }
}

impl TokenLogin for Pkcs11Backend {
    fn pin_status(&self) -> Result<PinStatus, BackendError> {
        let token = self.token()?;
        token
            .pin_status()
            .map_err(|e| self.fail(&token, e, &"reading the PIN status"))
    }

    fn login(&self, pin: &SecretString) -> Result<(), BackendError> {
        let token = self.token()?;
        match token.login(pin) {
            Ok(()) => {
                tracing::info!(backend = %self.name, token = %token.label, "PKCS#11 token unlocked");
                Ok(())
            }
            Err(LoginFailure::WrongPin(tries)) => Err(BackendError::WrongPin(tries)),
            Err(LoginFailure::Blocked) => Err(BackendError::PinBlocked),
            Err(LoginFailure::Other(e)) => Err(self.fail(&token, e, &"logging in")),
        }
    }

    fn logout(&self) -> Result<(), BackendError> {
        let token = self.token()?;
        token
            .logout()
            .map_err(|e| self.fail(&token, e, &"logging out"))
    }
}
