//! Where TPM keys live when they are not in the TPM: one JSON file per key
//! holding its public area and its private area wrapped by the storage key
//! (useless off this TPM), written crash-safely. No NV space is used unless
//! an operator asks for persistent handles.

use crate::atomic_file::{remove_leftovers, write_atomic};
use crate::BackendError;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct KeyBlob {
    pub label: String,
    /// TPMT_PUBLIC, marshalled.
    #[serde(with = "notary_tuf::b64")]
    pub public: Vec<u8>,
    /// TPM2B_PRIVATE contents: the sensitive area encrypted and integrity-
    /// protected by the storage key.
    #[serde(with = "notary_tuf::b64")]
    pub private: Vec<u8>,
    /// Persistent handle the key was also made resident at, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_handle: Option<u32>,
}

pub(super) struct BlobDir {
    dir: PathBuf,
}

const SUFFIX: &str = ".tpmkey.json";

impl BlobDir {
    /// Opens (creating 0700) the blob directory.
    pub(super) fn open(dir: &Path) -> Result<BlobDir, BackendError> {
        let storage = |e: std::io::Error| {
            BackendError::Storage(format!("TPM key directory {}: {e}", dir.display()))
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(storage)?;
        let mode = fs::metadata(dir).map_err(storage)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), "TPM key directory is accessible to other users; key blobs are bound to this TPM but their labels are not secret");
        }
        remove_leftovers(dir);
        Ok(BlobDir {
            dir: dir.to_path_buf(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.dir
    }

    pub(super) fn read_all(&self) -> Result<Vec<(String, KeyBlob)>, BackendError> {
        let storage = |e: String| {
            BackendError::Storage(format!("TPM key directory {}: {e}", self.dir.display()))
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| storage(e.to_string()))? {
            let entry = entry.map_err(|e| storage(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let bytes = fs::read(entry.path()).map_err(|e| storage(format!("{name}: {e}")))?;
            let blob: KeyBlob = serde_json::from_slice(&bytes).map_err(|e| {
                storage(format!(
                    "{name} is malformed ({e}); restore it from a backup"
                ))
            })?;
            out.push((id.to_string(), blob));
        }
        Ok(out)
    }

    pub(super) fn write(&self, id: &str, blob: &KeyBlob) -> Result<(), BackendError> {
        let bytes =
            serde_json::to_vec_pretty(blob).map_err(|e| BackendError::Storage(e.to_string()))?;
        write_atomic(&self.file(id), &bytes, 0o600)
            .map_err(|e| BackendError::Storage(format!("writing TPM key blob {id}: {e}")))
    }

    pub(super) fn remove(&self, id: &str) -> Result<(), BackendError> {
        fs::remove_file(self.file(id))
            .map_err(|e| BackendError::Storage(format!("removing TPM key blob {id}: {e}")))
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }
}
