//! The stock notary 0.7 metadata must verify, hash and re-encode exactly.

mod common;

use common::*;
use notary_tuf::metadata::{Metadata, Snapshot, Timestamp};
use notary_tuf::{
    canonicalize, payload_type, rootcert::check_root_cert, verify, verify_role, KeyType,
    MetadataType, PublicKey, Role, SignatureMethod, SignedEnvelope, VerifyError,
};
use std::collections::BTreeMap;

/// (file, keys, keyids, threshold): how to verify one role file.
type RoleCheck = (&'static str, BTreeMap<String, PublicKey>, Vec<String>, u32);

/// The check for every role file of a collection.
fn role_checks(collection: &str) -> Vec<RoleCheck> {
    let root = root(collection);
    let mut checks = Vec::new();
    for (file, role) in [
        ("root.json", "root"),
        ("targets.json", "targets"),
        ("snapshot.json", "snapshot"),
        ("timestamp.json", "timestamp"),
    ] {
        let r = root.role(role).unwrap();
        checks.push((file, root.keys.clone(), r.keyids.clone(), r.threshold));
    }
    let delegations = targets(collection).delegations;
    let releases = delegations
        .roles
        .iter()
        .find(|r| r.name == "targets/releases")
        .unwrap();
    checks.push((
        "targets_releases.json",
        delegations.keys.clone(),
        releases.keyids.clone(),
        releases.threshold,
    ));
    checks
}

#[test]
fn every_role_verifies_against_its_keys() {
    for collection in COLLECTIONS {
        for (file, keys, keyids, threshold) in role_checks(collection) {
            let env = envelope(collection, file);
            verify_role(&env, &keys, &keyids, threshold)
                .unwrap_or_else(|e| panic!("{collection}/{file}: {e}"));
            // And each signature on its own, with the method notary wrote.
            for sig in &env.signatures {
                let key = &keys[&sig.keyid];
                assert_eq!(sig.method, SignatureMethod::for_key_type(key.keytype()));
                verify(key, sig.method, &env.signed_bytes, &sig.sig).unwrap();
            }
        }
    }
}

#[test]
fn fixtures_cover_every_key_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for collection in COLLECTIONS {
        for (file, keys, _, _) in role_checks(collection) {
            for sig in &envelope(collection, file).signatures {
                seen.insert(keys[&sig.keyid].keytype().as_str());
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["ecdsa", "ecdsa-x509", "ed25519"]
    );
}

#[test]
fn key_ids_equal_computed_ids() {
    for collection in COLLECTIONS {
        let maps = [root(collection).keys, targets(collection).delegations.keys];
        for (id, key) in maps.iter().flatten() {
            assert_eq!(&key.key_id(), id, "{collection}");
        }
    }
}

#[test]
fn signed_substring_is_the_canonical_reencoding() {
    for collection in COLLECTIONS {
        for file in FILES {
            let bytes = read(collection, file);
            let env = SignedEnvelope::parse(&bytes).unwrap();
            let start = b"{\"signed\":".len();
            let end = find_last(&bytes, b",\"signatures\":[").unwrap();
            assert_eq!(
                &bytes[start..end],
                &env.signed_bytes[..],
                "{collection}/{file}"
            );
            assert_eq!(canonicalize(&bytes[start..end]).unwrap(), env.signed_bytes);
            assert_eq!(
                typed_reencoding(&env),
                env.signed_bytes,
                "{collection}/{file}"
            );
        }
    }
}

fn typed_reencoding(env: &SignedEnvelope) -> Vec<u8> {
    match env.metadata_type().unwrap() {
        MetadataType::Root => env.decode::<notary_tuf::Root>().unwrap().canonical_bytes(),
        MetadataType::Targets => env
            .decode::<notary_tuf::Targets>()
            .unwrap()
            .canonical_bytes(),
        MetadataType::Snapshot => env.decode::<Snapshot>().unwrap().canonical_bytes(),
        MetadataType::Timestamp => env.decode::<Timestamp>().unwrap().canonical_bytes(),
    }
    .unwrap()
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[test]
fn whole_envelope_reencodes_to_the_file() {
    for collection in COLLECTIONS {
        for file in FILES {
            let bytes = read(collection, file);
            assert_eq!(
                SignedEnvelope::parse(&bytes).unwrap().to_bytes(),
                bytes,
                "{collection}/{file}"
            );
        }
    }
}

#[test]
fn payload_types_fit_the_signing_roles() {
    for collection in COLLECTIONS {
        for (file, role, kind) in [
            ("root.json", "root", MetadataType::Root),
            ("targets.json", "targets", MetadataType::Targets),
            (
                "targets_releases.json",
                "targets/releases",
                MetadataType::Targets,
            ),
            ("snapshot.json", "snapshot", MetadataType::Snapshot),
            ("timestamp.json", "timestamp", MetadataType::Timestamp),
        ] {
            let env = envelope(collection, file);
            let found = payload_type(&env.signed_bytes).unwrap();
            assert_eq!(found, kind);
            assert!(found.fits_role(&Role::parse(role).unwrap()));
            assert!(!found.fits_role(&Role::Root) || kind == MetadataType::Root);
        }
    }
}

#[test]
fn snapshot_meta_matches_the_stored_files() {
    for collection in COLLECTIONS {
        let snapshot: Snapshot = envelope(collection, "snapshot.json").decode().unwrap();
        let expected = [
            ("root", "root.json"),
            ("targets", "targets.json"),
            ("targets/releases", "targets_releases.json"),
        ];
        assert_eq!(snapshot.meta.len(), expected.len());
        for (role, file) in expected {
            let bytes = read(collection, file);
            let meta = &snapshot.meta[role];
            meta.check(&bytes).unwrap();
            assert_eq!(meta, &notary_tuf::FileMeta::for_bytes(&bytes));
            assert!(meta.check(&bytes[1..]).is_err());
        }
    }
}

#[test]
fn timestamp_meta_matches_snapshot() {
    for collection in COLLECTIONS {
        let ts: Timestamp = envelope(collection, "timestamp.json").decode().unwrap();
        assert_eq!(ts.meta.len(), 1);
        let snapshot = read(collection, "snapshot.json");
        ts.snapshot_meta().unwrap().check(&snapshot).unwrap();
        assert!(ts.expires_unix().unwrap() > fixture_now());
    }
}

#[test]
fn server_key_answers_name_root_keys() {
    for collection in COLLECTIONS {
        let root = root(collection);
        for role in ["timestamp", "snapshot"] {
            let bytes = read(collection, &format!("{role}.key.json"));
            // The server does not write canonical JSON ("public" before "private").
            let canonical = canonicalize(&bytes).unwrap();
            assert_ne!(canonical, bytes);
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let key = PublicKey::from_json(&value).unwrap();
            assert_eq!(key.canonical_json().as_bytes(), &canonical[..]);
            assert_eq!(key.keytype(), KeyType::Ed25519);
            assert_eq!(root.role(role).unwrap().keyids, vec![key.key_id()]);
            assert_eq!(root.keys[&key.key_id()], key);
        }
    }
}

#[test]
fn x509_root_key_has_distinct_canonical_id_and_passes_checks() {
    for collection in COLLECTIONS {
        let key = root_cert_key(collection);
        assert_eq!(key.keytype(), KeyType::EcdsaX509);
        let bare = key.bare_key().unwrap();
        assert_eq!(bare.keytype(), KeyType::Ecdsa);
        assert_ne!(bare.key_id(), key.key_id());
        let pem = std::str::from_utf8(key.public_bytes()).unwrap();
        assert_eq!(PublicKey::from_certificate_pem(pem).unwrap(), key);
        assert_eq!(PublicKey::from_spki_der(bare.public_bytes()).unwrap(), bare);
        check_root_cert(pem, GUN, fixture_now()).unwrap();
        assert!(check_root_cert(pem, "example.com/other", fixture_now()).is_err());
        assert!(check_root_cert(pem, "example.com/*", fixture_now()).is_err());
        // Ten years later it has expired.
        let later = fixture_now() + 11 * 365 * 86_400;
        assert!(check_root_cert(pem, GUN, later).is_err());
    }
}

#[test]
fn delegation_keys_are_x509_certs_for_the_role() {
    for collection in COLLECTIONS {
        for key in targets(collection).delegations.keys.values() {
            assert_eq!(key.keytype(), KeyType::EcdsaX509);
            let pem = std::str::from_utf8(key.public_bytes()).unwrap();
            // Made by openssl: CN is the role name, CA:TRUE with SKI/AKI.
            check_root_cert(pem, "targets/releases", fixture_now()).unwrap();
            assert_ne!(key.bare_key().unwrap().key_id(), key.key_id());
        }
    }
}

#[test]
fn tampered_payload_fails() {
    for collection in COLLECTIONS {
        for (file, keys, keyids, threshold) in role_checks(collection) {
            let mut env = envelope(collection, file);
            // Change one byte of a string value inside `signed`.
            let at = find_last(&env.signed_bytes, b"\"expires\":\"").unwrap() + 12;
            env.signed_bytes[at] ^= 1;
            let err = verify_role(&env, &keys, &keyids, threshold).unwrap_err();
            assert!(
                matches!(
                    err,
                    VerifyError::Threshold {
                        valid: 0,
                        needed: 1,
                        ..
                    }
                ),
                "{collection}/{file}: {err}"
            );
            assert!(err.to_string().contains("does not verify"), "{err}");
        }
    }
}

#[test]
fn tampered_file_fails() {
    for collection in COLLECTIONS {
        for (file, keys, keyids, threshold) in role_checks(collection) {
            let text = String::from_utf8(read(collection, file)).unwrap();
            let tampered = text.replacen("\"version\":", "\"version\":1", 1);
            let env = SignedEnvelope::parse(tampered.as_bytes()).unwrap();
            assert!(verify_role(&env, &keys, &keyids, threshold).is_err());
        }
    }
}

#[test]
fn signatures_from_the_wrong_role_do_not_count() {
    for collection in COLLECTIONS {
        let root = root(collection);
        let env = envelope(collection, "timestamp.json");
        let targets = root.role("targets").unwrap();
        let err = verify_role(&env, &root.keys, &targets.keyids, 1).unwrap_err();
        assert_eq!(err.to_string(), "0 valid signature(s) of 1 needed");
    }
}
