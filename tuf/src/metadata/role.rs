//! Role names: the four base roles and `targets/…` delegations.

use super::MetadataError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
    /// A delegation such as `targets/releases`, validated as notary does.
    Delegation(DelegationName),
}

/// A delegation role name that passed notary's `IsDelegation`; only
/// [`Role::parse`] makes one, so every `Role` names a safe relative path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DelegationName(String);

impl DelegationName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The role that delegates to this one (`targets/a/b` → `targets/a`),
    /// as notary's `path.Dir`.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(parent, _)| parent)
    }
}

impl Role {
    pub fn parse(name: &str) -> Result<Role, MetadataError> {
        Ok(match name {
            "root" => Role::Root,
            "targets" => Role::Targets,
            "snapshot" => Role::Snapshot,
            "timestamp" => Role::Timestamp,
            other => {
                check_delegation_name(other)?;
                Role::Delegation(DelegationName(other.to_string()))
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
            Role::Delegation(name) => name.as_str(),
        }
    }

    pub fn is_delegation(&self) -> bool {
        matches!(self, Role::Delegation(_))
    }
}

/// Notary's `IsDelegation`: prefix `targets/`, `^[-a-z0-9_/]+$`, a clean
/// path, and under 256 characters (its database column size).
fn check_delegation_name(name: &str) -> Result<(), MetadataError> {
    let bad = |reason| MetadataError::BadRoleName {
        name: name.to_string(),
        reason,
    };
    if !name.starts_with("targets/") {
        return Err(bad("a delegation must start with \"targets/\""));
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'/'))
    {
        return Err(bad(
            "only lowercase letters, digits, '-', '_' and '/' are allowed",
        ));
    }
    if name
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad("not a clean path (empty segment or trailing '/')"));
    }
    if name.len() >= 256 {
        return Err(bad("must be shorter than 256 characters"));
    }
    Ok(())
}

impl FromStr for Role {
    type Err = MetadataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_roles_and_delegations() {
        for name in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
            "targets/a-b/c_9",
        ] {
            assert_eq!(Role::parse(name).unwrap().name(), name);
        }
        assert!(Role::parse("targets/releases").unwrap().is_delegation());
        let Role::Delegation(nested) = Role::parse("targets/a/b").unwrap() else {
            panic!("not a delegation")
        };
        assert_eq!(nested.parent(), "targets/a");
        assert!(!Role::Targets.is_delegation());
    }

    #[test]
    fn rejects_bad_delegation_names() {
        for name in [
            "Root",
            "targets/",
            "targets/Releases",
            "targets//a",
            "targets/a/",
            "targets/a.b",
            "targets/*",
            "releases",
            "",
        ] {
            assert!(Role::parse(name).is_err(), "{name} should be refused");
        }
        let long = format!("targets/{}", "a".repeat(248));
        assert_eq!(long.len(), 256);
        assert!(Role::parse(&long).is_err());
        assert!(Role::parse(&long[..255]).is_ok());
    }
}
