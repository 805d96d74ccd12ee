//! A threshold root must be renewed by a ceremony before stock notary's
//! publish starts re-signing it (six months before it expires), because
//! no single publisher can sign it alone; notaryctl never tries.

use super::plan::RENEWAL_WINDOW_SECS;
use notary_tuf::metadata::Metadata;
use notary_tuf::Root;

/// The warning to show when `root` of `gun` is due for renewal at `now`.
pub(crate) fn due(gun: &str, root: &Root, now: i64) -> Option<String> {
    let expires = root.expires_unix().ok()?;
    if expires - now >= RENEWAL_WINDOW_SECS {
        return None;
    }
    let days = (expires - now).max(0) / 86_400;
    let threshold = root.role("root").map_or(1, |r| r.threshold);
    Some(format!(
        "the root of {gun} (v{}) expires on {} (in {days} days): a renewal ceremony is due \
         (docs/ceremonies.md). Stock `notary publish` re-signs root from now on, which {}; \
         notaryctl never re-signs root on its own",
        root.version,
        root.expires,
        if threshold > 1 {
            format!("needs {threshold} root keys and so fails")
        } else {
            "needs the root key on the publisher's machine".to_string()
        }
    ))
}

/// Prints the warning on stderr when it applies.
pub(crate) fn warn(gun: &str, root: &Root) {
    if let Some(text) = due(gun, root, crate::collection::update::now()) {
        eprintln!("warning: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notary_tuf::metadata::{format_expires, RootRole};
    use notary_tuf::MetadataType;
    use std::collections::BTreeMap;

    fn root(expires: i64, threshold: u32) -> Root {
        Root {
            kind: MetadataType::Root,
            consistent_snapshot: false,
            expires: format_expires(expires, 0),
            keys: BTreeMap::new(),
            roles: BTreeMap::from([(
                "root".to_string(),
                RootRole {
                    keyids: vec![],
                    threshold,
                },
            )]),
            version: 3,
        }
    }

    #[test]
    fn due_within_six_months_only() {
        let now = 1_900_000_000;
        assert!(due("g", &root(now + 200 * 86_400, 2), now).is_none());
        let text = due("g", &root(now + 100 * 86_400, 2), now).unwrap();
        assert!(text.contains("in 100 days"), "{text}");
        assert!(text.contains("needs 2 root keys"), "{text}");
        let text = due("g", &root(now - 5, 1), now).unwrap();
        assert!(text.contains("in 0 days"), "{text}");
    }
}
