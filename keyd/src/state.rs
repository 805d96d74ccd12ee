//! The daemon's small state store: what devices cannot hold. Role and GUN
//! bindings and certificate PEM text per key, in one JSON file written
//! atomically (a crash leaves the old or the new file, never a torn one).
//!
//! A key is made on its device before its binding can be written (its ID
//! is its public key's), so a crash in between would leave a key without
//! its binding. Each generation is therefore recorded as pending before
//! the device is asked; at the next start, a key the device made meanwhile
//! is found by its label and given the binding it was asked for.

use keyd_backends::atomic_file::{remove_leftovers, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub backend: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gun: String,
    /// Exact PEM text: notary's x509 key ID covers these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
}

/// A generation under way: what was asked for, and which keys of the
/// backend had no record when it began (none of them is the new key,
/// whatever its label).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct PendingKey {
    pub backend: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gun: String,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unrecorded: BTreeSet<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    keys: BTreeMap<String, KeyRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pending: BTreeMap<String, PendingKey>,
}

pub(crate) struct StateStore {
    path: PathBuf,
    file: StateFile,
    /// Pending generations begun by this process (still running, so not
    /// to be recovered).
    ours: BTreeSet<String>,
    next_pending: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub(crate) struct StateError {
    path: PathBuf,
    message: String,
}

impl StateError {
    pub(crate) fn poisoned() -> StateError {
        StateError {
            path: PathBuf::new(),
            message: "state lock poisoned by a panic".into(),
        }
    }
}

impl StateStore {
    pub(crate) fn open(state_dir: &Path) -> Result<StateStore, StateError> {
        remove_leftovers(state_dir);
        let path = state_dir.join("keys.json");
        let err = |message: String| StateError {
            path: path.clone(),
            message,
        };
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("malformed ({e}); restore it from a backup")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile {
                format: 1,
                ..StateFile::default()
            },
            Err(e) => return Err(err(e.to_string())),
        };
        let next_pending = file
            .pending
            .keys()
            .filter_map(|id| id.parse::<u64>().ok())
            .max()
            .map_or(1, |n| n + 1);
        Ok(StateStore {
            path,
            file,
            ours: BTreeSet::new(),
            next_pending,
        })
    }

    pub(crate) fn get(&self, key_id: &str) -> Option<&KeyRecord> {
        self.file.keys.get(key_id)
    }

    /// Sets a record and persists before returning.
    pub(crate) fn put(&mut self, key_id: &str, record: KeyRecord) -> Result<(), StateError> {
        let previous = self.file.keys.insert(key_id.to_string(), record);
        self.save().inspect_err(|_| {
            // Keep memory equal to disk when the write fails.
            match &previous {
                Some(p) => {
                    self.file.keys.insert(key_id.to_string(), p.clone());
                }
                None => {
                    self.file.keys.remove(key_id);
                }
            }
        })
    }

    /// Records a generation as pending and persists before returning its ID.
    pub(crate) fn begin(&mut self, pending: PendingKey) -> Result<String, StateError> {
        let id = self.next_pending.to_string();
        self.file.pending.insert(id.clone(), pending);
        if let Err(e) = self.save() {
            self.file.pending.remove(&id);
            return Err(e);
        }
        self.next_pending += 1;
        self.ours.insert(id.clone());
        Ok(id)
    }

    /// Ends a pending generation: with the key it made bound (one write for
    /// both), or with nothing when the device made none.
    pub(crate) fn finish(
        &mut self,
        id: &str,
        made: Option<(&str, KeyRecord)>,
    ) -> Result<(), StateError> {
        let Some(pending) = self.file.pending.remove(id) else {
            return match made {
                Some((key_id, record)) => self.put(key_id, record),
                None => Ok(()),
            };
        };
        let previous = made.as_ref().map(|(key_id, record)| {
            (
                key_id.to_string(),
                self.file.keys.insert(key_id.to_string(), record.clone()),
            )
        });
        self.save().inspect_err(|_| {
            self.file.pending.insert(id.to_string(), pending);
            match previous {
                Some((key_id, Some(p))) => {
                    self.file.keys.insert(key_id, p);
                }
                Some((key_id, None)) => {
                    self.file.keys.remove(&key_id);
                }
                None => {}
            }
        })?;
        self.ours.remove(id);
        Ok(())
    }

    /// Gives the keys a crash left without their binding the binding their
    /// generation asked for, and drops the pending generations of
    /// `backend` that this process did not begin. `listed` is every key
    /// the backend holds now: (key ID, label). Returns the keys bound.
    pub(crate) fn recover(
        &mut self,
        backend: &str,
        listed: &[(String, String)],
    ) -> Result<Vec<(String, KeyRecord)>, StateError> {
        let stale: Vec<String> = self
            .file
            .pending
            .iter()
            .filter(|(id, p)| p.backend == backend && !self.ours.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let mut bound = Vec::new();
        for id in &stale {
            let Some(p) = self.file.pending.get(id) else {
                continue;
            };
            for (key_id, label) in listed {
                let made_then = *label == p.label
                    && !p.unrecorded.contains(key_id)
                    && !self.file.keys.contains_key(key_id)
                    && !bound.iter().any(|(k, _)| k == key_id);
                if made_then {
                    let record = KeyRecord {
                        backend: backend.to_string(),
                        role: p.role.clone(),
                        gun: p.gun.clone(),
                        certificate_pem: None,
                    };
                    bound.push((key_id.clone(), record));
                }
            }
        }
        let before_keys = self.file.keys.clone();
        let before_pending = self.file.pending.clone();
        for id in &stale {
            self.file.pending.remove(id);
        }
        for (key_id, record) in &bound {
            self.file.keys.insert(key_id.clone(), record.clone());
        }
        self.save().inspect_err(|_| {
            self.file.keys = before_keys;
            self.file.pending = before_pending;
        })?;
        Ok(bound)
    }

    pub(crate) fn remove(&mut self, key_id: &str) -> Result<(), StateError> {
        if let Some(previous) = self.file.keys.remove(key_id) {
            self.save().inspect_err(|_| {
                self.file.keys.insert(key_id.to_string(), previous);
            })?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), StateError> {
        let err = |message: String| StateError {
            path: self.path.clone(),
            message,
        };
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|e| err(e.to_string()))?;
        write_atomic(&self.path, &bytes, 0o600).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_persist_and_failed_writes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let record = KeyRecord {
            backend: "soft".into(),
            role: "targets".into(),
            gun: "example.com/app".into(),
            certificate_pem: None,
        };
        store.put("abc", record.clone()).unwrap();
        let reopened = StateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get("abc"), Some(&record));

        // Point the store at a directory that does not exist: the write fails
        // and the in-memory view stays as it was.
        let mut broken = StateStore::open(dir.path()).unwrap();
        broken.path = dir.path().join("missing").join("keys.json");
        assert!(broken.put("def", record.clone()).is_err());
        assert!(broken.get("def").is_none());
        assert!(broken.remove("abc").is_err());
        assert!(broken.get("abc").is_some());
    }

    #[test]
    fn malformed_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), b"{not json").unwrap();
        let err = StateStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("malformed"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("keys.json")).unwrap(),
            b"{not json"
        );
    }

    fn pending(label: &str, unrecorded: &[&str]) -> PendingKey {
        PendingKey {
            backend: "hsm".into(),
            label: label.into(),
            role: "targets".into(),
            gun: "example.com/app".into(),
            unrecorded: unrecorded.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn listed(keys: &[(&str, &str)]) -> Vec<(String, String)> {
        keys.iter()
            .map(|(id, label)| (id.to_string(), label.to_string()))
            .collect()
    }

    #[test]
    fn a_generation_cut_short_binds_its_key_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        store.begin(pending("release", &["old"])).unwrap();
        // This process began it: it is not recovered while it runs.
        let now = listed(&[("new", "release"), ("old", "release")]);
        assert!(store.recover("hsm", &now).unwrap().is_empty());
        drop(store);

        // The daemon died after the device made "new". At the next start the
        // key gets the binding asked for; "old" (unrecorded before) and keys
        // with other labels or on other backends do not.
        let mut store = StateStore::open(dir.path()).unwrap();
        let now = listed(&[("new", "release"), ("old", "release"), ("x", "other")]);
        assert!(store.recover("soft", &now).unwrap().is_empty());
        let bound = store.recover("hsm", &now).unwrap();
        assert_eq!(bound.len(), 1);
        assert_eq!(bound[0].0, "new");
        let record = store.get("new").unwrap();
        assert_eq!(
            (record.role.as_str(), record.gun.as_str()),
            ("targets", "example.com/app")
        );
        assert!(store.get("old").is_none() && store.get("x").is_none());
        let reopened = StateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get("new"), Some(record));
        assert!(reopened.file.pending.is_empty());
    }

    #[test]
    fn a_generation_that_made_nothing_leaves_no_binding() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        store.begin(pending("release", &[])).unwrap();
        drop(store);
        let mut store = StateStore::open(dir.path()).unwrap();
        assert!(store.recover("hsm", &listed(&[])).unwrap().is_empty());
        assert!(store.file.keys.is_empty() && store.file.pending.is_empty());
        let on_disk = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!on_disk.contains("pending"), "{on_disk}");
    }

    #[test]
    fn finishing_binds_and_clears_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let made = store.begin(pending("a", &[])).unwrap();
        let failed = store.begin(pending("b", &[])).unwrap();
        assert_ne!(made, failed);
        let record = KeyRecord {
            backend: "hsm".into(),
            role: "targets".into(),
            ..KeyRecord::default()
        };
        store.finish(&made, Some(("k1", record.clone()))).unwrap();
        store.finish(&failed, None).unwrap();
        let reopened = StateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get("k1"), Some(&record));
        assert!(reopened.file.pending.is_empty());
    }

    #[test]
    fn temp_files_of_a_cut_short_write_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        StateStore::open(dir.path())
            .unwrap()
            .put("k", KeyRecord::default())
            .unwrap();
        let torn = dir.path().join(".keys.json.tmp4294967295");
        std::fs::write(&torn, b"{\"format\":1,\"ke").unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(store.get("k").is_some());
        assert!(!torn.exists());
    }
}
