//! What a holder is asked to sign, computed from the bundle on their own
//! machine: the new root's version, expiry, threshold and keys with holder
//! names and devices, and for a rotation what changes from the old root.

use super::votes::Names;
use notary_tuf::{PublicKey, Root};
use std::collections::BTreeMap;
use std::fmt::Write;

const ONLINE_ROLES: [&str; 3] = ["targets", "snapshot", "timestamp"];

/// One root key as the screen shows it.
struct Shown {
    listed_id: String,
    bare_id: String,
}

fn root_keys(root: &Root) -> Vec<Shown> {
    root.role("root")
        .map(|r| r.keyids.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|id| Shown {
            listed_id: id.clone(),
            bare_id: root
                .keys
                .get(id)
                .and_then(|k: &PublicKey| k.bare_key().ok())
                .map_or_else(|| id.clone(), |k| k.key_id()),
        })
        .collect()
}

fn threshold(root: &Root) -> String {
    let role = root.role("root");
    format!(
        "{} of {}",
        role.map_or(0, |r| r.threshold),
        role.map_or(0, |r| r.keyids.len())
    )
}

fn online_keys(root: &Root, role: &str) -> String {
    root.role(role)
        .map(|r| r.keyids.join(", "))
        .unwrap_or_else(|| "(none)".into())
}

/// The screen a holder reads before typing the confirmation word.
/// `devices` describes enrolled keys (by bare ID).
pub(super) fn describe(
    gun: &str,
    new: &Root,
    previous: Option<&Root>,
    names: &Names,
    devices: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let key_line = |mark: &str, k: &Shown| {
        let device = devices
            .get(&k.bare_id)
            .cloned()
            .unwrap_or_else(|| "key of the previous root".into());
        format!(
            "    {mark} {:<12} {}  {device}\n",
            names.name(&k.bare_id),
            k.listed_id
        )
    };
    let new_keys = root_keys(new);
    match previous {
        None => {
            let _ = writeln!(out, "New collection {gun}: root v{}", new.version);
            let _ = writeln!(out, "  expires:    {}", new.expires);
            let _ = writeln!(out, "  threshold:  {}", threshold(new));
            let _ = writeln!(out, "  root keys:");
            for k in &new_keys {
                out.push_str(&key_line("+", k));
            }
            for role in ONLINE_ROLES {
                let _ = writeln!(out, "  {role:<10}  {}", online_keys(new, role));
            }
        }
        Some(old) => {
            let old_keys = root_keys(old);
            let _ = writeln!(
                out,
                "Rotation of {gun}: root v{} -> v{}",
                old.version, new.version
            );
            let _ = writeln!(out, "  expires:    {} -> {}", old.expires, new.expires);
            let _ = writeln!(
                out,
                "  threshold:  {} -> {}",
                threshold(old),
                threshold(new)
            );
            let _ = writeln!(out, "  root keys (= kept, - removed, + added):");
            for k in &old_keys {
                let kept = new_keys.iter().any(|n| n.listed_id == k.listed_id);
                out.push_str(&key_line(if kept { "=" } else { "-" }, k));
            }
            for k in new_keys
                .iter()
                .filter(|n| !old_keys.iter().any(|o| o.listed_id == n.listed_id))
            {
                out.push_str(&key_line("+", k));
            }
            for role in ONLINE_ROLES {
                let (was, now) = (online_keys(old, role), online_keys(new, role));
                if was == now {
                    let _ = writeln!(out, "  {role:<10}  {now} (unchanged)");
                } else {
                    let _ = writeln!(out, "  {role:<10}  {was} -> {now}");
                }
            }
        }
    }
    out
}
