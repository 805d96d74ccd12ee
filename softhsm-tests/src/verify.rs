//! An independent verifier: the `openssl` command line, which shares no
//! code with the daemon or its backends.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
}

fn der_uint(bytes: &[u8], out: &mut Vec<u8>) {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = if trimmed.is_empty() { vec![0] } else { trimmed };
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    out.push(0x02);
    der_len(v.len(), out);
    out.extend(v);
}

/// ECDSA raw r||s to the DER form openssl reads.
fn ecdsa_raw_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::new();
    der_uint(r, &mut body);
    der_uint(s, &mut body);
    let mut out = vec![0x30];
    der_len(body.len(), &mut out);
    out.extend(body);
    out
}

/// Verifies a notary signature (`method` ecdsa/eddsa/rsapss) over `payload`
/// with the notary public key bytes (`keytype` ecdsa/rsa: DER SPKI;
/// ed25519: raw 32 bytes) using openssl.
pub fn openssl_verify(
    keytype: &str,
    public: &[u8],
    method: &str,
    payload: &[u8],
    sig: &[u8],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spki = match keytype {
        // Ed25519 SPKI: fixed 12-byte prefix then the key.
        "ed25519" => [
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ][..],
            public,
        ]
        .concat(),
        _ => public.to_vec(),
    };
    let key = dir.path().join("key.der");
    let msg = dir.path().join("msg");
    let sigf = dir.path().join("sig");
    std::fs::write(&key, spki)?;
    std::fs::write(&msg, payload)?;
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!(
                "openssl {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let (key, msg, sig_file) = (arg(&key), arg(&msg), arg(&sigf));
    // ECDSA and RSA-PSS go through `dgst` (PSS with notary's parameters);
    // Ed25519 signs the message itself, which only `pkeyutl -rawin` checks.
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sigopt",
        "rsa_mgf1_md:sha256",
    ];
    let options: &[&str] = match method {
        "ecdsa" => {
            std::fs::write(&sigf, ecdsa_raw_to_der(sig))?;
            &[]
        }
        "rsapss" => {
            std::fs::write(&sigf, sig)?;
            &pss
        }
        "eddsa" => {
            std::fs::write(&sigf, sig)?;
            return run(&[
                "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", &key, "-rawin", "-in",
                &msg, "-sigfile", &sig_file,
            ]);
        }
        other => bail!("unknown method {other}"),
    };
    let mut args = vec!["dgst", "-sha256", "-keyform", "DER", "-verify", &key];
    args.extend_from_slice(options);
    args.extend(["-signature", &sig_file, &msg]);
    run(&args)
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}
