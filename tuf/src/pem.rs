//! Minimal PEM reading and Go-compatible PEM writing.
//!
//! Notary hashes the PEM *text* of certificates into key IDs, so writing must
//! match Go's `pem.EncodeToMemory` byte for byte: 64-character lines and a
//! trailing newline.

use base64::{engine::general_purpose::STANDARD as B64, Engine};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("PEM: no \"-----BEGIN\" block found")]
    NoBlock,
    #[error("PEM: block {0:?} has no matching END line")]
    Unterminated(String),
    #[error("PEM: block {0:?} has invalid base64")]
    BadBase64(String),
}

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    /// True when the block carries `Key: value` headers (notary's key files do).
    pub has_headers: bool,
    pub der: Vec<u8>,
}

/// Decodes every PEM block in `text`, in order; text between blocks is ignored.
pub fn parse_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let text = String::from_utf8_lossy(text);
    let mut lines = text.lines().map(str::trim);
    let mut blocks = Vec::new();
    while let Some(line) = lines.next() {
        let Some(label) = strip_marker(line, "-----BEGIN ") else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut has_headers = false;
        let mut terminated = false;
        for line in lines.by_ref() {
            if line == end {
                terminated = true;
                break;
            }
            if line.contains(':') {
                has_headers = true;
            } else {
                body.push_str(line);
            }
        }
        if !terminated {
            return Err(PemError::Unterminated(label.to_string()));
        }
        let der = B64
            .decode(body.as_bytes())
            .map_err(|_| PemError::BadBase64(label.to_string()))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            has_headers,
            der,
        });
    }
    if blocks.is_empty() {
        return Err(PemError::NoBlock);
    }
    Ok(blocks)
}

fn strip_marker<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

/// Encodes one block exactly as Go's `pem.EncodeToMemory` does (no headers).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 output is ASCII, so splitting by bytes keeps characters whole.
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_wraps_at_64() {
        let der: Vec<u8> = (0..100u8).collect();
        let text = encode("CERTIFICATE", &der);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(text.ends_with("-----\n"));
        let blocks = parse_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].der, der);
        assert!(!blocks[0].has_headers);
    }

    #[test]
    fn reads_headers_and_several_blocks() {
        let text = "junk\n-----BEGIN A-----\nrole: root\n\nAAEC\n-----END A-----\r\n-----BEGIN B-----\nAw==\n-----END B-----\n";
        let blocks = parse_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks[0].label, "A");
        assert!(blocks[0].has_headers);
        assert_eq!(blocks[0].der, vec![0, 1, 2]);
        assert_eq!(blocks[1].der, vec![3]);
    }

    #[test]
    fn rejects_broken_pem() {
        assert_eq!(parse_blocks(b"nothing"), Err(PemError::NoBlock));
        assert_eq!(
            parse_blocks(b"-----BEGIN X-----\nAAAA\n"),
            Err(PemError::Unterminated("X".into()))
        );
        assert_eq!(
            parse_blocks(b"-----BEGIN X-----\n!!\n-----END X-----\n"),
            Err(PemError::BadBase64("X".into()))
        );
    }
}
