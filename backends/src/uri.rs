//! Key URIs: RFC 7512 `pkcs11:` and the keystore's `soft:`.
//!
//! A URI is a scheme plus ordered `name=value` path attributes separated by
//! `;`, values percent-encoded. Each backend reads the attributes it defines.

use crate::BackendError;
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyUri {
    scheme: String,
    // Values are bytes: RFC 7512 `id` is binary (PKCS#11 CKA_ID).
    attributes: Vec<(String, Vec<u8>)>,
}

impl KeyUri {
    pub fn new(scheme: &str) -> Self {
        Self {
            scheme: scheme.to_string(),
            attributes: Vec::new(),
        }
    }

    pub fn with(self, name: &str, value: &str) -> Self {
        self.with_bytes(name, value.as_bytes())
    }

    /// Adds an attribute whose value is raw bytes (RFC 7512 `id`).
    pub fn with_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.attributes.push((name.to_string(), value.to_vec()));
        self
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// A text attribute; `None` if missing or not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// An attribute's raw bytes, as percent-decoded.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Like `get`, but a missing or non-UTF-8 attribute is an error naming it.
    pub fn require(&self, name: &str) -> Result<&str, BackendError> {
        let bytes = self.require_bytes(name)?;
        std::str::from_utf8(bytes).map_err(|_| BackendError::InvalidUri {
            uri: self.to_string(),
            reason: format!("attribute {name:?} is not UTF-8"),
        })
    }

    /// Like `get_bytes`, but a missing attribute is an error naming it.
    pub fn require_bytes(&self, name: &str) -> Result<&[u8], BackendError> {
        self.get_bytes(name)
            .ok_or_else(|| BackendError::InvalidUri {
                uri: self.to_string(),
                reason: format!("missing attribute {name:?}"),
            })
    }
}

/// What a text value keeps as it is: letters, digits and `-._~:@`, all safe
/// in a shell word. Every other byte is percent-encoded (RFC 7512 would let
/// `$'()*+,&[]!` through; a pasted URI must not expand in a shell).
const TEXT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@');

/// Binary values (RFC 7512 `id`, a PKCS#11 CKA_ID) have every byte encoded,
/// as p11-kit prints them.
fn encode(name: &str, value: &[u8], out: &mut String) {
    if name == "id" {
        for b in value {
            out.push_str(percent_encoding::percent_encode_byte(*b));
        }
    } else {
        out.extend(percent_encode(value, TEXT));
    }
}

fn decode(value: &str, uri: &str) -> Result<Vec<u8>, BackendError> {
    // percent_decode passes a stray `%` through; a URI with one is refused.
    let bytes = value.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(BackendError::InvalidUri {
            uri: uri.to_string(),
            reason: "bad percent-encoding".to_string(),
        });
    }
    Ok(percent_decode_str(value).collect())
}

impl fmt::Display for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        s.push_str(&self.scheme);
        s.push(':');
        for (i, (name, value)) in self.attributes.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            s.push_str(name);
            s.push('=');
            encode(name, value, &mut s);
        }
        f.write_str(&s)
    }
}

impl FromStr for KeyUri {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| BackendError::InvalidUri {
            uri: s.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("no scheme"))?;
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("bad scheme"));
        }
        // Query attributes (`?pin-source=`) are not part of a key's identity.
        let path = rest.split('?').next().unwrap_or("");
        let mut uri = KeyUri::new(scheme);
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| bad("attribute without '='"))?;
            uri.attributes.push((name.to_string(), decode(value, s)?));
        }
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_percent_encoding() {
        let uri = KeyUri::new("pkcs11")
            .with("token", "my token;1")
            .with("object", "targets/releases")
            .with("id", "\u{1}\u{2}");
        let text = uri.to_string();
        assert_eq!(
            text,
            "pkcs11:token=my%20token%3B1;object=targets%2Freleases;id=%01%02"
        );
        assert_eq!(text.parse::<KeyUri>().unwrap(), uri);
    }

    #[test]
    fn binary_attributes_round_trip() {
        let uri = KeyUri::new("pkcs11").with_bytes("id", &[0x00, 0xff, b'a']);
        let text = uri.to_string();
        assert_eq!(text, "pkcs11:id=%00%FF%61");
        let parsed = text.parse::<KeyUri>().unwrap();
        assert_eq!(parsed.get_bytes("id"), Some(&[0x00, 0xff, b'a'][..]));
        assert_eq!(parsed.get("id"), None);
        assert!(parsed.require("id").is_err());
    }

    /// A URI copied from `key list` into double quotes stays what it was.
    #[test]
    fn nothing_a_shell_expands_is_left_raw() {
        let id: Vec<u8> = (0u8..=255).collect();
        let uri = KeyUri::new("pkcs11")
            .with("token", "a$b'c(d)e[f]g!h&i,j*k+l")
            .with_bytes("id", &id);
        let text = uri.to_string();
        assert!(
            !text.contains(['$', '\'', '(', ')', '[', ']', '!', '&', ',', '*', '+', '`', '"']),
            "{text}"
        );
        assert!(text
            .starts_with("pkcs11:token=a%24b%27c%28d%29e%5Bf%5Dg%21h%26i%2Cj%2Ak%2Bl;id=%00%01"));
        assert_eq!(text.parse::<KeyUri>().unwrap(), uri);
        // What earlier versions printed still parses to the same key.
        let old: KeyUri = "pkcs11:token=notary;id=%0B%AC%3D%90o%1F%B2$T"
            .parse()
            .unwrap();
        assert_eq!(
            old.get_bytes("id"),
            Some(&b"\x0b\xac\x3d\x90o\x1f\xb2$T"[..])
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!("nocolon".parse::<KeyUri>().is_err());
        assert!("pkcs11:token".parse::<KeyUri>().is_err());
        assert!("pkcs11:id=%zz".parse::<KeyUri>().is_err());
        assert!("pkcs11:id=%a".parse::<KeyUri>().is_err());
        let err = "soft:"
            .parse::<KeyUri>()
            .unwrap()
            .require("name")
            .unwrap_err();
        assert!(err.to_string().contains("missing attribute \"name\""));
    }
}
