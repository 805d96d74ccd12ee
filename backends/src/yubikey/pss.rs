//! EMSA-PSS encoding (RFC 8017 §9.1.1) for RSA keys on a YubiKey. The card
//! only does the raw private-key operation, so the host builds the encoded
//! message: SHA-256, MGF1-SHA-256, 32-byte salt (notary's `rsapss`).

use sha2::{Digest, Sha256};

const HASH_LEN: usize = 32;
const SALT_LEN: usize = 32;

fn mgf1_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(HASH_LEN).enumerate() {
        let counter = u32::try_from(counter).unwrap_or(u32::MAX).to_be_bytes();
        let mask = Sha256::new()
            .chain_update(seed)
            .chain_update(counter)
            .finalize();
        for (b, m) in chunk.iter_mut().zip(mask.iter()) {
            *b ^= m;
        }
    }
}

/// The encoded message for a modulus of `modulus_bits`, to be raised to
/// the private exponent by the card. `None` when the modulus is too small.
pub(super) fn encode(
    payload: &[u8],
    modulus_bits: usize,
    salt: &[u8; SALT_LEN],
) -> Option<Vec<u8>> {
    let em_bits = modulus_bits.checked_sub(1)?;
    let em_len = em_bits.div_ceil(8);
    if em_len < HASH_LEN + SALT_LEN + 2 {
        return None;
    }
    let m_hash = Sha256::digest(payload);
    let h = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    let db_len = em_len - HASH_LEN - 1;
    let mut em = vec![0u8; em_len];
    // DB = PS (zeros) || 0x01 || salt, then masked with MGF1(H).
    em[db_len - SALT_LEN - 1] = 0x01;
    em[db_len - SALT_LEN..db_len].copy_from_slice(salt);
    mgf1_xor(&h, &mut em[..db_len]);
    em[0] &= 0xff >> (8 * em_len - em_bits);
    em[db_len..em_len - 1].copy_from_slice(&h);
    em[em_len - 1] = 0xbc;
    // The card wants a block as long as the modulus.
    let mut block = vec![0u8; modulus_bits.div_ceil(8) - em_len];
    block.extend_from_slice(&em);
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use rsa::{BigUint, RsaPrivateKey};

    #[test]
    fn raw_signature_of_the_encoding_verifies_as_rsa_pss() {
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let payload = b"{\"_type\":\"Targets\"}";
        let block = encode(payload, key.n().bits(), &[7u8; 32]).unwrap();
        assert_eq!(block.len(), 256);
        // What the card does: block^d mod n.
        let s = BigUint::from_bytes_be(&block).modpow(key.d(), key.n());
        let mut sig = s.to_bytes_be();
        while sig.len() < 256 {
            sig.insert(0, 0);
        }
        let der = rsa::pkcs8::EncodePublicKey::to_public_key_der(&key.to_public_key()).unwrap();
        let public = notary_tuf::PublicKey::from_spki_der(der.as_bytes()).unwrap();
        notary_tuf::verify(&public, notary_tuf::SignatureMethod::RsaPss, payload, &sig).unwrap();
        assert!(encode(payload, 512, &[0; 32]).is_none());
    }
}
