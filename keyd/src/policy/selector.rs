//! Key selectors: which keys a rule reaches. A selector tests what a key
//! *is* (its IDs, backend and binding, `KeyFacts`), never what a request
//! claims it is for.
//!
//! A rule's `keys` list is OR: a key is reached when any entry matches.
//! An entry is a string (one test) or a table (every field it names must
//! match: AND):
//!
//! ```toml
//! keys = ["role:targets/*", { role = "targets", gun = "example.com/app*" }]
//! ```

use super::KeyFacts;
use notary_tuf::metadata::{Gun, Role};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A role or GUN pattern. A trailing `*` matches whole path segments only:
/// `example.com/*` is every name below `example.com/`, and
/// `example.com/app*` is `example.com/app` and every name below
/// `example.com/app/`, never `example.com/app-evil`: GUNs are paths, and
/// whoever may name `example.com/app` owns none of its siblings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// Exactly this name.
    Exact(String),
    /// This name and the names below it (or, ending in `/` or empty, only
    /// the names below it).
    Tree(String),
}

impl Pattern {
    /// `check` says whether the name part (without `*` and a trailing `/`)
    /// is a possible name; an empty one is allowed only before `*`.
    fn parse(
        what: &str,
        text: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Pattern, String> {
        let (base, tree) = match text.strip_suffix('*') {
            Some(base) => (base, true),
            None => (text, false),
        };
        if base.contains('*') {
            return Err(format!(
                "{what} pattern {text:?}: `*` may only end a pattern"
            ));
        }
        let name = base.strip_suffix('/').unwrap_or(base);
        if !(tree && name.is_empty()) {
            check(name).map_err(|e| format!("{what} pattern {text:?}: {e}"))?;
        }
        Ok(if tree {
            Pattern::Tree(base.to_string())
        } else {
            Pattern::Exact(base.to_string())
        })
    }

    fn role(text: &str) -> Result<Pattern, String> {
        Pattern::parse("role", text, |n| {
            Role::parse(n).map(drop).map_err(|e| e.to_string())
        })
    }

    fn gun(text: &str) -> Result<Pattern, String> {
        Pattern::parse("GUN", text, |n| {
            Gun::parse(n).map(drop).map_err(|e| e.to_string())
        })
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(p) => p == name,
            Pattern::Tree(p) if p.is_empty() || p.ends_with('/') => name.starts_with(p.as_str()),
            Pattern::Tree(p) => {
                name == p
                    || name
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

/// Tests on one key; every test given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyMatch {
    /// A notary key ID: the bare key's or its certificate's.
    id: Option<String>,
    /// The key's role binding.
    role: Option<Pattern>,
    /// The key's GUN binding, or for a key without one, its root
    /// certificate's CN.
    gun: Option<Pattern>,
    /// The backend that holds the key.
    backend: Option<String>,
}

impl KeyMatch {
    fn matches(&self, key: &KeyFacts<'_>) -> bool {
        let id = self
            .id
            .as_deref()
            .is_none_or(|id| key.key_id == Some(id) || key.x509_key_id == Some(id));
        let role = self
            .role
            .as_ref()
            .is_none_or(|p| key.role.is_some_and(|r| p.matches(r.name())));
        let gun = self
            .gun
            .as_ref()
            .is_none_or(|p| key.gun.is_some_and(|g| p.matches(g.as_str())));
        let backend = self.backend.as_deref().is_none_or(|b| b == key.backend);
        id && role && gun && backend
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selector {
    /// `"*"`: every key.
    Any,
    Key(KeyMatch),
}

fn key_id(text: &str) -> Result<String, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("{text:?} is not a key ID (64 hex digits)"))
    }
}

impl Selector {
    /// The string form: `"*"`, a key ID, `role:R`, `gun:G`, `backend:NAME`.
    fn parse(text: &str) -> Result<Selector, String> {
        let mut m = KeyMatch::default();
        if text == "*" {
            return Ok(Selector::Any);
        } else if let Some(role) = text.strip_prefix("role:") {
            m.role = Some(Pattern::role(role)?);
        } else if let Some(gun) = text.strip_prefix("gun:") {
            m.gun = Some(Pattern::gun(gun)?);
        } else if let Some(backend) = text.strip_prefix("backend:") {
            m.backend = Some(backend.to_string());
        } else {
            m.id = Some(key_id(text).map_err(|_| {
                format!(
                    "key selector {text:?} is not \"*\", a 64-hex key ID, role:…, gun:…, \
                     backend:… or a table such as {{ role = \"targets\", gun = \"example.com/*\" }}"
                )
            })?);
        }
        Ok(Selector::Key(m))
    }

    pub(crate) fn matches(&self, key: &KeyFacts<'_>) -> bool {
        match self {
            Selector::Any => true,
            Selector::Key(m) => m.matches(key),
        }
    }
}

/// The table form, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    id: Option<String>,
    role: Option<String>,
    gun: Option<String>,
    backend: Option<String>,
}

impl TryFrom<Table> for KeyMatch {
    type Error = String;

    fn try_from(t: Table) -> Result<KeyMatch, String> {
        if t.id.is_none() && t.role.is_none() && t.gun.is_none() && t.backend.is_none() {
            return Err("a key selector table needs at least one of id, role, gun, backend".into());
        }
        Ok(KeyMatch {
            id: t.id.as_deref().map(key_id).transpose()?,
            role: t.role.as_deref().map(Pattern::role).transpose()?,
            gun: t.gun.as_deref().map(Pattern::gun).transpose()?,
            backend: t.backend,
        })
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Selector, D::Error> {
        struct SelectorVisitor;

        impl<'de> Visitor<'de> for SelectorVisitor {
            type Value = Selector;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key selector: a string such as \"role:targets\", or a table")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Selector, E> {
                Selector::parse(text).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Selector, A::Error> {
                let table = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                KeyMatch::try_from(table)
                    .map(Selector::Key)
                    .map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_any(SelectorVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Keys {
        keys: Vec<Selector>,
    }

    fn keys(text: &str) -> Result<Vec<Selector>, String> {
        toml::from_str::<Keys>(text)
            .map(|k| k.keys)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn patterns_match_whole_path_segments() {
        let app = Pattern::gun("example.com/app*").unwrap();
        assert!(app.matches("example.com/app"));
        assert!(app.matches("example.com/app/web"));
        assert!(!app.matches("example.com/app-evil"));
        assert!(!app.matches("example.com/ap"));
        let below = Pattern::gun("example.com/*").unwrap();
        assert!(below.matches("example.com/app"));
        assert!(!below.matches("example.com"));
        assert!(!below.matches("example.community/x"));
        assert!(Pattern::gun("*").unwrap().matches("anything/at/all"));
        let exact = Pattern::gun("example.com/app").unwrap();
        assert!(!exact.matches("example.com/app/web"));
        let delegations = Pattern::role("targets/*").unwrap();
        assert!(delegations.matches("targets/releases"));
        assert!(!delegations.matches("targets"));
        let targets = Pattern::role("targets*").unwrap();
        assert!(targets.matches("targets") && targets.matches("targets/releases"));
    }

    #[test]
    fn bad_selectors_are_named() {
        for (text, needle) in [
            (r#"keys = ["targets"]"#, "\"targets\" is not"),
            (r#"keys = ["gun:example.com/*/x"]"#, "may only end"),
            (r#"keys = ["gun:exa mple.com"]"#, "whitespace"),
            (r#"keys = ["role:Targets"]"#, "role pattern \"Targets\""),
            (r#"keys = [{}]"#, "at least one of"),
            (r#"keys = [{ rol = "targets" }]"#, "rol"),
            (r#"keys = [{ id = "abc" }]"#, "64 hex"),
        ] {
            let err = keys(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn a_table_needs_every_field_to_match() {
        let k = keys(r#"keys = [{ role = "targets", gun = "example.com/*" }]"#).unwrap();
        let gun = Gun::parse("example.com/app").unwrap();
        let other = Gun::parse("other.org/app").unwrap();
        let facts = |role, gun| KeyFacts {
            role,
            gun,
            ..KeyFacts::default()
        };
        assert!(k[0].matches(&facts(Some(&Role::Targets), Some(&gun))));
        assert!(!k[0].matches(&facts(Some(&Role::Snapshot), Some(&gun))));
        assert!(!k[0].matches(&facts(Some(&Role::Targets), Some(&other))));
        assert!(!k[0].matches(&facts(Some(&Role::Targets), None)));
        assert!(!k[0].matches(&facts(None, Some(&gun))));
    }

    #[test]
    fn ids_match_the_bare_or_the_certificate_id() {
        let id = "AEB6481E0BF1D22811FDBF6B297A7C5D243BE5059581602F18E7F5B307CB8F08";
        let lower = id.to_ascii_lowercase();
        let k = keys(&format!(
            "keys = [\"{id}\", {{ id = \"{id}\", backend = \"hsm\" }}]"
        ))
        .unwrap();
        let bare = KeyFacts {
            key_id: Some(&lower),
            backend: "soft",
            ..KeyFacts::default()
        };
        let x509 = KeyFacts {
            x509_key_id: Some(&lower),
            backend: "hsm",
            ..KeyFacts::default()
        };
        assert!(k[0].matches(&bare) && k[0].matches(&x509));
        assert!(!k[1].matches(&bare) && k[1].matches(&x509));
    }
}
