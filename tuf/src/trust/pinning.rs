//! Trust pinning from notary's client config (`trust_pinning`), with
//! notary's precedence: exact `certs` GUN, the longest matching wildcard
//! `certs` entry, the longest matching `ca` prefix, then TOFU unless disabled.

use super::cert_chain::{chains_to, key_chain, usable_anchors};
use super::TrustError;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct TrustPinning {
    /// GUN (or `prefix*`) to the x509 key IDs (as in root.json) it may use.
    #[serde(default)]
    pub certs: BTreeMap<String, Vec<String>>,
    /// GUN prefix to a CA bundle. The config holds a file path; the caller
    /// replaces it with the bundle's PEM text before verification.
    #[serde(default)]
    pub ca: BTreeMap<String, String>,
    #[serde(default)]
    pub disable_tofu: bool,
}

/// How a first root of a GUN is to be trusted.
#[derive(Debug, PartialEq, Eq)]
pub enum Pin<'a> {
    Certs(&'a [String]),
    Ca {
        prefix: &'a str,
        bundle_pem: &'a str,
    },
    Tofu,
    Refuse,
}

impl TrustPinning {
    pub fn pin_for(&self, gun: &str) -> Pin<'_> {
        if let Some(ids) = self.certs.get(gun) {
            return Pin::Certs(ids);
        }
        let wildcard = self
            .certs
            .iter()
            .filter_map(|(pattern, ids)| {
                let prefix = pattern.strip_suffix('*')?;
                gun.starts_with(prefix).then_some((prefix.len(), ids))
            })
            .max_by_key(|(len, _)| *len);
        if let Some((_, ids)) = wildcard {
            return Pin::Certs(ids);
        }
        let ca = self
            .ca
            .iter()
            .filter(|(prefix, _)| gun.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len());
        if let Some((prefix, bundle_pem)) = ca {
            return Pin::Ca { prefix, bundle_pem };
        }
        if self.disable_tofu {
            Pin::Refuse
        } else {
            Pin::Tofu
        }
    }
}

/// Whether the x509 root key `key_pem` (leaf, then intermediates) chains
/// to a usable certificate of the CA bundle pinned for `prefix` at `now`.
/// A key that is not a well-formed notary chain does not.
pub(crate) fn chains_to_ca(
    key_pem: &[u8],
    prefix: &str,
    bundle_pem: &str,
    now: i64,
) -> Result<bool, TrustError> {
    let anchors = usable_anchors(bundle_pem, now).map_err(|e| TrustError::BadCaBundle {
        prefix: prefix.to_string(),
        why: e.to_string(),
    })?;
    Ok(key_chain(key_pem).is_ok_and(|chain| chains_to(&chain, &anchors, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_exact_wildcard_ca_tofu() {
        let mut pins = TrustPinning::default();
        assert_eq!(pins.pin_for("a.com/x"), Pin::Tofu);
        pins.ca.insert("a.com/".into(), "PEM1".into());
        pins.ca.insert("a.com/x".into(), "PEM2".into());
        assert_eq!(
            pins.pin_for("a.com/xy"),
            Pin::Ca {
                prefix: "a.com/x",
                bundle_pem: "PEM2"
            }
        );
        pins.certs.insert("a.com/*".into(), vec!["w1".into()]);
        pins.certs.insert("a.com/x*".into(), vec!["w2".into()]);
        assert_eq!(pins.pin_for("a.com/xy"), Pin::Certs(&["w2".to_string()]));
        pins.certs.insert("a.com/xy".into(), vec!["e".into()]);
        assert_eq!(pins.pin_for("a.com/xy"), Pin::Certs(&["e".to_string()]));
        let no_tofu = TrustPinning {
            disable_tofu: true,
            ..TrustPinning::default()
        };
        assert_eq!(no_tofu.pin_for("b.com/x"), Pin::Refuse);
    }
}
