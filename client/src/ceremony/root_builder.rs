//! The new root, built the same way on every machine from the plan, the
//! enrollments and (for a rotation) the previous root: the holders'
//! certificates in plan order at the plan's threshold, the plan's expiry
//! and version, and the targets, snapshot and timestamp keys of the plan
//! (a new collection) or of the previous root (a rotation).

use super::enrollment::Enrollment;
use super::plan::{Holding, Kind, Plan};
use anyhow::{anyhow, bail, Result};
use notary_tuf::metadata::RootRole;
use notary_tuf::{MetadataType, PublicKey, Root};
use std::collections::BTreeMap;

const ONLINE_ROLES: [&str; 3] = ["targets", "snapshot", "timestamp"];

/// The root key of each holder, in plan order.
pub fn holder_keys(
    plan: &Plan,
    enrollments: &BTreeMap<String, Enrollment>,
    previous: Option<&Root>,
) -> Result<Vec<(String, PublicKey)>> {
    let missing: Vec<&str> = plan
        .holders
        .iter()
        .filter(|h| matches!(h.holding, Holding::Enroll(_)) && !enrollments.contains_key(&h.name))
        .map(|h| h.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "not every holder has enrolled yet; still to enroll: {}",
            missing.join(", ")
        );
    }
    let mut keys: Vec<(String, PublicKey)> = Vec::new();
    for holder in &plan.holders {
        let key = match &holder.holding {
            Holding::Enroll(_) => enrollments[&holder.name].root_key()?,
            Holding::Keep(id) => {
                previous
                    .and_then(|p| p.keys.get(id))
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!(
                            "{}'s kept key {id} is not in the previous root",
                            holder.name
                        )
                    })?
            }
        };
        let bare = key.bare_key()?.key_id();
        for (other, seen) in &keys {
            if seen.bare_key()?.key_id() == bare {
                bail!(
                    "{other} and {} hold the same key {bare}: it would be listed twice and \
                     count once, so the root is refused",
                    holder.name
                );
            }
        }
        keys.push((holder.name.clone(), key));
    }
    Ok(keys)
}

/// The root this ceremony signs.
pub fn build(
    plan: &Plan,
    enrollments: &BTreeMap<String, Enrollment>,
    previous: Option<&Root>,
) -> Result<Root> {
    let holders = holder_keys(plan, enrollments, previous)?;
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    let mut root_ids = Vec::new();
    for (_, key) in &holders {
        root_ids.push(key.key_id());
        keys.insert(key.key_id(), key.clone());
    }
    roles.insert(
        "root".to_string(),
        RootRole {
            keyids: root_ids,
            threshold: plan.threshold,
        },
    );
    let consistent_snapshot = match &plan.kind {
        Kind::NewCollection(online) => {
            for (role, key) in [
                ("targets", &online.targets),
                ("snapshot", &online.snapshot),
                ("timestamp", &online.timestamp),
            ] {
                let key = key.public_key(role)?;
                roles.insert(
                    role.to_string(),
                    RootRole {
                        keyids: vec![key.key_id()],
                        threshold: 1,
                    },
                );
                keys.insert(key.key_id(), key);
            }
            false
        }
        Kind::Rotation(_) => {
            let previous =
                previous.ok_or_else(|| anyhow!("a rotation is built on its previous root"))?;
            for role in ONLINE_ROLES {
                let kept = previous
                    .role(role)
                    .ok_or_else(|| anyhow!("the previous root defines no {role} role"))?;
                for id in &kept.keyids {
                    let key = previous.keys.get(id).ok_or_else(|| {
                        anyhow!("the previous root lists {role} key {id} without defining it")
                    })?;
                    keys.insert(id.clone(), key.clone());
                }
                roles.insert(role.to_string(), kept.clone());
            }
            previous.consistent_snapshot
        }
    };
    Ok(Root {
        kind: MetadataType::Root,
        consistent_snapshot,
        expires: plan.root_expires.clone(),
        keys,
        roles,
        version: plan.version,
    })
}
