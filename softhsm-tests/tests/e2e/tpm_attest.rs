//! `notaryctl key attest` against a real swtpm through the real daemon:
//! the TPM2_Certify statement checks out in notaryctl and independently
//! with openssl; bad requests get distinct errors.

use crate::common;

use common::*;
use keyd_proto::keyd as pb;
use softhsm_tests::{connect, Swtpm, TestDaemon};
use std::process::Command;
use tonic::Code;

const GUN: &str = "example.com/app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_keys_are_attested_and_the_statement_checks_out() {
    let tpm = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("key.auth");
    softhsm_tests::write_secret(&auth, "attested key auth\n").unwrap();
    let daemon = TestDaemon::new()
        .tpm(&tpm, "tpm", &auth)
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let ec = generate(&mut client, NewKey::on("tpm").targets(GUN)).await;
    let rsa = generate(
        &mut client,
        NewKey::on("tpm").algorithm(Algorithm::Rsa2048).targets(GUN),
    )
    .await;
    let soft = generate(&mut client, NewKey::on("soft").targets(GUN)).await;

    let mut fingerprints = Vec::new();
    for key in [&ec, &rsa] {
        let out_dir = dir.path().join(&key.key_id);
        let out = notaryctl(
            &daemon,
            &[
                "key",
                "attest",
                &key.key_id,
                "--nonce",
                "00112233445566778899aabbccddeeff",
                "--out",
                out_dir.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["verified"], true);
        assert_eq!(summary["key_id"], key.key_id.as_str());
        assert_eq!(summary["format"], "tpm2-certify");
        fingerprints.push(
            summary["attestation_key_sha256"]
                .as_str()
                .unwrap()
                .to_string(),
        );

        // Independently: openssl checks the attestation key's signature.
        let verified = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(out_dir.join("ak.pem"))
            .arg("-signature")
            .arg(out_dir.join("attest.sig"))
            .arg(out_dir.join("attest.bin"))
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        // The nonce is inside the signed statement.
        let attest = std::fs::read(out_dir.join("attest.bin")).unwrap();
        let nonce = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert!(attest.windows(16).any(|w| w == nonce));
    }
    // One attestation key per TPM.
    assert_eq!(fingerprints[0], fingerprints[1]);

    // Bad requests: a nonce over 64 bytes, a key whose backend cannot attest.
    let long = client
        .attest_key(pb::AttestKeyRequest {
            key: ec.key_id.clone(),
            nonce: vec![7; 65],
        })
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument, "{long:?}");
    assert!(long.message().contains("at most 64"), "{long:?}");
    let unsupported = client
        .attest_key(pb::AttestKeyRequest {
            key: soft.key_id.clone(),
            nonce: vec![1; 8],
        })
        .await
        .unwrap_err();
    assert_eq!(unsupported.code(), Code::Unimplemented, "{unsupported:?}");
    assert!(
        unsupported.message().contains("cannot attest"),
        "{unsupported:?}"
    );
    let odd = notaryctl(&daemon, &["key", "attest", &ec.key_id, "--nonce", "abc"]);
    assert!(!odd.status.success());
    assert!(String::from_utf8_lossy(&odd.stderr).contains("even number of hex digits"));

    // Attesting left the key usable.
    let (_, signed) = sign_as(
        &mut client,
        &ec.key_id,
        targets_payload(1),
        SignAs::default().targets(GUN),
    )
    .await;
    signed.unwrap();
}
