//! `notaryctl key cert show|attach|issue-root`.

use super::with_pin_retry;
use crate::commands::key_named;
use crate::connect::Client;
use crate::errors::Reply;
use crate::progress;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use keyd_proto::keyd as pb;
use notary_tuf::rootcert::check_root_cert;
use notary_tuf::PublicKey;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// Key ID (bare or x509) or key URI.
    key_id: String,
}

/// PEM on stdout, ending in exactly one newline.
fn print_pem(pem: &str) {
    println!("{}", pem.trim_end_matches('\n'));
}

pub(crate) async fn show(client: &mut Client, args: &ShowArgs) -> Result<()> {
    let cert = client
        .get_certificate(pb::GetCertificateRequest {
            key_id: args.key_id.clone(),
        })
        .await
        .reply()?;
    eprintln!(
        "Certificate of key {} (x509 key ID {})",
        cert.key_id, cert.x509_key_id
    );
    print_pem(&cert.certificate_pem);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// Key ID of the key the certificate is for.
    key_id: String,
    /// PEM file: the leaf certificate first, then any intermediates.
    #[arg(value_name = "PEMFILE")]
    pem_file: PathBuf,
}

pub(crate) async fn attach(client: &mut Client, args: &AttachArgs) -> Result<()> {
    let pem = std::fs::read_to_string(&args.pem_file)
        .with_context(|| format!("cannot read {}", args.pem_file.display()))?;
    let cert = client
        .attach_certificate(pb::AttachCertificateRequest {
            key_id: args.key_id.clone(),
            certificate_pem: pem,
        })
        .await
        .reply()?;
    eprintln!(
        "Attached the certificate to key {}; its x509 key ID:",
        cert.key_id
    );
    println!("{}", cert.x509_key_id);
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct IssueRootArgs {
    /// Key ID of an ECDSA key to make the root certificate for.
    key_id: String,
    /// The collection (GUN) the certificate is for; it becomes the CN.
    #[arg(long)]
    gun: String,
    /// Validity in days [default: 3650, notary's 10 years].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    days: Option<u32>,
    /// If the token is locked, read its PIN from the first line of this file
    /// (else $NOTARY_KEYD_PIN_FILE, else $NOTARY_KEYD_PIN, else a terminal prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
}

/// The certificate must be notary-valid for the GUN, self-signed correctly,
/// and hold the key's own public key under the x509 ID the daemon reported.
fn check_issued(key: &pb::Key, gun: &str, cert: &pb::Certificate) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let refuse =
        |why: String| anyhow!("notary-keyd returned a root certificate that {why}; not using it");
    check_root_cert(&cert.certificate_pem, gun, now)
        .map_err(|e| refuse(format!("fails notary's checks ({e})")))?;
    let x509 = PublicKey::from_certificate_pem(&cert.certificate_pem)
        .map_err(|e| refuse(e.to_string()))?;
    let bare = x509.bare_key().map_err(|e| refuse(e.to_string()))?;
    if bare.key_id() != key.key_id {
        return Err(refuse(format!(
            "is for key {}, not {}",
            bare.key_id(),
            key.key_id
        )));
    }
    if x509.key_id() != cert.x509_key_id {
        return Err(refuse(format!(
            "has x509 key ID {}, not {} as reported",
            x509.key_id(),
            cert.x509_key_id
        )));
    }
    Ok(())
}

/// Has notary-keyd issue (and store) a root certificate for `key` and checks
/// it before returning it. `days` 0 means notary's 10 years.
pub(crate) async fn issue_checked(
    client: &mut Client,
    key: &pb::Key,
    gun: &str,
    days: u32,
    pin_file: Option<&std::path::Path>,
) -> Result<pb::Certificate> {
    let cert =
        with_pin_retry(&key.backend, pin_file, |pin| {
            let request = pb::IssueRootCertificateRequest {
                key_id: key.key_id.clone(),
                gun: gun.to_string(),
                validity_days: days,
                pin: pin.map(crate::pin::for_request).unwrap_or_default(),
            };
            let mut client = client.clone();
            async move {
                progress::follow(client.issue_root_certificate(request).await?.into_inner()).await
            }
        })
        .await?;
    check_issued(key, gun, &cert)?;
    Ok(cert)
}

pub(crate) async fn issue_root(client: &mut Client, args: &IssueRootArgs) -> Result<()> {
    if args.gun.is_empty() {
        bail!("--gun must name the collection, e.g. --gun example.com/app");
    }
    let key = key_named(client, &args.key_id).await?;
    let cert = issue_checked(
        client,
        &key,
        &args.gun,
        args.days.unwrap_or(0),
        args.pin_file.as_deref(),
    )
    .await?;
    eprintln!(
        "Issued a root certificate for {} with key {}; x509 key ID {}",
        args.gun, cert.key_id, cert.x509_key_id
    );
    print_pem(&cert.certificate_pem);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notary_tuf::rootcert::{assemble_root_cert, root_cert_tbs};
    use notary_tuf::KeyType;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey;

    fn issued(gun: &str) -> (pb::Key, pb::Certificate) {
        issued_with([9u8; 32], gun)
    }

    fn issued_with(secret: [u8; 32], gun: &str) -> (pb::Key, pb::Certificate) {
        let signing = SigningKey::from_slice(&secret).unwrap();
        let spki = signing
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        let public = PublicKey::new(KeyType::Ecdsa, spki.clone());
        let key = pb::Key {
            key_id: public.key_id(),
            keytype: "ecdsa".into(),
            public: spki.clone(),
            ..Default::default()
        };
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let tbs = root_cert_tbs(gun, &spki, [1u8; 16], now, 30).unwrap();
        let sig: Signature = signing.sign(&tbs);
        let pem = assemble_root_cert(&tbs, &sig.to_bytes()).unwrap();
        let x509_key_id = PublicKey::from_certificate_pem(&pem).unwrap().key_id();
        let cert = pb::Certificate {
            key_id: key.key_id.clone(),
            x509_key_id,
            certificate_pem: pem,
        };
        (key, cert)
    }

    #[test]
    fn issued_certificate_is_checked() {
        let (key, cert) = issued("example.com/app");
        check_issued(&key, "example.com/app", &cert).unwrap();

        let err = check_issued(&key, "example.com/other", &cert)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fails notary's checks"), "{err}");

        let mut wrong_id = cert.clone();
        wrong_id.x509_key_id = "00".repeat(32);
        assert!(check_issued(&key, "example.com/app", &wrong_id)
            .unwrap_err()
            .to_string()
            .contains("as reported"));

        // A certificate for another key is refused even if otherwise valid.
        let (_, other) = issued_with([3u8; 32], "example.com/app");
        let err = check_issued(&key, "example.com/app", &other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is for key"), "{err}");
    }
}
