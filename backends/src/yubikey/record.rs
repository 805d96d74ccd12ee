//! The certificate kept in a slot. A root key's slot holds its notary root
//! certificate (CN = GUN). Any other key's slot holds a self-signed
//! "record" certificate whose CN says what the key is for, so another
//! machine reading the device can list the key with its role and GUN:
//! `CN=notary-keyd role=<role> gun=<gun> label=<label>`.

use der::Decode;
use x509_cert::Certificate;

const PREFIX: &str = "notary-keyd ";
const COMMON_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.3");

/// What a key's record certificate says about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub role: String,
    pub gun: String,
    pub label: String,
}

/// What a slot's certificate is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SlotCertificate {
    Record(KeyRecord),
    /// Anything else: a notary root certificate or one a person put there.
    Other {
        common_name: Option<String>,
    },
}

impl KeyRecord {
    /// The CN to certify; role and GUN never contain spaces, the label may.
    pub(crate) fn common_name(&self) -> Result<String, String> {
        if self.role.contains(' ') || self.gun.contains(' ') {
            return Err("role and GUN must not contain spaces".into());
        }
        Ok(format!(
            "{PREFIX}role={} gun={} label={}",
            self.role, self.gun, self.label
        ))
    }

    fn parse(common_name: &str) -> Option<KeyRecord> {
        let rest = common_name.strip_prefix(PREFIX)?;
        let rest = rest.strip_prefix("role=")?;
        let (role, rest) = rest.split_once(" gun=")?;
        let (gun, label) = rest.split_once(" label=")?;
        Some(KeyRecord {
            role: role.to_string(),
            gun: gun.to_string(),
            label: label.to_string(),
        })
    }
}

fn common_name(cert: &Certificate) -> Option<String> {
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
        .next_back()
        .map(str::to_string)
}

/// Classifies a slot certificate; `None` when it does not parse.
pub(crate) fn classify(der: &[u8]) -> Option<SlotCertificate> {
    let cert = Certificate::from_der(der).ok()?;
    let cn = common_name(&cert);
    Some(match cn.as_deref().and_then(KeyRecord::parse) {
        Some(record) => SlotCertificate::Record(record),
        None => SlotCertificate::Other { common_name: cn },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_round_trip() {
        let r = KeyRecord {
            role: "targets/releases".into(),
            gun: "example.com/app".into(),
            label: "release key, laptop".into(),
        };
        let cn = r.common_name().unwrap();
        assert_eq!(KeyRecord::parse(&cn), Some(r));
        let empty = KeyRecord::default();
        assert_eq!(KeyRecord::parse(&empty.common_name().unwrap()), Some(empty));
        assert_eq!(KeyRecord::parse("example.com/app"), None);
        let bad = KeyRecord {
            gun: "a b".into(),
            ..KeyRecord::default()
        };
        assert!(bad.common_name().is_err());
    }
}
