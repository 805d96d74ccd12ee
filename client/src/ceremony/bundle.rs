//! The bundle: a plain directory (for a USB stick) that carries a ceremony
//! between the online and the offline machine.
//!
//! ```text
//! plan.toml                  the reviewed input
//! REHEARSAL                  present in rehearsal bundles
//! attestation-roots/*.pem    the attestation roots the plan accepts
//! previous-root.json         a rotation: the root it replaces
//! enrollments/NAME.json      one per enrolled holder
//! root.json                  the new root with the signatures so far
//! transcript.jsonl           the hash-chained record of every step
//! ```
//!
//! Files are written whole (temporary file, fsync, rename), so a pulled
//! stick or a crash leaves the old or the new version of each.

use super::digest::Digest;
use super::enrollment::Enrollment;
use super::plan::Plan;
use super::transcript::Transcript;
use crate::trust_dir::write_atomic;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(super) const PLAN: &str = "plan.toml";
pub(super) const REHEARSAL: &str = "REHEARSAL";
pub(super) const ROOT: &str = "root.json";
pub(super) const PREVIOUS_ROOT: &str = "previous-root.json";
pub(super) const TRANSCRIPT: &str = "transcript.jsonl";
pub(super) const ATTESTATION_ROOTS: &str = "attestation-roots";
const ENROLLMENTS: &str = "enrollments";

pub(super) struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    /// A new bundle in `dir`, which must not exist or be empty.
    pub(super) fn create(dir: &Path) -> Result<Bundle> {
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; a plan starts a new bundle in an empty or new directory",
                    dir.display()
                );
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
        })
    }

    /// An existing bundle: a directory with a plan.
    pub(super) fn open(dir: &Path) -> Result<Bundle> {
        if !dir.join(PLAN).is_file() {
            bail!(
                "{} is not a ceremony bundle (it has no {PLAN}); `notaryctl ceremony plan` makes one",
                dir.display()
            );
        }
        Ok(Bundle {
            dir: dir.to_path_buf(),
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn read(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(file);
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    pub(super) fn read_optional(&self, file: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(file)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {file} in the bundle")),
        }
    }

    pub(super) fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.dir.join(file), bytes)
    }

    pub(super) fn plan(&self) -> Result<(Plan, Digest)> {
        let bytes = self.read(PLAN)?;
        let text = String::from_utf8(bytes.clone()).context("plan.toml is not UTF-8")?;
        Ok((Plan::parse(&text)?, Digest::of(&bytes)))
    }

    pub(super) fn transcript(&self) -> Result<Transcript> {
        Ok(Transcript::parse(&self.read(TRANSCRIPT)?)?)
    }

    pub(super) fn enrollment_file(name: &str) -> String {
        format!("{ENROLLMENTS}/{name}.json")
    }

    /// Every enrollment record, by holder name, with its file's digest.
    pub(super) fn enrollments(&self) -> Result<BTreeMap<String, (Enrollment, Digest)>> {
        let mut out = BTreeMap::new();
        let dir = self.dir.join(ENROLLMENTS);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            // Leftovers of an interrupted write (see write_atomic).
            if file_name.starts_with('.') {
                continue;
            }
            let Some(name) = file_name.strip_suffix(".json") else {
                bail!("{ENROLLMENTS}/{file_name} is not an enrollment record (NAME.json)");
            };
            let bytes = std::fs::read(entry.path())?;
            let enrollment = Enrollment::parse(&bytes, name)?;
            if enrollment.holder != name {
                bail!(
                    "{ENROLLMENTS}/{file_name} is the enrollment of {}, not of {name}",
                    enrollment.holder
                );
            }
            out.insert(name.to_string(), (enrollment, Digest::of(&bytes)));
        }
        Ok(out)
    }
}

/// The files a finished step leaves, for the `bundle exported` record:
/// SHA-256 over every file name and its digest, in name order.
pub(super) fn manifest_digest(bundle: &Bundle) -> Result<Digest> {
    let mut lines = String::new();
    let mut files = Vec::new();
    collect(bundle.dir(), "", &mut files)?;
    files.sort();
    for file in files {
        if file == TRANSCRIPT {
            continue;
        }
        lines.push_str(&format!("{}  {file}\n", Digest::of(&bundle.read(&file)?)));
    }
    Ok(Digest::of(lines.as_bytes()))
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}{name}");
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &format!("{rel}/"), out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Attestation roots are stored under this folder.
pub(super) fn attestation_root_file(index: usize, name: &str) -> String {
    format!("{ATTESTATION_ROOTS}/{index}-{name}")
}
