//! What a crashed daemon left on disk, read independently of its code: the
//! state store's records and pending generations, and temp files of writes
//! cut short (the audit log is checked by `notary-keyd audit verify`).

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `<state_dir>/keys.json` as a test reads it.
#[derive(Debug, Default)]
pub struct StateFile {
    /// Key ID → (backend, role, gun).
    pub bindings: BTreeMap<String, (String, String, String)>,
    /// Generations recorded as under way.
    pub pending: usize,
}

impl StateFile {
    /// Reads and parses the file (absent: empty); fails if it is not whole JSON.
    pub fn read(state_dir: &Path) -> Result<StateFile> {
        let path = state_dir.join("keys.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not whole JSON", path.display()))?;
        let text = |v: &Value, field: &str| v[field].as_str().unwrap_or("").to_string();
        let bindings = value["keys"]
            .as_object()
            .map(|keys| {
                keys.iter()
                    .map(|(id, r)| {
                        (
                            id.clone(),
                            (text(r, "backend"), text(r, "role"), text(r, "gun")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pending = value["pending"].as_object().map_or(0, |p| p.len());
        Ok(StateFile { bindings, pending })
    }
}

/// Temp files of crash-safe writes (`.<name>.tmp<pid>`) left in `dir`.
pub fn leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let temp = name.starts_with('.')
            && name
                .rsplit_once(".tmp")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if temp {
            found.push(entry.path());
        }
    }
    Ok(found)
}
