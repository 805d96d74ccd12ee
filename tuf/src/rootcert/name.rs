//! `CN=<gun>` names, string-typed the way Go's x509 package writes them.

use super::CertError;
use crate::oids;
use der::asn1::{Any, SetOfVec};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// Go writes a PrintableString when every byte is allowed in one (plus `*`,
/// which it tolerates for wildcards), and a UTF8String otherwise.
fn go_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?*".contains(&b)
}

pub(crate) fn common_name(cn: &str) -> Result<Name, CertError> {
    let tag = if cn.bytes().all(go_printable) {
        Tag::PrintableString
    } else {
        Tag::Utf8String
    };
    let atv = AttributeTypeAndValue {
        oid: oids::COMMON_NAME,
        value: Any::new(tag, cn.as_bytes())?,
    };
    let rdn = RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?);
    Ok(RdnSequence(vec![rdn]))
}

/// The subject's common name; like Go, the last CN wins.
pub(crate) fn read_common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == oids::COMMON_NAME)
        .filter(|atv| {
            matches!(
                atv.value.tag(),
                Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString
            )
        })
        .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
        .next_back()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn picks_string_type_like_go() {
        let name = common_name("example.com/notary-keyd/test").unwrap();
        let der = name.to_der().unwrap();
        // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, PrintableString } } }
        assert_eq!(der[11], 0x13);
        assert_eq!(
            read_common_name(&name).unwrap(),
            "example.com/notary-keyd/test"
        );
        let name = common_name("example.com/my_app").unwrap();
        assert_eq!(name.to_der().unwrap()[11], 0x0c);
        let name = common_name("example.com/*").unwrap();
        assert_eq!(name.to_der().unwrap()[11], 0x13);
    }
}
