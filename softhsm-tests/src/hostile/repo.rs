//! A collection as the hostile server serves it: every role signed by keys
//! the test holds, with whatever versions, expiries, keys and delegation
//! names the attack needs. [`Repo::files`] signs it all and lays it out as
//! notary-server does (current, by-hash and by-version names).

use super::keys::Key;
use anyhow::Result;
use notary_tuf::metadata::{format_expires, DelegationRole, Delegations, RootRole};
use notary_tuf::{FileMeta, MetadataType, Root, SignedEnvelope, Snapshot, Targets, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

/// Version, expiry and signers of a role whose content the harness derives
/// (snapshot and timestamp).
#[derive(Clone)]
pub struct Stamp {
    pub version: u64,
    pub expires: String,
    pub signers: Vec<Key>,
}

/// A targets or delegation role: its content and who signs it.
#[derive(Clone)]
pub struct TargetsRole {
    pub name: String,
    pub metadata: Targets,
    pub signers: Vec<Key>,
}

#[derive(Clone)]
pub struct Repo {
    pub gun: String,
    pub root: Root,
    pub root_signers: Vec<Key>,
    /// Signed earlier root versions, served as `<version>.root.json`.
    history: Vec<Vec<u8>>,
    /// `targets` first, then delegations, in the order snapshot lists them.
    pub roles: Vec<TargetsRole>,
    pub snapshot: Stamp,
    pub timestamp: Stamp,
}

/// The files of one published state: name under `/v2/<gun>/_trust/tuf/`
/// to bytes, with a behaviour for the hostile server where one is set.
#[derive(Clone)]
pub struct Files {
    pub gun: String,
    pub files: BTreeMap<String, (Vec<u8>, Option<String>)>,
    hashed: BTreeMap<String, String>,
}

impl Files {
    /// Serves `bytes` as `name`.
    pub fn set(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.insert(name.to_string(), (bytes, None));
    }

    /// `slow MS` or `endless` for `name` (see the hostile-notary binary).
    pub fn behave(&mut self, name: &str, behaviour: &str) {
        if let Some(file) = self.files.get_mut(name) {
            file.1 = Some(behaviour.to_string());
        }
    }

    /// The by-hash name (`<role>.<sha256>.json`) of `role`'s current file.
    pub fn hashed(&self, role: &str) -> &str {
        self.hashed.get(role).map_or("", String::as_str)
    }

    pub fn bytes(&self, name: &str) -> &[u8] {
        self.files.get(name).map_or(&[], |(b, _)| b.as_slice())
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// notary's expiry text `days` from now (negative: in the past).
pub fn expires_in(days: i64) -> String {
    format_expires(now() + days * DAY, 0)
}

impl Repo {
    /// Root v1 with `root_key` as its root key and bare keys from `seed` for
    /// targets, snapshot and timestamp; targets lists one target, `v1`.
    pub fn new(gun: &str, root_key: Key, seed: u8) -> Repo {
        let targets_key = Key::ecdsa(seed.wrapping_add(1));
        let snapshot_key = Key::ecdsa(seed.wrapping_add(2));
        let timestamp_key = Key::ecdsa(seed.wrapping_add(3));
        let mut root = Root {
            kind: MetadataType::Root,
            consistent_snapshot: false,
            expires: expires_in(3650),
            keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            version: 1,
        };
        for (role, key) in [
            ("root", &root_key),
            ("targets", &targets_key),
            ("snapshot", &snapshot_key),
            ("timestamp", &timestamp_key),
        ] {
            set_role(&mut root, role, &[key], 1);
        }
        let mut targets = empty_targets();
        targets
            .targets
            .insert("v1".into(), FileMeta::for_bytes(b"v1\n"));
        Repo {
            gun: gun.to_string(),
            root,
            root_signers: vec![root_key],
            history: Vec::new(),
            roles: vec![TargetsRole {
                name: "targets".into(),
                metadata: targets,
                signers: vec![targets_key],
            }],
            snapshot: Stamp {
                version: 1,
                expires: expires_in(1095),
                signers: vec![snapshot_key],
            },
            timestamp: Stamp {
                version: 1,
                expires: expires_in(14),
                signers: vec![timestamp_key],
            },
        }
    }

    /// The `targets` role.
    pub fn targets(&mut self) -> &mut TargetsRole {
        &mut self.roles[0]
    }

    /// Starts the next root version: the current one is kept for
    /// `<version>.root.json`, and `signers` will sign the new one.
    pub fn next_root(&mut self, signers: Vec<Key>) -> Result<&mut Root> {
        self.history.push(self.signed_root()?);
        self.root.version += 1;
        self.root_signers = signers;
        Ok(&mut self.root)
    }

    /// Gives `role` of the root the `keys` and `threshold`.
    pub fn set_root_role(&mut self, role: &str, keys: &[&Key], threshold: u32) {
        set_role(&mut self.root, role, keys, threshold);
    }

    /// Adds `name` (any string: this is the attacker's metadata) to the
    /// delegations of `parent`, signed by `key`, with an empty file of its own.
    pub fn delegate(&mut self, parent: &str, name: &str, key: &Key) {
        if let Some(p) = self.roles.iter_mut().find(|r| r.name == parent) {
            let d = &mut p.metadata.delegations;
            d.keys.insert(key.id(), key.public.clone());
            d.roles.push(DelegationRole {
                keyids: vec![key.id()],
                name: name.to_string(),
                paths: vec![String::new()],
                path_hash_prefixes: None,
                threshold: 1,
            });
        }
        self.roles.push(TargetsRole {
            name: name.to_string(),
            metadata: empty_targets(),
            signers: vec![key.clone()],
        });
    }

    /// Bumps every role but root, as a new publish by the server would.
    pub fn republish(&mut self) {
        for role in &mut self.roles {
            role.metadata.version += 1;
        }
        self.snapshot.version += 1;
        self.timestamp.version += 1;
    }

    fn signed_root(&self) -> Result<Vec<u8>> {
        Ok(sign(
            &SignedEnvelope::from_metadata(&self.root)?,
            &self.root_signers,
        ))
    }

    /// Signs every role and lays out the files.
    pub fn files(&self) -> Result<Files> {
        let mut files = Files {
            gun: self.gun.clone(),
            files: BTreeMap::new(),
            hashed: BTreeMap::new(),
        };
        let root = self.signed_root()?;
        for (i, bytes) in self.history.iter().enumerate() {
            files.set(&format!("{}.root.json", i + 1), bytes.clone());
        }
        files.set(&format!("{}.root.json", self.root.version), root.clone());
        let mut meta = BTreeMap::new();
        add(&mut files, &mut meta, "root", root);
        for role in &self.roles {
            let bytes = sign(
                &SignedEnvelope::from_metadata(&role.metadata)?,
                &role.signers,
            );
            add(&mut files, &mut meta, &role.name, bytes);
        }
        let snapshot = Snapshot {
            kind: MetadataType::Snapshot,
            expires: self.snapshot.expires.clone(),
            meta,
            version: self.snapshot.version,
        };
        let bytes = sign(
            &SignedEnvelope::from_metadata(&snapshot)?,
            &self.snapshot.signers,
        );
        let mut ts_meta = BTreeMap::new();
        add(&mut files, &mut ts_meta, "snapshot", bytes);
        let timestamp = Timestamp {
            kind: MetadataType::Timestamp,
            expires: self.timestamp.expires.clone(),
            meta: ts_meta,
            version: self.timestamp.version,
        };
        let bytes = sign(
            &SignedEnvelope::from_metadata(&timestamp)?,
            &self.timestamp.signers,
        );
        files.set("timestamp.json", bytes);
        Ok(files)
    }
}

/// `role.json` and `role.<sha256>.json`, and the role's entry in `meta`.
fn add(files: &mut Files, meta: &mut BTreeMap<String, FileMeta>, role: &str, bytes: Vec<u8>) {
    let hashed = format!("{role}.{}.json", hex::encode(Sha256::digest(&bytes)));
    meta.insert(role.to_string(), FileMeta::for_bytes(&bytes));
    files.set(&format!("{role}.json"), bytes.clone());
    files.set(&hashed, bytes);
    files.hashed.insert(role.to_string(), hashed);
}

fn sign(envelope: &SignedEnvelope, signers: &[Key]) -> Vec<u8> {
    let mut envelope = envelope.clone();
    for key in signers {
        key.sign(&mut envelope);
    }
    envelope.to_bytes()
}

fn set_role(root: &mut Root, role: &str, keys: &[&Key], threshold: u32) {
    for key in keys {
        root.keys.insert(key.id(), key.public.clone());
    }
    root.roles.insert(
        role.to_string(),
        RootRole {
            keyids: keys.iter().map(|k| k.id()).collect(),
            threshold,
        },
    );
    let used: Vec<String> = root
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    root.keys.retain(|id, _| used.contains(id));
}

fn empty_targets() -> Targets {
    Targets {
        kind: MetadataType::Targets,
        delegations: Delegations::default(),
        expires: expires_in(1095),
        targets: BTreeMap::new(),
        version: 1,
    }
}
