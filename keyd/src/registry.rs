//! The daemon's index of keys: every key its devices hold, keyed by notary
//! key ID, joined with the state store's bindings and certificates.
//! Device metadata is the source of truth for which keys exist.

use crate::device::{Device, DeviceError};
use crate::policy::KeyFacts;
use crate::state::{KeyRecord, PendingKey, StateError, StateStore};
use keyd_backends::{Availability, BackendKey};
use notary_tuf::metadata::{Gun, Role};
use notary_tuf::rootcert::root_cert_common_name;
use notary_tuf::PublicKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
    /// The GUN the certificate's CN names (notary's root certificates are
    /// CN=GUN); `None` for a wildcard CN or a CN that is no GUN.
    pub certificate_gun: Option<Gun>,
}

impl KeyEntry {
    /// What the key is, for policy: never what a request says it is for.
    /// A key without a GUN binding (a root key, which notary shares across
    /// collections) belongs to a GUN only through its certificate.
    pub(crate) fn facts(&self) -> KeyFacts<'_> {
        KeyFacts {
            key_id: Some(&self.key_id),
            x509_key_id: self.x509_key_id.as_deref(),
            backend: &self.device,
            role: self.role.as_ref(),
            gun: self.gun.as_ref().or(self.certificate_gun.as_ref()),
        }
    }

    /// The entry for `key` on `device`, with its binding and, when it has
    /// one, its certificate (whose facts are read here, once).
    fn new(
        key_id: String,
        device: String,
        key: BackendKey,
        (role, gun): (Option<Role>, Option<Gun>),
        certificate_pem: Option<String>,
    ) -> KeyEntry {
        let (x509_key_id, certificate_gun) = certificate_pem
            .as_deref()
            .map(certificate_facts)
            .unwrap_or_default();
        KeyEntry {
            key_id,
            device,
            key,
            role,
            gun,
            certificate_pem,
            x509_key_id,
            certificate_gun,
        }
    }

    /// A copy with `pem` as its certificate.
    fn with_certificate(&self, pem: Option<String>) -> KeyEntry {
        let binding = (self.role.clone(), self.gun.clone());
        KeyEntry::new(
            self.key_id.clone(),
            self.device.clone(),
            self.key.clone(),
            binding,
            pem,
        )
    }

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
    /// Shared by every change that spans a device and the index (see
    /// `IndexChange`), exclusive for a rescan: a rescan never sees a key a
    /// device already holds but whose binding is not stored yet (it would
    /// index it unbound), nor replaces an entry changed while it listed.
    changes: tokio::sync::RwLock<()>,
    /// When the last rescan started. Held across a rescan, so rescans are
    /// single-flight: who waits for one may use its result.
    rescanned: tokio::sync::Mutex<Option<Instant>>,
    /// Rescans for unknown key IDs are at least this far apart.
    rescan_interval: Duration,
}

/// Proof that a change of a key on a device and in the index (generate
/// and `add`, delete and `remove`, a certificate) runs outside any rescan.
/// Take it with `Registry::change` before the device step, and do not look
/// keys up (`find` may rescan) while holding it.
pub(crate) struct IndexChange<'a> {
    _shared: tokio::sync::RwLockReadGuard<'a, ()>,
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

/// A certificate's x509 key ID and the GUN its CN names.
pub(crate) fn certificate_facts(pem: &str) -> (Option<String>, Option<Gun>) {
    match PublicKey::from_certificate_pem(pem) {
        Ok(k) => {
            let gun = root_cert_common_name(pem)
                .ok()
                .and_then(|cn| Gun::parse(&cn).ok());
            (Some(k.key_id()), gun)
        }
        Err(e) => {
            tracing::warn!(error = %e, "stored certificate does not parse; ignoring it");
            (None, None)
        }
    }
}

impl Registry {
    /// `rescan_interval`: the least time between two rescans that a miss
    /// asks for (`[server.limits] key_rescan_interval_seconds`).
    pub(crate) fn new(
        devices: Vec<Arc<Device>>,
        state: StateStore,
        rescan_interval: Duration,
    ) -> Registry {
        Registry {
            devices,
            keys: RwLock::new(HashMap::new()),
            state: Mutex::new(state),
            changes: tokio::sync::RwLock::new(()),
            rescanned: tokio::sync::Mutex::new(None),
            rescan_interval,
        }
    }

    /// Waits for a running rescan to finish; see `IndexChange`.
    pub(crate) async fn change(&self) -> IndexChange<'_> {
        IndexChange {
            _shared: self.changes.read().await,
        }
    }

    pub(crate) fn devices(&self) -> &[Arc<Device>] {
        &self.devices
    }

    pub(crate) fn device(&self, name: &str) -> Option<&Arc<Device>> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Makes the index at least as new as this call (at start, for a
    /// listing, after an unlock): rescans, unless a rescan that started
    /// after this call came has run meanwhile. Callers that queue behind
    /// a rescan share the next one.
    pub(crate) async fn refresh(&self, why: &str) {
        let asked = Instant::now();
        let mut rescanned = self.rescanned.lock().await;
        if rescanned.is_some_and(|started| started >= asked) {
            return;
        }
        *rescanned = Some(Instant::now());
        self.rescan(why).await;
    }

    /// Rescans unless a rescan started within the interval: a flood of
    /// unknown key IDs costs the devices at most one listing per interval,
    /// and callers that arrive during a rescan share it.
    async fn refresh_if_stale(&self, why: &str) {
        let mut rescanned = self.rescanned.lock().await;
        if rescanned.is_some_and(|t| t.elapsed() < self.rescan_interval) {
            return;
        }
        *rescanned = Some(Instant::now());
        self.rescan(why).await;
    }

    /// Re-reads every available device's keys. A device that is unavailable
    /// or cannot list keeps the keys it was last seen with, so a request for
    /// one gets the device's reason (a TPM gone for a moment) rather than
    /// "no such key".
    async fn rescan(&self, why: &str) {
        let _no_changes = self.changes.write().await;
        tracing::debug!(reason = why, "rescanning devices for keys");
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
            let mut state = match self.state.lock() {
                Ok(s) => s,
                Err(_) => continue,
            };
            let labels: Vec<(String, String)> = listed
                .iter()
                .map(|(k, _)| (k.public.key_id(), k.label.clone()))
                .collect();
            match state.recover(&device.name, &labels) {
                Ok(bound) => {
                    for (key_id, r) in bound {
                        tracing::warn!(backend = %device.name, %key_id, role = %r.role, gun = %r.gun, "a key generated when the daemon stopped before binding it is bound as its request asked");
                    }
                }
                Err(e) => {
                    tracing::error!(backend = %device.name, error = %e, "cannot recover generations a crash interrupted")
                }
            }
            for (key, device_cert) in listed {
                let key_id = key.public.key_id();
                let record = state.get(&key_id).cloned().unwrap_or_default();
                let Some((role, gun)) = binding(&key_id, &record) else {
                    continue;
                };
                let certificate_pem = record.certificate_pem.clone().or_else(|| {
                    device_cert.map(|der| notary_tuf::pem::encode("CERTIFICATE", &der))
                });
                let entry = KeyEntry::new(
                    key_id.clone(),
                    device.name.clone(),
                    key,
                    (role, gun),
                    certificate_pem,
                );
                fresh.insert(key_id, Arc::new(entry));
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

    /// Finds a key by bare ID, x509 ID or URI; on a miss rescans (at most
    /// once per interval) so a token inserted since the last look is seen.
    pub(crate) async fn find(&self, id: &str) -> Option<Arc<KeyEntry>> {
        if let Some(e) = self.find_cached(id) {
            return Some(e);
        }
        self.refresh_if_stale("key not in the index").await;
        self.find_cached(id)
    }

    /// `find` for a caller: only one a rule grants the operation it asks
    /// for may make a miss rescan the devices; for anyone else a miss is
    /// final, so a caller without rights costs the devices nothing.
    pub(crate) async fn find_for(&self, id: &str, may_rescan: bool) -> Option<Arc<KeyEntry>> {
        if may_rescan {
            self.find(id).await
        } else {
            self.find_cached(id)
        }
    }

    /// The refusal for a key the index does not hold. When the state
    /// store remembers it on a backend that is unavailable now, or that
    /// this process has not opened (removed from the config, or it failed
    /// to open at start), the refusal names that backend and why, rather
    /// than saying there is no such key.
    pub(crate) fn missing(&self, id: &str) -> tonic::Status {
        let remembered = self
            .with_state(|state| Ok(state.get(id).map(|r| r.backend.clone())))
            .ok()
            .flatten();
        let Some(backend) = remembered else {
            return crate::status::key_not_found(id);
        };
        let why = match self.device(&backend).map(|d| d.backend.availability()) {
            Some(Availability::Unavailable(reason)) => format!("which is unavailable: {reason}"),
            Some(Availability::Available) => return crate::status::key_not_found(id),
            None => "which this notary-keyd has not opened: it is not in the configuration, \
                     or it failed to open at start (see the daemon's log)"
                .to_string(),
        };
        keyd_proto::Failure::new(keyd_proto::Reason::BackendUnavailable)
            .on_backend(&backend)
            .into_status(format!("key {id} is on backend {backend}, {why}"))
    }

    pub(crate) fn count_in(&self, device: &str) -> usize {
        self.keys
            .read()
            .map(|k| k.values().filter(|e| e.device == device).count())
            .unwrap_or(0)
    }

    /// Records that a key is about to be generated on `device` with this
    /// label and binding, before the device is asked (see `state`). The
    /// generation ends with [`Generation::add`] or, when dropped without,
    /// as having made nothing. The caller holds `_change` until then, so no
    /// rescan indexes the new key unbound.
    pub(crate) fn begin_generate(
        &self,
        _change: &IndexChange<'_>,
        device: &str,
        label: &str,
        role: Option<&Role>,
        gun: Option<&Gun>,
    ) -> Result<Generation<'_>, StateError> {
        let known = self.all();
        let id = self.with_state(|state| {
            let unrecorded = known
                .iter()
                .filter(|e| e.device == device && state.get(&e.key_id).is_none())
                .map(|e| e.key_id.clone())
                .collect();
            state.begin(PendingKey {
                backend: device.to_string(),
                label: label.to_string(),
                role: role.map(|r| r.name().to_string()).unwrap_or_default(),
                gun: gun.map(|g| g.as_str().to_string()).unwrap_or_default(),
                unrecorded,
            })
        })?;
        Ok(Generation {
            registry: self,
            id: Some(id),
            device: device.to_string(),
            role: role.cloned(),
            gun: gun.cloned(),
        })
    }

    /// Stores certificate PEM text for a key (already checked to match it).
    pub(crate) fn set_certificate(
        &self,
        _change: &IndexChange<'_>,
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
        let updated = Arc::new(entry.with_certificate(Some(pem.to_string())));
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(entry.key_id.clone(), Arc::clone(&updated));
        }
        Ok(updated)
    }

    /// Deletes `entry`'s key from `device`, then its binding, within one
    /// index change. The key is gone once the device says so; a binding
    /// left behind is logged rather than returned, as a later refresh
    /// drops a binding without a key anyway.
    pub(crate) async fn delete(
        &self,
        device: &Device,
        entry: &KeyEntry,
    ) -> Result<(), DeviceError> {
        let uri = entry.key.uri.clone();
        let change = self.change().await;
        device.run(move |b| b.delete(&uri)).await?;
        if let Err(e) = self.remove(&change, &entry.key_id) {
            tracing::warn!(error = %e, key_id = %entry.key_id, "key deleted but its binding could not be removed");
        }
        Ok(())
    }

    fn remove(&self, _change: &IndexChange<'_>, key_id: &str) -> Result<(), StateError> {
        self.with_state(|s| s.remove(key_id))?;
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(key_id);
        }
        Ok(())
    }

    fn finish_generate(
        &self,
        id: &str,
        key: BackendKey,
        device: String,
        role: Option<Role>,
        gun: Option<Gun>,
    ) -> Result<Arc<KeyEntry>, StateError> {
        self.index_new(key, device, role, gun, |state, key_id, record| {
            state.finish(id, Some((key_id, record)))
        })
    }

    /// Records a key that came into `device` other than by generation (a
    /// stock notary key imported for a migration) with its binding. The
    /// caller holds `_change` from before the device step until now.
    pub(crate) fn add_imported(
        &self,
        _change: &IndexChange<'_>,
        device: &str,
        key: BackendKey,
        role: Option<&Role>,
        gun: Option<&Gun>,
    ) -> Result<Arc<KeyEntry>, StateError> {
        self.index_new(
            key,
            device.to_string(),
            role.cloned(),
            gun.cloned(),
            |state, key_id, record| state.put(key_id, record),
        )
    }

    /// Stores a new key's binding through `store`, then indexes the key.
    fn index_new(
        &self,
        key: BackendKey,
        device: String,
        role: Option<Role>,
        gun: Option<Gun>,
        store: impl FnOnce(&mut StateStore, &str, KeyRecord) -> Result<(), StateError>,
    ) -> Result<Arc<KeyEntry>, StateError> {
        let key_id = key.public.key_id();
        let record = KeyRecord {
            backend: device.clone(),
            role: role
                .as_ref()
                .map(|r| r.name().to_string())
                .unwrap_or_default(),
            gun: gun
                .as_ref()
                .map(|g| g.as_str().to_string())
                .unwrap_or_default(),
            certificate_pem: None,
        };
        self.with_state(|s| store(s, &key_id, record))?;
        let entry = Arc::new(KeyEntry::new(
            key_id.clone(),
            device,
            key,
            (role, gun),
            None,
        ));
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key_id, Arc::clone(&entry));
        }
        Ok(entry)
    }

    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut StateStore) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut state = self.state.lock().map_err(|_| StateError::poisoned())?;
        f(&mut state)
    }
}

/// A key generation under way (see [`Registry::begin_generate`]).
pub(crate) struct Generation<'a> {
    registry: &'a Registry,
    /// `None` once finished.
    id: Option<String>,
    device: String,
    role: Option<Role>,
    gun: Option<Gun>,
}

impl Generation<'_> {
    /// The device made `key`: records it with the binding asked for.
    pub(crate) fn add(mut self, key: BackendKey) -> Result<Arc<KeyEntry>, StateError> {
        let id = self.id.take().unwrap_or_default();
        let (device, role, gun) = (
            std::mem::take(&mut self.device),
            self.role.take(),
            self.gun.take(),
        );
        self.registry.finish_generate(&id, key, device, role, gun)
    }
}

impl Drop for Generation<'_> {
    /// The generation failed or was given up: no key to bind.
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if let Err(e) = self.registry.with_state(|s| s.finish(&id, None)) {
                tracing::warn!(error = %e, "cannot clear a failed key generation from the state store; it is cleared at the next start");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::PinCache;
    use keyd_backends::soft::{SoftBackend, SoftConfig};
    use keyd_backends::{Algorithm, KeySpec};

    fn soft_registry(dir: &std::path::Path) -> Registry {
        let backend = SoftBackend::open(SoftConfig {
            dir: dir.join("soft"),
            passphrase: None,
        })
        .unwrap();
        let device = Device::new("soft".into(), Arc::new(backend), PinCache::default());
        let state = StateStore::open(dir).unwrap();
        Registry::new(vec![Arc::new(device)], state, Duration::ZERO)
    }

    /// Every key is generated bound to a role; a rescan that ran between a
    /// key's generation and its stored binding would index it unbound (and
    /// an unbound key signs for any role), and one that listed before an
    /// `add` and swapped after it would drop the key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rescans_never_show_a_new_key_unbound_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(soft_registry(dir.path()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rescans = {
            let (registry, done) = (Arc::clone(&registry), Arc::clone(&done));
            tokio::spawn(async move {
                let mut rescans = 0u32;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    registry.refresh("test").await;
                    rescans += 1;
                    for e in registry.all() {
                        assert_eq!(
                            e.role,
                            Some(Role::Targets),
                            "key {} indexed unbound",
                            e.key_id
                        );
                    }
                }
                rescans
            })
        };
        let device = Arc::clone(&registry.devices()[0]);
        let mut made = Vec::new();
        for i in 0..40 {
            let change = registry.change().await;
            let label = format!("race {i}");
            let generation = registry
                .begin_generate(&change, "soft", &label, Some(&Role::Targets), None)
                .unwrap();
            let spec = KeySpec {
                algorithm: Algorithm::EcdsaP256,
                label,
            };
            let key = device.run(move |b| b.generate(&spec)).await.unwrap();
            let entry = generation.add(key).unwrap();
            drop(change);
            made.push(entry.key_id.clone());
            let listed: Vec<String> = registry.all().iter().map(|e| e.key_id.clone()).collect();
            for id in &made {
                assert!(listed.contains(id), "key {id} missing after a rescan");
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let rescans = rescans.await.unwrap();
        assert!(rescans > 0, "the rescans ran alongside");
        assert_eq!(registry.all().len(), made.len());
    }

    #[tokio::test]
    async fn misses_rescan_once_per_interval_and_only_for_callers_with_rights() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = soft_registry(dir.path());
        registry.rescan_interval = Duration::from_secs(3600);
        registry.refresh("start").await;
        let first = *registry.rescanned.lock().await;
        let device = Arc::clone(&registry.devices()[0]);
        let spec = KeySpec {
            algorithm: Algorithm::EcdsaP256,
            label: "behind the daemon's back".into(),
        };
        // A key the index has not seen: within the interval a miss stays a
        // miss, and no rescan is recorded.
        let key = device.run(move |b| b.generate(&spec)).await.unwrap();
        let id = key.public.key_id();
        for _ in 0..100 {
            assert!(registry.find(&id).await.is_none());
        }
        assert_eq!(*registry.rescanned.lock().await, first);
        // Past the interval, a caller without rights still costs nothing;
        // one with rights rescans and finds it.
        registry.rescan_interval = Duration::ZERO;
        assert!(registry.find_for(&id, false).await.is_none());
        assert_eq!(*registry.rescanned.lock().await, first);
        assert!(registry.find_for(&id, true).await.is_some());
        assert_ne!(*registry.rescanned.lock().await, first);
    }

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
