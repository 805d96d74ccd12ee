//! What a key is used for, as far as this machine knows: its binding in
//! notary-keyd, and the collections in the trust dir whose cached (trusted)
//! metadata names it. `key delete` refuses such a key without --force.

use crate::trust_dir::{GunDir, TrustDir};
use anyhow::Result;
use keyd_proto::convert::role_name;
use keyd_proto::keyd as pb;
use notary_tuf::metadata::canonical_key_id;
use notary_tuf::{PublicKey, Role, Root, SignedEnvelope, Targets};
use std::collections::BTreeMap;
use std::path::Path;

/// One line per use of `key`, for a person to read.
pub(crate) fn uses(key: &pb::Key, trust_dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let role = role_name(key.role, &key.delegation);
    match (role.as_str(), key.gun.as_str()) {
        ("", "") => {}
        (role, "") => found.push(format!("it is bound to role {role}")),
        ("", gun) => found.push(format!("it is bound to GUN {gun}")),
        (role, gun) => found.push(format!("it is bound to role {role} of GUN {gun}")),
    }
    for gun in TrustDir::new(trust_dir.to_path_buf()).guns()? {
        for role in roles_naming(&gun, &key.key_id) {
            found.push(format!(
                "the trusted metadata of {} in {} lists it as a {role} key",
                gun.gun,
                trust_dir.display()
            ));
        }
    }
    Ok(found)
}

/// The roles of a cached collection whose keys include `key_id` (bare, or
/// behind a certificate). Unreadable cache files name nothing.
fn roles_naming(gun: &GunDir, key_id: &str) -> Vec<String> {
    let mut roles = Vec::new();
    let Some(root) = cached::<Root>(gun, &Role::Root) else {
        return roles;
    };
    for (name, role) in &root.roles {
        if names(&root.keys, &role.keyids, key_id) {
            roles.push(name.clone());
        }
    }
    let mut pending = vec![Role::Targets];
    while let Some(parent) = pending.pop() {
        let Some(targets) = cached::<Targets>(gun, &parent) else {
            continue;
        };
        for d in &targets.delegations.roles {
            if names(&targets.delegations.keys, &d.keyids, key_id) {
                roles.push(d.name.clone());
            }
            if let Ok(child) = Role::parse(&d.name) {
                pending.push(child);
            }
        }
    }
    roles
}

fn cached<T: notary_tuf::metadata::Metadata>(gun: &GunDir, role: &Role) -> Option<T> {
    let bytes = gun.read_cached(role).ok()??;
    SignedEnvelope::parse(&bytes).ok()?.decode().ok()
}

fn names(keys: &BTreeMap<String, PublicKey>, keyids: &[String], key_id: &str) -> bool {
    keyids
        .iter()
        .filter_map(|id| keys.get(id))
        .any(|listed| canonical_key_id(listed).is_ok_and(|id| id == key_id))
}
