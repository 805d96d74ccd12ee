//! The pieces of `keyd-bench`: the algorithms it measures, the timing window
//! both sides share, the direct (in-process cryptoki) and keyd (gRPC over
//! the socket) runners, the TPM line (swtpm), and the report; and the
//! signer-API comparison (notary-keyd's `proto.Signer` vs the stock
//! notary-signer).

pub(crate) mod direct;
pub(crate) mod keyd;
pub(crate) mod procfs;
pub(crate) mod report;
pub(crate) mod signer;
pub(crate) mod tpm;

use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// An algorithm both sides sign with, on the same SoftHSM token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    EcdsaP256,
    Ed25519,
    Rsa3072,
}

impl Alg {
    /// The name in the JSON output (and the daemon's `Key.algorithm`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::EcdsaP256 => "ecdsa-p256",
            Alg::Ed25519 => "ed25519",
            Alg::Rsa3072 => "rsa-3072",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Alg> {
        match s {
            "ecdsa-p256" | "p256" | "ecdsa" => Ok(Alg::EcdsaP256),
            "ed25519" => Ok(Alg::Ed25519),
            "rsa-3072" | "rsa" => Ok(Alg::Rsa3072),
            other => bail!("unknown algorithm {other:?} (ecdsa-p256, ed25519, rsa-3072)"),
        }
    }

    /// `GenerateKeyRequest` fields: (algorithm, curve, bits).
    /// The algorithm as `GenerateKey` names it.
    pub(crate) fn wire(self) -> keyd_proto::keyd::Algorithm {
        match self {
            Alg::EcdsaP256 => keyd_proto::keyd::Algorithm::EcdsaP256,
            Alg::Ed25519 => keyd_proto::keyd::Algorithm::Ed25519,
            Alg::Rsa3072 => keyd_proto::keyd::Algorithm::Rsa3072,
        }
    }

    /// The floor for keyd/direct at 16 concurrent clients.
    pub(crate) fn floor(self) -> f64 {
        match self {
            Alg::EcdsaP256 => 0.6,
            Alg::Ed25519 => 0.8,
            Alg::Rsa3072 => 0.95,
        }
    }
}

/// The client count the ratio floors apply to.
pub(crate) const FLOOR_CLIENTS: usize = 16;

/// The ceiling for the daemon's peak RSS (VmHWM), in KiB.
pub(crate) const RSS_CEILING_KB: u64 = 64 * 1024;

/// When operations count: those completing inside `[start, end]`. Workers
/// run from when they are handed the window until `end`; what completes
/// before `start` is warm-up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    /// A window that opens after `warmup` from now and lasts `measure`.
    pub(crate) fn after(warmup: Duration, measure: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + measure,
        }
    }

    pub(crate) fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }

    pub(crate) fn open(&self) -> bool {
        Instant::now() < self.end
    }

    pub(crate) fn counts(&self, done: Instant) -> bool {
        done >= self.start && done <= self.end
    }
}

/// One OS thread per worker, each calling its `op` in a loop while the
/// window is open; returns how many calls completed inside the window.
pub(crate) fn count_in_window<F>(window: Window, workers: Vec<F>) -> Result<u64>
where
    F: FnMut() -> Result<()> + Send,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut op| {
                scope.spawn(move || -> Result<u64> {
                    let mut ops = 0u64;
                    while window.open() {
                        op()?;
                        if window.counts(Instant::now()) {
                            ops += 1;
                        }
                    }
                    Ok(ops)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("bench worker panicked")))
            })
            .sum()
    })
}

/// CPU µs per operation, from CPU measured over warm-up plus window
/// (`span_s` seconds in all) and the rate in the window.
pub(crate) fn cpu_us_per_op(cpu: Duration, rate: f64, span_s: f64) -> f64 {
    if rate > 0.0 {
        cpu.as_secs_f64() * 1e6 / (rate * span_s)
    } else {
        0.0
    }
}

/// A canonical notary `Targets` payload (the `signed` bytes), about 1.1 KB
/// with eight targets, so the daemon's content check accepts it for a key
/// bound to role "targets" without raw-signing permission.
pub(crate) fn targets_payload() -> Result<Vec<u8>> {
    use serde_json::{json, Map, Value};
    use sha2::{Digest, Sha256};
    let mut targets = Map::new();
    for i in 0..8u32 {
        let name = format!("release/v1.{i}.0/app-linux-amd64.tar.gz");
        let digest = Sha256::digest(name.as_bytes());
        let b64 = base64_std(&digest);
        targets.insert(
            name,
            json!({ "hashes": { "sha256": b64 }, "length": 1_048_576 + u64::from(i) * 4096 }),
        );
    }
    let signed: Value = json!({
        "_type": "Targets",
        "delegations": { "keys": {}, "roles": [] },
        "expires": "2030-01-01T00:00:00Z",
        "targets": Value::Object(targets),
        "version": 7,
    });
    let bytes = notary_tuf::to_canonical_vec(&signed)?;
    if notary_tuf::payload_type(&bytes)? != notary_tuf::MetadataType::Targets {
        bail!("bench payload is not Targets metadata");
    }
    Ok(bytes)
}

/// Standard padded base64 (the payload only needs it for realistic hashes).
fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The CKA_ID in a `pkcs11:` key URI's `id` attribute (RFC 7512,
/// percent-encoded bytes).
pub(crate) fn cka_id_from_uri(uri: &str) -> Result<Vec<u8>> {
    let Some(path) = uri.strip_prefix("pkcs11:") else {
        bail!("{uri} is not a pkcs11: URI");
    };
    let path = path.split('?').next().unwrap_or_default();
    let Some(value) = path.split(';').find_map(|attr| attr.strip_prefix("id=")) else {
        bail!("{uri} has no id attribute");
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).unwrap_or_default();
            match u8::from_str_radix(hex, 16) {
                Ok(b) if hex.len() == 2 => out.push(b),
                _ => bail!("{uri}: bad percent-encoding in id"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        bail!("{uri} has an empty id");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc7512_ids() {
        assert_eq!(
            cka_id_from_uri("pkcs11:token=notary;object=t;id=%01%AB%ff").unwrap(),
            vec![1, 0xab, 0xff]
        );
        assert_eq!(cka_id_from_uri("pkcs11:id=ab%20").unwrap(), b"ab ".to_vec());
        assert!(cka_id_from_uri("pkcs11:id=%G1").is_err());
        assert!(cka_id_from_uri("soft:id=1").is_err());
    }

    #[test]
    fn payload_is_canonical_targets() {
        let p = targets_payload().unwrap();
        assert!(p.len() > 1000, "{}", p.len());
        assert_eq!(base64_std(b"abcd"), "YWJjZA==");
        assert_eq!(base64_std(b"abc"), "YWJj");
        assert_eq!(base64_std(b"ab"), "YWI=");
    }
}
