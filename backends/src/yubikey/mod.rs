//! YubiKey PIV backend: keys generated on the device in PIV slots, with
//! per-slot PIN and touch policies.
//!
//! The card is opened by serial and held open, so "PIN once" lasts between
//! requests; `release` closes it for other programs and the next operation
//! opens it again. A card that went away (unplugged, reset by another
//! program) is re-opened once and the operation retried. Key URIs are
//! `yubikey:serial=<n>;slot=<9a|9c|9d|9e|82..95>`.
//!
//! The factory PIN, PUK and management key are never used silently: only
//! `setup`, on a person's confirmation, authenticates with the factory
//! management key, and generation needs the PIN-protected management key
//! that setup leaves behind.

mod admin;
mod card;
mod device;
mod pss;
mod record;
mod session;
mod signing;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use crate::backend::{
    Availability, BackendKey, CertificateStore, DeviceInfo, KeyBackend, KeySpec, PinStatus,
    TokenLogin,
};
use crate::piv::{PivAdmin, PivKeyOptions, Slot};
use crate::{Algorithm, BackendError, KeyUri, TriesLeft};
use card::{CardError, Connector};
use secrecy::SecretString;
use session::Session;
use std::sync::Mutex;

pub const SCHEME: &str = "yubikey";

#[derive(Clone, Debug, Default)]
pub struct YubiKeyConfig {
    /// Which YubiKey; may be left out when exactly one is plugged in.
    pub serial: Option<u32>,
}

pub struct YubiKeyBackend {
    name: String,
    config: YubiKeyConfig,
    connector: Box<dyn Connector>,
    session: Mutex<Session>,
    /// Serial and firmware of the card last opened, for `device_info`
    /// without touching the card.
    identity: Mutex<Option<(u32, String)>>,
}

impl From<CardError> for BackendError {
    fn from(e: CardError) -> BackendError {
        match e {
            CardError::Absent(m) => BackendError::Unavailable(m),
            CardError::WrongPin(n) => BackendError::WrongPin(TriesLeft::Exactly(u32::from(n))),
            CardError::PinBlocked => BackendError::PinBlocked,
            CardError::SecurityStatus => BackendError::LoginRequired,
            CardError::NotSupported => {
                BackendError::NotSupported("this YubiKey's firmware does not support it")
            }
            CardError::Other(m) => BackendError::Device(m),
        }
    }
}

impl YubiKeyBackend {
    /// What notary-keyd generates and signs with on a card.
    pub(crate) const ALGORITHMS: [Algorithm; 3] = [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Rsa2048,
    ];

    /// Opens nothing yet: the card is opened on first use, so a daemon
    /// starts with its YubiKey unplugged and picks it up when it appears.
    pub fn open(name: &str, config: YubiKeyConfig) -> YubiKeyBackend {
        Self::with_connector(name, config, Box::new(device::PcscConnector))
    }

    fn with_connector(
        name: &str,
        config: YubiKeyConfig,
        connector: Box<dyn Connector>,
    ) -> YubiKeyBackend {
        YubiKeyBackend {
            name: name.to_string(),
            config,
            connector,
            session: Mutex::new(Session::default()),
            identity: Mutex::new(None),
        }
    }

    fn uri(serial: u32, slot: Slot) -> KeyUri {
        KeyUri::new(SCHEME)
            .with("serial", &serial.to_string())
            .with("slot", &slot.to_string())
    }

    /// The slot a URI names, refusing URIs for another YubiKey.
    fn slot_of(&self, uri: &KeyUri, serial: u32) -> Result<Slot, BackendError> {
        let bad = |reason: String| BackendError::InvalidUri {
            uri: uri.to_string(),
            reason,
        };
        if uri.scheme() != SCHEME {
            return Err(bad(format!("not a {SCHEME}: URI")));
        }
        let slot: Slot = uri.require("slot")?.parse().map_err(bad)?;
        let uri_serial = uri.require("serial")?;
        if uri_serial != serial.to_string() {
            return Err(BackendError::KeyNotFound(format!(
                "{uri} (it is on YubiKey {uri_serial}; backend {} holds YubiKey {serial})",
                self.name
            )));
        }
        Ok(slot)
    }
}

impl KeyBackend for YubiKeyBackend {
    fn kind(&self) -> &'static str {
        SCHEME
    }

    fn availability(&self) -> Availability {
        // Never wait for the card here: a signature may be waiting for a
        // touch, and a busy card is an available one.
        let Ok(mut session) = self.session.try_lock() else {
            return Availability::Available;
        };
        match self.ensure_open(&mut session) {
            Ok(()) => Availability::Available,
            Err(e) => Availability::Unavailable(e.to_string()),
        }
    }

    fn device_info(&self) -> DeviceInfo {
        let identity = self.identity.lock().ok().and_then(|i| i.clone());
        let (serial, model) = match identity {
            Some((serial, firmware)) => (
                serial.to_string(),
                format!("YubiKey PIV (firmware {firmware})"),
            ),
            None => (
                self.config
                    .serial
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                "YubiKey PIV".to_string(),
            ),
        };
        DeviceInfo {
            manufacturer: "Yubico".into(),
            model,
            label: String::new(),
            serial,
        }
    }

    fn algorithms(&self) -> Vec<Algorithm> {
        Self::ALGORITHMS.to_vec()
    }

    fn list(&self) -> Result<Vec<BackendKey>, BackendError> {
        self.with_card(|card, session| session.list(card))
            .map(|(serial, keys)| {
                keys.into_iter()
                    .map(|k| BackendKey {
                        uri: Self::uri(serial, k.slot),
                        public: k.public,
                        algorithm: k.algorithm,
                        label: k.label,
                    })
                    .collect()
            })
    }

    fn generate(&self, spec: &KeySpec) -> Result<BackendKey, BackendError> {
        self.generate_in_slot(spec, &PivKeyOptions::default())
    }

    fn sign(&self, uri: &KeyUri, payload: &[u8]) -> Result<Vec<u8>, BackendError> {
        self.sign_with_card(uri, payload)
    }

    fn delete(&self, _uri: &KeyUri) -> Result<(), BackendError> {
        // PIV has no delete; overwriting a slot needs a person's decision
        // (ykman piv keys delete / a new generate in that slot).
        Err(BackendError::NotSupported(
            "deleting a YubiKey key (use `ykman piv keys delete` after `notaryctl yubikey release`)",
        ))
    }

    fn certificates(&self) -> Option<&dyn CertificateStore> {
        Some(self)
    }

    fn token_login(&self) -> Option<&dyn TokenLogin> {
        Some(self)
    }

    fn piv(&self) -> Option<&dyn PivAdmin> {
        Some(self)
    }
}

impl TokenLogin for YubiKeyBackend {
    fn pin_status(&self) -> Result<PinStatus, BackendError> {
        self.with_card(|card, _| {
            let state = card.pin_state()?;
            let tries = match state.tries_left {
                Some(n) => Some(n),
                None => card
                    .credential(card::Credential::Pin)?
                    .and_then(|m| m.tries_left),
            };
            Ok(PinStatus {
                logged_in: state.verified,
                tries_left: tries.map_or(TriesLeft::Unknown, |n| TriesLeft::Exactly(u32::from(n))),
                blocked: tries == Some(0),
            })
        })
        .map(|(_, status)| status)
    }

    /// Verifies the PIN now (a wrong one reports its tries left and is never
    /// retried) and keeps it for the next signature, which a PIN-always
    /// slot needs right before it.
    fn login(&self, pin: &SecretString) -> Result<(), BackendError> {
        use secrecy::ExposeSecret;
        self.with_card(|card, session| {
            card.verify_pin(pin.expose_secret().as_bytes())?;
            session.pending_pin = Some(pin.clone());
            Ok(())
        })
        .map(|_| ())
    }

    fn logout(&self) -> Result<(), BackendError> {
        let mut session = self.lock_session()?;
        session.pending_pin = None;
        if let Some(card) = session.card.as_mut() {
            card.forget_pin()?;
        }
        Ok(())
    }
}
