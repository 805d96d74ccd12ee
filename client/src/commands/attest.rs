//! `notaryctl key attest`: ask the device that holds a key to vouch for it,
//! check the answer here, and show or save it for others to check. A TPM
//! certifies the key with its attestation key (TPM2_Certify); a YubiKey
//! shows the slot's attestation certificate and its intermediate.

use crate::attestation;
use crate::commands::key_named;
use crate::connect::Client;
use crate::errors::Reply;
use crate::output;
use anyhow::{bail, Context};
use clap::Args;
use keyd_proto::keyd as pb;
use notary_tuf::PublicKey;
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// Key ID, x509 key ID, or key URI (tpm:…, yubikey:…).
    key: String,
    /// TPM: nonce as hex (up to 64 bytes), e.g. from the party that will
    /// check the statement. Default: 32 random bytes. (A YubiKey's
    /// attestation carries no nonce.)
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// TPM: directory to write attest.bin (TPMS_ATTEST), attest.sig (DER
    /// ECDSA), ak.pem (attestation key) and key.pub (TPMT_PUBLIC) to, for
    /// checking elsewhere (see docs/tpm.md).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--nonce must be an even number of hex digits");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("--nonce"))
        .collect()
}

fn random_nonce() -> anyhow::Result<Vec<u8>> {
    let mut nonce = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut nonce))
        .context("reading /dev/urandom for a nonce")?;
    Ok(nonce)
}

pub(crate) async fn run(client: &mut Client, args: &AttestArgs) -> anyhow::Result<()> {
    let nonce = match &args.nonce {
        Some(hex) => parse_hex(hex)?,
        None => random_nonce()?,
    };
    if nonce.len() > 64 {
        bail!("--nonce is {} bytes; at most 64", nonce.len());
    }
    let key = key_named(client, &args.key).await?;
    let attestation = client
        .attest_key(pb::AttestKeyRequest {
            key: key.key_id.clone(),
            nonce: nonce.clone(),
        })
        .await
        .reply_on(&key.backend)?;
    match attestation.evidence {
        Some(pb::key_attestation::Evidence::TpmCertify(tpm)) => {
            show_tpm(&tpm, &key, &nonce, args.out.as_deref())
        }
        Some(pb::key_attestation::Evidence::Piv(piv)) => show_piv(&piv, &key),
        Some(pb::key_attestation::Evidence::Pkcs11Origin(origin)) => show_origin(&origin, &key),
        None => bail!("the daemon sent an attestation without evidence"),
    }
}

fn show_tpm(
    attestation: &pb::TpmCertify,
    key: &pb::Key,
    nonce: &[u8],
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let fingerprint = attestation::check(attestation, key, nonce)
        .with_context(|| format!("the attestation of key {} does not check out", key.key_id))?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pem = notary_tuf::pem::encode("PUBLIC KEY", &attestation.signer_public);
        for (name, bytes) in [
            ("attest.bin", &attestation.attest),
            ("attest.sig", &attestation.signature),
            ("ak.pem", &pem.into_bytes()),
            ("key.pub", &attestation.key_public_area),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let nonce_hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "{}",
        output::json(&serde_json::json!({
            "key_id": key.key_id,
            "backend": key.backend,
            "format": attestation.format,
            "nonce": nonce_hex,
            "attestation_key_sha256": fingerprint,
            "verified": true,
        }))?
    );
    eprintln!(
        "Checked: the TPM's attestation key (SPKI SHA-256 {fingerprint}) certifies that it holds key {}. \
         Compare that fingerprint with the one recorded for this host.",
        key.key_id
    );
    Ok(())
}

/// The slot certificate must certify this very key, or it proves nothing.
fn show_piv(attestation: &pb::PivAttestation, key: &pb::Key) -> anyhow::Result<()> {
    let attested = PublicKey::from_certificate_pem(&attestation.slot_certificate_pem)
        .and_then(|k| k.bare_key())
        .map_err(|e| anyhow::anyhow!("the attestation certificate does not parse: {e}"))?;
    if attested.key_id() != key.key_id {
        bail!(
            "the attestation certificate certifies key {}, not key {}; not printing it",
            attested.key_id(),
            key.key_id
        );
    }
    eprintln!(
        "Attestation of key {}: the slot's attestation certificate, then the YubiKey's \
         attestation intermediate. Verify the chain against Yubico's PIV root CA, e.g. \
         `openssl verify -CAfile yubico-piv-ca.pem -untrusted intermediate.pem slot.pem`.",
        key.key_id
    );
    print!("{}", attestation.slot_certificate_pem);
    print!("{}", attestation.intermediate_pem);
    Ok(())
}

/// A PKCS#11 token's own report: shown for what it is.
fn show_origin(origin: &pb::Pkcs11KeyOrigin, key: &pb::Key) -> anyhow::Result<()> {
    println!(
        "{}",
        output::json(&serde_json::json!({
            "key_id": key.key_id,
            "backend": key.backend,
            "local": origin.local,
            "never_extractable": origin.never_extractable,
            "attested": false,
        }))?
    );
    eprintln!(
        "Key {} is not attested: a PKCS#11 token cannot prove where a key was made. The token \
         reports CKA_LOCAL={} (generated on the token) and CKA_NEVER_EXTRACTABLE={}.",
        key.key_id, origin.local, origin.never_extractable
    );
    Ok(())
}
