//! `plan.toml`, the ceremony's one reviewed input: the GUN, the holders
//! and their devices, the threshold, the root's expiry and certificate
//! validity, the online keys of a new collection or the root a rotation
//! replaces, and the attestation roots to accept. Every later step works
//! from this file and records its SHA-256; nothing the plan leaves open is
//! decided later.

use super::device::Device;
use super::digest::Digest;
use crate::trust_dir::check_gun;
use anyhow::{anyhow, bail, Result};
use notary_tuf::ceremony::{tally, RootPass};
use notary_tuf::metadata::parse_expires;
use notary_tuf::{KeyType, PublicKey, Root, SignedEnvelope};
use serde::{Deserialize, Serialize};

pub(super) const FORMAT: &str = "notary-keyd ceremony plan 1";
/// Stock `notary publish` re-signs root when it expires within this long
/// (6 months, notary's nearExpiry), which a threshold root cannot survive.
pub(super) const RENEWAL_WINDOW_SECS: i64 = 182 * 86_400;

/// Who holds a role key of a new collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum HeldBy {
    NotaryKeyd,
    Server,
}

/// A targets, snapshot or timestamp key of a new collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoleKey {
    pub key_id: String,
    pub keytype: String,
    /// Base64 of the key object's `public`.
    pub public: String,
    pub held_by: HeldBy,
}

impl RoleKey {
    pub(super) fn new(key: &PublicKey, held_by: HeldBy) -> RoleKey {
        RoleKey {
            key_id: key.key_id(),
            keytype: key.keytype().to_string(),
            public: key.public_b64(),
            held_by,
        }
    }

    /// The key object, refused unless it has the ID the plan names.
    pub(super) fn public_key(&self, role: &str) -> Result<PublicKey> {
        let keytype: KeyType = self.keytype.parse()?;
        let public = base64_decode(&self.public)
            .map_err(|e| anyhow!("the plan's {role} key is not base64: {e}"))?;
        let key = PublicKey::new(keytype, public);
        if key.key_id() != self.key_id {
            bail!(
                "the plan's {role} key has ID {}, not {} as the plan says",
                key.key_id(),
                self.key_id
            );
        }
        Ok(key)
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::{engine::general_purpose::STANDARD, Engine};
    STANDARD.decode(text)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnlineKeys {
    pub targets: RoleKey,
    pub snapshot: RoleKey,
    pub timestamp: RoleKey,
}

/// A file in the bundle and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRef {
    pub file: String,
    pub sha256: Digest,
}

/// The trusted root a rotation replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviousRoot {
    pub file: String,
    pub sha256: Digest,
    pub version: u64,
}

/// A holder as written: a device to enroll, or a key of the previous root
/// kept in the new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderEntry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep: Option<String>,
}

/// A key of the previous root that the new root drops; its holder may
/// still sign as one of the previous root's signers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Retired {
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    format: String,
    gun: String,
    rehearsal: bool,
    version: u64,
    threshold: u32,
    root_expires: String,
    certificate_days: u32,
    require_attestation: bool,
    created: String,
    #[serde(rename = "holder")]
    holders: Vec<HolderEntry>,
    #[serde(default, rename = "retired", skip_serializing_if = "Vec::is_empty")]
    retired: Vec<Retired>,
    #[serde(
        default,
        rename = "attestation_root",
        skip_serializing_if = "Vec::is_empty"
    )]
    attestation_roots: Vec<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<OnlineKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_root: Option<PreviousRoot>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Holding {
    /// A new key, generated on this device at enrollment.
    Enroll(Device),
    /// The previous root's key with this (x509) key ID.
    Keep(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Holder {
    pub name: String,
    pub holding: Holding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    NewCollection(OnlineKeys),
    Rotation(PreviousRoot),
}

/// A plan that passed every check that needs no other file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub gun: String,
    pub rehearsal: bool,
    /// The root version this ceremony makes.
    pub version: u64,
    pub threshold: u32,
    pub root_expires: String,
    pub certificate_days: u32,
    pub require_attestation: bool,
    pub created: String,
    pub holders: Vec<Holder>,
    pub retired: Vec<Retired>,
    pub attestation_roots: Vec<FileRef>,
    pub kind: Kind,
}

impl Plan {
    /// Parses and checks plan.toml.
    pub(super) fn parse(text: &str) -> Result<Plan> {
        let file: PlanFile =
            toml::from_str(text).map_err(|e| anyhow!("plan.toml does not parse: {e}"))?;
        Plan::from_file(file)
    }

    fn from_file(file: PlanFile) -> Result<Plan> {
        if file.format != FORMAT {
            bail!(
                "plan.toml has format {:?}; this notaryctl reads {FORMAT:?}",
                file.format
            );
        }
        check_gun(&file.gun)?;
        let kind = match (file.keys, file.previous_root) {
            (Some(keys), None) => Kind::NewCollection(keys),
            (None, Some(previous)) => Kind::Rotation(previous),
            _ => bail!(
                "plan.toml needs exactly one of [keys] (a new collection) and [previous_root] \
                 (a rotation)"
            ),
        };
        let rotation = matches!(kind, Kind::Rotation(_));
        let mut holders = Vec::new();
        for entry in file.holders {
            let holding = match (entry.device, entry.keep) {
                (Some(device), None) => Holding::Enroll(
                    device
                        .parse()
                        .map_err(|e| anyhow!("holder {}: {e}", entry.name))?,
                ),
                (None, Some(key)) if rotation => Holding::Keep(key),
                (None, Some(_)) => bail!(
                    "holder {} keeps a key, but only a rotation has a previous root to keep \
                     keys from",
                    entry.name
                ),
                _ => bail!(
                    "holder {} needs exactly one of device (a new key) and keep (a key of the \
                     previous root)",
                    entry.name
                ),
            };
            holders.push(Holder {
                name: entry.name,
                holding,
            });
        }
        if !rotation && !file.retired.is_empty() {
            bail!("[[retired]] keys belong to a rotation; a new collection has none");
        }
        let plan = Plan {
            gun: file.gun,
            rehearsal: file.rehearsal,
            version: file.version,
            threshold: file.threshold,
            root_expires: file.root_expires,
            certificate_days: file.certificate_days,
            require_attestation: file.require_attestation,
            created: file.created,
            holders,
            retired: file.retired,
            attestation_roots: file.attestation_roots,
            kind,
        };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<()> {
        let n = self.holders.len();
        if self.threshold < 1 {
            bail!("threshold 0 can never be met; the threshold is at least 1");
        }
        if self.threshold as usize > n {
            bail!(
                "threshold {} can never be met by {n} holder(s)",
                self.threshold
            );
        }
        // A holder who replaces their own token is both a holder (the new
        // key) and retired (the old one), under one name.
        let holders: Vec<&str> = self.holders.iter().map(|h| h.name.as_str()).collect();
        let retired: Vec<&str> = self.retired.iter().map(|r| r.name.as_str()).collect();
        for names in [&holders, &retired] {
            for (i, name) in names.iter().enumerate() {
                check_name(name)?;
                if names[..i].contains(name) {
                    bail!("holder name {name} appears twice in the plan");
                }
            }
        }
        for (i, a) in self.holders.iter().enumerate() {
            for b in &self.holders[..i] {
                let same = match (&a.holding, &b.holding) {
                    (Holding::Enroll(x), Holding::Enroll(y)) => x.same_device(y),
                    (Holding::Keep(x), Holding::Keep(y)) => x == y,
                    _ => false,
                };
                if same {
                    bail!(
                        "holders {} and {} name the same device or key: one device is one \
                         vote, so the plan would count it twice",
                        b.name,
                        a.name
                    );
                }
            }
        }
        for root in &self.attestation_roots {
            check_bundle_path(&root.file, "attestation-roots/")?;
        }
        let created = parse_expires(&self.created)?;
        let expires = parse_expires(&self.root_expires)?;
        if expires <= created {
            bail!(
                "root_expires {} is not after the plan's creation {}",
                self.root_expires,
                self.created
            );
        }
        if self.certificate_days == 0 {
            bail!("certificate_days is 0; certificates need at least a day");
        }
        match &self.kind {
            Kind::NewCollection(keys) => {
                if self.version != 1 {
                    bail!("a new collection's root is version 1, not {}", self.version);
                }
                keys.targets.public_key("targets")?;
                keys.snapshot.public_key("snapshot")?;
                keys.timestamp.public_key("timestamp")?;
            }
            Kind::Rotation(previous) => {
                check_bundle_path(&previous.file, "")?;
                if self.version != previous.version + 1 {
                    bail!(
                        "a rotation from root v{} makes v{}, not v{}",
                        previous.version,
                        previous.version + 1,
                        self.version
                    );
                }
            }
        }
        Ok(())
    }

    /// Things the orchestrator must hear before the plan is used.
    pub(super) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let n = self.holders.len();
        if self.threshold as usize == n {
            out.push(format!(
                "threshold {} of {n}: every holder must sign, so one lost or broken token \
                 locks the collection for good",
                self.threshold
            ));
        }
        if let (Ok(created), Ok(expires)) = (
            parse_expires(&self.created),
            parse_expires(&self.root_expires),
        ) {
            if expires - created < RENEWAL_WINDOW_SECS {
                out.push(format!(
                    "the root expires on {} (under six months): stock notary starts re-signing \
                     root at every publish then, which a threshold root cannot do; a renewal \
                     ceremony is due at once",
                    self.root_expires
                ));
            }
        }
        if self.require_attestation {
            for h in &self.holders {
                if let Holding::Enroll(
                    device @ (Device::Pkcs11Label(_) | Device::Pkcs11Serial(_)),
                ) = &h.holding
                {
                    out.push(format!(
                        "holder {} uses a {}, which has no attestation: enroll will refuse it \
                         while require_attestation is true",
                        h.name,
                        device.describe()
                    ));
                }
            }
        }
        out
    }

    /// The plan as written to plan.toml.
    pub(super) fn to_toml(&self) -> Result<String> {
        let (keys, previous_root) = match &self.kind {
            Kind::NewCollection(keys) => (Some(keys.clone()), None),
            Kind::Rotation(previous) => (None, Some(previous.clone())),
        };
        let file = PlanFile {
            format: FORMAT.into(),
            gun: self.gun.clone(),
            rehearsal: self.rehearsal,
            version: self.version,
            threshold: self.threshold,
            root_expires: self.root_expires.clone(),
            certificate_days: self.certificate_days,
            require_attestation: self.require_attestation,
            created: self.created.clone(),
            holders: self
                .holders
                .iter()
                .map(|h| HolderEntry {
                    name: h.name.clone(),
                    device: match &h.holding {
                        Holding::Enroll(d) => Some(d.to_string()),
                        Holding::Keep(_) => None,
                    },
                    keep: match &h.holding {
                        Holding::Keep(k) => Some(k.clone()),
                        Holding::Enroll(_) => None,
                    },
                })
                .collect(),
            retired: self.retired.clone(),
            attestation_roots: self.attestation_roots.clone(),
            keys,
            previous_root,
        };
        let body = toml::to_string(&file)?;
        Ok(format!(
            "# notary-keyd root ceremony plan: the only input of every step.\n\
             # Review all of it; its SHA-256 is read aloud and recorded in the transcript.\n\n\
             {body}"
        ))
    }

    /// Holders with a device whose enrollment `enrolled` does not have.
    pub(super) fn still_to_enroll<T>(
        &self,
        enrolled: &std::collections::BTreeMap<String, T>,
    ) -> Vec<&str> {
        self.holders
            .iter()
            .filter(|h| matches!(h.holding, Holding::Enroll(_)) && !enrolled.contains_key(&h.name))
            .map(|h| h.name.as_str())
            .collect()
    }

    /// "REHEARSAL example.com/app: new collection, root v1, threshold 2 of 3".
    pub(super) fn summary(&self) -> String {
        let kind = match &self.kind {
            Kind::NewCollection(_) => "new collection".to_string(),
            Kind::Rotation(p) => format!("rotation from root v{}", p.version),
        };
        format!(
            "{}{}: {kind}, root v{}, threshold {} of {}",
            if self.rehearsal { "REHEARSAL " } else { "" },
            self.gun,
            self.version,
            self.threshold,
            self.holders.len()
        )
    }

    pub(super) fn holder(&self, name: &str) -> Result<&Holder> {
        self.holders.iter().find(|h| h.name == name).ok_or_else(|| {
            anyhow!(
                "the plan has no holder {name}; its holders are {}",
                self.holders
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Checks a rotation plan against the root it replaces: every key of
    /// that root's root role is kept or retired by name, and its threshold
    /// can be met by the keys notary will count from it.
    pub(super) fn check_previous_root(&self, previous: &Root, now: i64) -> Result<()> {
        let Kind::Rotation(expected) = &self.kind else {
            return Ok(());
        };
        if previous.version != expected.version {
            bail!(
                "the previous root is version {}, the plan says {}",
                previous.version,
                expected.version
            );
        }
        let role = previous
            .role("root")
            .ok_or_else(|| anyhow!("the previous root defines no root role"))?;
        let kept = self.holders.iter().filter_map(|h| match &h.holding {
            Holding::Keep(id) => Some((h.name.as_str(), id.as_str())),
            Holding::Enroll(_) => None,
        });
        let retired = self
            .retired
            .iter()
            .map(|r| (r.name.as_str(), r.key.as_str()));
        let named: Vec<(&str, &str)> = kept.chain(retired).collect();
        for (name, id) in &named {
            if !role.keyids.iter().any(|k| k == id) {
                bail!(
                    "{name}'s key {id} is not a root key of the previous root v{}",
                    previous.version
                );
            }
        }
        for (i, (name, id)) in named.iter().enumerate() {
            if let Some((other, _)) = named[..i].iter().find(|(_, k)| k == id) {
                bail!("key {id} is named twice, for {other} and {name}");
            }
        }
        let unnamed: Vec<&String> = role
            .keyids
            .iter()
            .filter(|id| !named.iter().any(|(_, k)| k == id))
            .collect();
        if !unnamed.is_empty() {
            bail!(
                "the previous root's root keys {} are neither kept (--holder NAME=keep:KEYID) nor \
                 retired (--retire NAME=KEYID); name every one, so the ceremony can say whose \
                 signature is missing",
                unnamed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let envelope = SignedEnvelope::from_metadata(previous)?;
        let counted = tally(previous, RootPass::Previous, &envelope, &self.gun, now)
            .map_err(|e| anyhow!("the previous root: {e}"))?;
        let distinct = counted.keys.len() - duplicates(&counted);
        if distinct < counted.threshold as usize {
            bail!(
                "the previous root v{} needs {} signatures but notary counts only {distinct} \
                 distinct key(s) of it: the rotation could never be accepted",
                previous.version,
                counted.threshold
            );
        }
        Ok(())
    }
}

fn duplicates(t: &notary_tuf::ceremony::Tally) -> usize {
    t.duplicates().iter().map(|g| g.len() - 1).sum()
}

/// Holder names become file names: lowercase letters, digits, `-`, `_`.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        bail!(
            "holder name {name:?}: use 1-32 lowercase letters, digits, '-' or '_', starting with \
             a letter or digit"
        );
    }
    Ok(())
}

/// A path inside the bundle: relative, under `under`, no `..`.
fn check_bundle_path(path: &str, under: &str) -> Result<()> {
    let ok = path.starts_with(under)
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !ok {
        bail!("bundle path {path:?} must be a plain relative path under {under:?}");
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn role_key(seed: u8) -> RoleKey {
        RoleKey::new(
            &PublicKey::new(KeyType::Ed25519, vec![seed; 32]),
            HeldBy::Server,
        )
    }

    pub(crate) fn plan(threshold: u32, devices: &[&str]) -> Plan {
        Plan {
            gun: "example.com/app".into(),
            rehearsal: false,
            version: 1,
            threshold,
            root_expires: "2036-01-01T00:00:00Z".into(),
            certificate_days: 3700,
            require_attestation: false,
            created: "2026-01-01T00:00:00Z".into(),
            holders: devices
                .iter()
                .enumerate()
                .map(|(i, d)| Holder {
                    name: format!("h{i}"),
                    holding: Holding::Enroll(d.parse().unwrap()),
                })
                .collect(),
            retired: vec![],
            attestation_roots: vec![FileRef {
                file: "attestation-roots/1-ca.pem".into(),
                sha256: Digest::of(b"ca"),
            }],
            kind: Kind::NewCollection(OnlineKeys {
                targets: role_key(1),
                snapshot: role_key(2),
                timestamp: role_key(3),
            }),
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let p = plan(2, &["yubikey:serial=1", "pkcs11:token=b", "backend:soft"]);
        let text = p.to_toml().unwrap();
        assert!(text.starts_with("# notary-keyd root ceremony plan"));
        assert!(
            text.contains("[[holder]]\nname = \"h0\"\ndevice = \"yubikey:serial=1;slot=9c\""),
            "{text}"
        );
        assert_eq!(Plan::parse(&text).unwrap(), p);
        assert!(p.warnings().is_empty());
    }

    #[test]
    fn refuses_plans_that_can_never_be_met() {
        let devices = ["yubikey:serial=1", "pkcs11:token=b"];
        for (threshold, why) in [(0, "threshold 0"), (3, "can never be met by 2")] {
            let err = plan(threshold, &devices).check().unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let err = plan(1, &["yubikey:serial=1;slot=9c", "yubikey:serial=1;slot=9a"])
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("same device"), "{err}");
        let mut named_twice = plan(1, &devices);
        named_twice.holders[1].name = "h0".into();
        assert!(named_twice
            .check()
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let mut bad_name = plan(1, &devices);
        bad_name.holders[0].name = "../x".into();
        assert!(bad_name.check().is_err());
        let mut escape = plan(1, &devices);
        escape.attestation_roots[0].file = "attestation-roots/../plan.toml".into();
        assert!(escape.check().is_err());
        let mut early = plan(1, &devices);
        early.root_expires = "2025-01-01T00:00:00Z".into();
        assert!(early.check().is_err());
        let mut lying = plan(1, &devices);
        if let Kind::NewCollection(keys) = &mut lying.kind {
            keys.targets.key_id = "00".repeat(32);
        }
        assert!(lying.check().unwrap_err().to_string().contains("not 0000"));
    }

    #[test]
    fn warns_about_all_of_all_and_short_roots() {
        let mut p = plan(2, &["yubikey:serial=1", "pkcs11:token=b"]);
        p.root_expires = "2026-05-01T00:00:00Z".into();
        p.require_attestation = true;
        let warnings = p.warnings();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("locks the collection"));
        assert!(warnings[1].contains("renewal ceremony is due"));
        assert!(warnings[2].contains("holder h1"));
    }

    #[test]
    fn refuses_mixed_or_misplaced_fields() {
        let p = plan(1, &["pkcs11:token=b"]);
        let text = p.to_toml().unwrap();
        let keep = text.replace("device = \"pkcs11:token=b\"", "keep = \"abc\"");
        assert!(Plan::parse(&keep)
            .unwrap_err()
            .to_string()
            .contains("only a rotation"));
        let both = text.replace(
            "device = \"pkcs11:token=b\"",
            "device = \"pkcs11:token=b\"\nkeep = \"abc\"",
        );
        assert!(Plan::parse(&both)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
        let unknown = text.replace("rehearsal = false", "rehearsal = false\nextra = 1");
        assert!(Plan::parse(&unknown).is_err());
        let other = text.replace(FORMAT, "something else");
        assert!(Plan::parse(&other)
            .unwrap_err()
            .to_string()
            .contains("format"));
    }
}
