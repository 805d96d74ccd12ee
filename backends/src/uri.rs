//! Key URIs: RFC 7512 `pkcs11:` and the keystore's `soft:`.
//!
//! A URI is a scheme plus ordered `name=value` path attributes separated by
//! `;`, values percent-encoded. Each backend reads the attributes it defines.

use crate::BackendError;
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

fn encode(value: &[u8], out: &mut String) {
    // RFC 7512 pchar minus the separators it reserves.
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,&".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn decode(value: &str, uri: &str) -> Result<Vec<u8>, BackendError> {
    let bad = |reason: &str| BackendError::InvalidUri {
        uri: uri.to_string(),
        reason: reason.to_string(),
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("bad percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
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
            encode(value, &mut s);
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
        assert_eq!(text, "pkcs11:id=%00%FFa");
        let parsed = text.parse::<KeyUri>().unwrap();
        assert_eq!(parsed.get_bytes("id"), Some(&[0x00, 0xff, b'a'][..]));
        assert_eq!(parsed.get("id"), None);
        assert!(parsed.require("id").is_err());
    }

    #[test]
    fn rejects_malformed() {
        assert!("nocolon".parse::<KeyUri>().is_err());
        assert!("pkcs11:token".parse::<KeyUri>().is_err());
        assert!("pkcs11:id=%zz".parse::<KeyUri>().is_err());
        let err = "soft:"
            .parse::<KeyUri>()
            .unwrap()
            .require("name")
            .unwrap_err();
        assert!(err.to_string().contains("missing attribute \"name\""));
    }
}
