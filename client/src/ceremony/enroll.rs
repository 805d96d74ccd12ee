//! `ceremony enroll BUNDLE --holder NAME` (offline): the holder's root key
//! generated on the planned device, the daemon's CN=GUN certificate for
//! it, the device's attestation, all checked and recorded.

use super::airgap;
use super::bundle::{Bundle, TRANSCRIPT};
use super::clock;
use super::device::Device;
use super::digest::Digest;
use super::enrollment::{DeviceRecord, Enrollment};
use super::keyd::Keyd;
use super::plan::Holding;
use super::replay::replay;
use super::root_builder;
use super::transcript::{Action, Pending};
use anyhow::{anyhow, bail, Context, Result};
use keyd_proto::keyd::{self as pb, BackendType};
use std::path::Path;

pub(crate) async fn enroll(
    dir: &Path,
    name: &str,
    allow_network: bool,
    socket: &Path,
) -> Result<()> {
    let network = airgap::check(allow_network, "enroll")?;
    let (now, _) = clock::now();
    let checked = replay(dir, now).context("the bundle does not replay; nothing was enrolled")?;
    let plan = &checked.plan;
    let plan_digest = checked.plan_digest;
    let mut steps = Pending::new(name);
    steps.record(
        Action::AirGapCheck,
        plan_digest,
        Digest::of(network.as_bytes()),
        network,
    );
    let Holding::Enroll(device) = &plan.holder(name)?.holding else {
        bail!("{name} keeps their key of the previous root; there is nothing to enroll");
    };
    if let Some(entry) = checked
        .transcript
        .entries()
        .iter()
        .find(|e| e.action == Action::KeyGenerated && e.actor == name)
    {
        bail!(
            "{name} enrolled already (transcript seq {}); one holder has one key",
            entry.seq
        );
    }
    let mut keyd = Keyd::connect(socket).await?;
    let backend = find_device(&mut keyd, device).await?;
    let kind = backend.r#type();
    if plan.require_attestation && !matches!(kind, BackendType::Yubikey | BackendType::Tpm) {
        bail!(
            "the plan requires attestation and {name}'s {} ({} backend {}) cannot attest its \
             keys: {name} is refused, nothing was generated",
            device.describe(),
            kind.word(),
            backend.name
        );
    }
    if kind == BackendType::Soft && !plan.rehearsal {
        bail!(
            "{name}'s backend {} is notary-keyd's software keystore: a root key of a real \
             ceremony must be made on a hardware token (or make this a rehearsal)",
            backend.name
        );
    }
    let seen = device_record(&mut keyd, device, &backend).await?;
    eprintln!("Enrolling {name} for {} on {}", plan.gun, seen.describe());
    steps.record(
        Action::DeviceSeen,
        plan_digest,
        Digest::of(seen.describe().as_bytes()),
        seen.describe(),
    );
    if let Device::YubiKey { serial, .. } = device {
        eprintln!("Touch the YubiKey (serial {serial}) each time it blinks: the new key signs its slot certificate, then the root certificate…");
    }
    let key = keyd
        .generate_root_key(&backend.name, device, &plan.gun, name)
        .await?;
    eprintln!("Generated root key {} ({})", key.key_id, key.uri);
    let evidence = keyd.attest(&key, plan_digest).await?;
    let cert = keyd
        .issue_root_certificate(&key, &plan.gun, plan.certificate_days)
        .await?;
    let (_, time) = clock::now();
    let enrollment = Enrollment {
        holder: name.to_string(),
        plan_sha256: plan_digest,
        time,
        device: seen,
        key_id: key.key_id.clone(),
        key_uri: key.uri.clone(),
        certificate_pem: cert.certificate_pem,
        x509_key_id: cert.x509_key_id,
        evidence,
    };
    let attestation = enrollment
        .verify(plan, plan_digest, &checked.anchors, now)
        .map_err(|e| {
            anyhow!(
                "{e:#}. {name} is not enrolled; key {} stays on the device (delete it with \
                 `notaryctl key delete {} --yes`)",
                key.key_id,
                key.key_id
            )
        })?;
    let bytes = enrollment.to_bytes()?;
    let file = Bundle::enrollment_file(name);
    steps.record(
        Action::KeyGenerated,
        plan_digest,
        Digest::of(&bytes),
        format!(
            "key {} with root certificate {}; {} (evidence sha256 {})",
            enrollment.key_id,
            enrollment.x509_key_id,
            attestation.describe(),
            Digest::of(&serde_json::to_vec(&enrollment.evidence)?)
        ),
    );
    let mut transcript = checked.transcript.clone();
    steps.append_to(&mut transcript);
    checked.bundle.write(&file, &bytes)?;
    checked.bundle.write(TRANSCRIPT, &transcript.to_bytes())?;
    println!(
        "Enrolled {name}: key {} (root certificate {}), {}",
        enrollment.key_id,
        enrollment.x509_key_id,
        attestation.describe()
    );
    let mut enrollments = checked.enrollments.clone();
    enrollments.insert(name.to_string(), enrollment);
    if let Ok(root) = root_builder::build(plan, &enrollments, checked.previous_root()) {
        let signed = notary_tuf::SignedEnvelope::from_metadata(&root)?;
        let digest = Digest::of(&signed.signed_bytes);
        println!(
            "Every holder has enrolled. The new root v{} to sign has SHA-256 {digest}:\n{}",
            root.version,
            digest.aloud()
        );
    }
    print_head(&transcript.head());
    Ok(())
}

/// The one available backend that is the planned device.
async fn find_device(keyd: &mut Keyd, device: &Device) -> Result<pb::Backend> {
    let backends = keyd.backends().await?;
    let matching: Vec<&pb::Backend> = backends.iter().filter(|b| device.matches(b)).collect();
    match matching.as_slice() {
        [one] if one.available => Ok((*one).clone()),
        [one] => bail!(
            "the {} (backend {}) is not available: {}; insert it and try again",
            device.describe(),
            one.name,
            one.unavailable_reason
        ),
        [] => bail!(
            "notary-keyd has no backend for the {}; insert it (and configure it in the daemon) \
             — present now: {}",
            device.describe(),
            present(&backends)
        ),
        _ => bail!(
            "several notary-keyd backends match the {} ({}); name one in the plan",
            device.describe(),
            matching
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn present(backends: &[pb::Backend]) -> String {
    if backends.is_empty() {
        return "no backends".into();
    }
    backends
        .iter()
        .map(|b| {
            let d = b.device.clone().unwrap_or_default();
            format!(
                "{} ({}, label {:?}, serial {:?})",
                b.name,
                b.r#type().word(),
                d.label,
                d.serial
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn device_record(
    keyd: &mut Keyd,
    device: &Device,
    backend: &pb::Backend,
) -> Result<DeviceRecord> {
    let info = backend.device.clone().unwrap_or_default();
    let firmware = match device {
        Device::YubiKey { serial, .. } => keyd.yubikey_firmware(*serial).await?,
        _ => String::new(),
    };
    Ok(DeviceRecord {
        planned: device.to_string(),
        backend: backend.name.clone(),
        backend_type: backend.r#type().word().to_string(),
        manufacturer: info.manufacturer,
        model: info.model,
        label: info.label,
        serial: info.serial,
        firmware,
    })
}

/// The chain head, to read aloud and write on paper.
pub(super) fn print_head(head: &Digest) {
    println!(
        "Transcript chain head (write it down; the next step starts from it): {head}\n{}",
        head.aloud()
    );
}
