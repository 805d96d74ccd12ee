//! Staged changes: one file per staging command (a batch is one file, so it
//! is staged whole or not at all), applied in file-name order at publish and
//! removed only after the server accepted them.

use super::write_atomic;
use anyhow::{Context, Result};
use notary_tuf::FileMeta;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const SUFFIX: &str = ".change";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChangeAction {
    Create,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ChangeKind {
    Target,
    Delegation,
    Witness,
}

/// Edits to a delegation role, as `notary delegation add/remove` stage them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DelegationEdit {
    #[serde(default)]
    pub add_keys: Vec<notary_tuf::PublicKey>,
    #[serde(default)]
    pub remove_keys: Vec<String>,
    #[serde(default)]
    pub add_paths: Vec<String>,
    #[serde(default)]
    pub remove_paths: Vec<String>,
    #[serde(default)]
    pub clear_all_paths: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Change {
    pub action: ChangeAction,
    pub kind: ChangeKind,
    /// The role whose metadata changes (`targets`, `targets/releases`).
    pub role: String,
    /// Target name; empty for delegation and witness changes.
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<FileMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<DelegationEdit>,
}

/// One staged file and its changes.
#[derive(Debug)]
pub(crate) struct Staged {
    pub file: PathBuf,
    pub changes: Vec<Change>,
}

pub(crate) struct Changelist {
    dir: PathBuf,
}

impl Changelist {
    pub(crate) fn new(dir: PathBuf) -> Changelist {
        Changelist { dir }
    }

    /// Stages `changes` as one file.
    pub(crate) fn add(&self, changes: &[Change]) -> Result<()> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("{nanos:024}-{}{SUFFIX}", std::process::id());
        write_atomic(&self.dir.join(name), &serde_json::to_vec(changes)?)
    }

    /// Staged files in the order they were staged.
    pub(crate) fn list(&self) -> Result<Vec<Staged>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.dir.display())),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|file| {
                let changes = read(&file)?;
                Ok(Staged { file, changes })
            })
            .collect()
    }

    /// Removes staged files (after a successful publish, or on reset).
    pub(crate) fn remove(&self, files: &[PathBuf]) -> Result<()> {
        for file in files {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", file.display()))
                }
            }
        }
        Ok(())
    }

    /// Replaces a staged file's changes (or removes it when none are left).
    pub(crate) fn rewrite(&self, staged: &Staged, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            self.remove(std::slice::from_ref(&staged.file))
        } else {
            write_atomic(&staged.file, &serde_json::to_vec(changes)?)
        }
    }
}

fn read(file: &Path) -> Result<Vec<Change>> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read staged change {}", file.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "staged change {} is not readable; remove it or run `notaryctl reset GUN --all`",
            file.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Change {
        Change {
            action: ChangeAction::Create,
            kind: ChangeKind::Target,
            role: "targets".into(),
            path: path.into(),
            meta: Some(FileMeta::for_bytes(path.as_bytes())),
            delegation: None,
        }
    }

    #[test]
    fn staged_in_order_and_temp_files_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let list = Changelist::new(dir.path().join("cl"));
        assert!(list.list().unwrap().is_empty());
        list.add(&[target("a"), target("b")]).unwrap();
        list.add(&[target("c")]).unwrap();
        std::fs::write(dir.path().join("cl/.tmp-half"), b"{").unwrap();
        let staged = list.list().unwrap();
        assert_eq!(staged.len(), 2);
        assert_eq!(staged[0].changes, vec![target("a"), target("b")]);
        list.rewrite(&staged[0], &[target("b")]).unwrap();
        assert_eq!(list.list().unwrap()[0].changes, vec![target("b")]);
        list.remove(&[staged[1].file.clone()]).unwrap();
        assert_eq!(list.list().unwrap().len(), 1);
    }

    #[test]
    fn unreadable_change_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let list = Changelist::new(dir.path().to_path_buf());
        std::fs::write(dir.path().join("1.change"), b"{").unwrap();
        let err = format!("{:#}", list.list().unwrap_err());
        assert!(err.contains("1.change is not readable"), "{err}");
    }
}
