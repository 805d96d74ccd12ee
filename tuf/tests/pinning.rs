//! CA pinning as path validation, pinning on every root, and what a
//! rotation may be signed with.

mod common;

use common::certs::{issue, root, signed, Spec, TestCert, NOW};
use notary_tuf::trust::{validate_root, TrustError, TrustPinning};
use notary_tuf::PublicKey;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

const GUN: &str = "example.com/team-a/app";
const DAY: i64 = 86_400;

fn pin_ca(bundle: &[&TestCert]) -> TrustPinning {
    let mut pins = TrustPinning::default();
    let pem: String = bundle.iter().map(|c| c.pem.as_str()).collect();
    pins.ca.insert("example.com/".into(), pem);
    pins
}

/// A first root whose only key is `leaf` followed by `chain`, signed by it.
fn first_root(leaf: &TestCert, chain: &[&TestCert]) -> Vec<u8> {
    let key = leaf.root_key(chain);
    signed(&root(1, &[&key], 1), &[(&leaf.key, &key)])
}

fn accepted(bytes: &[u8], pins: &TrustPinning) {
    validate_root(None, bytes, GUN, pins, NOW).unwrap();
}

fn refused(bytes: &[u8], pins: &TrustPinning) -> TrustError {
    validate_root(None, bytes, GUN, pins, NOW).unwrap_err()
}

#[test]
fn leaves_issued_by_the_pinned_ca_directly_or_through_intermediates() {
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let pins = pin_ca(&[&ca]);
    let leaf = issue(&Spec::leaf(GUN, 2), Some(&ca));
    accepted(&first_root(&leaf, &[]), &pins);

    let int = issue(&Spec::ca("Team CA", 3), Some(&ca));
    let leaf = issue(&Spec::leaf(GUN, 4), Some(&int));
    accepted(&first_root(&leaf, &[&int]), &pins);
    // Without the intermediate there is no path.
    let err = refused(&first_root(&leaf, &[]), &pins);
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    // Another CA pinned: no path either.
    let other = issue(&Spec::ca("Other CA", 5), None);
    let err = refused(&first_root(&leaf, &[&int]), &pin_ca(&[&other]));
    assert!(err.to_string().contains("chains to the CA"), "{err}");
}

#[test]
fn a_leaf_forged_under_an_end_entity_is_refused() {
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let pins = pin_ca(&[&ca]);
    // Team B's legitimate end-entity certificate (CA:FALSE), and one with
    // no basicConstraints at all: neither may issue.
    for team_b in [
        issue(&Spec::leaf("example.com/team-b/app", 2), Some(&ca)),
        issue(
            &Spec {
                ca: None,
                ..Spec::leaf("example.com/team-b/app", 2)
            },
            Some(&ca),
        ),
    ] {
        let forged = issue(&Spec::leaf(GUN, 3), Some(&team_b));
        let err = refused(&first_root(&forged, &[&team_b]), &pins);
        assert!(
            err.to_string().contains("more than one leaf"),
            "an end entity passed as an intermediate: {err}"
        );
    }
    // Even listed as a CA certificate, an intermediate that may not sign
    // certificates (keyUsage without keyCertSign) breaks the path.
    let no_cert_sign = issue(
        &Spec {
            key_usage: Some(KeyUsage(KeyUsages::DigitalSignature.into())),
            ..Spec::ca("Team CA", 4)
        },
        Some(&ca),
    );
    let leaf = issue(&Spec::leaf(GUN, 5), Some(&no_cert_sign));
    let err = refused(&first_root(&leaf, &[&no_cert_sign]), &pins);
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    // A CA certificate first, where the leaf belongs.
    let ca_leaf = issue(&Spec::ca(GUN, 6), Some(&ca));
    let err = refused(&first_root(&ca_leaf, &[]), &pins);
    assert!(err.to_string().contains("not the leaf"), "{err}");
    // The same holds without pinning: notary drops such keys too.
    let err = refused(&first_root(&ca_leaf, &[]), &TrustPinning::default());
    assert!(matches!(err, TrustError::NoValidRootCert { .. }), "{err}");
}

#[test]
fn intermediates_must_be_valid_now_and_within_path_length() {
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let pins = pin_ca(&[&ca]);
    for (name, not_before, not_after) in [
        ("expired", NOW - 90 * DAY, NOW - DAY),
        ("not yet valid", NOW + DAY, NOW + 90 * DAY),
    ] {
        let int = issue(
            &Spec {
                not_before,
                not_after,
                ..Spec::ca("Team CA", 2)
            },
            Some(&ca),
        );
        let leaf = issue(&Spec::leaf(GUN, 3), Some(&int));
        let err = refused(&first_root(&leaf, &[&int]), &pins);
        assert!(
            matches!(err, TrustError::PinMismatch { .. }),
            "{name}: {err}"
        );
    }
    // pathLen 0 on the pinned CA: it may issue leaves, not intermediates.
    let strict_ca = issue(
        &Spec {
            path_len: Some(0),
            ..Spec::ca("Org CA", 1)
        },
        None,
    );
    let int = issue(&Spec::ca("Team CA", 2), Some(&strict_ca));
    let leaf = issue(&Spec::leaf(GUN, 3), Some(&int));
    let err = refused(&first_root(&leaf, &[&int]), &pin_ca(&[&strict_ca]));
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    accepted(
        &first_root(&issue(&Spec::leaf(GUN, 4), Some(&strict_ca)), &[]),
        &pin_ca(&[&strict_ca]),
    );
    // pathLen 1 allows one intermediate, and that one's pathLen 0 allows
    // no second one below it.
    let ca1 = issue(
        &Spec {
            path_len: Some(1),
            ..Spec::ca("Org CA", 1)
        },
        None,
    );
    let int1 = issue(
        &Spec {
            path_len: Some(0),
            ..Spec::ca("Team CA", 2)
        },
        Some(&ca1),
    );
    let leaf = issue(&Spec::leaf(GUN, 3), Some(&int1));
    accepted(&first_root(&leaf, &[&int1]), &pin_ca(&[&ca1]));
    let int2 = issue(&Spec::ca("Sub CA", 5), Some(&int1));
    let leaf = issue(&Spec::leaf(GUN, 6), Some(&int2));
    let err = refused(&first_root(&leaf, &[&int2, &int1]), &pin_ca(&[&ca1]));
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
}

#[test]
fn expired_bundle_certificates_are_skipped_not_fatal() {
    let expired = issue(
        &Spec {
            not_before: NOW - 90 * DAY,
            not_after: NOW - DAY,
            ..Spec::ca("Old CA", 9)
        },
        None,
    );
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let leaf = issue(&Spec::leaf(GUN, 2), Some(&ca));
    accepted(&first_root(&leaf, &[]), &pin_ca(&[&expired, &ca]));
    let err = refused(&first_root(&leaf, &[]), &pin_ca(&[&expired]));
    assert!(matches!(&err, TrustError::BadCaBundle { .. }), "{err}");
}

#[test]
fn bundle_certificates_issue_only_as_cas_but_may_pin_the_leaf_itself() {
    // An end-entity certificate in the bundle (say a full-chain file) does
    // not let its key mint roots: stricter than Go, which trusts any root.
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let server = issue(&Spec::leaf("tls.example.com", 2), Some(&ca));
    let forged = issue(&Spec::leaf(GUN, 3), Some(&server));
    let err = refused(&first_root(&forged, &[]), &pin_ca(&[&server, &ca]));
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    // Pinning the self-signed root certificate itself works, as in notary.
    let own = issue(&Spec::leaf(GUN, 4), None);
    accepted(&first_root(&own, &[]), &pin_ca(&[&own]));
}

/// Root v1 with `v1` as its key, and v2 with `v2`, signed by both.
fn rotation(v1: &TestCert, v2: &TestCert) -> (notary_tuf::Root, Vec<u8>) {
    let (k1, k2) = (v1.root_key(&[]), v2.root_key(&[]));
    let old = root(1, &[&k1], 1);
    let new = signed(&root(2, &[&k2], 1), &[(&v1.key, &k1), (&v2.key, &k2)]);
    (old, new)
}

#[test]
fn pinning_holds_for_rotations_too() {
    let ca = issue(&Spec::ca("Org CA", 1), None);
    let pinned_leaf = issue(&Spec::leaf(GUN, 2), Some(&ca));
    let self_signed = issue(&Spec::leaf(GUN, 3), None);
    let (old, new) = rotation(&pinned_leaf, &self_signed);

    let err = validate_root(Some(&old), &new, GUN, &pin_ca(&[&ca]), NOW).unwrap_err();
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    let mut by_id = TrustPinning::default();
    by_id
        .certs
        .insert(GUN.into(), vec![pinned_leaf.root_key(&[]).key_id()]);
    let err = validate_root(Some(&old), &new, GUN, &by_id, NOW).unwrap_err();
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");

    // Under TOFU, or with TOFU disabled once a root is trusted, a properly
    // signed rotation is followed.
    validate_root(Some(&old), &new, GUN, &TrustPinning::default(), NOW).unwrap();
    let no_tofu = TrustPinning {
        disable_tofu: true,
        ..TrustPinning::default()
    };
    validate_root(Some(&old), &new, GUN, &no_tofu, NOW).unwrap();
    // A rotation to another certificate from the pinned CA is fine.
    let next = issue(&Spec::leaf(GUN, 4), Some(&ca));
    let (old, new) = rotation(&pinned_leaf, &next);
    validate_root(Some(&old), &new, GUN, &pin_ca(&[&ca]), NOW).unwrap();
}

#[test]
fn a_rotation_counts_only_the_previous_roots_valid_certificates() {
    let v1 = issue(&Spec::leaf(GUN, 1), None);
    let v2 = issue(&Spec::leaf(GUN, 2), None);
    let k1 = v1.root_key(&[]);
    let k2 = v2.root_key(&[]);
    // The old root also lists a certificate for another GUN and a bare key
    // in its root role; neither may sign a rotation of this GUN.
    let other_gun = issue(&Spec::leaf("example.com/other", 3), None);
    let k3 = other_gun.root_key(&[]);
    let bare = k1.bare_key().unwrap();
    let mut old = root(1, &[&k1, &k3], 1);
    old.keys.insert(bare.key_id(), bare.clone());
    old.roles
        .get_mut("root")
        .unwrap()
        .keyids
        .push(bare.key_id());
    let pins = TrustPinning::default();
    for (name, key, listed) in [
        ("other GUN", &other_gun.key, &k3),
        ("bare key", &v1.key, &bare),
    ] {
        let new = signed(&root(2, &[&k2], 1), &[(key, listed), (&v2.key, &k2)]);
        let err = validate_root(Some(&old), &new, GUN, &pins, NOW).unwrap_err();
        assert!(
            matches!(err, TrustError::RotationNotSigned { .. }),
            "{name}: {err}"
        );
    }
    // An expired certificate of the trusted root still signs its rotation.
    let expired = issue(
        &Spec {
            not_before: NOW - 400 * DAY,
            not_after: NOW - DAY,
            ..Spec::leaf(GUN, 1)
        },
        None,
    );
    let ke = expired.root_key(&[]);
    let old = root(1, &[&ke], 1);
    let new = signed(&root(2, &[&k2], 1), &[(&expired.key, &ke), (&v2.key, &k2)]);
    validate_root(Some(&old), &new, GUN, &pins, NOW).unwrap();
}

#[test]
fn two_certificates_of_one_key_meet_a_root_threshold_once() {
    let a = issue(&Spec::leaf(GUN, 1), None);
    let b = issue(
        &Spec {
            serial: 99,
            ..Spec::leaf(GUN, 1)
        },
        None,
    );
    let (ka, kb): (PublicKey, PublicKey) = (a.root_key(&[]), b.root_key(&[]));
    assert_ne!(ka.key_id(), kb.key_id());
    let bytes = signed(&root(1, &[&ka, &kb], 2), &[(&a.key, &ka), (&b.key, &kb)]);
    let err = refused(&bytes, &TrustPinning::default());
    assert!(
        err.to_string().contains("1 valid signature(s) of 2"),
        "{err}"
    );
    assert!(err.to_string().contains("counts once"), "{err}");
}
