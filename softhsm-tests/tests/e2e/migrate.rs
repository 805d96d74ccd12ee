//! `notaryctl migrate`: a collection made and published by Debian's stock
//! notary CLI moves under notary-keyd; the stock client, with its old trust
//! dir, follows the root rotation; the imported key signs nothing but that
//! rotation and is gone afterwards.

use crate::common;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use common::*;
use keyd_proto::keyd as pb;
use softhsm_tests::notary_stack::{CliOutput, NotaryCli, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{connect, TestDaemon};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ok(out: anyhow::Result<CliOutput>) -> CliOutput {
    out.unwrap().ok().unwrap()
}

fn failed(out: anyhow::Result<CliOutput>) -> CliOutput {
    let out = out.unwrap();
    assert!(!out.status.success(), "{}\n{}", out.stdout, out.stderr);
    out
}

fn passphrase(stock: &NotaryCli) -> String {
    stock
        .env()
        .into_iter()
        .find(|(k, _)| k == "NOTARY_ROOT_PASSPHRASE")
        .unwrap()
        .1
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    all
}

/// A collection the stock CLI made and published, with target v1.
fn stock_collection(server: &NotaryServer, gun: &str) -> NotaryCli {
    let stock = server.cli().unwrap();
    std::fs::write(stock.work_dir().join("v1.txt"), b"release one\n").unwrap();
    ok(stock.run(&["init", gun]));
    ok(stock.run(&["add", gun, "v1", "v1.txt"]));
    ok(stock.run(&["publish", gun]));
    stock
}

/// The stock root key: its certificate as root.json lists it, the key
/// file, and the bare key ID (the file's name).
struct StockRoot {
    certificate_pem: String,
    key_file: Vec<u8>,
    key_id: String,
    signed: serde_json::Value,
}

fn stock_root(stock: &NotaryCli, gun: &str) -> StockRoot {
    let root_json = stock
        .trust_dir
        .join("tuf")
        .join(gun)
        .join("metadata/root.json");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root_json).unwrap()).unwrap();
    let signed = root["signed"].clone();
    let cert_id = signed["roles"]["root"]["keyids"][0].as_str().unwrap();
    let cert = B64
        .decode(
            signed["keys"][cert_id]["keyval"]["public"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let (key_id, key_file) = std::fs::read_dir(stock.trust_dir.join("private"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .find(|(_, bytes)| String::from_utf8_lossy(bytes).contains("role: root"))
        .map(|(p, bytes)| (p.file_stem().unwrap().to_string_lossy().into_owned(), bytes))
        .unwrap();
    StockRoot {
        certificate_pem: String::from_utf8(cert).unwrap(),
        key_file,
        key_id,
        signed,
    }
}

#[test]
fn a_stock_collection_migrates_and_the_stock_client_follows() {
    let pki = Pki::new("migrate").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let gun = "example.com/stock/migrated";
    let stock = stock_collection(&server, gun);
    let stock_root_id = stock_root(&stock, gun).key_id;
    let private_before = files(&stock.trust_dir.join("private"));
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let from = stock.trust_dir.to_str().unwrap();
    let pass = passphrase(&stock);
    let with_pass = [("NOTARY_ROOT_PASSPHRASE", pass.as_str())];

    // A GUN the stock client does not have.
    let out = failed(ctl.run_env(
        &with_pass,
        &[],
        &["migrate", "example.com/stock/absent", "--from", from],
    ));
    out.assert_warns("is not in the stock trust dir");
    // A trust dir without the root key file.
    let bare = tempfile::tempdir().unwrap();
    let bare_tuf = bare.path().join("tuf").join(gun).join("metadata");
    std::fs::create_dir_all(&bare_tuf).unwrap();
    let stock_tuf = stock.trust_dir.join("tuf").join(gun).join("metadata");
    std::fs::copy(stock_tuf.join("root.json"), bare_tuf.join("root.json")).unwrap();
    let elsewhere = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    let out = failed(elsewhere.run_env(
        &with_pass,
        &[],
        &["migrate", gun, "--from", bare.path().to_str().unwrap()],
    ));
    out.assert_warns("lacks the root key file");
    out.assert_warns(&stock_root_id);
    // A wrong passphrase imports nothing.
    let out = failed(ctl.run_env(
        &[("NOTARY_ROOT_PASSPHRASE", "not the passphrase")],
        &[],
        &["migrate", gun, "--from", from],
    ));
    out.assert_warns("the passphrase does not decrypt the key file");
    let keys = ok(ctl.run(&["key", "list"]));
    assert!(!keys.stdout.contains(&stock_root_id), "{}", keys.stdout);

    let out = ok(ctl.run_env(&with_pass, &[], &["migrate", gun, "--from", from]));
    out.assert_prints(&format!(
        "Destroyed notary-keyd's imported copy of root key {stock_root_id}"
    ));

    // The stock client, with the trust dir that knows only the old root,
    // follows the rotation.
    let listed = ok(stock.run(&["list", gun]));
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("v1 ")),
        "{}",
        listed.stdout
    );
    let file = ctl.work_dir().join("v2.txt");
    std::fs::write(&file, b"release two\n").unwrap();
    ok(ctl.run(&["add", gun, "v2", file.to_str().unwrap()]));
    ok(ctl.run(&["publish", gun]));
    let listed = ok(stock.run(&["list", gun]));
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("v2 ")),
        "{}",
        listed.stdout
    );
    let root: serde_json::Value = serde_json::from_slice(
        &server
            .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(root["signed"]["version"], 2);
    assert_eq!(
        root["signatures"].as_array().unwrap().len(),
        2,
        "old and new root key sign"
    );

    // The imported copy is gone; the import, its one signature and its
    // destruction are in the audit log.
    let keys = ok(ctl.run(&["key", "list"]));
    assert!(!keys.stdout.contains(&stock_root_id), "{}", keys.stdout);
    let audit = daemon.audit_lines();
    let of = |operation: &str| {
        audit
            .iter()
            .filter(|l| l["operation"] == operation && l["key_id"] == stock_root_id.as_str())
            .map(|l| l["result"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        of("import-for-migration").contains(&"ok".to_string()),
        "{audit:?}"
    );
    assert!(
        of("import-for-migration").iter().any(|r| r != "ok"),
        "the wrong passphrase"
    );
    assert_eq!(of("sign"), ["ok"], "{audit:?}");
    assert_eq!(of("delete"), ["ok"], "{audit:?}");
    assert_eq!(
        files(&stock.trust_dir.join("private")),
        private_before,
        "the stock key files are untouched"
    );

    // Running it again changes nothing.
    let again = ok(ctl.run_env(&with_pass, &[], &["migrate", gun, "--from", from]));
    again.assert_prints("is under notary-keyd already");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_key_signs_nothing_but_its_rotation() {
    let pki = Pki::new("imported").unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let daemon = TestDaemon::new().soft("soft").start().unwrap();
    let gun = "example.com/stock/imported";
    let stock = stock_collection(&server, gun);
    let root = stock_root(&stock, gun);
    let mut client = connect(&daemon.socket).await.unwrap();
    let request =
        |key_file: &[u8], passphrase: &str, certificate_pem: &str| pb::ImportForMigrationRequest {
            gun: gun.into(),
            key_file: key_file.to_vec(),
            passphrase: passphrase.into(),
            certificate_pem: certificate_pem.into(),
        };
    let pass = passphrase(&stock);

    // Each bad import has its own reason, and none stores a key.
    let cases = [
        (
            request(&root.key_file, "wrong", &root.certificate_pem),
            Reason::WrongPassphrase,
        ),
        (
            request(&root.key_file[..80], &pass, &root.certificate_pem),
            Reason::KeyFileInvalid,
        ),
        (
            request(
                &String::from_utf8_lossy(&root.key_file)
                    .replace("role: root", "role: root\ngun: example.com/other")
                    .into_bytes(),
                &pass,
                &root.certificate_pem,
            ),
            Reason::GunMismatch,
        ),
        (
            request(
                &String::from_utf8_lossy(&root.key_file)
                    .replace("role: root", "role: targets")
                    .into_bytes(),
                &pass,
                &root.certificate_pem,
            ),
            Reason::RoleMismatch,
        ),
    ];
    for (req, want) in cases {
        let st = client.import_for_migration(req).await.unwrap_err();
        assert_eq!(reason(&st), Some(want), "{st:?}");
    }
    let other = generate(&mut client, NewKey::on("soft").role("root")).await;
    let other_cert = issue_root_cert(&mut client, &other.key_id, gun)
        .await
        .unwrap();
    let st = client
        .import_for_migration(request(&root.key_file, &pass, &other_cert))
        .await
        .unwrap_err();
    assert_eq!(reason(&st), Some(Reason::KeyMismatch), "{st:?}");
    let listed = client
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.keys.len(), 1, "only the key generated here");

    let imported = client
        .import_for_migration(request(&root.key_file, &pass, &root.certificate_pem))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.key_id, root.key_id, "stock notary's key ID");
    let again = client
        .import_for_migration(request(&root.key_file, &pass, &root.certificate_pem))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.uri, imported.uri, "imported once");

    // The root that still lists it, a certificate and raw bytes: refused.
    let current = notary_tuf::to_canonical_vec(&root.signed).unwrap();
    let (_, r) = sign_as(
        &mut client,
        &imported.key_id,
        current,
        SignAs::default().role("root").gun(gun),
    )
    .await;
    assert_eq!(reason(&r.unwrap_err()), Some(Reason::MigrationOnly));
    let st = issue_root_cert(&mut client, &imported.key_id, gun)
        .await
        .unwrap_err();
    assert_eq!(reason(&st), Some(Reason::MigrationOnly), "{st:?}");
    let (_, r) = sign(&mut client, &imported.key_id, b"raw".to_vec()).await;
    assert!(r.is_err(), "raw bytes");
    // A root that rotates away from it: signed.
    let mut rotated = root.signed.clone();
    rotated["roles"]["root"]["keyids"] = serde_json::json!([other.key_id]);
    rotated["version"] = serde_json::json!(2);
    let payload = notary_tuf::to_canonical_vec(&rotated).unwrap();
    let (_, r) = sign_as(
        &mut client,
        &imported.key_id,
        payload,
        SignAs::default().role("root").gun(gun),
    )
    .await;
    r.unwrap();
}

async fn issue_root_cert(
    client: &mut keyd_proto::keyd::keyd_client::KeydClient<tonic::transport::Channel>,
    key_id: &str,
    gun: &str,
) -> Result<String, tonic::Status> {
    let mut stream = client
        .issue_root_certificate(pb::IssueRootCertificateRequest {
            key_id: key_id.into(),
            gun: gun.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        if let Some(pb::issue_root_certificate_event::Event::Certificate(cert)) = event.event {
            return Ok(cert.certificate_pem);
        }
    }
    Err(tonic::Status::internal("no certificate"))
}
