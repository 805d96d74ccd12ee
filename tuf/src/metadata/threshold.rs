//! Threshold verification of a role's signatures, as notary's
//! `VerifySignatures` does it.

use super::SignedEnvelope;
use crate::{verify, PublicKey, VerifyError};
use std::collections::{BTreeMap, BTreeSet};

/// Succeeds when at least `threshold` distinct keys listed in `keyids` (and
/// present in `keys`) have a valid signature over the canonical `signed`.
///
/// Signatures by other keys are skipped; a signature whose key's computed ID
/// differs from its `keyid` fails the whole check, as in notary.
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
    let mut valid = BTreeSet::new();
    let mut problems = Vec::new();
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
        match verify(key, sig.method, &envelope.signed_bytes, &sig.sig) {
            Ok(()) => {
                valid.insert(sig.keyid.as_str());
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if valid.len() < threshold as usize {
        return Err(VerifyError::Threshold {
            valid: valid.len(),
            needed: threshold,
            problems,
        });
    }
    Ok(())
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
