use super::*;
use crate::import::{ImportError, ImportMark, KeyImport, NotaryKeyFile};
use notary_tuf::KeyType;
use secrecy::SecretString;
use std::os::unix::fs::PermissionsExt;

fn open(dir: &std::path::Path, pass: Option<&str>) -> Result<SoftBackend, BackendError> {
    SoftBackend::open(SoftConfig {
        dir: dir.to_path_buf(),
        passphrase: pass.map(|p| SecretString::from(p.to_string())),
    })
}

fn spec(algorithm: Algorithm) -> KeySpec {
    KeySpec {
        algorithm,
        label: format!("test {algorithm}"),
    }
}

#[test]
fn keys_survive_reopen_with_same_ids_and_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, Some("correct horse")).unwrap();
    let mut made = Vec::new();
    for alg in [
        Algorithm::EcdsaP256,
        Algorithm::EcdsaP384,
        Algorithm::Ed25519,
        Algorithm::Rsa2048,
    ] {
        made.push(backend.generate(&spec(alg)).unwrap());
    }
    drop(backend);

    let reopened = open(&dir, Some("correct horse")).unwrap();
    let listed = reopened.list().unwrap();
    assert_eq!(listed.len(), made.len());
    for key in &made {
        let again = listed.iter().find(|k| k.uri == key.uri).unwrap();
        assert_eq!(again.public.key_id(), key.public.key_id());
        let sig = reopened.sign(&key.uri, b"{\"_type\":\"Targets\"}").unwrap();
        let expected_len = match key.algorithm {
            Algorithm::EcdsaP256 | Algorithm::Ed25519 => 64,
            Algorithm::EcdsaP384 => 96,
            _ => 256,
        };
        assert_eq!(sig.len(), expected_len, "{}", key.algorithm);
        let method = notary_tuf::signature::SignatureMethod::for_key_type(key.public.keytype());
        notary_tuf::verify(&key.public, method, b"{\"_type\":\"Targets\"}", &sig)
            .unwrap_or_else(|e| panic!("{} signature does not verify: {e}", key.algorithm));
    }
    assert_eq!(made[2].public.keytype(), KeyType::Ed25519);
}

#[test]
fn key_files_are_private_and_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, Some("pw")).unwrap();
    let key = backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    let id = key.uri.get("id").unwrap();
    let path = dir.join("keys").join(format!("{id}.json"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"sealed\""), "{text}");
    assert!(!text.contains("\"plain\""));
}

#[test]
fn wrong_or_missing_passphrase_is_refused_and_keeps_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, Some("right")).unwrap();
    backend.generate(&spec(Algorithm::Ed25519)).unwrap();
    drop(backend);
    let err = open(&dir, Some("wrong")).err().unwrap().to_string();
    assert!(err.contains("passphrase does not open"), "{err}");
    let err = open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("encrypted"), "{err}");
    assert_eq!(open(&dir, Some("right")).unwrap().list().unwrap().len(), 1);
}

#[test]
fn unencrypted_keystore_works_and_refuses_a_later_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, None).unwrap();
    backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    drop(backend);
    let err = open(&dir, Some("late")).err().unwrap().to_string();
    assert!(err.contains("unencrypted keys"), "{err}");
    assert!(err.contains("notary-keyd keystore encrypt"), "{err}");
}

fn secret(pass: &str) -> SecretString {
    SecretString::from(pass.to_string())
}

/// The key files' private parts, by kind: (sealed, plain).
fn sealed_and_plain(dir: &std::path::Path) -> (usize, usize) {
    let mut counts = (0, 0);
    for entry in std::fs::read_dir(dir.join("keys")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("\"sealed\"") {
            counts.0 += 1;
        } else if text.contains("\"plain\"") {
            counts.1 += 1;
        }
    }
    counts
}

#[test]
fn encrypting_in_place_keeps_every_key_and_its_import_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, None).unwrap();
    let made: Vec<_> = [Algorithm::EcdsaP256, Algorithm::Ed25519, Algorithm::Rsa2048]
        .into_iter()
        .map(|alg| backend.generate(&spec(alg)).unwrap())
        .collect();
    let imported = import_root(&backend, "rootpass", NOTARY_ROOT_KEY_ID).unwrap();
    drop(backend);
    assert_eq!(sealed_and_plain(&dir), (0, 4));

    let done = encrypt_in_place(&dir, &secret("new pass")).unwrap();
    assert_eq!(
        done,
        Encrypted {
            sealed: 4,
            already_sealed: 0
        }
    );
    assert_eq!(sealed_and_plain(&dir), (4, 0));
    let err = open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("encrypted"), "{err}");
    let reopened = open(&dir, Some("new pass")).unwrap();
    assert_eq!(reopened.list().unwrap().len(), 4);
    for key in made.iter().chain([&imported]) {
        let sig = reopened.sign(&key.uri, b"payload").unwrap();
        let method = notary_tuf::signature::SignatureMethod::for_key_type(key.public.keytype());
        notary_tuf::verify(&key.public, method, b"payload", &sig).unwrap();
    }
    assert_eq!(reopened.imported(&imported.uri), Some(root_mark()));
    drop(reopened);
    let again = encrypt_in_place(&dir, &secret("new pass")).unwrap();
    assert_eq!(
        again,
        Encrypted {
            sealed: 0,
            already_sealed: 4
        }
    );
}

#[test]
fn an_encryption_cut_short_is_finished_with_the_same_passphrase_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, None).unwrap();
    let first = backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    drop(backend);
    encrypt_in_place(&dir, &secret("pass")).unwrap();
    // A plain key file beside sealed ones: what a run cut short after
    // keystore.json leaves. Written by a keystore opened without a sealer.
    let plain_dir = tmp.path().join("plain");
    let plain = open(&plain_dir, None).unwrap();
    let second = plain.generate(&spec(Algorithm::Ed25519)).unwrap();
    drop(plain);
    let id = second.uri.get("id").unwrap();
    std::fs::copy(
        plain_dir.join("keys").join(format!("{id}.json")),
        dir.join("keys").join(format!("{id}.json")),
    )
    .unwrap();
    assert_eq!(sealed_and_plain(&dir), (1, 1));
    // Both keys serve meanwhile.
    assert_eq!(open(&dir, Some("pass")).unwrap().list().unwrap().len(), 2);

    let err = encrypt_in_place(&dir, &secret("other"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("passphrase does not open"), "{err}");
    assert_eq!(
        sealed_and_plain(&dir),
        (1, 1),
        "a wrong passphrase changes nothing"
    );
    let done = encrypt_in_place(&dir, &secret("pass")).unwrap();
    assert_eq!(
        done,
        Encrypted {
            sealed: 1,
            already_sealed: 1
        }
    );
    let reopened = open(&dir, Some("pass")).unwrap();
    for key in [&first, &second] {
        reopened.sign(&key.uri, b"payload").unwrap();
    }
}

#[test]
fn an_open_keystore_is_neither_encrypted_nor_opened_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, None).unwrap();
    backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    let err = encrypt_in_place(&dir, &secret("pass"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already open"), "{err}");
    let err = open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("already open"), "{err}");
    assert_eq!(sealed_and_plain(&dir), (0, 1));
    drop(backend);
    let err = encrypt_in_place(&tmp.path().join("nothing"), &secret("pass"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a software keystore"), "{err}");
    assert!(!tmp.path().join("nothing").exists());
}

#[test]
fn refuses_a_directory_others_can_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = open(&dir, None).err().unwrap().to_string();
    assert!(err.contains("mode 755"), "{err}");
}

#[test]
fn delete_and_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = open(&tmp.path().join("ks"), None).unwrap();
    let key = backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    let certs = backend.certificates().unwrap();
    assert_eq!(certs.certificate(&key.uri).unwrap(), None);
    certs.put_certificate(&key.uri, b"der bytes").unwrap();
    assert_eq!(certs.certificate(&key.uri).unwrap().unwrap(), b"der bytes");
    backend.delete(&key.uri).unwrap();
    assert!(matches!(
        backend.sign(&key.uri, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    assert!(matches!(
        backend.delete(&key.uri),
        Err(BackendError::KeyNotFound(_))
    ));
    assert!(backend.list().unwrap().is_empty());
}

#[test]
fn rejects_foreign_and_traversal_uris() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = open(&tmp.path().join("ks"), None).unwrap();
    let foreign = KeyUri::new("pkcs11").with("id", "01");
    assert!(matches!(
        backend.sign(&foreign, b"x"),
        Err(BackendError::InvalidUri { .. })
    ));
    let traversal = KeyUri::new("soft").with("id", "../../etc/passwd");
    assert!(matches!(
        backend.sign(&traversal, b"x"),
        Err(BackendError::KeyNotFound(_))
    ));
    assert!(backend
        .certificates()
        .unwrap()
        .certificate(&traversal)
        .is_err());
}

/// A root key file written by Debian's `notary` 0.7 (`notary key generate
/// ecdsa --role root`, passphrase "rootpass"); its name is its key ID.
const NOTARY_ROOT_KEY: &str = include_str!("testdata/notary-root.key");
const NOTARY_ROOT_KEY_ID: &str = "1419cf7bdbc802d1103db2b9023f306d0e830d250839a1a04d0eccb53e41f72f";

fn root_mark() -> ImportMark {
    ImportMark {
        role: notary_tuf::Role::Root,
        gun: notary_tuf::metadata::Gun::parse("example.com/app").unwrap(),
    }
}

fn import_root(
    backend: &SoftBackend,
    pass: &str,
    expected: &str,
) -> Result<BackendKey, ImportError> {
    let file = NotaryKeyFile::parse(NOTARY_ROOT_KEY.as_bytes()).unwrap();
    let pass = SecretString::from(pass.to_string());
    backend.import(&file, &pass, expected, &root_mark())
}

#[test]
fn a_stock_notary_key_is_imported_marked_and_kept_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, Some("at rest")).unwrap();
    let key = import_root(&backend, "rootpass", NOTARY_ROOT_KEY_ID).unwrap();
    assert_eq!(key.public.key_id(), NOTARY_ROOT_KEY_ID, "notary's key ID");
    assert_eq!(key.algorithm, Algorithm::EcdsaP256);
    assert_eq!(backend.imported(&key.uri), Some(root_mark()));
    let again = import_root(&backend, "rootpass", NOTARY_ROOT_KEY_ID).unwrap();
    assert_eq!(again.uri, key.uri, "a held key is not stored twice");
    assert_eq!(backend.list().unwrap().len(), 1);
    let made = backend.generate(&spec(Algorithm::EcdsaP256)).unwrap();
    assert_eq!(backend.imported(&made.uri), None);
    drop(backend);

    let reopened = open(&dir, Some("at rest")).unwrap();
    assert_eq!(reopened.imported(&key.uri), Some(root_mark()));
    let sig = reopened.sign(&key.uri, b"payload").unwrap();
    notary_tuf::verify(
        &key.public,
        notary_tuf::SignatureMethod::Ecdsa,
        b"payload",
        &sig,
    )
    .unwrap();
}

#[test]
fn a_stripped_import_mark_breaks_the_seal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let backend = open(&dir, Some("at rest")).unwrap();
    let key = import_root(&backend, "rootpass", NOTARY_ROOT_KEY_ID).unwrap();
    drop(backend);
    let id = key.uri.get("id").unwrap();
    let path = dir.join("keys").join(format!("{id}.json"));
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file.as_object_mut().unwrap().remove("imported").unwrap();
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    assert!(
        open(&dir, Some("at rest")).is_err(),
        "an unmarked copy must not open"
    );
}

#[test]
fn a_bad_import_stores_nothing_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = open(&tmp.path().join("ks"), None).unwrap();
    match import_root(&backend, "not the passphrase", NOTARY_ROOT_KEY_ID) {
        Err(ImportError::WrongPassphrase) => {}
        other => panic!("{other:?}"),
    }
    let other = "ab".repeat(32);
    match import_root(&backend, "rootpass", &other) {
        Err(ImportError::KeyMismatch { found, expected }) => {
            assert_eq!(
                (found.as_str(), expected.as_str()),
                (NOTARY_ROOT_KEY_ID, other.as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    let mut file = NotaryKeyFile::parse(NOTARY_ROOT_KEY.as_bytes()).unwrap();
    file.encrypted_der.truncate(40);
    let pass = SecretString::from("rootpass".to_string());
    assert!(matches!(
        backend.import(&file, &pass, NOTARY_ROOT_KEY_ID, &root_mark()),
        Err(ImportError::Invalid(_))
    ));
    assert!(backend.list().unwrap().is_empty());
}
