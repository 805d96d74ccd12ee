//! The daemon's index of keys: every key its devices hold, keyed by notary
//! key ID, joined with the state store's bindings and certificates.
//! Device metadata is the source of truth for which keys exist.

use crate::device::Device;
use crate::state::{KeyRecord, StateError, StateStore};
use keyd_backends::{Availability, BackendKey};
use notary_tuf::metadata::{Gun, Role};
use notary_tuf::PublicKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    /// Notary key ID of the bare public key.
    pub key_id: String,
    pub device: String,
    pub key: BackendKey,
    /// The role binding: the key signs only metadata of this role.
    pub role: Option<Role>,
    /// The GUN binding: the key signs only for this collection.
    pub gun: Option<Gun>,
    pub certificate_pem: Option<String>,
    /// ID of the `*-x509` key made from the certificate, when there is one.
    pub x509_key_id: Option<String>,
}

impl KeyEntry {
    /// True when `id` names this key (bare ID, x509 ID, or URI; a URI by
    /// its attributes, however they are percent-encoded).
    fn answers_to(&self, id: &str, uri: Option<&keyd_backends::KeyUri>) -> bool {
        self.key_id == id || self.x509_key_id.as_deref() == Some(id) || uri == Some(&self.key.uri)
    }
}

pub(crate) struct Registry {
    devices: Vec<Arc<Device>>,
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    state: Mutex<StateStore>,
}

/// A stored binding as typed values. One that does not parse (a state
/// file edited by hand) hides its key rather than leaving it unbound.
fn binding(key_id: &str, record: &KeyRecord) -> Option<(Option<Role>, Option<Gun>)> {
    Some((
        stored(key_id, &record.role, Role::parse)?,
        stored(key_id, &record.gun, Gun::parse)?,
    ))
}

/// One stored binding field: `Some(None)` when empty, `None` when it does
/// not parse.
fn stored<T, E: std::fmt::Display>(
    key_id: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<Option<T>> {
    if text.is_empty() {
        return Some(None);
    }
    match parse(text) {
        Ok(value) => Some(Some(value)),
        Err(e) => {
            tracing::error!(%key_id, error = %e, "keys.json binds the key to something that does not parse; key hidden until fixed");
            None
        }
    }
}

fn x509_id(pem: &str) -> Option<String> {
    match PublicKey::from_certificate_pem(pem) {
        Ok(k) => Some(k.key_id()),
        Err(e) => {
            tracing::warn!(error = %e, "stored certificate does not parse; ignoring it");
            None
        }
    }
}

impl Registry {
    pub(crate) fn new(devices: Vec<Arc<Device>>, state: StateStore) -> Registry {
        Registry {
            devices,
            keys: RwLock::new(HashMap::new()),
            state: Mutex::new(state),
        }
    }

    pub(crate) fn devices(&self) -> &[Arc<Device>] {
        &self.devices
    }

    pub(crate) fn device(&self, name: &str) -> Option<&Arc<Device>> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Re-reads every available device's keys. A device that is unavailable
    /// or cannot list keeps the keys it was last seen with, so a request for
    /// one gets the device's reason (a TPM gone for a moment) rather than
    /// "no such key".
    pub(crate) async fn refresh(&self) {
        let previous = self.keys.read().map(|k| k.clone()).unwrap_or_default();
        let keep_known = |device: &str, fresh: &mut HashMap<String, Arc<KeyEntry>>| {
            for (id, entry) in previous.iter().filter(|(_, e)| e.device == device) {
                fresh.insert(id.clone(), Arc::clone(entry));
            }
        };
        let mut fresh = HashMap::new();
        for device in &self.devices {
            if let Availability::Unavailable(reason) = device.backend.availability() {
                tracing::debug!(backend = %device.name, %reason, "skipping unavailable backend");
                keep_known(&device.name, &mut fresh);
                continue;
            }
            let listed = device.run(|b| {
                let keys = b.list()?;
                let mut with_certs = Vec::with_capacity(keys.len());
                for k in keys {
                    let cert = match b.certificates() {
                        Some(store) => store.certificate(&k.uri).unwrap_or(None),
                        None => None,
                    };
                    with_certs.push((k, cert));
                }
                Ok(with_certs)
            });
            let listed = match listed.await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(backend = %device.name, error = %e, "cannot list keys");
                    keep_known(&device.name, &mut fresh);
                    continue;
                }
            };
            let state = match self.state.lock() {
                Ok(s) => s,
                Err(_) => continue,
            };
            for (key, device_cert) in listed {
                let key_id = key.public.key_id();
                let record = state.get(&key_id).cloned().unwrap_or_default();
                let Some((role, gun)) = binding(&key_id, &record) else {
                    continue;
                };
                let certificate_pem = record.certificate_pem.clone().or_else(|| {
                    device_cert.map(|der| notary_tuf::pem::encode("CERTIFICATE", &der))
                });
                let x509_key_id = certificate_pem.as_deref().and_then(x509_id);
                fresh.insert(
                    key_id.clone(),
                    Arc::new(KeyEntry {
                        key_id,
                        device: device.name.clone(),
                        key,
                        role,
                        gun,
                        certificate_pem,
                        x509_key_id,
                    }),
                );
            }
        }
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<KeyEntry>> {
        self.keys
            .read()
            .map(|k| k.values().cloned().collect())
            .unwrap_or_default()
    }

    fn find_cached(&self, id: &str) -> Option<Arc<KeyEntry>> {
        let keys = self.keys.read().ok()?;
        if let Some(e) = keys.get(id) {
            return Some(Arc::clone(e));
        }
        let uri = id.parse().ok();
        keys.values()
            .find(|e| e.answers_to(id, uri.as_ref()))
            .cloned()
    }

    /// Finds a key by bare ID, x509 ID or URI; refreshes once on a miss so a
    /// token inserted since the last look is seen.
    pub(crate) async fn find(&self, id: &str) -> Option<Arc<KeyEntry>> {
        if let Some(e) = self.find_cached(id) {
            return Some(e);
        }
        self.refresh().await;
        self.find_cached(id)
    }

    pub(crate) fn count_in(&self, device: &str) -> usize {
        self.keys
            .read()
            .map(|k| k.values().filter(|e| e.device == device).count())
            .unwrap_or(0)
    }

    /// Records a newly generated key with its binding.
    pub(crate) fn add(
        &self,
        device: &str,
        key: BackendKey,
        role: Option<&Role>,
        gun: Option<&Gun>,
    ) -> Result<Arc<KeyEntry>, StateError> {
        let key_id = key.public.key_id();
        let record = KeyRecord {
            backend: device.to_string(),
            role: role.map(|r| r.name().to_string()).unwrap_or_default(),
            gun: gun.map(|g| g.as_str().to_string()).unwrap_or_default(),
            certificate_pem: None,
        };
        self.with_state(|s| s.put(&key_id, record))?;
        let entry = Arc::new(KeyEntry {
            key_id: key_id.clone(),
            device: device.to_string(),
            key,
            role: role.cloned(),
            gun: gun.cloned(),
            certificate_pem: None,
            x509_key_id: None,
        });
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key_id, Arc::clone(&entry));
        }
        Ok(entry)
    }

    /// Stores certificate PEM text for a key (already checked to match it).
    pub(crate) fn set_certificate(
        &self,
        entry: &KeyEntry,
        pem: &str,
    ) -> Result<Arc<KeyEntry>, StateError> {
        let record = KeyRecord {
            backend: entry.device.clone(),
            role: entry
                .role
                .as_ref()
                .map(|r| r.name().to_string())
                .unwrap_or_default(),
            gun: entry
                .gun
                .as_ref()
                .map(|g| g.as_str().to_string())
                .unwrap_or_default(),
            certificate_pem: Some(pem.to_string()),
        };
        self.with_state(|s| s.put(&entry.key_id, record))?;
        let updated = Arc::new(KeyEntry {
            certificate_pem: Some(pem.to_string()),
            x509_key_id: x509_id(pem),
            ..entry.clone()
        });
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(entry.key_id.clone(), Arc::clone(&updated));
        }
        Ok(updated)
    }

    pub(crate) fn remove(&self, key_id: &str) -> Result<(), StateError> {
        self.with_state(|s| s.remove(key_id))?;
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(key_id);
        }
        Ok(())
    }

    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut StateStore) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut state = self.state.lock().map_err(|_| StateError::poisoned())?;
        f(&mut state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(role: &str, gun: &str) -> KeyRecord {
        KeyRecord {
            backend: "soft".into(),
            role: role.into(),
            gun: gun.into(),
            certificate_pem: None,
        }
    }

    #[test]
    fn stored_bindings_parse_or_hide_the_key() {
        assert_eq!(binding("k", &record("", "")), Some((None, None)));
        assert_eq!(
            binding("k", &record("targets", "example.com/app")),
            Some((
                Some(Role::Targets),
                Some(Gun::parse("example.com/app").unwrap())
            ))
        );
        assert_eq!(binding("k", &record("Targets", "")), None);
        assert_eq!(binding("k", &record("", "a\nb")), None);
    }
}
