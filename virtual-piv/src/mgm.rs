//! The card management key (slot 9B): 3DES or AES, checked by mutual
//! challenge-response in ECB mode on single blocks, as the YubiKey does.

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroizing;

pub(crate) const ALG_3DES: u8 = 0x03;
pub(crate) const ALG_AES128: u8 = 0x08;
pub(crate) const ALG_AES192: u8 = 0x0A;
pub(crate) const ALG_AES256: u8 = 0x0C;

/// Factory default key of every YubiKey (3DES before 5.7, AES-192 from 5.7).
pub const DEFAULT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

pub(crate) struct MgmKey {
    alg: u8,
    key: Zeroizing<Vec<u8>>,
    /// Set with SET MANAGEMENT KEY P2=FE: authentication needs a touch.
    pub touch_required: bool,
}

impl MgmKey {
    /// `None` when `alg` is unknown or `key` has the wrong length for it.
    pub(crate) fn new(alg: u8, key: &[u8]) -> Option<MgmKey> {
        let len = match alg {
            ALG_3DES | ALG_AES192 => 24,
            ALG_AES128 => 16,
            ALG_AES256 => 32,
            _ => return None,
        };
        (key.len() == len).then(|| MgmKey {
            alg,
            key: Zeroizing::new(key.to_vec()),
            touch_required: false,
        })
    }

    pub(crate) fn factory(alg: u8) -> MgmKey {
        MgmKey::new(alg, &DEFAULT_KEY).expect("default key fits 3DES and AES-192")
    }

    pub(crate) fn alg(&self) -> u8 {
        self.alg
    }

    pub(crate) fn is_default(&self) -> bool {
        self.key[..] == DEFAULT_KEY
    }

    pub(crate) fn block_len(&self) -> usize {
        if self.alg == ALG_3DES {
            8
        } else {
            16
        }
    }

    /// Encrypts one block; `None` if `block` is not exactly one block long.
    pub(crate) fn encrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        self.crypt(block, true)
    }

    #[cfg(test)]
    pub(crate) fn decrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        self.crypt(block, false)
    }

    fn crypt(&self, block: &[u8], encrypt: bool) -> Option<Vec<u8>> {
        let key = &self.key[..];
        match self.alg {
            ALG_3DES => run::<des::TdesEde3>(key, block, encrypt),
            ALG_AES128 => run::<aes::Aes128>(key, block, encrypt),
            ALG_AES192 => run::<aes::Aes192>(key, block, encrypt),
            ALG_AES256 => run::<aes::Aes256>(key, block, encrypt),
            _ => None,
        }
    }
}

fn run<C>(key: &[u8], block: &[u8], encrypt: bool) -> Option<Vec<u8>>
where
    C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt,
{
    let cipher = C::new_from_slice(key).ok()?;
    let mut buf = Array::try_from(block).ok()?;
    if encrypt {
        cipher.encrypt_block(&mut buf);
    } else {
        cipher.decrypt_block(&mut buf);
    }
    Some(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_algorithm() {
        for (alg, len) in [
            (ALG_3DES, 24),
            (ALG_AES128, 16),
            (ALG_AES192, 24),
            (ALG_AES256, 32),
        ] {
            let key = MgmKey::new(alg, &vec![0x42; len]).unwrap();
            let block = vec![7u8; key.block_len()];
            let enc = key.encrypt(&block).unwrap();
            assert_ne!(enc, block);
            assert_eq!(key.decrypt(&enc).unwrap(), block);
            assert!(key.encrypt(&[1, 2, 3]).is_none());
        }
        assert!(MgmKey::new(ALG_AES128, &[0; 24]).is_none());
    }
}
