//! The client's verification from a trusted root: every kind of file the
//! server sends, checked against the fixture collections' keys as
//! `notaryctl` checks them (timestamp, snapshot, targets and a delegation
//! from the trusted root; a new root by trust on first use, by rotation from
//! the trusted root, pinned by certificate ID and pinned by CA), plus the
//! delegation walk over unverified targets.
//!
//! Besides "no panic", one oracle: whatever verifies must be a document the
//! fixtures' keys signed. The keys are the fixtures' own, except for a first
//! root, whose certificates come from the input: those are ECDSA or RSA
//! (2048 bits or more), whose signatures the fuzzer cannot make.

#![no_main]

use notary_fuzz::{fixture_now, signed_documents, Collection, COLLECTIONS, GUN};
use notary_tuf::trust::{
    delegated_roles, path_allowed, validate_root, verify_signed, Checked, DelegatedRole, Expected,
    RoleTargets, TrustError, TrustPinning,
};
use notary_tuf::{verify_role, Metadata, Role, Root, SignedEnvelope, Snapshot, Targets, Timestamp};
use std::sync::OnceLock;

/// What the client trusts before it reads the input.
struct Trusted {
    root: Root,
    releases: DelegatedRole,
    snapshot_meta: notary_tuf::FileMeta,
    root_cert_id: String,
    root_cert_pem: String,
}

fn trusted(c: &Collection) -> Trusted {
    let root = c.trusted_root();
    let parent = RoleTargets {
        role: Role::Targets,
        targets: c.trusted_targets(),
        restrictions: vec![],
    };
    let Some(releases) = delegated_roles(&parent).into_iter().flatten().next() else {
        panic!("fixture targets delegate nothing");
    };
    let Some(snapshot_meta) = c.trusted_timestamp().snapshot_meta().cloned() else {
        panic!("fixture timestamp lists no snapshot");
    };
    let Some(root_cert_id) = root.role("root").and_then(|r| r.keyids.first()).cloned() else {
        panic!("fixture root has no root key");
    };
    let root_cert_pem = String::from_utf8_lossy(root.keys[&root_cert_id].public_bytes()).into();
    Trusted {
        root,
        releases,
        snapshot_meta,
        root_cert_id,
        root_cert_pem,
    }
}

fn state() -> &'static ([Trusted; 2], Vec<Vec<u8>>) {
    static STATE: OnceLock<([Trusted; 2], Vec<Vec<u8>>)> = OnceLock::new();
    STATE.get_or_init(|| {
        (
            [trusted(&COLLECTIONS[0]), trusted(&COLLECTIONS[1])],
            signed_documents(),
        )
    })
}

fn from_root<'a>(
    root: &'a Root,
    role: &'a str,
    meta: Option<(&'static str, &'a notary_tuf::FileMeta)>,
) -> Option<Expected<'a>> {
    let expected = Expected::from_root(root, role, fixture_now()).ok()?;
    Some(match meta {
        Some((parent, meta)) => expected.listed_by(parent, meta),
        None => expected,
    })
}

fn check<T: Metadata>(bytes: &[u8], expected: Option<Expected<'_>>) -> Option<SignedEnvelope> {
    let checked: Result<Checked<T>, TrustError> = verify_signed(bytes, &expected?);
    checked.ok().map(|c| c.envelope)
}

/// The delegation walk over targets nobody verified: the keys and paths are
/// the input's own, so only "no panic" applies.
fn walk_delegations(bytes: &[u8]) {
    let Ok(envelope) = SignedEnvelope::parse(bytes) else {
        return;
    };
    let Ok(targets) = envelope.decode::<Targets>() else {
        return;
    };
    let mut level = vec![RoleTargets {
        role: Role::Targets,
        targets,
        restrictions: vec![],
    }];
    // The input's roles can only name direct children, so each level is
    // the same document read one role deeper; four levels are plenty.
    for _ in 0..4 {
        let mut next = Vec::new();
        for parent in &level {
            let _ = parent.allowed().count();
            for role in delegated_roles(parent).into_iter().flatten() {
                let _ = verify_role(&envelope, &role.keys, &role.keyids, role.threshold);
                for path in parent.targets.targets.keys() {
                    let _ = path_allowed(&role.restrictions, path);
                }
                next.push(RoleTargets {
                    role: role.role,
                    targets: parent.targets.clone(),
                    restrictions: role.restrictions,
                });
            }
        }
        level = next;
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let (collections, documents) = state();
    let t = &collections[usize::from(selector & 1)];
    let now = fixture_now();
    let root_result = |prev: Option<&Root>, pinning: &TrustPinning| {
        validate_root(prev, bytes, GUN, pinning, now)
            .ok()
            .map(|c| c.envelope)
    };
    let accepted = match (selector >> 1) % 10 {
        0 => check::<Timestamp>(bytes, from_root(&t.root, "timestamp", None)),
        1 => check::<Snapshot>(bytes, from_root(&t.root, "snapshot", None)),
        2 => check::<Snapshot>(
            bytes,
            from_root(&t.root, "snapshot", Some(("timestamp", &t.snapshot_meta))),
        ),
        3 => check::<Targets>(bytes, from_root(&t.root, "targets", None)),
        4 => check::<Targets>(bytes, Some(Expected::delegated(&t.releases, now))),
        5 => root_result(None, &TrustPinning::default()),
        6 => root_result(Some(&t.root), &TrustPinning::default()),
        7 => {
            let mut pinning = TrustPinning::default();
            pinning
                .certs
                .insert(GUN.to_string(), vec![t.root_cert_id.clone()]);
            root_result(None, &pinning)
        }
        8 => {
            let mut pinning = TrustPinning::default();
            pinning
                .ca
                .insert("example.com/".to_string(), t.root_cert_pem.clone());
            root_result(None, &pinning)
        }
        _ => {
            walk_delegations(bytes);
            None
        }
    };
    if let Some(envelope) = accepted {
        assert!(
            documents.contains(&envelope.signed_bytes),
            "verified a document no fixture key signed: {:?}",
            String::from_utf8_lossy(&envelope.signed_bytes)
        );
    }
});
