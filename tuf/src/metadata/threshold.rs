//! Threshold verification of a role's signatures, as notary's
//! `VerifySignatures` does it, except that a key counts once however many
//! IDs it is listed under: as an x509 certificate and as a bare key, as two
//! certificates, or as two PEM spellings of one certificate.

use super::SignedEnvelope;
use crate::{verify, KeyError, PublicKey, VerifyError};
use std::collections::{BTreeMap, BTreeSet};

/// notary's "canonical key ID": the ID of the bare key behind `key`, the
/// same for every form one key can be listed in.
pub fn canonical_key_id(key: &PublicKey) -> Result<String, KeyError> {
    if key.keytype().is_x509() {
        Ok(key.bare_key()?.key_id())
    } else {
        Ok(key.key_id())
    }
}

/// The distinct keys (by canonical key ID) of `keyids` with a valid
/// signature over the canonical `signed`, and why other signatures by
/// those keys did not count.
#[derive(Debug, Default)]
pub struct Signers {
    pub keys: BTreeSet<String>,
    /// Signatures by listed keys that do not verify.
    pub rejected: Vec<String>,
    /// Valid signatures by a key already counted under another ID.
    pub repeated: Vec<String>,
}

/// Collects the valid signers of `envelope` among `keyids` (and present in
/// `keys`). Signatures by other keys are skipped; a signature whose key's
/// computed ID differs from its `keyid` fails the whole check, as in notary.
/// This is the vote count a threshold is compared with.
pub fn valid_signers(
    envelope: &SignedEnvelope,
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
) -> Result<Signers, VerifyError> {
    let mut signers = Signers::default();
    // Canonical ID -> the first listed ID it was counted under.
    let mut counted: BTreeMap<String, &str> = BTreeMap::new();
    for sig in &envelope.signatures {
        if !keyids.contains(&sig.keyid) {
            continue;
        }
        let Some(key) = keys.get(&sig.keyid) else {
            continue;
        };
        let computed = key.key_id();
        if computed != sig.keyid {
            return Err(VerifyError::KeyIdMismatch {
                listed: sig.keyid.clone(),
                computed,
            });
        }
        if let Err(e) = verify(key, sig.method, &envelope.signed_bytes, &sig.sig) {
            signers.rejected.push(e.to_string());
            continue;
        }
        let canonical = canonical_key_id(key).map_err(|source| VerifyError::Key {
            keyid: sig.keyid.clone(),
            source,
        })?;
        match counted.get(&canonical) {
            Some(first) if *first != sig.keyid => signers.repeated.push(format!(
                "keys {first} and {} are the same key, which counts once",
                sig.keyid
            )),
            Some(_) => {}
            None => {
                counted.insert(canonical.clone(), &sig.keyid);
                signers.keys.insert(canonical);
            }
        }
    }
    Ok(signers)
}

/// Succeeds when at least `threshold` distinct keys listed in `keyids` (and
/// present in `keys`) have a valid signature over the canonical `signed`.
pub fn verify_role(
    envelope: &SignedEnvelope,
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<(), VerifyError> {
    if threshold < 1 {
        return Err(VerifyError::BadThreshold(threshold));
    }
    if envelope.signatures.is_empty() {
        return Err(VerifyError::NoSignatures);
    }
    let signers = valid_signers(envelope, keys, keyids)?;
    if signers.keys.len() < threshold as usize {
        let mut problems = signers.rejected;
        problems.extend(signers.repeated);
        return Err(VerifyError::Threshold {
            valid: signers.keys.len(),
            needed: threshold,
            problems,
        });
    }
    Ok(())
}

/// Two IDs in `keyids` that name one key, if any: a role listing them
/// would let that key count as two.
pub fn duplicate_key(
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
) -> Result<Option<(String, String)>, KeyError> {
    let mut seen: BTreeMap<String, &String> = BTreeMap::new();
    for id in keyids {
        let Some(key) = keys.get(id) else { continue };
        let canonical = canonical_key_id(key)?;
        if let Some(first) = seen.get(&canonical) {
            if *first != id {
                return Ok(Some(((*first).clone(), id.clone())));
            }
        }
        seen.entry(canonical).or_insert(id);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyType, Signature, SignatureMethod};
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    fn key(seed: u8) -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let pk = PublicKey::new(KeyType::Ed25519, sk.verifying_key().to_bytes().to_vec());
        (sk, pk)
    }

    fn sign(env: &mut SignedEnvelope, sk: &SigningKey, pk: &PublicKey) {
        env.signatures.push(Signature {
            keyid: pk.key_id(),
            method: SignatureMethod::Eddsa,
            sig: sk.sign(&env.signed_bytes).to_bytes().to_vec(),
        });
    }

    #[test]
    fn counts_distinct_valid_keys() {
        let (sk1, pk1) = key(1);
        let (sk2, pk2) = key(2);
        let (sk3, pk3) = key(3);
        let keys = BTreeMap::from([(pk1.key_id(), pk1.clone()), (pk2.key_id(), pk2.clone())]);
        let ids = vec![pk1.key_id(), pk2.key_id()];
        let mut env = SignedEnvelope::from_signed(json!({"_type":"Targets"})).unwrap();
        assert!(matches!(
            verify_role(&env, &keys, &ids, 1),
            Err(VerifyError::NoSignatures)
        ));
        sign(&mut env, &sk1, &pk1);
        sign(&mut env, &sk1, &pk1);
        sign(&mut env, &sk3, &pk3); // unknown key: skipped
        verify_role(&env, &keys, &ids, 1).unwrap();
        let err = verify_role(&env, &keys, &ids, 2).unwrap_err();
        assert_eq!(err.to_string(), "1 valid signature(s) of 2 needed");
        sign(&mut env, &sk2, &pk2);
        verify_role(&env, &keys, &ids, 2).unwrap();
        assert!(matches!(
            verify_role(&env, &keys, &ids, 0),
            Err(VerifyError::BadThreshold(0))
        ));
        // A key in the map but not listed for the role does not count.
        assert!(verify_role(&env, &keys, &ids[..1], 2).is_err());
    }

    /// An ECDSA key as a bare key and as two spellings of one certificate.
    fn one_key_three_ways() -> (p256::ecdsa::SigningKey, [PublicKey; 3]) {
        use crate::rootcert::{assemble_root_cert, root_cert_tbs};
        use p256::pkcs8::EncodePublicKey;
        let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let spki = sk.verifying_key().to_public_key_der().unwrap().to_vec();
        let tbs = root_cert_tbs("a.com/b", &spki, [1; 16], 1_700_000_000, 3650).unwrap();
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&sk, &tbs);
        let pem = assemble_root_cert(&tbs, &sig.to_bytes()).unwrap();
        let bare = PublicKey::new(KeyType::Ecdsa, spki);
        let cert = PublicKey::from_certificate_pem(&pem).unwrap();
        let respelled = PublicKey::from_certificate_pem(pem.trim_end()).unwrap();
        assert_ne!(cert.key_id(), respelled.key_id());
        (sk, [bare, cert, respelled])
    }

    #[test]
    fn one_key_listed_under_several_ids_counts_once() {
        let (sk, keys) = one_key_three_ways();
        let map: BTreeMap<_, _> = keys.iter().map(|k| (k.key_id(), k.clone())).collect();
        let ids: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
        let mut env = SignedEnvelope::from_signed(json!({"_type":"Targets"})).unwrap();
        let sig: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::sign(&sk, &env.signed_bytes);
        for id in &ids {
            env.signatures.push(Signature {
                keyid: id.clone(),
                method: SignatureMethod::Ecdsa,
                sig: sig.to_bytes().to_vec(),
            });
        }
        let canonical = canonical_key_id(&keys[0]).unwrap();
        assert!(keys
            .iter()
            .all(|k| canonical_key_id(k).unwrap() == canonical));
        let signers = valid_signers(&env, &map, &ids).unwrap();
        assert_eq!(signers.keys, BTreeSet::from([canonical]));
        verify_role(&env, &map, &ids, 1).unwrap();
        let err = verify_role(&env, &map, &ids, 2).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("1 valid signature(s) of 2 needed: keys "),
            "{err}"
        );
        assert!(err.to_string().contains("counts once"), "{err}");
        assert_eq!(
            duplicate_key(&map, &ids).unwrap(),
            Some((ids[0].clone(), ids[1].clone()))
        );
        assert_eq!(duplicate_key(&map, &ids[..1]).unwrap(), None);
    }

    #[test]
    fn reports_bad_signatures_and_id_mismatch() {
        let (sk1, pk1) = key(1);
        let (_, pk2) = key(2);
        let mut env = SignedEnvelope::from_signed(json!({"_type":"Targets"})).unwrap();
        sign(&mut env, &sk1, &pk1);
        env.signatures[0].sig[0] ^= 1;
        let keys = BTreeMap::from([(pk1.key_id(), pk1.clone())]);
        let err = verify_role(&env, &keys, &[pk1.key_id()], 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "0 valid signature(s) of 1 needed: signature by key {} does not verify (eddsa)",
                pk1.key_id()
            )
        );
        let lying = BTreeMap::from([(pk1.key_id(), pk2.clone())]);
        assert!(matches!(
            verify_role(&env, &lying, &[pk1.key_id()], 1),
            Err(VerifyError::KeyIdMismatch { .. })
        ));
    }
}
