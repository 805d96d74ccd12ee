//! Verifying the stock notary 0.7 fixture collections from their root.

mod common;

use common::{fixture_now, read, COLLECTIONS, GUN};
use notary_tuf::trust::{
    delegated_roles, validate_root, verify_signed, Expected, RoleTargets, TrustError, TrustPinning,
};
use notary_tuf::{Role, Root, Snapshot, Targets, Timestamp};

fn expected<'a>(
    root: &'a Root,
    role: &'a str,
    meta: Option<(&'static str, &'a notary_tuf::FileMeta)>,
) -> Expected<'a> {
    let expected = Expected::from_root(root, role, fixture_now()).unwrap();
    match meta {
        Some((parent, meta)) => expected.listed_by(parent, meta),
        None => expected,
    }
}

#[test]
fn whole_collection_verifies_from_a_tofu_root() {
    for c in COLLECTIONS {
        let root = validate_root(
            None,
            &read(c, "root.json"),
            GUN,
            &TrustPinning::default(),
            fixture_now(),
        )
        .unwrap()
        .metadata;
        let ts: Timestamp = verify_signed(
            &read(c, "timestamp.json"),
            &expected(&root, "timestamp", None),
        )
        .unwrap()
        .metadata;
        let snap_meta = ts.snapshot_meta().unwrap();
        let snap: Snapshot = verify_signed(
            &read(c, "snapshot.json"),
            &expected(&root, "snapshot", Some(("timestamp", snap_meta))),
        )
        .unwrap()
        .metadata;
        let targets: Targets = verify_signed(
            &read(c, "targets.json"),
            &expected(&root, "targets", Some(("snapshot", &snap.meta["targets"]))),
        )
        .unwrap()
        .metadata;
        let parent = RoleTargets {
            role: Role::Targets,
            targets,
            restrictions: vec![],
        };
        let delegated = delegated_roles(&parent).unwrap();
        assert_eq!(delegated[0].role.name(), "targets/releases");
        let d = &delegated[0];
        let releases: Targets = verify_signed(
            &read(c, "targets_releases.json"),
            &Expected::delegated(d, fixture_now())
                .listed_by("snapshot", &snap.meta["targets/releases"]),
        )
        .unwrap()
        .metadata;
        assert!(!releases.targets.is_empty());

        // The targets bytes do not fit what snapshot says about the delegation.
        let err = verify_signed::<Targets>(
            &read(c, "targets.json"),
            &expected(
                &root,
                "targets",
                Some(("snapshot", &snap.meta["targets/releases"])),
            ),
        )
        .unwrap_err();
        assert!(matches!(err, TrustError::Mismatch { .. }), "{err}");
        // Snapshot signed by the wrong role's key.
        let err = verify_signed::<Snapshot>(
            &read(c, "snapshot.json"),
            &expected(&root, "timestamp", None),
        )
        .unwrap_err();
        assert!(matches!(err, TrustError::Signatures { .. }), "{err}");
        // Rollback and expiry.
        let mut old = expected(&root, "timestamp", None);
        old.trusted_version = Some(ts.version + 1);
        let err = verify_signed::<Timestamp>(&read(c, "timestamp.json"), &old).unwrap_err();
        assert!(err.to_string().contains("rollback refused"), "{err}");
        let mut late = expected(&root, "timestamp", None);
        late.now = fixture_now() + 400 * 86_400;
        let err = verify_signed::<Timestamp>(&read(c, "timestamp.json"), &late).unwrap_err();
        assert!(matches!(err, TrustError::Expired { .. }), "{err}");
    }
}

#[test]
fn pinning_by_cert_id_and_refusals() {
    let bytes = read("local", "root.json");
    let root = common::root("local");
    let cert_id = root.role("root").unwrap().keyids[0].clone();
    let mut pins = TrustPinning::default();
    pins.certs.insert(GUN.into(), vec![cert_id]);
    validate_root(None, &bytes, GUN, &pins, fixture_now()).unwrap();
    pins.certs.insert(GUN.into(), vec!["00".repeat(32)]);
    let err = validate_root(None, &bytes, GUN, &pins, fixture_now()).unwrap_err();
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{err}");
    let no_tofu = TrustPinning {
        disable_tofu: true,
        ..TrustPinning::default()
    };
    let err = validate_root(None, &bytes, GUN, &no_tofu, fixture_now()).unwrap_err();
    assert!(matches!(err, TrustError::TofuDisabled { .. }), "{err}");
    // Wrong GUN: the certificate's CN does not match.
    let err = validate_root(
        None,
        &bytes,
        "other/gun",
        &TrustPinning::default(),
        fixture_now(),
    )
    .unwrap_err();
    assert!(matches!(err, TrustError::NoValidRootCert { .. }), "{err}");
    // A root of another collection is not signed by the trusted root.
    let other = common::root("remote-ed25519");
    let err = validate_root(
        Some(&other),
        &bytes,
        GUN,
        &TrustPinning::default(),
        fixture_now(),
    )
    .unwrap_err();
    assert!(matches!(err, TrustError::RotationNotSigned { .. }), "{err}");
}
