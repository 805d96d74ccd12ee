//! TPM public areas and signatures in notary's encodings.

use crate::encoding::{self, Curve};
use crate::Algorithm;
use notary_tuf::PublicKey;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{Public, Signature};

/// The algorithm and notary public key (DER SPKI) of a key's public area.
pub(super) fn notary_public(public: &Public) -> Result<(Algorithm, PublicKey), String> {
    match public {
        Public::Ecc {
            parameters, unique, ..
        } => {
            let curve = match parameters.ecc_curve() {
                EccCurve::NistP256 => Curve::P256,
                EccCurve::NistP384 => Curve::P384,
                other => return Err(format!("TPM key on curve {other:?}, not P-256/P-384")),
            };
            let n = curve.field_len();
            let mut point = vec![0x04];
            point.extend(encoding::left_pad(unique.x().value().to_vec(), n));
            point.extend(encoding::left_pad(unique.y().value().to_vec(), n));
            Ok((curve.algorithm(), encoding::ecdsa_public(curve, &point)?))
        }
        Public::Rsa {
            parameters, unique, ..
        } => {
            // 0 in the public area means the default exponent, 65537.
            let exponent = match parameters.exponent().value() {
                0 => 65537u32,
                e => e,
            };
            let e = exponent.to_be_bytes();
            let first = e.iter().position(|&b| b != 0).unwrap_or(3);
            encoding::rsa_public(unique.value(), &e[first..])
        }
        _ => Err("TPM object is not an ECC or RSA key".into()),
    }
}

/// Notary's signature bytes: ECDSA raw r||s (each left-padded to the field
/// size, as the TPM drops leading zeros), RSA-PSS exactly the modulus size.
pub(super) fn notary_signature(
    algorithm: Algorithm,
    signature: &Signature,
) -> Result<Vec<u8>, String> {
    match (
        signature,
        Curve::for_algorithm(algorithm),
        algorithm.rsa_bits(),
    ) {
        (Signature::EcDsa(sig), Some(curve), _) => {
            let n = curve.field_len();
            let (r, s) = (sig.signature_r().value(), sig.signature_s().value());
            if r.len() > n || s.len() > n {
                return Err("TPM returned an ECDSA signature larger than the curve".into());
            }
            let mut out = encoding::left_pad(r.to_vec(), n);
            out.extend(encoding::left_pad(s.to_vec(), n));
            Ok(out)
        }
        (Signature::RsaPss(sig), None, Some(bits)) => {
            let len = usize::try_from(bits / 8).map_err(|e| e.to_string())?;
            Ok(encoding::left_pad(sig.signature().value().to_vec(), len))
        }
        (other, _, _) => Err(format!(
            "TPM returned a {:?} signature for a {algorithm} key",
            other.algorithm()
        )),
    }
}
