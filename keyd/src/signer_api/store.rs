//! Which keys the signer API created, for which (GUN, role), and whether
//! each has been used yet. Only these keys are visible through the API, and
//! an unused one is handed out again instead of minting another
//! (notary-server asks for a new timestamp key on every `timestamp.key`
//! request before a collection's first publish, and never deletes keys).
//!
//! One JSON file in the state dir, written atomically on every change.

use keyd_backends::atomic_file::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct ApiKey {
    pub backend: String,
    pub gun: String,
    pub role: String,
    /// TUF keytype (`ecdsa`, `ed25519`).
    pub keytype: String,
    /// Subject of the client certificate that asked for it.
    pub created_by: String,
    /// The `allowed_clients` name of the client that asked for it: the
    /// only client (with those it shares with) that reaches the key.
    /// Empty in records from before owners were kept.
    #[serde(default)]
    pub owner: String,
    pub created: String,
    /// Set before the key is first looked up (GetKeyInfo) or signs:
    /// notary-server looks up only keys named in a collection's root (or
    /// about to sign), so from then on the key may be in published metadata
    /// and is never handed out as a "new" key again.
    #[serde(default)]
    pub used: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    format: u32,
    keys: BTreeMap<String, ApiKey>,
}

pub(super) struct ApiKeyStore {
    path: PathBuf,
    file: Mutex<StoreFile>,
}

#[derive(Debug, thiserror::Error)]
#[error("signer-API key store {path}: {message}")]
pub(crate) struct StoreError {
    path: String,
    message: String,
}

impl ApiKeyStore {
    pub(super) fn open(state_dir: &Path) -> Result<ApiKeyStore, StoreError> {
        let path = state_dir.join("signer-api.json");
        let err = |message: String| StoreError {
            path: path.display().to_string(),
            message,
        };
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| err(format!("malformed ({e}); restore it from a backup")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile {
                format: 1,
                keys: BTreeMap::new(),
            },
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(ApiKeyStore {
            path,
            file: Mutex::new(file),
        })
    }

    fn err(&self, message: String) -> StoreError {
        StoreError {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// Applies `change` and persists; memory is left unchanged when the
    /// write fails.
    fn update(&self, change: impl FnOnce(&mut StoreFile) -> bool) -> Result<(), StoreError> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| self.err("lock poisoned by a panic".into()))?;
        let before = file.keys.clone();
        if !change(&mut file) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&*file).map_err(|e| self.err(e.to_string()))?;
        write_atomic(&self.path, &bytes, 0o600).map_err(|e| {
            file.keys = before;
            self.err(e.to_string())
        })
    }

    pub(super) fn get(&self, key_id: &str) -> Option<ApiKey> {
        self.file.lock().ok()?.keys.get(key_id).cloned()
    }

    /// Keys matching `pred`, newest first.
    pub(super) fn find(&self, pred: impl Fn(&ApiKey) -> bool) -> Vec<(String, ApiKey)> {
        let Ok(file) = self.file.lock() else {
            return Vec::new();
        };
        let mut found: Vec<(String, ApiKey)> = file
            .keys
            .iter()
            .filter(|(_, k)| pred(k))
            .map(|(id, k)| (id.clone(), k.clone()))
            .collect();
        found.sort_by(|a, b| b.1.created.cmp(&a.1.created));
        found
    }

    pub(super) fn insert(&self, key_id: &str, key: ApiKey) -> Result<(), StoreError> {
        self.update(|f| {
            f.keys.insert(key_id.to_string(), key);
            true
        })
    }

    /// Marks a key as used; a no-op (no write) when it already is.
    pub(super) fn mark_used(&self, key_id: &str) -> Result<(), StoreError> {
        self.update(|f| match f.keys.get_mut(key_id) {
            Some(k) if !k.used => {
                k.used = true;
                true
            }
            _ => false,
        })
    }

    pub(super) fn remove(&self, key_id: &str) -> Result<(), StoreError> {
        self.update(|f| f.keys.remove(key_id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: &str) -> ApiKey {
        ApiKey {
            backend: "soft".into(),
            gun: "example.com/app".into(),
            role: role.into(),
            keytype: "ecdsa".into(),
            created_by: "CN=notary-server".into(),
            owner: "notary-server".into(),
            created: "2026-11-25T12:00:00Z".into(),
            used: false,
        }
    }

    #[test]
    fn keys_and_used_marks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = ApiKeyStore::open(dir.path()).unwrap();
        store.insert("a", key("timestamp")).unwrap();
        store.insert("b", key("snapshot")).unwrap();
        store.mark_used("a").unwrap();
        let reopened = ApiKeyStore::open(dir.path()).unwrap();
        assert!(reopened.get("a").unwrap().used);
        assert!(!reopened.get("b").unwrap().used);
        assert_eq!(reopened.find(|k| k.role == "snapshot").len(), 1);
        reopened.remove("b").unwrap();
        assert!(ApiKeyStore::open(dir.path()).unwrap().get("b").is_none());
    }

    #[test]
    fn failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ApiKeyStore::open(dir.path()).unwrap();
        store.insert("a", key("timestamp")).unwrap();
        store.path = dir.path().join("missing").join("signer-api.json");
        assert!(store.mark_used("a").is_err());
        assert!(!store.get("a").unwrap().used);
        assert!(store.insert("b", key("timestamp")).is_err());
        assert!(store.get("b").is_none());
    }

    #[test]
    fn malformed_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signer-api.json"), b"[").unwrap();
        let err = ApiKeyStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("malformed"), "{err}");
    }
}
