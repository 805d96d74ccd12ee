//! Generate, restart, sign and verify with an independent verifier, on the
//! software keystore and on a real SoftHSM2 token.

use crate::common;

use common::*;
use softhsm_tests::{connect, openssl_verify, SoftHsm, TestDaemon};

const ALGORITHMS: [(&str, &str, u32); 6] = [
    ("ecdsa", "p256", 0),
    ("ecdsa", "p384", 0),
    ("ed25519", "", 0),
    ("rsa", "", 2048),
    ("rsa", "", 3072),
    ("rsa", "", 4096),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_on_both_backends_survives_restart_and_verifies() {
    let hsm = SoftHsm::new("notary", "1234").unwrap();
    let mut daemon = TestDaemon::new()
        .softhsm(&hsm, "hsm")
        .unwrap()
        .soft("soft")
        .start()
        .unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();

    let mut made = Vec::new();
    for backend in ["hsm", "soft"] {
        for (alg, curve, bits) in ALGORITHMS {
            made.push(
                generate(
                    &mut client,
                    NewKey::on(backend)
                        .algorithm(algorithm(alg, curve, bits))
                        .role("targets")
                        .gun("example.com/app"),
                )
                .await,
            );
        }
    }
    assert_eq!(made.len(), 12);
    for key in &made {
        assert!(
            key.uri.starts_with(if key.backend == "hsm" {
                "pkcs11:"
            } else {
                "soft:"
            }),
            "{key:?}"
        );
    }

    daemon.restart().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let listed = client
        .list_keys(keyd_proto::keyd::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .keys;
    for key in &made {
        let again = listed
            .iter()
            .find(|k| k.key_id == key.key_id)
            .unwrap_or_else(|| {
                panic!("key {} ({}) lost across restart", key.key_id, key.algorithm)
            });
        assert_eq!(again.public, key.public);
        assert_eq!(again.role(), keyd_proto::keyd::KeyRole::Targets);
        assert_eq!(again.gun, "example.com/app");
        assert_eq!(again.backend, key.backend);

        let payload = targets_payload(3);
        let (_, result) = sign(&mut client, &key.key_id, payload.clone()).await;
        let result =
            result.unwrap_or_else(|s| panic!("sign with {} {}: {s:?}", key.backend, key.algorithm));
        assert_eq!(result.key_id, key.key_id);
        openssl_verify(
            &key.keytype,
            &key.public,
            method_of(&result),
            &payload,
            &result.signature,
        )
        .unwrap_or_else(|e| panic!("{} {}: {e}", key.backend, key.algorithm));
        // A different payload must not verify with that signature.
        assert!(openssl_verify(
            &key.keytype,
            &key.public,
            method_of(&result),
            &targets_payload(4),
            &result.signature
        )
        .is_err());
    }
    daemon.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_root_certificate_is_notarys_profile_and_kept() {
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let mut client = connect(&daemon.socket).await.unwrap();
    let key = generate(&mut client, NewKey::on("soft").role("root")).await;
    let mut stream = client
        .issue_root_certificate(keyd_proto::keyd::IssueRootCertificateRequest {
            key_id: key.key_id.clone(),
            gun: "example.com/app".into(),
            validity_days: 0,
            pin: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut cert = None;
    while let Some(ev) = stream.message().await.unwrap() {
        if let Some(keyd_proto::keyd::issue_root_certificate_event::Event::Certificate(c)) =
            ev.event
        {
            cert = Some(c);
        }
    }
    let cert = cert.expect("a certificate");
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(cert.certificate_pem.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Subject: CN = example.com/app"), "{text}");
    assert!(text.contains("Code Signing"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");

    let x509 = notary_tuf::PublicKey::from_certificate_pem(&cert.certificate_pem).unwrap();
    assert_eq!(cert.x509_key_id, x509.key_id());
    assert_eq!(x509.bare_key().unwrap().key_id(), key.key_id);
    // The key is now also known by its x509 ID, and signs a Root under it.
    let (_, result) = sign_as(
        &mut client,
        &cert.x509_key_id,
        root_payload(),
        SignAs::default().role("root").gun("example.com/app"),
    )
    .await;
    assert_eq!(result.unwrap().key_id, cert.x509_key_id);
    let got = client
        .get_certificate(keyd_proto::keyd::GetCertificateRequest {
            key_id: key.key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.certificate_pem, cert.certificate_pem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_serving_and_sigterm_stops_cleanly() {
    let mut daemon = TestDaemon::new().soft("soft").start().unwrap();
    let channel = softhsm_tests::client::channel(&daemon.socket)
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "notary.keyd.v1.Keyd".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    daemon.stop().unwrap();
    assert!(!daemon.socket.exists(), "socket removed on shutdown");
    assert!(
        daemon.log_text().contains("SIGTERM"),
        "{}",
        daemon.log_text()
    );
}
