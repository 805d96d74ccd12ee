//! Warnings a caller can cause at will (a connection or request beyond its
//! uid's limit, a signer-API connection beyond `max_connections`) are
//! logged at most once a second per cause, saying how many were held back
//! since, so a flood of refused attempts costs the journal a line a second
//! rather than a line an attempt. The refusals themselves are not
//! throttled: every one is answered.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often warnings of one cause reach the log.
const INTERVAL: Duration = Duration::from_secs(1);

/// Causes remembered before those whose interval is over are forgotten.
const REMEMBERED: usize = 4096;

/// Warnings told apart by `K`: a uid, or `()` where there is one cause.
pub(crate) struct WarnThrottle<K> {
    last: Mutex<HashMap<K, Logged>>,
}

/// When a cause's last warning was logged, and how many were held back since.
struct Logged {
    at: Instant,
    held: u64,
}

impl<K: Hash + Eq> WarnThrottle<K> {
    pub(crate) fn new() -> WarnThrottle<K> {
        WarnThrottle {
            last: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(held)` when a warning for `cause` may be logged now (`held`
    /// were held back since the last one); `None` to hold this one back.
    pub(crate) fn admit(&self, cause: K) -> Option<u64> {
        self.admit_at(cause, Instant::now())
    }

    fn admit_at(&self, cause: K, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.len() >= REMEMBERED {
            last.retain(|_, l| now.duration_since(l.at) < INTERVAL);
        }
        match last.get_mut(&cause) {
            Some(l) if now.duration_since(l.at) < INTERVAL => {
                l.held += 1;
                None
            }
            Some(l) => {
                let held = l.held;
                *l = Logged { at: now, held: 0 };
                Some(held)
            }
            None => {
                last.insert(cause, Logged { at: now, held: 0 });
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_uid_per_interval_counting_the_rest() {
        let throttle = WarnThrottle::new();
        let t0 = Instant::now();
        assert_eq!(throttle.admit_at(7, t0), Some(0));
        assert_eq!(throttle.admit_at(7, t0), None);
        assert_eq!(throttle.admit_at(7, t0 + Duration::from_millis(999)), None);
        // Another uid has its own interval.
        assert_eq!(throttle.admit_at(8, t0), Some(0));
        assert_eq!(throttle.admit_at(7, t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(throttle.admit_at(7, t0 + Duration::from_secs(3)), Some(0));
    }

    #[test]
    fn uids_past_their_interval_are_forgotten_when_many_are_remembered() {
        let throttle = WarnThrottle::new();
        let t0 = Instant::now();
        for uid in 0..REMEMBERED as u32 {
            throttle.admit_at(uid, t0);
        }
        throttle.admit_at(u32::MAX, t0 + Duration::from_secs(2));
        let remembered = throttle.last.lock().unwrap().len();
        assert_eq!(remembered, 1);
    }
}
