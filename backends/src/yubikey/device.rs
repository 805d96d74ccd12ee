//! `PivCard` over PC/SC with the `yubikey` crate.

use super::card::{CardError, Connector, Credential, CredentialMeta, PinState, PivCard, SlotMeta};
use crate::piv::{PinPolicy, Slot, TouchPolicy};
use crate::Algorithm;
use der_yubikey::Encode;
use notary_tuf::PublicKey;
use yubikey::certificate::CertInfo;
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, Origin, SlotAlgorithmId, SlotId};
use yubikey::{Certificate, MgmAlgorithmId, MgmKey, YubiKey};

/// The PIN-protected data object, where the management key is kept.
const PROTECTED_DATA: u32 = 0x005f_c109;
/// Its outer tag, and the tag of the management key inside it.
const TAG_PROTECTED: u8 = 0x88;
const TAG_PROTECTED_MGM: u8 = 0x89;

impl From<yubikey::Error> for CardError {
    fn from(e: yubikey::Error) -> CardError {
        match e {
            yubikey::Error::PcscError { .. } | yubikey::Error::NotFound => {
                CardError::Absent(e.to_string())
            }
            yubikey::Error::WrongPin { tries: 0 } | yubikey::Error::PinLocked => {
                CardError::PinBlocked
            }
            yubikey::Error::WrongPin { tries } => CardError::WrongPin(tries),
            yubikey::Error::AuthenticationError => CardError::SecurityStatus,
            yubikey::Error::NotSupported => CardError::NotSupported,
            other => CardError::Other(other.to_string()),
        }
    }
}

/// Writes `key` as the PIN-protected data object's management key (the
/// object holds nothing else when notary-keyd sets a card up).
fn store_protected_management_key(yk: &mut YubiKey, key: &[u8]) -> Result<(), CardError> {
    let len = u8::try_from(key.len()).map_err(|_| CardError::NotSupported)?;
    let mut object = zeroize::Zeroizing::new(Vec::with_capacity(key.len() + 4));
    object.extend_from_slice(&[TAG_PROTECTED, len + 2, TAG_PROTECTED_MGM, len]);
    object.extend_from_slice(key);
    Ok(yk.save_object(PROTECTED_DATA, &mut object)?)
}

fn slot_id(slot: Slot) -> Result<SlotId, CardError> {
    SlotId::try_from(slot.id()).map_err(CardError::from)
}

fn algorithm_id(algorithm: Algorithm) -> Result<AlgorithmId, CardError> {
    match algorithm {
        Algorithm::EcdsaP256 => Ok(AlgorithmId::EccP256),
        Algorithm::EcdsaP384 => Ok(AlgorithmId::EccP384),
        Algorithm::Rsa2048 => Ok(AlgorithmId::Rsa2048),
        _ => Err(CardError::NotSupported),
    }
}

fn algorithm_of(id: AlgorithmId) -> Option<Algorithm> {
    match id {
        AlgorithmId::EccP256 => Some(Algorithm::EcdsaP256),
        AlgorithmId::EccP384 => Some(Algorithm::EcdsaP384),
        AlgorithmId::Rsa2048 => Some(Algorithm::Rsa2048),
        AlgorithmId::Rsa3072 => Some(Algorithm::Rsa3072),
        AlgorithmId::Rsa4096 => Some(Algorithm::Rsa4096),
        _ => None,
    }
}

fn pin_policy(p: PinPolicy) -> yubikey::PinPolicy {
    match p {
        PinPolicy::Never => yubikey::PinPolicy::Never,
        PinPolicy::Once => yubikey::PinPolicy::Once,
        PinPolicy::Always => yubikey::PinPolicy::Always,
    }
}

fn touch_policy(t: TouchPolicy) -> yubikey::TouchPolicy {
    match t {
        TouchPolicy::Never => yubikey::TouchPolicy::Never,
        TouchPolicy::Always => yubikey::TouchPolicy::Always,
        TouchPolicy::Cached => yubikey::TouchPolicy::Cached,
    }
}

fn pin_policy_of(p: yubikey::PinPolicy) -> Option<PinPolicy> {
    match p {
        yubikey::PinPolicy::Never => Some(PinPolicy::Never),
        yubikey::PinPolicy::Once => Some(PinPolicy::Once),
        yubikey::PinPolicy::Always => Some(PinPolicy::Always),
        yubikey::PinPolicy::Default => None,
    }
}

fn touch_policy_of(t: yubikey::TouchPolicy) -> Option<TouchPolicy> {
    match t {
        yubikey::TouchPolicy::Never => Some(TouchPolicy::Never),
        yubikey::TouchPolicy::Always => Some(TouchPolicy::Always),
        yubikey::TouchPolicy::Cached => Some(TouchPolicy::Cached),
        _ => None,
    }
}

fn public_key(spki: &impl Encode) -> Result<PublicKey, CardError> {
    let der = spki
        .to_der()
        .map_err(|e| CardError::Other(format!("public key encoding: {e}")))?;
    PublicKey::from_spki_der(&der).map_err(|e| CardError::Other(format!("public key: {e}")))
}

/// One open YubiKey.
pub(crate) struct YubiKeyCard(YubiKey);

impl PivCard for YubiKeyCard {
    fn serial(&self) -> u32 {
        self.0.serial().0
    }

    fn firmware(&self) -> String {
        self.0.version().to_string()
    }

    fn verify_pin(&mut self, pin: &[u8]) -> Result<(), CardError> {
        Ok(self.0.verify_pin(pin)?)
    }

    fn pin_state(&mut self) -> Result<PinState, CardError> {
        // An empty VERIFY reports without using a try.
        match self.0.verify_pin(&[]) {
            Ok(()) => Ok(PinState {
                verified: true,
                tries_left: None,
            }),
            Err(yubikey::Error::WrongPin { tries }) => Ok(PinState {
                verified: false,
                tries_left: Some(tries),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn forget_pin(&mut self) -> Result<(), CardError> {
        // get_pin_retries re-selects the applet, which drops the PIN state.
        self.0.get_pin_retries().map(|_| ()).map_err(Into::into)
    }

    fn change_pin(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError> {
        Ok(self.0.change_pin(current, new)?)
    }

    fn change_puk(&mut self, current: &[u8], new: &[u8]) -> Result<(), CardError> {
        Ok(self.0.change_puk(current, new)?)
    }

    fn credential(&mut self, which: Credential) -> Result<Option<CredentialMeta>, CardError> {
        let slot = match which {
            Credential::Pin => ManagementSlotId::Pin,
            Credential::Puk => ManagementSlotId::Puk,
            Credential::ManagementKey => ManagementSlotId::Management,
        };
        match piv::metadata(&mut self.0, SlotId::Management(slot)) {
            Ok(m) => Ok(Some(CredentialMeta {
                is_default: m.default.unwrap_or(false),
                tries_left: m.retries.map(|r| r.remaining_count),
            })),
            Err(yubikey::Error::NotSupported) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn slot_meta(&mut self, slot: Slot) -> Result<Option<SlotMeta>, CardError> {
        let m = match piv::metadata(&mut self.0, slot_id(slot)?) {
            Ok(m) => m,
            Err(yubikey::Error::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let algorithm = match m.algorithm {
            SlotAlgorithmId::Asymmetric(a) => algorithm_of(a),
            _ => None,
        };
        let (pin, touch) = match m.policy {
            Some((p, t)) => (pin_policy_of(p), touch_policy_of(t)),
            None => (None, None),
        };
        let public = match &m.public {
            Some(spki) => Some(public_key(spki)?),
            None => None,
        };
        Ok(Some(SlotMeta {
            algorithm,
            pin_policy: pin,
            touch_policy: touch,
            generated: m.origin.map(|o| o == Origin::Generated),
            public,
        }))
    }

    fn authenticate_default_management_key(&mut self) -> Result<(), CardError> {
        let key = MgmKey::get_default(&self.0)?;
        Ok(self.0.authenticate(&key)?)
    }

    fn authenticate_protected_management_key(&mut self) -> Result<(), CardError> {
        let key = MgmKey::get_protected(&mut self.0).map_err(|e| match e {
            // No protected data object, or none holding a management key:
            // the card is there, its management key is just not stored.
            yubikey::Error::NotFound | yubikey::Error::GenericError => CardError::SecurityStatus,
            other => other.into(),
        })?;
        Ok(self.0.authenticate(&key)?)
    }

    fn set_random_protected_management_key(&mut self) -> Result<(), CardError> {
        // The firmware's own default algorithm: AES-192 from 5.7, else 3DES;
        // both take 24 key bytes.
        let version = self.0.version();
        let alg = if (version.major, version.minor) >= (5, 7) {
            MgmAlgorithmId::Aes192
        } else {
            MgmAlgorithmId::ThreeDes
        };
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; 24]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let key = MgmKey::from_bytes(&*bytes, Some(alg))?;
        // `set_protected` sets the key, then stores it: a crash in between
        // leaves the card managed by a key nobody holds, and only a PIV
        // reset (which erases every key) recovers it. Stored first, a crash
        // leaves the old key in force and the new one merely unused.
        store_protected_management_key(&mut self.0, &bytes)?;
        Ok(key.set_protected(&mut self.0)?)
    }

    fn generate(
        &mut self,
        slot: Slot,
        algorithm: Algorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<PublicKey, CardError> {
        let spki = piv::generate(
            &mut self.0,
            slot_id(slot)?,
            algorithm_id(algorithm)?,
            pin_policy(pin),
            touch_policy(touch),
        )?;
        public_key(&spki)
    }

    fn sign(
        &mut self,
        slot: Slot,
        algorithm: Algorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let out = piv::sign_data(&mut self.0, input, algorithm_id(algorithm)?, slot_id(slot)?)?;
        Ok(out.to_vec())
    }

    fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>, CardError> {
        match Certificate::read(&mut self.0, slot_id(slot)?) {
            Ok(cert) => Ok(Some(certificate_der(&cert)?)),
            // An empty slot reads as an invalid (empty) object.
            Err(yubikey::Error::InvalidObject | yubikey::Error::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<(), CardError> {
        let cert = Certificate::from_bytes(der.to_vec())?;
        Ok(cert.write(&mut self.0, slot_id(slot)?, CertInfo::Uncompressed)?)
    }

    fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, CardError> {
        Ok(piv::attest(&mut self.0, slot_id(slot)?)?.to_vec())
    }

    fn attestation_intermediate(&mut self) -> Result<Vec<u8>, CardError> {
        match Certificate::read(&mut self.0, SlotId::Attestation) {
            Ok(cert) => certificate_der(&cert),
            Err(e) => Err(e.into()),
        }
    }
}

fn certificate_der(cert: &Certificate) -> Result<Vec<u8>, CardError> {
    cert.cert
        .to_der()
        .map_err(|e| CardError::Other(format!("certificate encoding: {e}")))
}

/// Opens cards through the system's PC/SC service (pcscd).
pub(crate) struct PcscConnector;

impl Connector for PcscConnector {
    fn serials(&self) -> Result<Vec<u32>, CardError> {
        let mut context = yubikey::reader::Context::open()?;
        let mut serials = Vec::new();
        for reader in context.iter()? {
            // Readers without a PIV card are not an error here.
            if let Ok(yk) = reader.open() {
                serials.push(yk.serial().0);
                // Leave the card as it is: it may be another program's.
                let _ = yk.disconnect(pcsc::Disposition::LeaveCard);
            }
        }
        serials.sort_unstable();
        Ok(serials)
    }

    fn open(&self, serial: u32) -> Result<Box<dyn PivCard>, CardError> {
        let yk = YubiKey::open_by_serial(yubikey::Serial(serial))?;
        Ok(Box::new(YubiKeyCard(yk)))
    }
}
