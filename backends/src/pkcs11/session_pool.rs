//! Worker sessions. A cryptoki `Session` is Send but not Sync and runs one
//! operation at a time, so each concurrent operation borrows its own session.

use super::errors::OpError;
use super::lock;
use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use std::sync::{Condvar, Mutex, PoisonError};

pub(super) struct SessionPool {
    ctx: Pkcs11,
    slot: Slot,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    /// Sessions in existence: idle plus lent out.
    open: usize,
}

/// Accounts for a lent-out session that does not come back (its operation
/// panicked and dropped it), so the pool can open a replacement.
struct Lent<'a> {
    pool: &'a SessionPool,
    returned: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if !self.returned {
            lock(&self.pool.state).open -= 1;
            self.pool.returned.notify_one();
        }
    }
}

impl SessionPool {
    pub(super) fn new(ctx: Pkcs11, slot: Slot, max: usize) -> Self {
        Self {
            ctx,
            slot,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// Runs `op` on a worker session, opening one (read-only: workers only
    /// find, read and sign) if fewer than `max` exist, else waiting for one.
    pub(super) fn with_session<T>(
        &self,
        op: impl FnOnce(&Session) -> Result<T, OpError>,
    ) -> Result<T, OpError> {
        let session = self.take()?;
        let mut lent = Lent {
            pool: self,
            returned: false,
        };
        let result = op(&session);
        lock(&self.state).idle.push(session);
        lent.returned = true;
        self.returned.notify_one();
        result
    }

    fn take(&self) -> Result<Session, OpError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                // Opening may be slow on hardware: not under the lock.
                return self.ctx.open_ro_session(self.slot).map_err(|e| {
                    lock(&self.state).open -= 1;
                    self.returned.notify_one();
                    OpError::Call(e)
                });
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
