//! X.509 certificates kept on the token beside a key: a CKO_CERTIFICATE
//! object with the key's CKA_ID.

use super::errors::OpError;
use super::objects::{certificate_value, read_public_key};
use super::token::Token;
use crate::encoding;
use crate::BackendError;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass};
use cryptoki::session::Session;
use der::{Decode, Encode};
use x509_cert::Certificate;

impl Token {
    /// Stores `der` as the key's certificate, replacing any it had.
    pub(super) fn put_certificate(&self, id: &[u8], der: &[u8]) -> Result<(), OpError> {
        let rejected = |why: String| {
            OpError::Backend(BackendError::Storage(format!(
                "certificate rejected: {why}"
            )))
        };
        let cert =
            Certificate::from_der(der).map_err(|e| rejected(format!("not DER X.509: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let (_, cert_key) =
            encoding::public_from_spki(&tbs.subject_public_key_info).map_err(rejected)?;
        let encode =
            |what: &str, r: der::Result<Vec<u8>>| r.map_err(|e| rejected(format!("{what}: {e}")));
        let subject = encode("subject", tbs.subject.to_der())?;
        let issuer = encode("issuer", tbs.issuer.to_der())?;
        let serial = encode("serial", tbs.serial_number.to_der())?;

        if !self.logged_in()? {
            return Err(OpError::NotLoggedIn);
        }
        let session = self.rw_session()?;
        let label = match find(&session, ObjectClass::PUBLIC_KEY, id)?.first() {
            Some(&handle) => {
                let key = read_public_key(&session, handle, id.to_vec(), String::new())
                    .map_err(|u| u.into_op())?;
                // A certificate for another key would give this key a wrong x509 key ID.
                if key.public != cert_key {
                    return Err(rejected("its public key is not this key's".into()));
                }
                label_of(&session, handle)?
            }
            None => match find(&session, ObjectClass::PRIVATE_KEY, id)?.first() {
                Some(&handle) => label_of(&session, handle)?,
                None => return Err(OpError::KeyNotFound),
            },
        };
        let old = find(&session, ObjectClass::CERTIFICATE, id)?;
        // Create before destroying, so a failure keeps the old certificate.
        session.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label),
            Attribute::Subject(subject),
            Attribute::Issuer(issuer),
            Attribute::SerialNumber(serial),
            Attribute::Value(der.to_vec()),
        ])?;
        for handle in old {
            session.destroy_object(handle)?;
        }
        Ok(())
    }

    /// The key's certificate; `None` if it has none.
    pub(super) fn certificate(&self, id: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        self.pool.with_session(|session| {
            match find(session, ObjectClass::CERTIFICATE, id)?.first() {
                Some(&handle) => Ok(Some(
                    certificate_value(session, handle).map_err(|u| u.into_op())?,
                )),
                None if find(session, ObjectClass::PUBLIC_KEY, id)?.is_empty() => {
                    Err(OpError::KeyNotFound)
                }
                None => Ok(None),
            }
        })
    }
}

fn find(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Result<Vec<cryptoki::object::ObjectHandle>, OpError> {
    let mut template = vec![Attribute::Class(class), Attribute::Id(id.to_vec())];
    if class == ObjectClass::CERTIFICATE {
        template.push(Attribute::CertificateType(CertificateType::X_509));
    }
    Ok(session.find_objects(&template)?)
}

fn label_of(session: &Session, handle: cryptoki::object::ObjectHandle) -> Result<Vec<u8>, OpError> {
    Ok(session
        .get_attributes(handle, &[AttributeType::Label])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::Label(v) => Some(v),
            _ => None,
        })
        .unwrap_or_default())
}
