//! Who has signed, counted with notary 0.7's rules (one vote per distinct
//! key), and said in words: `old root v3: 2 of 2 needed (alice, bob) ✓ —
//! new root v4: 1 of 2 needed (alice) ✗, 1 more of: carol, dave`.

use super::enrollment::Enrollment;
use super::plan::{Holding, Plan};
use anyhow::{anyhow, Result};
use notary_tuf::ceremony::{tally, RootPass, Tally};
use notary_tuf::{Root, SignedEnvelope};
use std::collections::BTreeMap;

/// Holder names by key ID (bare and x509 alike).
#[derive(Clone, Debug, Default)]
pub(super) struct Names(BTreeMap<String, String>);

impl Names {
    /// Every key the plan names: enrolled, kept and retired.
    pub(super) fn of(
        plan: &Plan,
        enrollments: &BTreeMap<String, Enrollment>,
        previous: Option<&Root>,
    ) -> Names {
        let mut names = Names::default();
        let mut from_previous = |name: &str, id: &str| {
            if let Some(key) = previous.and_then(|p| p.keys.get(id)) {
                names.0.insert(id.to_string(), name.to_string());
                if let Ok(bare) = key.bare_key() {
                    names.0.insert(bare.key_id(), name.to_string());
                }
            }
        };
        for holder in &plan.holders {
            if let Holding::Keep(id) = &holder.holding {
                from_previous(&holder.name, id);
            }
        }
        for retired in &plan.retired {
            from_previous(&retired.name, &retired.key);
        }
        for (name, e) in enrollments {
            names.0.insert(e.key_id.clone(), name.clone());
            names.0.insert(e.x509_key_id.clone(), name.clone());
        }
        names
    }

    /// The holder of a key, or the start of its ID.
    pub(super) fn name(&self, id: &str) -> String {
        self.0
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("key {}…", id.chars().take(12).collect::<String>()))
    }
}

/// Both of notary's passes over one new root.
pub(super) struct Votes {
    /// A rotation: the previous root's keys at its threshold.
    pub previous: Option<Tally>,
    pub new: Tally,
    names: Names,
}

impl Votes {
    pub(super) fn count(
        envelope: &SignedEnvelope,
        new: &Root,
        previous: Option<&Root>,
        gun: &str,
        now: i64,
        names: Names,
    ) -> Result<Votes> {
        let previous = previous
            .map(|p| tally(p, RootPass::Previous, envelope, gun, now))
            .transpose()
            .map_err(|e| anyhow!("the previous root: {e}"))?;
        let new = tally(new, RootPass::New, envelope, gun, now)
            .map_err(|e| anyhow!("the new root: {e}"))?;
        Ok(Votes {
            previous,
            new,
            names,
        })
    }

    /// Whether the key with this bare ID has a counted signature, for the
    /// new or the previous root.
    pub(super) fn signed_by(&self, bare_id: &str) -> bool {
        self.tallies()
            .any(|(_, t)| t.signed.iter().any(|s| s == bare_id))
    }

    /// Both rules hold and no key is listed twice.
    pub(super) fn complete(&self) -> bool {
        self.failing().is_empty()
    }

    /// Each rule that fails, in words.
    pub(super) fn failing(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tallies()
            .filter(|(_, t)| !t.met())
            .map(|(label, t)| self.rule(label, t))
            .collect();
        out.extend(self.duplicated());
        out
    }

    /// Keys the new root lists more than once: such a root is refused
    /// whatever its signatures.
    pub(super) fn duplicated(&self) -> Vec<String> {
        self.new
            .duplicates()
            .iter()
            .map(|group| {
                let holders: Vec<String> = group
                    .iter()
                    .map(|k| self.names.name(&k.listed_id))
                    .collect();
                format!(
                    "new root v{} lists one key {} times ({}): it is one vote, so the root is \
                     refused",
                    self.new.version,
                    group.len(),
                    holders.join(", ")
                )
            })
            .collect()
    }

    /// The status line.
    pub(super) fn line(&self) -> String {
        self.tallies()
            .map(|(label, t)| self.rule(label, t))
            .collect::<Vec<_>>()
            .join(" — ")
    }

    fn tallies(&self) -> impl Iterator<Item = (&'static str, &Tally)> {
        self.previous
            .iter()
            .map(|t| ("old", t))
            .chain(std::iter::once(("new", &self.new)))
    }

    fn rule(&self, label: &str, t: &Tally) -> String {
        let signed: Vec<String> = t.signed.iter().map(|id| self.names.name(id)).collect();
        let mut text = format!(
            "{label} root v{}: {} of {} needed",
            t.version,
            signed.len(),
            t.threshold
        );
        if !signed.is_empty() {
            text.push_str(&format!(" ({})", signed.join(", ")));
        }
        if t.met() {
            text.push_str(" ✓");
            return text;
        }
        text.push_str(" ✗");
        let unsigned: Vec<String> = t.unsigned().iter().map(|id| self.names.name(id)).collect();
        let short = (t.threshold as usize).saturating_sub(signed.len());
        if unsigned.len() < short {
            text.push_str(&format!(
                ", {short} more needed but only {} key(s) left that notary counts",
                unsigned.len()
            ));
        } else {
            text.push_str(&format!(", {short} more of: {}", unsigned.join(", ")));
        }
        text
    }

    /// What else a holder or verifier should know: keys notary will not
    /// count, IDs it derives differently, signatures that do not verify.
    pub(super) fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (label, t) in self.tallies() {
            for x in &t.excluded {
                out.push(format!(
                    "{label} root v{}: {} does not count: {}",
                    t.version,
                    self.names.name(&x.listed_id),
                    x.reason
                ));
            }
            for k in t.keys.iter().filter(|k| k.listed_id != k.notary_id) {
                out.push(format!(
                    "{label} root v{}: {} is listed as {} but notary derives {} from its PEM; \
                     signatures under the listed ID do not count",
                    t.version,
                    self.names.name(&k.bare_id),
                    k.listed_id,
                    k.notary_id
                ));
            }
            if t.notary_count > t.signed.len() {
                out.push(format!(
                    "{label} root v{}: notary 0.7 itself would count {} signatures (it counts key \
                     IDs); one key counts once here",
                    t.version, t.notary_count
                ));
            }
            for p in &t.problems {
                out.push(format!("{label} root v{}: {p}", t.version));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceremony::enrollment::tests::{enrollment, NOW};
    use crate::ceremony::plan::tests::plan;
    use crate::ceremony::root_builder::build;
    use notary_tuf::{Signature, SignatureMethod};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::SigningKey;
    use sha2::{Digest, Sha256};

    #[test]
    fn says_who_signed_and_who_is_still_needed() {
        let p = plan(2, &["pkcs11:token=a", "pkcs11:token=b", "pkcs11:token=c"]);
        let enrolled: BTreeMap<String, Enrollment> = (0..3)
            .map(|i| (format!("h{i}"), enrollment(&p, i, 20 + i as u8)))
            .collect();
        let root = build(&p, &enrolled, None).unwrap();
        let mut envelope = SignedEnvelope::from_metadata(&root).unwrap();
        let votes = |env: &SignedEnvelope| {
            Votes::count(
                env,
                &root,
                None,
                &p.gun,
                NOW,
                Names::of(&p, &enrolled, None),
            )
            .unwrap()
        };
        assert_eq!(
            votes(&envelope).line(),
            "new root v1: 0 of 2 needed ✗, 2 more of: h0, h1, h2"
        );
        let sign = |envelope: &mut SignedEnvelope, i: u8| {
            let key = SigningKey::from_slice(&[20 + i; 32]).unwrap();
            let sig: p256::ecdsa::Signature = key
                .sign_prehash(&Sha256::digest(&envelope.signed_bytes))
                .unwrap();
            envelope.signatures.push(Signature {
                keyid: enrolled[&format!("h{i}")].x509_key_id.clone(),
                method: SignatureMethod::Ecdsa,
                sig: sig.to_bytes().to_vec(),
            });
        };
        sign(&mut envelope, 1);
        let one = votes(&envelope);
        assert_eq!(
            one.line(),
            "new root v1: 1 of 2 needed (h1) ✗, 1 more of: h0, h2"
        );
        assert!(!one.complete());
        assert_eq!(one.failing(), [one.line()]);
        sign(&mut envelope, 2);
        let two = votes(&envelope);
        assert_eq!(two.line(), "new root v1: 2 of 2 needed (h1, h2) ✓");
        assert!(two.complete() && two.signed_by(&enrolled["h2"].key_id));
        assert!(two.notes().is_empty(), "{:?}", two.notes());
    }
}
