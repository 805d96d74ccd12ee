//! `notaryctl key attest`: proof that a key was generated on its YubiKey.

use crate::connect::Client;
use crate::errors::KeydError;
use anyhow::{bail, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use notary_tuf::PublicKey;

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// Key ID (bare or x509) of a key held in a YubiKey.
    #[arg(value_name = "KEYID")]
    key_id: String,
}

/// The attestation must certify this very key, or it proves nothing.
fn check(key_id: &str, attestation: &pb::KeyAttestation) -> Result<()> {
    let attested = PublicKey::from_certificate_pem(&attestation.slot_certificate_pem)
        .and_then(|k| k.bare_key())
        .map_err(|e| anyhow::anyhow!("the attestation certificate does not parse: {e}"))?;
    if attested.key_id() != key_id {
        bail!(
            "the attestation certificate certifies key {}, not key {key_id}; not printing it",
            attested.key_id()
        );
    }
    Ok(())
}

pub async fn run(client: &mut Client, args: &AttestArgs) -> Result<()> {
    let attestation = client
        .attest_key(pb::AttestKeyRequest {
            key_id: args.key_id.clone(),
        })
        .await
        .map_err(KeydError::from)?
        .into_inner();
    check(&attestation.key_id, &attestation)?;
    eprintln!(
        "Attestation of key {}: the slot's attestation certificate, then the YubiKey's \
         attestation intermediate. Verify the chain against Yubico's PIV root CA, e.g. \
         `openssl verify -CAfile yubico-piv-ca.pem -untrusted intermediate.pem slot.pem`.",
        attestation.key_id
    );
    print!("{}", attestation.slot_certificate_pem);
    print!("{}", attestation.intermediate_pem);
    Ok(())
}
