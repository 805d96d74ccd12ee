//! The open card and what the backend knows about it: opening by serial,
//! one re-open after the card went away, and the slots' facts.

use super::card::{CardError, PivCard, SlotMeta};
use super::record::{classify, KeyRecord, SlotCertificate};
use super::YubiKeyBackend;
use crate::piv::{PinPolicy, Slot, TouchPolicy};
use crate::{Algorithm, BackendError};
use der::Decode;
use notary_tuf::PublicKey;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Instant;

/// What the backend knows about one occupied slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SlotFacts {
    pub algorithm: Algorithm,
    pub public: PublicKey,
    /// `None` on firmware without metadata.
    pub pin_policy: Option<PinPolicy>,
    pub touch_policy: Option<TouchPolicy>,
    pub generated: Option<bool>,
    pub label: String,
}

/// A key found on the card.
pub(super) struct ListedKey {
    pub slot: Slot,
    pub public: PublicKey,
    pub algorithm: Algorithm,
    pub label: String,
}

#[derive(Default)]
pub(super) struct Session {
    pub card: Option<Box<dyn PivCard>>,
    /// A PIN a person gave, kept for the next signature only.
    pub pending_pin: Option<SecretString>,
    pub slots: HashMap<Slot, SlotFacts>,
    /// When a touch-policy slot last signed, for the 15 s touch cache.
    pub last_touch: Option<Instant>,
}

/// A certificate's key and its algorithm, for firmware without metadata.
fn certificate_key(der: &[u8]) -> Option<(Algorithm, PublicKey)> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    crate::encoding::public_from_spki(&cert.tbs_certificate.subject_public_key_info).ok()
}

impl Session {
    /// Forgets the card and everything learned from it.
    pub(super) fn close(&mut self) {
        self.card = None;
        self.pending_pin = None;
        self.slots.clear();
        self.last_touch = None;
    }

    /// Reads one slot: metadata (5.3+) and certificate. `None`: empty.
    pub(super) fn read_slot(
        card: &mut dyn PivCard,
        slot: Slot,
    ) -> Result<Option<SlotFacts>, BackendError> {
        let meta = match card.slot_meta(slot) {
            Ok(m) => m,
            Err(CardError::NotSupported) => None,
            Err(e) => return Err(e.into()),
        };
        let cert = card.read_certificate(slot)?;
        let record = cert.as_deref().and_then(classify);
        let from_meta = meta
            .as_ref()
            .and_then(|m| Some((m.algorithm?, m.public.clone()?)));
        let Some((algorithm, public)) =
            from_meta.or_else(|| cert.as_deref().and_then(certificate_key))
        else {
            return Ok(None);
        };
        if !YubiKeyBackend::ALGORITHMS.contains(&algorithm) {
            tracing::debug!(%slot, %algorithm, "skipping a slot with a key type notary cannot use here");
            return Ok(None);
        }
        let label = match record {
            Some(SlotCertificate::Record(KeyRecord { label, role, gun })) => {
                if label.is_empty() {
                    format!("{gun} {role}").trim().to_string()
                } else {
                    label
                }
            }
            Some(SlotCertificate::Other {
                common_name: Some(cn),
            }) => format!("root certificate {cn}"),
            _ => String::new(),
        };
        let SlotMeta {
            pin_policy,
            touch_policy,
            generated,
            ..
        } = meta.unwrap_or(SlotMeta {
            algorithm: None,
            pin_policy: None,
            touch_policy: None,
            generated: None,
            public: None,
        });
        Ok(Some(SlotFacts {
            algorithm,
            public,
            pin_policy,
            touch_policy,
            generated,
            label,
        }))
    }

    /// The facts of a slot, read from the card when not known yet.
    pub(super) fn facts(
        &mut self,
        card: &mut dyn PivCard,
        slot: Slot,
    ) -> Result<Option<SlotFacts>, BackendError> {
        if let Some(f) = self.slots.get(&slot) {
            return Ok(Some(f.clone()));
        }
        let facts = Self::read_slot(card, slot)?;
        if let Some(f) = &facts {
            self.slots.insert(slot, f.clone());
        }
        Ok(facts)
    }

    /// Every key on the card, read afresh.
    pub(super) fn list(&mut self, card: &mut dyn PivCard) -> Result<Vec<ListedKey>, BackendError> {
        let serial = card.serial();
        self.slots.clear();
        let mut keys = Vec::new();
        for slot in Slot::all() {
            if let Some(f) = self.facts(card, slot)? {
                let label = if f.label.is_empty() {
                    format!("YubiKey {serial} slot {slot}")
                } else {
                    f.label.clone()
                };
                keys.push(ListedKey {
                    slot,
                    public: f.public,
                    algorithm: f.algorithm,
                    label,
                });
            }
        }
        Ok(keys)
    }
}

impl YubiKeyBackend {
    pub(super) fn lock_session(&self) -> Result<MutexGuard<'_, Session>, BackendError> {
        self.session
            .lock()
            .map_err(|_| BackendError::Device("YubiKey session lock poisoned".into()))
    }

    /// The serial to open: the configured one, else the only card present.
    fn choose_serial(&self) -> Result<u32, BackendError> {
        if let Some(serial) = self.config.serial {
            return Ok(serial);
        }
        let serials = self.connector.serials().map_err(BackendError::from)?;
        match serials.as_slice() {
            [] => Err(BackendError::Unavailable(
                "no YubiKey found (is it plugged in, and is pcscd running?)".into(),
            )),
            [one] => Ok(*one),
            many => Err(BackendError::Unavailable(format!(
                "{} YubiKeys are plugged in (serials {}); set `serial` in backend {:?}'s configuration",
                many.len(),
                join(many),
                self.name
            ))),
        }
    }

    pub(super) fn ensure_open(&self, session: &mut Session) -> Result<(), BackendError> {
        if session.card.is_some() {
            return Ok(());
        }
        let serial = self.choose_serial()?;
        let card = self.connector.open(serial).map_err(|e| match e {
            CardError::Absent(why) => {
                let present = self
                    .connector
                    .serials()
                    .map(|s| {
                        if s.is_empty() {
                            "no YubiKey is plugged in".to_string()
                        } else {
                            format!("plugged in: {}", join(&s))
                        }
                    })
                    .unwrap_or(why);
                BackendError::Unavailable(format!("YubiKey {serial} not found ({present})"))
            }
            other => other.into(),
        })?;
        tracing::info!(backend = %self.name, serial, firmware = %card.firmware(), "YubiKey opened");
        if let Ok(mut identity) = self.identity.lock() {
            *identity = Some((card.serial(), card.firmware()));
        }
        session.close();
        session.card = Some(card);
        Ok(())
    }

    /// Runs `f` on the open card (opening it first). When the card went
    /// away since the last use, opens it again and runs `f` once more: the
    /// card's PIN state is gone then, so a PIN-needing step reports
    /// LoginRequired rather than succeeding on stale state.
    pub(super) fn with_card<T>(
        &self,
        mut f: impl FnMut(&mut dyn PivCard, &mut Session) -> Result<T, BackendError>,
    ) -> Result<(u32, T), BackendError> {
        let mut session = self.lock_session()?;
        for attempt in 0..2 {
            self.ensure_open(&mut session)?;
            let mut card = match session.card.take() {
                Some(c) => c,
                None => return Err(BackendError::Unavailable("YubiKey not open".into())),
            };
            let serial = card.serial();
            let result = f(card.as_mut(), &mut session);
            match result {
                Err(BackendError::Unavailable(why)) => {
                    tracing::warn!(backend = %self.name, serial, %why, "YubiKey went away; re-opening");
                    session.close();
                    if attempt == 1 {
                        return Err(BackendError::Unavailable(why));
                    }
                }
                other => {
                    session.card = Some(card);
                    return other.map(|v| (serial, v));
                }
            }
        }
        Err(BackendError::Unavailable("YubiKey not reachable".into()))
    }
}

pub(super) fn join(serials: &[u32]) -> String {
    serials
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
