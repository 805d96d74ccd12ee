//! A PIV slot's PIN and touch policies: what the YubiKey backend sets when
//! it generates a key, and what a YubiKey's attestation certifies about the
//! slot. One definition for both, here, because notary-tuf checks the
//! attestation without knowing anything of key storage, and the backends
//! crate depends on notary-tuf (not the other way round).

use std::fmt;
use std::str::FromStr;

/// When the device wants the PIN for a slot's private-key operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinPolicy {
    Never,
    /// Once per card session: whoever holds the card open keeps it verified.
    Once,
    /// VERIFY must be the command right before each signature.
    Always,
}

/// When the device wants a physical touch for a slot's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchPolicy {
    Never,
    Always,
    /// One touch covers 15 seconds.
    Cached,
}

macro_rules! policy_enum {
    ($ty:ident, $what:literal, $($variant:ident => $word:literal, $code:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $word),+ }
            }

            /// The policy byte of Yubico's PIV extensions (GET METADATA and
            /// the attestation's 1.3.6.1.4.1.41482.3.8); `None` for 0
            /// ("default") and values no firmware defines.
            pub fn from_code(code: u8) -> Option<$ty> {
                match code {
                    $($code => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($ty::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?}: use {}"),
                        other,
                        [$($word),+].join(", ")
                    )),
                }
            }
        }
    };
}

policy_enum!(PinPolicy, "PIN policy", Never => "never", 1, Once => "once", 2, Always => "always", 3);
policy_enum!(TouchPolicy, "touch policy", Never => "never", 1, Always => "always", 2, Cached => "cached", 3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_codes() {
        assert_eq!("always".parse::<PinPolicy>(), Ok(PinPolicy::Always));
        assert_eq!("cached".parse::<TouchPolicy>(), Ok(TouchPolicy::Cached));
        let err = "sometimes".parse::<PinPolicy>().unwrap_err();
        assert!(err.contains("never, once, always"), "{err}");
        assert_eq!(PinPolicy::Once.to_string(), "once");
        assert_eq!(PinPolicy::from_code(3), Some(PinPolicy::Always));
        assert_eq!(TouchPolicy::from_code(2), Some(TouchPolicy::Always));
        assert_eq!(TouchPolicy::from_code(3), Some(TouchPolicy::Cached));
        assert_eq!(PinPolicy::from_code(0), None);
        assert_eq!(TouchPolicy::from_code(9), None);
    }
}
