//! GUNs: the globally unique names of notary collections.

use std::fmt;
use std::str::FromStr;

/// A collection's name, e.g. `docker.io/library/alpine`.
///
/// notary takes any non-empty text without `*` (notary-server routes GUNs
/// as `[^*]+`; `*` ends a wildcard in certificates and pinning) and stores
/// at most 255 bytes (its `gun` columns are `varchar(255)`). A GUN also
/// reaches logs, audit records and certificate names here, so control
/// characters and whitespace are refused too. Deliberately not string-like:
/// `as_str` is the one way back to text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gun(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GunError {
    #[error("the GUN is empty")]
    Empty,
    #[error("the GUN is {0} bytes; notary keeps at most {max}", max = Gun::MAX_LEN)]
    TooLong(usize),
    #[error("the GUN {0:?} has a control character or whitespace")]
    NotPrintable(String),
    #[error("the GUN {0:?} has a '*', which notary reserves for wildcards")]
    Wildcard(String),
}

impl Gun {
    /// notary's limit, in bytes.
    pub const MAX_LEN: usize = 255;

    pub fn parse(text: &str) -> Result<Gun, GunError> {
        if text.is_empty() {
            return Err(GunError::Empty);
        }
        // Checked first, so the other errors echo a bounded text.
        if text.len() > Gun::MAX_LEN {
            return Err(GunError::TooLong(text.len()));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(GunError::NotPrintable(text.to_string()));
        }
        if text.contains('*') {
            return Err(GunError::Wildcard(text.to_string()));
        }
        Ok(Gun(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Gun {
    type Err = GunError;
    fn from_str(s: &str) -> Result<Gun, GunError> {
        Gun::parse(s)
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_notary_serves() {
        for gun in [
            "example.com/app",
            "docker.io/library/alpine",
            "localhost:5000/a_b-c.d",
            "x",
        ] {
            assert_eq!(Gun::parse(gun).unwrap().as_str(), gun);
        }
        let longest = "a".repeat(Gun::MAX_LEN);
        assert!(Gun::parse(&longest).is_ok());
    }

    #[test]
    fn refuses_what_could_forge_or_overflow() {
        assert_eq!(Gun::parse(""), Err(GunError::Empty));
        assert_eq!(
            Gun::parse(&"a".repeat(Gun::MAX_LEN + 1)),
            Err(GunError::TooLong(256))
        );
        for bad in ["a\nb", "x\n<3>forged", "a\u{7f}", "a b", "a\tb", "\u{85}"] {
            assert!(
                matches!(Gun::parse(bad), Err(GunError::NotPrintable(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Gun::parse("example.com/*"),
            Err(GunError::Wildcard(_))
        ));
    }
}
