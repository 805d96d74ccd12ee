//! PIN and PUK: a value with a retry counter that blocks at zero.

use crate::apdu::sw;
use zeroize::Zeroizing;

pub const DEFAULT_PIN: &[u8] = b"123456";
pub const DEFAULT_PUK: &[u8] = b"12345678";
pub(crate) const DEFAULT_TRIES: u8 = 3;

pub(crate) struct Credential {
    value: Zeroizing<Vec<u8>>,
    factory: &'static [u8],
    tries: u8,
    left: u8,
}

impl Credential {
    pub(crate) fn factory(value: &'static [u8]) -> Credential {
        Credential {
            value: Zeroizing::new(value.to_vec()),
            factory: value,
            tries: DEFAULT_TRIES,
            left: DEFAULT_TRIES,
        }
    }

    /// Checks `attempt`: a hit resets the counter, a miss uses one try.
    /// The error is the status word to answer: `63Cx` or `6983` (blocked).
    pub(crate) fn check(&mut self, attempt: &[u8]) -> Result<(), u16> {
        if self.left == 0 {
            return Err(sw::BLOCKED);
        }
        if attempt == self.value.as_slice() {
            self.left = self.tries;
            return Ok(());
        }
        self.left -= 1;
        Err(self.status())
    }

    /// `63Cx` with the tries left, or `6983` when blocked.
    pub(crate) fn status(&self) -> u16 {
        if self.left == 0 {
            sw::BLOCKED
        } else {
            sw::tries_left(self.left)
        }
    }

    pub(crate) fn set(&mut self, value: &[u8]) {
        self.value = Zeroizing::new(value.to_vec());
    }

    /// New value and unblocked (PUK unblock of the PIN).
    pub(crate) fn reset_to(&mut self, value: &[u8]) {
        self.set(value);
        self.left = self.tries;
    }

    /// SET PIN RETRIES: new limit, and the factory value again.
    pub(crate) fn set_tries(&mut self, tries: u8) {
        self.tries = tries;
        self.left = tries;
        self.set(self.factory);
    }

    pub(crate) fn is_blocked(&self) -> bool {
        self.left == 0
    }

    pub(crate) fn is_default(&self) -> bool {
        self.value.as_slice() == self.factory
    }

    pub(crate) fn tries(&self) -> u8 {
        self.tries
    }

    pub(crate) fn left(&self) -> u8 {
        self.left
    }
}

/// Removes the 0xFF padding PIV puts after PINs shorter than 8 bytes.
pub(crate) fn unpad(padded: &[u8]) -> &[u8] {
    let end = padded
        .iter()
        .position(|&b| b == 0xFF)
        .unwrap_or(padded.len());
    &padded[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_blocks_and_resets() {
        let mut pin = Credential::factory(DEFAULT_PIN);
        assert_eq!(pin.check(b"000000"), Err(0x63C2));
        assert_eq!(pin.check(DEFAULT_PIN), Ok(()));
        assert_eq!(pin.left(), 3);
        for expected in [0x63C2, 0x63C1, sw::BLOCKED, sw::BLOCKED] {
            assert_eq!(pin.check(b"000000"), Err(expected));
        }
        assert_eq!(pin.check(DEFAULT_PIN), Err(sw::BLOCKED));
        pin.reset_to(b"654321");
        assert_eq!(pin.check(b"654321"), Ok(()));
        assert_eq!(unpad(&[0x31, 0x32, 0xFF, 0xFF]), b"12");
    }
}
