//! User and group names in policy rules, resolved through NSS (getpwnam,
//! getgrnam: /etc/passwd, LDAP, systemd-userdb, whatever the host uses)
//! when the configuration is loaded or reloaded, never per request: a
//! request's caller is matched by the numbers the kernel gives.

/// Where names become numbers, and uids become names for audit lines.
pub(crate) trait Directory {
    fn uid(&self, user: &str) -> Result<Option<u32>, String>;
    fn gid(&self, group: &str) -> Result<Option<u32>, String>;
    fn user_name(&self, uid: u32) -> Option<String>;
}

/// The host's name service.
pub(crate) struct Nss;

impl Directory for Nss {
    fn uid(&self, user: &str) -> Result<Option<u32>, String> {
        nix::unistd::User::from_name(user)
            .map(|u| u.map(|u| u.uid.as_raw()))
            .map_err(|e| format!("cannot look up user {user:?}: {e}"))
    }

    fn gid(&self, group: &str) -> Result<Option<u32>, String> {
        nix::unistd::Group::from_name(group)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|e| format!("cannot look up group {group:?}: {e}"))
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }
}
