//! `notaryctl sign`: one signature over the canonical bytes of `signed`,
//! checked against the key's public key before it is printed.

use super::key::role_arg;
use super::with_pin_retry;
use crate::connect::Client;
use crate::errors::Reply;
use crate::progress;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use notary_tuf::{verify, KeyType, PublicKey, Signature};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Key ID (bare or x509) of the signing key.
    #[arg(long, value_name = "KEYID")]
    pub key: String,
    /// Role the metadata is for; default: the key's role binding.
    #[arg(long)]
    role: Option<String>,
    /// GUN the metadata is for; default: the key's GUN binding.
    #[arg(long)]
    gun: Option<String>,
    /// If the token is locked, read its PIN from the first line of this file
    /// (else $NOTARY_KEYD_PIN_FILE, else $NOTARY_KEYD_PIN, else a terminal prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// File holding the canonical JSON bytes of the `signed` object; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: String,
}

fn read_payload(file: &str) -> Result<Vec<u8>> {
    let payload = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the payload from stdin")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {file}"))?
    };
    if payload.is_empty() {
        bail!("the payload {file} is empty");
    }
    Ok(payload)
}

/// The bare public key of a key as GetKey returns it, checked against its ID.
pub(crate) fn public_key(key: &pb::Key) -> Result<PublicKey> {
    let keytype: KeyType = key.keytype.parse()?;
    let public = PublicKey::new(keytype, key.public.clone());
    if public.key_id() != key.key_id {
        bail!(
            "notary-keyd described key {} with a public key whose ID is {}; not using it",
            key.key_id,
            public.key_id()
        );
    }
    Ok(public)
}

/// Accepts a signature only if it is by `key` (under its bare or x509 ID)
/// and verifies over `payload`.
fn check_signature(key: &pb::Key, payload: &[u8], result: pb::SignResult) -> Result<Signature> {
    let public = public_key(key)?;
    let listed_as_key = result.key_id == key.key_id
        || (!key.x509_key_id.is_empty() && result.key_id == key.x509_key_id);
    if !listed_as_key {
        bail!(
            "notary-keyd returned a signature for key {}, not for key {}; not using it",
            result.key_id,
            key.key_id
        );
    }
    let method = result
        .method()
        .notary()
        .ok_or_else(|| anyhow!("notary-keyd returned a signature without a method"))?;
    verify(&public, method, payload, &result.signature).map_err(|e| {
        anyhow!("notary-keyd returned a signature that does not verify; not using it ({e})")
    })?;
    Ok(Signature {
        keyid: result.key_id,
        method,
        sig: result.signature,
    })
}

pub(crate) async fn run(client: &mut Client, args: &SignArgs) -> Result<()> {
    let payload = read_payload(&args.file)?;
    let lookup = pb::GetKeyRequest {
        key: args.key.clone(),
    };
    // A key the caller may not see still goes to Sign, so the daemon makes
    // (and audits) the decision and the person gets its reason.
    let known = client
        .get_key(lookup.clone())
        .await
        .ok()
        .map(|r| r.into_inner());
    let backend = known
        .as_ref()
        .map(|k| k.backend.clone())
        .unwrap_or_default();
    let (role, delegation) = role_arg(args.role.as_deref())?;
    let result = with_pin_retry(&backend, args.pin_file.as_deref(), |pin| {
        // No role and no GUN let the daemon apply the key's binding.
        let request = pb::SignRequest {
            key_id: args.key.clone(),
            payload: payload.clone(),
            gun: args.gun.clone().unwrap_or_default(),
            role,
            delegation: delegation.clone(),
            pin: pin.map(crate::pin::for_request).unwrap_or_default(),
        };
        let mut client = client.clone();
        async move { progress::follow(client.sign(request).await?.into_inner()).await }
    })
    .await?;
    let key = match known {
        Some(key) => key,
        None => client.get_key(lookup).await.reply()?,
    };
    let signature = check_signature(&key, &payload, result)?;
    println!("{}", serde_json::to_string(&signature)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature as P256Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey;

    const PAYLOAD: &[u8] =
        br#"{"_type":"Targets","expires":"2030-01-01T00:00:00Z","targets":{},"version":1}"#;

    fn p256_key() -> (SigningKey, pb::Key) {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let spki = signing
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        let key_id = PublicKey::new(KeyType::Ecdsa, spki.clone()).key_id();
        let key = pb::Key {
            key_id,
            keytype: "ecdsa".into(),
            public: spki,
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            backend: "hsm".into(),
            ..Default::default()
        };
        (signing, key)
    }

    fn result_for(key: &pb::Key, sig: Vec<u8>) -> pb::SignResult {
        pb::SignResult {
            key_id: key.key_id.clone(),
            method: pb::SignatureMethod::Ecdsa as i32,
            signature: sig,
        }
    }

    #[test]
    fn valid_signature_is_accepted() {
        let (signing, key) = p256_key();
        let sig: P256Signature = signing.sign(PAYLOAD);
        let checked =
            check_signature(&key, PAYLOAD, result_for(&key, sig.to_bytes().to_vec())).unwrap();
        assert_eq!(checked.keyid, key.key_id);
        let line = serde_json::to_string(&checked).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["method"], "ecdsa");
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn flipped_byte_is_refused() {
        let (signing, key) = p256_key();
        let sig: P256Signature = signing.sign(PAYLOAD);
        let mut bad = sig.to_bytes().to_vec();
        bad[10] ^= 0x01;
        let err = check_signature(&key, PAYLOAD, result_for(&key, bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("notary-keyd returned a signature that does not verify; not using it"),
            "{err}"
        );
        // A valid signature over other bytes is refused too.
        let err =
            check_signature(&key, b"other", result_for(&key, sig.to_bytes().to_vec())).unwrap_err();
        assert!(err.to_string().contains("does not verify"));
    }

    #[test]
    fn signature_must_be_by_the_requested_key() {
        let (signing, key) = p256_key();
        let sig: P256Signature = signing.sign(PAYLOAD);
        let mut result = result_for(&key, sig.to_bytes().to_vec());
        result.key_id = "ff".repeat(32);
        let err = check_signature(&key, PAYLOAD, result)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not for key"), "{err}");

        // Under the key's x509 ID it is accepted.
        let mut key_with_cert = key.clone();
        key_with_cert.x509_key_id = "ee".repeat(32);
        let mut result = result_for(&key, sig.to_bytes().to_vec());
        result.key_id = key_with_cert.x509_key_id.clone();
        assert_eq!(
            check_signature(&key_with_cert, PAYLOAD, result)
                .unwrap()
                .keyid,
            "ee".repeat(32)
        );
    }

    #[test]
    fn public_key_must_match_its_id() {
        let (_, mut key) = p256_key();
        key.key_id = "00".repeat(32);
        assert!(public_key(&key)
            .unwrap_err()
            .to_string()
            .contains("not using it"));
    }
}
