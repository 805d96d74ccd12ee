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
pub(super) fn holder_keys(
    plan: &Plan,
    enrollments: &BTreeMap<String, Enrollment>,
    previous: Option<&Root>,
) -> Result<Vec<(String, PublicKey)>> {
    let missing = plan.still_to_enroll(enrollments);
    if !missing.is_empty() {
        bail!(
            "not every holder has enrolled yet; still to enroll: {}",
            missing.join(", ")
        );
    }
    let mut keys: Vec<(String, PublicKey)> = Vec::new();
    for holder in &plan.holders {
        let key = match &holder.holding {
            Holding::Enroll(_) => enrollments
                .get(&holder.name)
                .ok_or_else(|| anyhow!("{} has not enrolled", holder.name))?
                .root_key()?,
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
pub(super) fn build(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceremony::enrollment::tests::enrollment;
    use crate::ceremony::plan::tests::plan;

    fn three() -> (Plan, BTreeMap<String, Enrollment>) {
        let p = plan(2, &["pkcs11:token=a", "pkcs11:token=b", "pkcs11:token=c"]);
        let enrolled = (0..3)
            .map(|i| (format!("h{i}"), enrollment(&p, i, 10 + i as u8)))
            .collect();
        (p, enrolled)
    }

    #[test]
    fn builds_the_same_root_from_plan_and_enrollments() {
        let (p, enrolled) = three();
        let root = build(&p, &enrolled, None).unwrap();
        assert_eq!(root, build(&p, &enrolled, None).unwrap());
        let role = &root.roles["root"];
        assert_eq!(role.threshold, 2);
        let expected: Vec<String> = (0..3)
            .map(|i| enrolled[&format!("h{i}")].x509_key_id.clone())
            .collect();
        assert_eq!(role.keyids, expected, "plan order");
        assert_eq!(root.version, 1);
        assert_eq!(root.expires, p.root_expires);
        for name in ONLINE_ROLES {
            assert_eq!(root.roles[name].keyids.len(), 1);
            assert!(root.keys.contains_key(&root.roles[name].keyids[0]));
        }
        notary_tuf::ceremony::check_structure(&root).unwrap();
    }

    #[test]
    fn refuses_missing_holders_and_one_key_twice() {
        let (p, mut enrolled) = three();
        let mut partial = enrolled.clone();
        partial.remove("h1");
        let err = build(&p, &partial, None).unwrap_err().to_string();
        assert!(err.contains("still to enroll: h1"), "{err}");
        // h2 enrolled with h0's key.
        enrolled.insert("h2".into(), enrollment(&p, 2, 10));
        let err = build(&p, &enrolled, None).unwrap_err().to_string();
        assert!(err.contains("h0 and h2 hold the same key"), "{err}");
    }
}
