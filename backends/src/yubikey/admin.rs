//! Generation, setup, status, attestation, release and slot certificates.

use super::card::{CardError, Credential, PivCard};
use super::record::{classify, KeyRecord, SlotCertificate};
use super::session::{Session, SlotFacts};
use super::YubiKeyBackend;
use crate::backend::{BackendKey, CertificateStore, KeyBackend, KeySpec};
use crate::error::Precondition;
use crate::piv::{
    Attestation, PinPolicy, PivAdmin, PivKeyOptions, PivSlotInfo, PivStatus, SetupSecrets, Slot,
    TouchHint,
};
use crate::{BackendError, KeyUri};
use secrecy::{ExposeSecret, SecretString};

/// Record certificates are valid for 10 years, like notary's root certificates.
const RECORD_VALIDITY_DAYS: u32 = 3650;

fn precondition(reason: Precondition, message: String) -> BackendError {
    BackendError::Precondition { reason, message }
}

/// Authenticates with the PIN-protected management key that setup stored;
/// the PIN must be verified first (given now, or still verified).
fn authenticate_management(
    card: &mut dyn PivCard,
    pin: Option<&SecretString>,
) -> Result<(), BackendError> {
    let serial = card.serial();
    if card
        .credential(Credential::ManagementKey)?
        .is_some_and(|m| m.is_default)
    {
        return Err(precondition(
            Precondition::SetupNeeded,
            format!(
                "YubiKey {serial} still has the factory management key, which notary-keyd \
                 never uses silently; run `notaryctl yubikey setup --serial {serial}` first"
            ),
        ));
    }
    match pin {
        Some(pin) => card.verify_pin(pin.expose_secret().as_bytes())?,
        None if card.pin_state()?.verified => {}
        None => return Err(BackendError::LoginRequired),
    }
    card.authenticate_protected_management_key()
        .map_err(|e| match e {
            CardError::SecurityStatus | CardError::Other(_) => precondition(
                Precondition::ManagementKeyUnknown,
                format!(
                    "YubiKey {serial}'s management key is not stored PIN-protected on it \
                     (was it set up by another tool?); run \
                     `notaryctl yubikey setup --serial {serial} --force`"
                ),
            ),
            other => other.into(),
        })
}

/// Self-signs the record certificate for a new key with the key itself.
fn write_record(
    session: &mut Session,
    card: &mut dyn PivCard,
    slot: Slot,
    record: &KeyRecord,
    pin: Option<&SecretString>,
) -> Result<(), BackendError> {
    let Some(facts) = session.facts(card, slot)? else {
        return Err(BackendError::Device(format!(
            "slot {slot} is empty after generation"
        )));
    };
    let cn = record
        .common_name()
        .map_err(|e| BackendError::Device(format!("record certificate: {e}")))?;
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] |= 0x01;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let cert_err = |e: notary_tuf::rootcert::CertError| {
        BackendError::Device(format!("record certificate: {e}"))
    };
    let tbs = notary_tuf::rootcert::root_cert_tbs(
        &cn,
        facts.public.public_bytes(),
        serial,
        now,
        RECORD_VALIDITY_DAYS,
    )
    .map_err(cert_err)?;
    let signature = session.sign_slot(card, slot, &tbs, pin)?;
    let pem = notary_tuf::rootcert::assemble_root_cert(&tbs, &signature).map_err(cert_err)?;
    let der = notary_tuf::PublicKey::from_certificate_pem(&pem)
        .and_then(|k| k.x509_certificate_der())
        .map_err(|e| BackendError::Device(format!("record certificate: {e}")))?;
    card.write_certificate(slot, &der)?;
    Ok(())
}

/// Whether a slot holds anything: a key of any type (metadata, 5.3+) or a
/// certificate. Before 5.3 a key without a certificate cannot be seen.
fn occupied(card: &mut dyn PivCard, slot: Slot) -> Result<bool, BackendError> {
    let has_key = match card.slot_meta(slot) {
        Ok(meta) => meta.is_some(),
        Err(CardError::NotSupported) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(has_key || card.read_certificate(slot)?.is_some())
}

impl Session {
    fn first_empty_slot(&mut self, card: &mut dyn PivCard) -> Result<Slot, BackendError> {
        for slot in Slot::all() {
            if !occupied(card, slot)? {
                return Ok(slot);
            }
        }
        Err(precondition(
            Precondition::NoFreeSlot,
            format!("every PIV slot of YubiKey {} holds a key", card.serial()),
        ))
    }

    fn generate(
        &mut self,
        card: &mut dyn PivCard,
        spec: &KeySpec,
        options: &PivKeyOptions,
        pin: Option<&SecretString>,
    ) -> Result<(Slot, BackendKey), BackendError> {
        let serial = card.serial();
        // The record certificate is signed right after generation, and a
        // PIN-always key needs the PIN for it: ask before changing anything.
        if options.pin_policy == PinPolicy::Always && pin.is_none() {
            return Err(BackendError::LoginRequired);
        }
        let slot = match options.slot {
            Some(slot) => {
                if occupied(card, slot)? {
                    let what = match self.facts(card, slot)? {
                        Some(f) => format!("a key ({}, key ID {})", f.algorithm, f.public.key_id()),
                        None => "a key or certificate notary-keyd does not use".into(),
                    };
                    return Err(precondition(
                        Precondition::SlotOccupied,
                        format!(
                            "YubiKey {serial} slot {slot} already holds {what}; \
                             choose another slot, or clear this one yourself with ykman"
                        ),
                    ));
                }
                slot
            }
            None => self.first_empty_slot(card)?,
        };
        authenticate_management(card, pin)?;
        let public = card.generate(
            slot,
            spec.algorithm,
            options.pin_policy,
            options.touch_policy,
        )?;
        tracing::info!(serial, %slot, algorithm = %spec.algorithm, pin = %options.pin_policy, touch = %options.touch_policy, "generated a key on the YubiKey");
        // What was just set is known, also on firmware without metadata.
        self.slots.insert(
            slot,
            SlotFacts {
                algorithm: spec.algorithm,
                public: public.clone(),
                pin_policy: Some(options.pin_policy),
                touch_policy: Some(options.touch_policy),
                generated: Some(true),
                label: spec.label.clone(),
            },
        );
        let record = KeyRecord {
            role: options.role.clone(),
            gun: options.gun.clone(),
            label: spec.label.clone(),
        };
        // Record certificates are ECDSA-signed (notary's root profile); an
        // RSA key is listed from its metadata alone.
        if spec.algorithm.key_type() == notary_tuf::KeyType::Ecdsa {
            write_record(self, card, slot, &record, pin)?;
        }
        Ok((
            slot,
            BackendKey {
                uri: YubiKeyBackend::uri(serial, slot),
                public,
                algorithm: spec.algorithm,
                label: spec.label.clone(),
            },
        ))
    }

    fn status(&mut self, card: &mut dyn PivCard) -> Result<PivStatus, BackendError> {
        let pin = card.credential(Credential::Pin)?;
        let puk = card.credential(Credential::Puk)?;
        let mgmt = card.credential(Credential::ManagementKey)?;
        let pin_tries = match pin.and_then(|p| p.tries_left) {
            Some(n) => Some(n),
            None => card.pin_state()?.tries_left,
        };
        let mut slots = Vec::new();
        self.slots.clear();
        for slot in Slot::all() {
            if let Some(f) = self.facts(card, slot)? {
                slots.push(PivSlotInfo {
                    slot,
                    algorithm: Some(f.algorithm),
                    pin_policy: f.pin_policy,
                    touch_policy: f.touch_policy,
                    generated_on_device: f.generated,
                    key_id: Some(f.public.key_id()),
                    label: f.label,
                });
            }
        }
        Ok(PivStatus {
            serial: card.serial(),
            firmware: card.firmware(),
            pin_tries_left: pin_tries,
            puk_tries_left: puk.and_then(|p| p.tries_left),
            default_pin: pin.map(|p| p.is_default),
            default_puk: puk.map(|p| p.is_default),
            default_management_key: mgmt.map(|m| m.is_default),
            slots,
        })
    }
}

fn setup_card(
    card: &mut dyn PivCard,
    secrets: &SetupSecrets,
    force: bool,
) -> Result<(), BackendError> {
    let serial = card.serial();
    for (what, value) in [("PIN", &secrets.new_pin), ("PUK", &secrets.new_puk)] {
        let len = value.expose_secret().len();
        if !(6..=8).contains(&len) {
            return Err(precondition(
                Precondition::BadNewSecret,
                format!("the new {what} must be 6 to 8 characters"),
            ));
        }
    }
    let already = || {
        precondition(
            Precondition::AlreadySetUp,
            format!(
                "YubiKey {serial} was set up already (its management key is not the factory \
                 one); to change its PIN, PUK and management key again pass --force"
            ),
        )
    };
    // Firmware 5.3+ says whether the management key is the factory one, so
    // a second setup is refused before a PIN try is spent; before 5.3 a
    // PIN-protected key that authenticates means set up.
    let meta = card.credential(Credential::ManagementKey)?;
    if meta.is_some_and(|m| !m.is_default) && !force {
        return Err(already());
    }
    card.verify_pin(bytes(&secrets.current_pin))?;
    let mgmt_is_factory = match meta {
        Some(m) => m.is_default,
        None => card.authenticate_protected_management_key().is_err(),
    };
    if !mgmt_is_factory && !force {
        return Err(already());
    }
    // Authenticate before changing anything, so a card whose management
    // key is unknown is left as it was.
    if mgmt_is_factory {
        card.authenticate_default_management_key()
            .map_err(|e| match e {
                CardError::SecurityStatus => precondition(
                    Precondition::ManagementKeyUnknown,
                    format!(
                        "YubiKey {serial}'s management key is neither the factory one nor \
                         stored PIN-protected; reset it with ykman first"
                    ),
                ),
                other => other.into(),
            })?;
    } else {
        authenticate_management(card, None)?;
    }
    card.change_puk(bytes(&secrets.current_puk), bytes(&secrets.new_puk))
        .map_err(|e| match e {
            CardError::WrongPin(n) => precondition(
                Precondition::WrongPuk,
                format!("wrong PUK ({n} tries left); nothing was changed"),
            ),
            CardError::PinBlocked => precondition(
                Precondition::PukBlocked,
                "the PUK is blocked; only a PIV reset (ykman piv reset) can recover the \
                 card, and it erases every key"
                    .into(),
            ),
            other => other.into(),
        })?;
    card.change_pin(bytes(&secrets.current_pin), bytes(&secrets.new_pin))?;
    card.verify_pin(bytes(&secrets.new_pin))?;
    card.set_random_protected_management_key()?;
    tracing::info!(
        serial,
        "YubiKey set up: PIN, PUK and management key replaced"
    );
    Ok(())
}

impl PivAdmin for YubiKeyBackend {
    fn status(&self) -> Result<PivStatus, BackendError> {
        self.with_card(|card, session| session.status(card))
            .map(|(_, s)| s)
    }

    fn setup(&self, secrets: &SetupSecrets, force: bool) -> Result<(), BackendError> {
        self.with_card(|card, session| {
            session.pending_pin = None;
            setup_card(card, secrets, force)
        })
        .map(|_| ())
    }

    fn release(&self) -> Result<(), BackendError> {
        let mut session = self.lock_session()?;
        if session.card.is_some() {
            tracing::info!(backend = %self.name, "releasing the YubiKey for other programs");
        }
        session.close();
        Ok(())
    }

    fn generate_in_slot(
        &self,
        spec: &KeySpec,
        options: &PivKeyOptions,
    ) -> Result<BackendKey, BackendError> {
        if !self.algorithms().contains(&spec.algorithm) {
            return Err(BackendError::UnsupportedAlgorithm(format!(
                "{} (a YubiKey generates ecdsa p256 or p384, or rsa 2048, here)",
                spec.algorithm
            )));
        }
        let pin = self.lock_session()?.pending_pin.take();
        self.with_card(|card, session| session.generate(card, spec, options, pin.as_ref()))
            .map(|(_, (_, key))| key)
    }

    fn attest(&self, uri: &KeyUri) -> Result<Attestation, BackendError> {
        self.with_card(|card, _| {
            let slot = self.slot_of(uri, card.serial())?;
            Ok(Attestation {
                slot_certificate_der: card.attest(slot)?,
                intermediate_der: card.attestation_intermediate()?,
            })
        })
        .map(|(_, a)| a)
    }

    fn touch_hint(&self, uri: &KeyUri) -> Result<TouchHint, BackendError> {
        self.hint(uri)
    }
}

impl CertificateStore for YubiKeyBackend {
    /// Writing a slot certificate needs the management key, so the PIN must
    /// be verified (it is right after the signature that made the cert).
    fn put_certificate(&self, uri: &KeyUri, der: &[u8]) -> Result<(), BackendError> {
        self.with_card(|card, session| {
            let slot = self.slot_of(uri, card.serial())?;
            authenticate_management(card, None)?;
            card.write_certificate(slot, der)?;
            session.slots.remove(&slot);
            Ok(())
        })
        .map(|_| ())
    }

    /// Only certificates a person or the daemon attached (a notary root
    /// certificate); record certificates only describe the key.
    fn certificate(&self, uri: &KeyUri) -> Result<Option<Vec<u8>>, BackendError> {
        self.with_card(|card, _| {
            let slot = self.slot_of(uri, card.serial())?;
            let der = card.read_certificate(slot)?;
            Ok(der.filter(|d| !matches!(classify(d), Some(SlotCertificate::Record(_)))))
        })
        .map(|(_, c)| c)
    }
}

/// A secret's bytes, borrowed rather than copied: a copy would outlive the
/// zeroized secret.
fn bytes(secret: &SecretString) -> &[u8] {
    secret.expose_secret().as_bytes()
}
