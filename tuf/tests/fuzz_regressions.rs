//! Inputs the fuzz targets in `fuzz/` once crashed on, replayed through the
//! same checks. A new finding's input goes into `tests/data/fuzz/<target>/`
//! with its fix.

use notary_tuf::SignedEnvelope;
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/fuzz", target]
        .iter()
        .collect();
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no inputs in {}", dir.display());
    found
}

/// The file `to_bytes` writes reads back to the same signed bytes and
/// signatures.
#[test]
fn metadata_files_survive_a_write_and_read() {
    for (path, bytes) in inputs("metadata") {
        let envelope =
            SignedEnvelope::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = envelope.to_bytes();
        let reread = SignedEnvelope::parse(&file).unwrap_or_else(|e| {
            panic!(
                "{}: written as {:?}, which does not parse: {e}",
                path.display(),
                String::from_utf8_lossy(&file)
            )
        });
        assert_eq!(
            reread.signed_bytes,
            envelope.signed_bytes,
            "{}",
            path.display()
        );
        assert_eq!(reread.signatures, envelope.signatures, "{}", path.display());
    }
}

/// A whole-second UTC time that reads is written back as the same text;
/// one Go refuses (second 60, a leap second) is refused.
#[test]
fn expiry_times_are_written_back_as_read() {
    use notary_tuf::metadata::{format_expires, parse_expires};
    for (path, bytes) in inputs("expires") {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(unix) = parse_expires(&text) {
            assert_eq!(format_expires(unix, 0), text, "{}", path.display());
        }
    }
}
