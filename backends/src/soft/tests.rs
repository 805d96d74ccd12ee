use super::*;
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
