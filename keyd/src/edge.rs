//! Caller text becomes typed values here, before anything is logged,
//! audited or looked up: every RPC parses its request with these, and
//! nothing further in sees the raw strings. Every value is bounded, so a
//! refused request costs the audit log a line of bounded size, and an
//! error never repeats more than that bound of what the caller sent.

use crate::status::invalid;
use keyd_proto::convert::role_of;
use notary_tuf::metadata::{Gun, Role};
use secrecy::SecretString;
use tonic::Status;

/// A key URI is at most this long.
pub(crate) const MAX_URI: usize = 1024;
/// Labels and backend names are at most this long.
pub(crate) const MAX_NAME: usize = 255;

/// How a request names a key: a notary key ID (bare or x509, 64 hex
/// digits) or a key URI (`pkcs11:…`, `soft:…`, at most 1 KiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef(String);

impl KeyRef {
    pub(crate) fn parse(text: &str) -> Result<KeyRef, Status> {
        let id = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
        let uri = text.len() <= MAX_URI
            && text.contains(':')
            && !text.chars().any(|c| c.is_control() || c.is_whitespace());
        if id || uri {
            return Ok(KeyRef(text.to_string()));
        }
        Err(invalid(match text.len() {
            0 => "the request names no key".to_string(),
            n if n > MAX_URI => format!(
                "a key name of {n} bytes is neither a key ID (64 hex digits) nor a key URI \
                 (at most {MAX_URI} bytes)"
            ),
            _ => format!("{text:?} is neither a key ID (64 hex digits) nor a key URI"),
        }))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Caller text for an error message: quoted when short, else only its size.
pub(crate) fn quoted(text: &str) -> String {
    if text.len() <= 64 {
        format!("{text:?}")
    } else {
        format!("of {} bytes", text.len())
    }
}

/// A GUN the request may leave empty.
pub(crate) fn gun(text: &str) -> Result<Option<Gun>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    Gun::parse(text)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// The role the request's two role fields name, if any.
pub(crate) fn role(role: i32, delegation: &str) -> Result<Option<Role>, Status> {
    if delegation.len() > MAX_NAME {
        return Err(invalid(format!(
            "a delegation name of {} bytes is longer than notary allows",
            delegation.len()
        )));
    }
    role_of(role, delegation).map_err(|e| invalid(e.to_string()))
}

/// A PIN the request may leave empty; it is a secret from here on.
pub(crate) fn pin(text: String) -> Option<SecretString> {
    (!text.is_empty()).then(|| SecretString::from(text))
}

/// A label or backend name the request may leave empty: at most
/// `MAX_NAME` bytes, printable.
pub(crate) fn name<'a>(what: &str, text: &'a str) -> Result<Option<&'a str>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_NAME {
        return Err(invalid(format!(
            "the {what} is {} bytes; at most {MAX_NAME}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the {what} {text:?} has a control character"
        )));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyd_proto::keyd::KeyRole;
    use keyd_proto::Reason;

    fn refused(st: Status) -> String {
        assert_eq!(Reason::of(&st), Some(Reason::InvalidArgument), "{st:?}");
        st.message().to_string()
    }

    #[test]
    fn key_names_are_ids_or_bounded_uris() {
        let id = "ab".repeat(32);
        assert_eq!(KeyRef::parse(&id).unwrap().as_str(), id);
        let uri = "pkcs11:token=notary;id=%01";
        assert_eq!(KeyRef::parse(uri).unwrap().as_str(), uri);
        assert!(refused(KeyRef::parse("").unwrap_err()).contains("no key"));
        assert!(refused(KeyRef::parse("abc").unwrap_err()).contains("\"abc\""));
        assert!(KeyRef::parse("soft:id=a\nb").is_err());
        let huge = format!("soft:{}", "\u{1}".repeat(1 << 20));
        let message = refused(KeyRef::parse(&huge).unwrap_err());
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn guns_roles_and_names() {
        assert_eq!(gun("").unwrap(), None);
        assert_eq!(
            gun("example.com/app").unwrap().unwrap().as_str(),
            "example.com/app"
        );
        assert!(refused(gun("a\nb").unwrap_err()).contains("control"));
        assert_eq!(role(0, "").unwrap(), None);
        assert_eq!(
            role(KeyRole::Targets as i32, "").unwrap(),
            Some(Role::Targets)
        );
        let long = format!("targets/{}", "a".repeat(1 << 16));
        let message = refused(role(KeyRole::Delegation as i32, &long).unwrap_err());
        assert!(message.len() < 200, "{message}");
        assert_eq!(name("label", "").unwrap(), None);
        assert!(refused(name("label", &"x".repeat(256)).unwrap_err()).contains("256 bytes"));
        assert!(name("label", "a\u{1b}[31m").is_err());
        assert!(pin(String::new()).is_none());
    }
}
