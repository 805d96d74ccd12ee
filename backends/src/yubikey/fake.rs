//! An in-memory PIV card below the backend seam, for unit tests of the
//! backend's own logic (PIN steps, touch, re-opening, setup rules). The
//! end-to-end tests use the virtual card over pcscd instead.

use super::card::{CardError, Connector, Credential, CredentialMeta, PinState, PivCard, SlotMeta};
use crate::piv::{PinPolicy, Slot, TouchPolicy};
use crate::Algorithm;
use notary_tuf::PublicKey;
use p256::pkcs8::EncodePublicKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) const DEFAULT_PIN: &str = "123456";
pub(crate) const DEFAULT_PUK: &str = "12345678";

pub(crate) enum FakeKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

pub(crate) struct FakeSlot {
    pub key: FakeKey,
    pub pin: PinPolicy,
    pub touch: TouchPolicy,
}

pub(crate) struct CardState {
    pub serial: u32,
    pub present: bool,
    /// Bumped on every insertion; a handle from before is stale.
    pub insertion: u32,
    pub pin: String,
    pub puk: String,
    pub pin_tries: u8,
    pub puk_tries: u8,
    pub mgmt_default: bool,
    pub mgmt_protected: bool,
    pub pin_verified: bool,
    /// True only while the previous command was a successful VERIFY.
    pub just_verified: bool,
    pub mgmt_authenticated: bool,
    pub touch_given: bool,
    pub slots: HashMap<Slot, FakeSlot>,
    pub certs: HashMap<Slot, Vec<u8>>,
    /// Every command, for asserting order (e.g. VERIFY right before SIGN).
    pub log: Vec<&'static str>,
}

impl CardState {
    pub(super) fn new(serial: u32) -> CardState {
        CardState {
            serial,
            present: true,
            insertion: 0,
            pin: DEFAULT_PIN.into(),
            puk: DEFAULT_PUK.into(),
            pin_tries: 3,
            puk_tries: 3,
            mgmt_default: true,
            mgmt_protected: false,
            pin_verified: false,
            just_verified: false,
            mgmt_authenticated: false,
            touch_given: true,
            slots: HashMap::new(),
            certs: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// Pull the card out and put it back: all session state is gone.
    pub(super) fn reinsert(&mut self) {
        self.insertion += 1;
        self.pin_verified = false;
        self.mgmt_authenticated = false;
        self.just_verified = false;
    }
}

pub(crate) type Shared = Arc<Mutex<CardState>>;

pub(crate) struct FakeCard {
    state: Shared,
    insertion: u32,
}

impl FakeCard {
    fn with<T>(
        &mut self,
        command: &'static str,
        f: impl FnOnce(&mut CardState) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| CardError::Other("poisoned".into()))?;
        if !s.present || s.insertion != self.insertion {
            return Err(CardError::Absent("card removed".into()));
        }
        s.log.push(command);
        s.just_verified = false;
        let result = f(&mut s);
        if command == "VERIFY" && result.is_ok() {
            s.just_verified = true;
        }
        result
    }

    fn check_pin(s: &mut CardState, pin: &[u8]) -> Result<(), CardError> {
        if s.pin_tries == 0 {
            return Err(CardError::PinBlocked);
        }
        if pin == s.pin.as_bytes() {
            s.pin_tries = 3;
            s.pin_verified = true;
            Ok(())
        } else {
            s.pin_tries -= 1;
            s.pin_verified = false;
            if s.pin_tries == 0 {
                Err(CardError::PinBlocked)
            } else {
                Err(CardError::WrongPin(s.pin_tries))
            }
        }
    }
}

fn public_of(key: &FakeKey) -> PublicKey {
    let der = match key {
        FakeKey::P256(k) => k.verifying_key().to_public_key_der(),
        FakeKey::P384(k) => k.verifying_key().to_public_key_der(),
    };
    PublicKey::from_spki_der(der.expect("encodes").as_bytes()).expect("valid key")
}

impl PivCard for FakeCard {
    fn serial(&self) -> u32 {
        self.state.lock().map(|s| s.serial).unwrap_or(0)
    }

    fn firmware(&self) -> String {
        "5.7.1".into()
    }

    fn verify_pin(&mut self, pin: &[u8]) -> Result<(), CardError> {
        self.with("VERIFY", |s| Self::check_pin(s, pin))
    }

    fn pin_state(&mut self) -> Result<PinState, CardError> {
        self.with("VERIFY-STATUS", |s| {
            Ok(PinState {
                verified: s.pin_verified,
                tries_left: (!s.pin_verified).then_some(s.pin_tries),
            })
        })
    }

    fn forget_pin(&mut self) -> Result<(), CardError> {
        self.with("SELECT", |s| {
            s.pin_verified = false;
            s.mgmt_authenticated = false;
            Ok(())
        })
    }

    fn change_pin(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError> {
        self.with("CHANGE-PIN", |s| {
            Self::check_pin(s, current)?;
            s.pin = String::from_utf8_lossy(new).into_owned();
            Ok(())
        })
    }

    fn change_puk(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError> {
        self.with("CHANGE-PUK", |s| {
            if s.puk_tries == 0 {
                return Err(CardError::PinBlocked);
            }
            if current != s.puk.as_bytes() {
                s.puk_tries -= 1;
                return Err(CardError::WrongPin(s.puk_tries));
            }
            s.puk = String::from_utf8_lossy(new).into_owned();
            Ok(())
        })
    }

    fn credential(&mut self, which: Credential) -> Result<Option<CredentialMeta>, CardError> {
        self.with("METADATA", |s| {
            Ok(Some(match which {
                Credential::Pin => CredentialMeta {
                    is_default: s.pin == DEFAULT_PIN,
                    tries_left: Some(s.pin_tries),
                },
                Credential::Puk => CredentialMeta {
                    is_default: s.puk == DEFAULT_PUK,
                    tries_left: Some(s.puk_tries),
                },
                Credential::ManagementKey => CredentialMeta {
                    is_default: s.mgmt_default,
                    tries_left: None,
                },
            }))
        })
    }

    fn slot_meta(&mut self, slot: Slot) -> Result<Option<SlotMeta>, CardError> {
        self.with("METADATA", |s| {
            Ok(s.slots.get(&slot).map(|k| SlotMeta {
                algorithm: Some(match k.key {
                    FakeKey::P256(_) => Algorithm::EcdsaP256,
                    FakeKey::P384(_) => Algorithm::EcdsaP384,
                }),
                pin_policy: Some(k.pin),
                touch_policy: Some(k.touch),
                generated: Some(true),
                public: Some(public_of(&k.key)),
            }))
        })
    }

    fn authenticate_default_management_key(&mut self) -> Result<(), CardError> {
        self.with("AUTH-MGMT", |s| {
            if !s.mgmt_default {
                return Err(CardError::SecurityStatus);
            }
            s.mgmt_authenticated = true;
            Ok(())
        })
    }

    fn authenticate_protected_management_key(&mut self) -> Result<(), CardError> {
        self.with("AUTH-MGMT", |s| {
            if !s.pin_verified || !s.mgmt_protected {
                return Err(CardError::SecurityStatus);
            }
            s.mgmt_authenticated = true;
            Ok(())
        })
    }

    fn set_random_protected_management_key(&mut self) -> Result<(), CardError> {
        self.with("SET-MGMT", |s| {
            if !s.mgmt_authenticated || !s.pin_verified {
                return Err(CardError::SecurityStatus);
            }
            s.mgmt_default = false;
            s.mgmt_protected = true;
            Ok(())
        })
    }

    fn generate(
        &mut self,
        slot: Slot,
        algorithm: Algorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<PublicKey, CardError> {
        self.with("GENERATE", |s| {
            if !s.mgmt_authenticated {
                return Err(CardError::SecurityStatus);
            }
            let key = match algorithm {
                Algorithm::EcdsaP256 => {
                    FakeKey::P256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
                }
                Algorithm::EcdsaP384 => {
                    FakeKey::P384(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng))
                }
                _ => return Err(CardError::NotSupported),
            };
            let public = public_of(&key);
            s.slots.insert(slot, FakeSlot { key, pin, touch });
            s.certs.remove(&slot);
            Ok(public)
        })
    }

    fn sign(&mut self, slot: Slot, _: Algorithm, input: &[u8]) -> Result<Vec<u8>, CardError> {
        let previous_was_verify = self.state.lock().map(|s| s.just_verified).unwrap_or(false);
        self.with("SIGN", |s| {
            let touch_given = s.touch_given;
            let verified = s.pin_verified;
            let k = s
                .slots
                .get(&slot)
                .ok_or(CardError::Other("empty slot".into()))?;
            let pin_ok = match k.pin {
                PinPolicy::Never => true,
                PinPolicy::Once => verified,
                PinPolicy::Always => previous_was_verify,
            };
            if !pin_ok || (k.touch != TouchPolicy::Never && !touch_given) {
                return Err(CardError::SecurityStatus);
            }
            use p256::ecdsa::signature::hazmat::PrehashSigner;
            let der = match &k.key {
                FakeKey::P256(key) => {
                    let sig: p256::ecdsa::Signature = key
                        .sign_prehash(input)
                        .map_err(|e| CardError::Other(e.to_string()))?;
                    sig.to_der().as_bytes().to_vec()
                }
                FakeKey::P384(key) => {
                    let sig: p384::ecdsa::Signature = key
                        .sign_prehash(input)
                        .map_err(|e| CardError::Other(e.to_string()))?;
                    sig.to_der().as_bytes().to_vec()
                }
            };
            Ok(der)
        })
    }

    fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>, CardError> {
        self.with("GET-DATA", |s| Ok(s.certs.get(&slot).cloned()))
    }

    fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<(), CardError> {
        self.with("PUT-DATA", |s| {
            if !s.mgmt_authenticated {
                return Err(CardError::SecurityStatus);
            }
            s.certs.insert(slot, der.to_vec());
            Ok(())
        })
    }

    fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, CardError> {
        self.with("ATTEST", |s| {
            if s.slots.contains_key(&slot) {
                Ok(vec![0x30, 0x01, slot.id()])
            } else {
                Err(CardError::Other("empty slot".into()))
            }
        })
    }

    fn attestation_intermediate(&mut self) -> Result<Vec<u8>, CardError> {
        self.with("GET-DATA", |_| Ok(vec![0x30, 0x00]))
    }
}

/// Cards plugged into a fake PC/SC service.
#[derive(Clone, Default)]
pub(crate) struct FakeConnector {
    pub cards: Arc<Mutex<Vec<Shared>>>,
}

impl FakeConnector {
    pub(super) fn plug(&self, serial: u32) -> Shared {
        let card = Arc::new(Mutex::new(CardState::new(serial)));
        self.cards.lock().expect("lock").push(Arc::clone(&card));
        card
    }
}

impl Connector for FakeConnector {
    fn serials(&self) -> Result<Vec<u32>, CardError> {
        let cards = self
            .cards
            .lock()
            .map_err(|_| CardError::Other("poisoned".into()))?;
        let mut serials: Vec<u32> = cards
            .iter()
            .filter_map(|c| c.lock().ok().filter(|s| s.present).map(|s| s.serial))
            .collect();
        serials.sort_unstable();
        Ok(serials)
    }

    fn open(&self, serial: u32) -> Result<Box<dyn PivCard>, CardError> {
        let cards = self
            .cards
            .lock()
            .map_err(|_| CardError::Other("poisoned".into()))?;
        for card in cards.iter() {
            let s = card
                .lock()
                .map_err(|_| CardError::Other("poisoned".into()))?;
            if s.present && s.serial == serial {
                return Ok(Box::new(FakeCard {
                    state: Arc::clone(card),
                    insertion: s.insertion,
                }));
            }
        }
        Err(CardError::Absent(format!("no card {serial}")))
    }
}
