//! The `[audit]` table: where the log's segments live, when they rotate,
//! how often the chain head is signed, and which backend holds the key
//! that signs it.
//!
//! ```toml
//! [audit]
//! dir = "/var/log/notary-keyd"   # segments audit-000001.jsonl, …
//! max_size = "64M"               # a segment rotates at this size
//! keep = 0                       # segments kept; 0 keeps them all
//! checkpoint_records = 10000     # sign the head after this many records
//! checkpoint_seconds = 300       # … or this long after the last one
//! key_backend = "tpm"            # default: a TPM, else an HSM, else software
//! ```

use crate::backends::BackendType;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Segments smaller than this would rotate every few requests; it is also
/// the largest record (see `record::MAX_FIELD`), with room to spare.
pub(crate) const MIN_SEGMENT: u64 = 64 * 1024;

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditConfig {
    /// Directory of the segments (created 0700 if missing).
    pub(crate) dir: PathBuf,
    /// A segment is closed and a new one begun at this size.
    #[serde(default = "default_max_size")]
    pub(crate) max_size: ByteSize,
    /// How many segments to keep, the current one included; the oldest go
    /// first. 0 keeps every segment.
    #[serde(default)]
    pub(crate) keep: usize,
    /// A checkpoint is signed after this many records…
    #[serde(default = "default_checkpoint_records")]
    pub(crate) checkpoint_records: u64,
    /// …or this many seconds after the last one, if anything was written.
    #[serde(default = "default_checkpoint_seconds")]
    pub(crate) checkpoint_seconds: u64,
    /// The `[[backend]]` that holds the audit key. Default: the first TPM,
    /// else the first PKCS#11 token whose PIN the daemon reads itself,
    /// else a software keystore of the audit log's own.
    pub(crate) key_backend: Option<String>,
}

fn default_max_size() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

fn default_checkpoint_records() -> u64 {
    10_000
}

fn default_checkpoint_seconds() -> u64 {
    300
}

impl AuditConfig {
    /// The defaults for a log in `dir`.
    pub(crate) fn in_dir(dir: PathBuf) -> AuditConfig {
        AuditConfig {
            dir,
            max_size: default_max_size(),
            keep: 0,
            checkpoint_records: default_checkpoint_records(),
            checkpoint_seconds: default_checkpoint_seconds(),
            key_backend: None,
        }
    }

    /// The pre-segment `[server] audit_log = FILE`: segments go into FILE's
    /// directory; FILE itself (an unchained log) is left as it is.
    pub(crate) fn from_legacy_path(file: &Path) -> Result<AuditConfig, String> {
        match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => Ok(AuditConfig::in_dir(dir.to_path_buf())),
            _ => Err(format!(
                "[server] audit_log = {:?} has no directory; use [audit] dir = \"…\"",
                file.display()
            )),
        }
    }

    /// Checks the settings against the configured backends' names and types.
    pub(crate) fn validate(&self, backends: &[(&str, BackendType)]) -> Result<(), String> {
        if self.max_size.0 < MIN_SEGMENT {
            return Err(format!(
                "[audit] max_size = {} is below the minimum of {MIN_SEGMENT} bytes",
                self.max_size.0
            ));
        }
        if self.checkpoint_records == 0 || self.checkpoint_seconds == 0 {
            return Err(
                "[audit] checkpoint_records and checkpoint_seconds must be at least 1".into(),
            );
        }
        if self.keep == 1 {
            return Err(
                "[audit] keep = 1 would delete a segment as soon as the next one begins; keep at least 2, or 0 for all"
                    .into(),
            );
        }
        if let Some(name) = &self.key_backend {
            match backends.iter().find(|(n, _)| n == name) {
                None => {
                    return Err(format!(
                        "[audit] key_backend {name:?} is not a configured backend"
                    ))
                }
                Some((_, BackendType::Yubikey)) => {
                    return Err(format!(
                        "[audit] key_backend {name:?} is a YubiKey; the audit key needs a backend that signs unattended (tpm, pkcs11 or soft)"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// A size in bytes: a number, or a string with a K, M or G suffix
/// (powers of 1024), e.g. `"64M"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Bytes(u64),
            Text(String),
        }
        match Given::deserialize(d)? {
            Given::Bytes(n) => Ok(ByteSize(n)),
            Given::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

impl ByteSize {
    fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => t.split_at(i),
            None => (t, ""),
        };
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            _ => return Err(format!("size {text:?}: use a number of bytes or K, M, G")),
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1 << shift))
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?}: use a number of bytes or K, M, G"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(ByteSize::parse("64M"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("512 KiB"), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("70000"), Ok(ByteSize(70000)));
        assert!(ByteSize::parse("1T").is_err());
        assert!(ByteSize::parse("M").is_err());
        let c: AuditConfig = toml::from_str("dir = '/l'\nmax_size = 65536\n").unwrap();
        assert_eq!(c.max_size, ByteSize(65536));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = AuditConfig::in_dir("/l".into());
        c.max_size = ByteSize(1000);
        assert!(c.validate(&[]).unwrap_err().contains("max_size"));
        let mut c = AuditConfig::in_dir("/l".into());
        c.key_backend = Some("yk".into());
        assert!(c
            .validate(&[("yk", BackendType::Yubikey)])
            .unwrap_err()
            .contains("unattended"));
        assert!(c.validate(&[]).unwrap_err().contains("not a configured"));
        c.key_backend = Some("hsm".into());
        c.validate(&[("hsm", BackendType::Pkcs11)]).unwrap();
        let legacy = AuditConfig::from_legacy_path(Path::new("/var/log/k/audit.jsonl")).unwrap();
        assert_eq!(legacy.dir, Path::new("/var/log/k"));
    }
}
