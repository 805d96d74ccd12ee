//! `[server.limits]`: what one caller may cost the daemon, so a caller
//! without rights (or a buggy one) cannot slow the devices down for others.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerLimits {
    /// Least time between two device rescans that unknown key IDs ask
    /// for. A key on a token plugged in since the last rescan is found by
    /// its ID at most this long later.
    pub key_rescan_interval_seconds: u64,
    /// Most Unix-socket connections one uid may have open; more are closed
    /// at once (and logged). notaryctl uses one per command.
    pub max_connections_per_uid: usize,
    /// Most Unix-socket requests one uid may have in progress, over all
    /// its connections (a Sign waiting for a device counts until its
    /// reply is sent). More are answered RESOURCE_EXHAUSTED at once, so
    /// one caller cannot fill the devices' queues for everyone else.
    pub max_requests_per_uid: usize,
    /// Most requests in progress on one connection (HTTP/2 streams); a
    /// client queues the rest.
    pub max_streams_per_connection: u32,
    /// The daemon pings each connection this often and closes it when the
    /// peer does not answer within `keepalive_timeout_seconds`: a client
    /// that died or hung gives its connection back. A live client answers
    /// pings while it waits, so a person taking a minute to touch a
    /// YubiKey keeps the request.
    pub keepalive_interval_seconds: u64,
    pub keepalive_timeout_seconds: u64,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            key_rescan_interval_seconds: 2,
            max_connections_per_uid: 64,
            max_requests_per_uid: 128,
            max_streams_per_connection: 32,
            keepalive_interval_seconds: 30,
            keepalive_timeout_seconds: 20,
        }
    }
}

impl ServerLimits {
    pub(crate) fn key_rescan_interval(&self) -> Duration {
        Duration::from_secs(self.key_rescan_interval_seconds)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            (
                "max_connections_per_uid",
                self.max_connections_per_uid as u64,
            ),
            ("max_requests_per_uid", self.max_requests_per_uid as u64),
            (
                "max_streams_per_connection",
                u64::from(self.max_streams_per_connection),
            ),
            (
                "keepalive_interval_seconds",
                self.keepalive_interval_seconds,
            ),
            ("keepalive_timeout_seconds", self.keepalive_timeout_seconds),
        ] {
            if value == 0 {
                return Err(format!("[server.limits] {name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// How many of something (connections, requests in progress) each uid
/// holds. Each one holds a `UidSlot` until it ends; a uid at the limit gets
/// no more, so one caller's thousands of idle connections or queued
/// requests cannot use up the daemon's file descriptors, memory and device
/// queues while others wait.
#[derive(Clone)]
pub(crate) struct UidCounts {
    held: Arc<Mutex<HashMap<u32, usize>>>,
    max: usize,
}

/// One connection or request of `uid`; the count drops with it.
pub(crate) struct UidSlot {
    held: Arc<Mutex<HashMap<u32, usize>>>,
    uid: u32,
}

impl UidCounts {
    pub(crate) fn new(max: usize) -> UidCounts {
        UidCounts {
            held: Arc::default(),
            max,
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A slot for another one of `uid`'s, unless it holds `max` already.
    pub(crate) fn take(&self, uid: u32) -> Option<UidSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(uid).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(UidSlot {
            held: Arc::clone(&self.held),
            uid,
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_at_its_limit_gets_no_slot_until_one_closes() {
        let counts = UidCounts::new(2);
        let a = counts.take(1000).unwrap();
        let _b = counts.take(1000).unwrap();
        assert!(counts.take(1000).is_none());
        assert!(counts.take(1001).is_some(), "another uid is not affected");
        drop(a);
        assert!(counts.take(1000).is_some());
    }
}
