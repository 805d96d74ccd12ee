//! Notary 0.7's two passes over a new root, as notary-server runs them on
//! upload and a client with a cached root runs them on update
//! (`trustpinning.ValidateRoot`, trust on first use), with one change: a
//! key is one vote however many IDs or certificates it is listed under.
//!
//! For each root-role key notary decodes the PEM bundle (every block must be
//! a CERTIFICATE), wants exactly one non-CA certificate and that one first,
//! keeps it when its CN matches the GUN and `ValidateCertificate` passes
//! (expiry checked only for the new root's own keys), re-encodes it and its
//! CA certificates (for the new root, the unexpired ones) as Go writes PEM,
//! and looks signatures up by the ID of that re-encoding. A signature
//! listed under root.json's own ID therefore counts only where the two IDs
//! are the same.

use crate::metadata::{MetadataType, Root};
use crate::pem;
use crate::rootcert::{check_common_name, validate_certificate};
use crate::{verify, KeyType, PublicKey, SignedEnvelope};
use der::{Decode, Encode};
use std::collections::{BTreeMap, BTreeSet};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

/// The roles every notary root defines.
const BASE_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Which of notary's passes over a new root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootPass {
    /// The trusted root's certificates at its threshold; expiry ignored.
    Previous,
    /// The new root's own certificates at its threshold; expiry enforced.
    New,
}

/// A root key as notary re-derives it.
#[derive(Clone, Debug)]
pub struct CountedKey {
    /// The ID root.json lists the key under.
    pub listed_id: String,
    /// The ID notary computes from the re-encoded chain; a signature must
    /// name this one to count.
    pub notary_id: String,
    /// ID of the certificate's bare public key: one vote per distinct value.
    pub bare_id: String,
    rebuilt: PublicKey,
}

/// A root-role key notary does not count, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub listed_id: String,
    pub reason: String,
}

/// One pass: which keys count, and which of them signed.
#[derive(Clone, Debug)]
pub struct Tally {
    pub pass: RootPass,
    /// Version of the root whose keys and threshold this pass uses.
    pub version: u64,
    pub threshold: u32,
    /// In root.json's order; at most one per notary ID.
    pub keys: Vec<CountedKey>,
    pub excluded: Vec<Excluded>,
    /// Bare IDs of the distinct keys with a valid signature, in key order.
    pub signed: Vec<String>,
    /// What notary 0.7 itself counts: valid signatures under distinct IDs.
    pub notary_count: usize,
    /// Why a signature naming a counted key was not counted.
    pub problems: Vec<String>,
}

impl Tally {
    pub fn met(&self) -> bool {
        self.threshold >= 1 && self.signed.len() >= self.threshold as usize
    }

    /// Distinct keys (bare IDs, in key order) that have not signed.
    pub fn unsigned(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.keys
            .iter()
            .map(|k| k.bare_id.as_str())
            .filter(|id| !self.signed.iter().any(|s| s == id) && seen.insert(*id))
            .collect()
    }

    /// Keys listed more than once (under several IDs or certificates):
    /// each group shares one bare key.
    pub fn duplicates(&self) -> Vec<Vec<&CountedKey>> {
        let mut groups: BTreeMap<&str, Vec<&CountedKey>> = BTreeMap::new();
        for key in &self.keys {
            groups.entry(&key.bare_id).or_default().push(key);
        }
        groups.into_values().filter(|g| g.len() > 1).collect()
    }
}

/// Notary's structural checks on a root (`isValidRootStructure`): `_type`
/// Root, version at least 1, the four base roles, each with a threshold of
/// at least 1 and only key IDs the root defines.
pub fn check_structure(root: &Root) -> Result<(), String> {
    if root.kind != MetadataType::Root {
        return Err(format!("_type is {}, not Root", root.kind));
    }
    if root.version < 1 {
        return Err("version is 0; notary needs at least 1".into());
    }
    for name in BASE_ROLES {
        let role = root
            .role(name)
            .ok_or_else(|| format!("it defines no {name} role"))?;
        if role.threshold < 1 {
            return Err(format!("the {name} role's threshold is 0"));
        }
        if let Some(id) = role.keyids.iter().find(|id| !root.keys.contains_key(*id)) {
            return Err(format!(
                "the {name} role lists key {id}, which it does not define"
            ));
        }
    }
    Ok(())
}

/// Counts the signatures of `envelope` (a new root) against the root-role
/// keys of `keys_from`: the trusted root for [`RootPass::Previous`], the new
/// root itself for [`RootPass::New`]. `now` is Unix seconds.
pub fn tally(
    keys_from: &Root,
    pass: RootPass,
    envelope: &SignedEnvelope,
    gun: &str,
    now: i64,
) -> Result<Tally, String> {
    check_structure(keys_from).map_err(|e| format!("root v{}: {e}", keys_from.version))?;
    let role = keys_from
        .role("root")
        .ok_or_else(|| format!("root v{} defines no root role", keys_from.version))?;
    let mut keys: Vec<CountedKey> = Vec::new();
    let mut excluded = Vec::new();
    for id in &role.keyids {
        let Some(listed) = keys_from.keys.get(id) else {
            continue;
        };
        match counted_key(id, listed, gun, pass, now) {
            Ok(key) if keys.iter().any(|k| k.notary_id == key.notary_id) => {}
            Ok(key) => keys.push(key),
            Err(reason) => excluded.push(Excluded {
                listed_id: id.clone(),
                reason,
            }),
        }
    }
    let mut valid_ids = BTreeSet::new();
    let mut valid_keys = BTreeSet::new();
    let mut problems = Vec::new();
    for sig in &envelope.signatures {
        let Some(key) = keys.iter().find(|k| k.notary_id == sig.keyid) else {
            continue;
        };
        match verify(&key.rebuilt, sig.method, &envelope.signed_bytes, &sig.sig) {
            Ok(()) => {
                valid_ids.insert(sig.keyid.as_str());
                valid_keys.insert(key.bare_id.as_str());
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let mut signed: Vec<String> = Vec::new();
    for key in &keys {
        if valid_keys.contains(key.bare_id.as_str()) && !signed.contains(&key.bare_id) {
            signed.push(key.bare_id.clone());
        }
    }
    Ok(Tally {
        pass,
        version: keys_from.version,
        threshold: role.threshold,
        notary_count: valid_ids.len(),
        keys,
        excluded,
        signed,
        problems,
    })
}

/// A root-role key as notary's parseAllCerts, validRootLeafCerts and
/// CertsToKeys turn it into the key signatures are checked with.
fn counted_key(
    listed_id: &str,
    listed: &PublicKey,
    gun: &str,
    pass: RootPass,
    now: i64,
) -> Result<CountedKey, String> {
    if !listed.keytype().is_x509() {
        return Err(format!(
            "it is a bare {} key; notary counts only certificates",
            listed.keytype()
        ));
    }
    let blocks = pem::parse_blocks(listed.public_bytes())
        .map_err(|e| format!("its PEM text does not decode ({e})"))?;
    let mut chain = Vec::new();
    for block in blocks {
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "it holds a {:?} PEM block; notary accepts only certificates",
                block.label
            ));
        }
        let cert = Certificate::from_der(&block.der)
            .map_err(|e| format!("a certificate does not parse ({e})"))?;
        chain.push((block.der, cert));
    }
    let leaves = chain.iter().filter(|(_, c)| !is_ca(c)).count();
    let Some((leaf_der, leaf)) = chain.first().filter(|(_, c)| leaves == 1 && !is_ca(c)) else {
        return Err("notary wants exactly one non-CA certificate, first in the bundle".into());
    };
    check_common_name(leaf, gun).map_err(|e| e.to_string())?;
    let expiry = (pass == RootPass::New).then_some(now);
    validate_certificate(leaf, expiry).map_err(|e| e.to_string())?;
    let spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    let bare = PublicKey::from_spki_der(&spki).map_err(|e| e.to_string())?;
    let keytype = match bare.keytype() {
        KeyType::Ecdsa => KeyType::EcdsaX509,
        KeyType::Rsa => KeyType::RsaX509,
        other => {
            return Err(format!(
                "its certificate holds a {other} key, which notary never counts"
            ))
        }
    };
    let mut text = pem::encode("CERTIFICATE", leaf_der);
    for (der, cert) in &chain[1..] {
        if pass == RootPass::Previous || validate_certificate(cert, Some(now)).is_ok() {
            text.push_str(&pem::encode("CERTIFICATE", der));
        }
    }
    let rebuilt = PublicKey::new(keytype, text.into_bytes());
    Ok(CountedKey {
        listed_id: listed_id.to_string(),
        notary_id: rebuilt.key_id(),
        bare_id: bare.key_id(),
        rebuilt,
    })
}

/// Go's `IsCA`: a basicConstraints extension saying CA.
fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == crate::oids::BASIC_CONSTRAINTS)
        .any(|ext| BasicConstraints::from_der(ext.extn_value.as_bytes()).is_ok_and(|bc| bc.ca))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::RootRole;
    use crate::rootcert::{assemble_root_cert, root_cert_tbs};
    use crate::{Signature, SignatureMethod};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;
    use sha2::{Digest, Sha256};

    const GUN: &str = "example.com/ceremony";
    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    struct Holder {
        signing: SigningKey,
        cert: PublicKey,
    }

    fn holder(seed: u8, serial: u8, not_before: i64, days: u32) -> Holder {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let spki = signing.verifying_key().to_public_key_der().unwrap();
        let tbs = root_cert_tbs(GUN, spki.as_bytes(), [serial; 16], not_before, days).unwrap();
        let sig: p256::ecdsa::Signature = signing.sign_prehash(&Sha256::digest(&tbs)).unwrap();
        let pem = assemble_root_cert(&tbs, &sig.to_bytes()).unwrap();
        Holder {
            signing,
            cert: PublicKey::from_certificate_pem(&pem).unwrap(),
        }
    }

    fn root(holders: &[&PublicKey], threshold: u32, version: u64) -> Root {
        let other = PublicKey::new(KeyType::Ed25519, vec![7; 32]);
        let mut keys = BTreeMap::from([(other.key_id(), other.clone())]);
        let mut roles = BTreeMap::new();
        for name in ["targets", "snapshot", "timestamp"] {
            roles.insert(
                name.to_string(),
                RootRole {
                    keyids: vec![other.key_id()],
                    threshold: 1,
                },
            );
        }
        let ids: Vec<String> = holders.iter().map(|k| k.key_id()).collect();
        for key in holders {
            keys.insert(key.key_id(), (*key).clone());
        }
        roles.insert(
            "root".into(),
            RootRole {
                keyids: ids,
                threshold,
            },
        );
        Root {
            kind: MetadataType::Root,
            consistent_snapshot: false,
            expires: "2030-01-01T00:00:00Z".into(),
            keys,
            roles,
            version,
        }
    }

    fn sign(envelope: &mut SignedEnvelope, h: &Holder, listed: &str) {
        let sig: p256::ecdsa::Signature = h
            .signing
            .sign_prehash(&Sha256::digest(&envelope.signed_bytes))
            .unwrap();
        envelope.signatures.push(Signature {
            keyid: listed.to_string(),
            method: SignatureMethod::Ecdsa,
            sig: sig.to_bytes().to_vec(),
        });
    }

    #[test]
    fn two_of_three_counts_distinct_signers() {
        let hs: Vec<Holder> = (1..=3).map(|i| holder(i, i, NOW - DAY, 3650)).collect();
        let keys: Vec<&PublicKey> = hs.iter().map(|h| &h.cert).collect();
        let new = root(&keys, 2, 1);
        let mut env = SignedEnvelope::from_metadata(&new).unwrap();
        sign(&mut env, &hs[0], &hs[0].cert.key_id());
        sign(&mut env, &hs[0], &hs[0].cert.key_id());
        let t = tally(&new, RootPass::New, &env, GUN, NOW).unwrap();
        assert!(!t.met());
        assert_eq!(t.signed.len(), 1);
        assert_eq!(t.unsigned().len(), 2);
        assert!(t.keys.iter().all(|k| k.listed_id == k.notary_id));
        sign(&mut env, &hs[2], &hs[2].cert.key_id());
        let t = tally(&new, RootPass::New, &env, GUN, NOW).unwrap();
        assert!(t.met());
        assert_eq!(t.notary_count, 2);
        assert_eq!(t.unsigned(), [hs[1].cert.bare_key().unwrap().key_id()]);
    }

    #[test]
    fn one_key_under_two_certificates_is_one_vote() {
        let a = holder(1, 1, NOW - DAY, 3650);
        let mut again = holder(1, 2, NOW - DAY, 3650);
        again.signing = a.signing.clone();
        let new = root(&[&a.cert, &again.cert], 2, 1);
        let mut env = SignedEnvelope::from_metadata(&new).unwrap();
        sign(&mut env, &a, &a.cert.key_id());
        sign(&mut env, &a, &again.cert.key_id());
        let t = tally(&new, RootPass::New, &env, GUN, NOW).unwrap();
        assert_eq!(t.notary_count, 2, "notary 0.7 counts IDs");
        assert_eq!(t.signed.len(), 1);
        assert!(!t.met());
        assert_eq!(t.duplicates().len(), 1);
        assert_eq!(t.duplicates()[0].len(), 2);
    }

    #[test]
    fn a_respelled_pem_is_counted_under_notarys_id_only() {
        let a = holder(1, 1, NOW - DAY, 3650);
        let mut text = a.cert.public_bytes().to_vec();
        text.push(b'\n');
        let respelled = PublicKey::new(KeyType::EcdsaX509, text);
        let new = root(&[&respelled], 1, 1);
        let mut env = SignedEnvelope::from_metadata(&new).unwrap();
        sign(&mut env, &a, &respelled.key_id());
        let t = tally(&new, RootPass::New, &env, GUN, NOW).unwrap();
        assert_eq!(t.keys[0].notary_id, a.cert.key_id());
        assert_ne!(t.keys[0].listed_id, t.keys[0].notary_id);
        assert!(
            !t.met(),
            "a signature under root.json's ID is unknown to notary"
        );
        sign(&mut env, &a, &a.cert.key_id());
        assert!(tally(&new, RootPass::New, &env, GUN, NOW).unwrap().met());
    }

    #[test]
    fn expiry_counts_for_the_new_root_only_and_cn_always() {
        let expired = holder(1, 1, NOW - 400 * DAY, 30);
        let fresh = holder(2, 2, NOW - DAY, 3650);
        let old = root(&[&expired.cert, &fresh.cert], 2, 3);
        let mut env = SignedEnvelope::from_metadata(&root(&[&fresh.cert], 1, 4)).unwrap();
        sign(&mut env, &expired, &expired.cert.key_id());
        sign(&mut env, &fresh, &fresh.cert.key_id());
        let prev = tally(&old, RootPass::Previous, &env, GUN, NOW).unwrap();
        assert!(prev.met());
        assert_eq!(prev.version, 3);
        let as_new = tally(&old, RootPass::New, &env, GUN, NOW).unwrap();
        assert_eq!(as_new.excluded.len(), 1);
        assert!(
            as_new.excluded[0].reason.contains("expired"),
            "{:?}",
            as_new.excluded
        );
        assert!(!as_new.met());
        let other_gun = tally(&old, RootPass::Previous, &env, "example.com/other", NOW).unwrap();
        assert_eq!(other_gun.excluded.len(), 2);
        assert!(other_gun.excluded[0].reason.contains("does not match GUN"));
    }

    #[test]
    fn bare_keys_and_broken_roots() {
        let a = holder(1, 1, NOW - DAY, 3650);
        let bare = a.cert.bare_key().unwrap();
        let new = root(&[&a.cert, &bare], 1, 1);
        let env = SignedEnvelope::from_metadata(&new).unwrap();
        let t = tally(&new, RootPass::New, &env, GUN, NOW).unwrap();
        assert_eq!(t.keys.len(), 1);
        assert!(t.excluded[0].reason.contains("bare ecdsa key"));
        let mut broken = new.clone();
        broken.roles.remove("snapshot");
        assert_eq!(
            check_structure(&broken).unwrap_err(),
            "it defines no snapshot role"
        );
        assert!(tally(&broken, RootPass::New, &env, GUN, NOW).is_err());
        let mut zero = new;
        zero.roles.get_mut("root").unwrap().threshold = 0;
        assert!(check_structure(&zero)
            .unwrap_err()
            .contains("threshold is 0"));
    }
}
