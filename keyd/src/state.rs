//! The daemon's small state store: what devices cannot hold. Role and GUN
//! bindings and certificate PEM text per key, in one JSON file written
//! atomically (a crash leaves the old or the new file, never a torn one).

use keyd_backends::atomic_file::{remove_leftovers, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    pub backend: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gun: String,
    /// Exact PEM text: notary's x509 key ID covers these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    keys: BTreeMap<String, KeyRecord>,
}

pub struct StateStore {
    path: PathBuf,
    file: StateFile,
}

#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {message}")]
pub struct StateError {
    path: PathBuf,
    message: String,
}

impl StateError {
    pub fn poisoned() -> StateError {
        StateError {
            path: PathBuf::new(),
            message: "state lock poisoned by a panic".into(),
        }
    }
}

impl StateStore {
    pub fn open(state_dir: &Path) -> Result<StateStore, StateError> {
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
                keys: BTreeMap::new(),
            },
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(StateStore { path, file })
    }

    pub fn get(&self, key_id: &str) -> Option<&KeyRecord> {
        self.file.keys.get(key_id)
    }

    /// Sets a record and persists before returning.
    pub fn put(&mut self, key_id: &str, record: KeyRecord) -> Result<(), StateError> {
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

    pub fn remove(&mut self, key_id: &str) -> Result<(), StateError> {
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
