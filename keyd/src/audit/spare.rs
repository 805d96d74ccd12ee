//! The next segment, made ahead of time by a thread of its own, so that
//! rotating costs the writer a rename and not the writing of a whole
//! segment's free space. If it cannot be made (the disk is full), the
//! rotation that needs it fails, and with it the batch that needed room;
//! every later rotation tries again.

use super::segment::{self, SPARE};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Wanted,
    Making,
    Ready,
    Failed(String),
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct Spare {
    inner: Arc<Inner>,
    path: PathBuf,
    dir: PathBuf,
}

impl Spare {
    /// Starts making a segment of `size` bytes in `dir`.
    pub(crate) fn start(dir: &Path, size: u64) -> io::Result<Spare> {
        let path = dir.join(SPARE);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::Wanted),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&inner);
        let target = path.clone();
        std::thread::Builder::new()
            .name("audit-spare".into())
            .spawn(move || make_when_wanted(&worker, &target, size))?;
        Ok(Spare {
            inner,
            path,
            dir: dir.to_path_buf(),
        })
    }

    /// Moves the spare segment to `target` (which must not exist), waiting
    /// for it if it is still being made; a failed spare is tried once more
    /// first. The next spare is begun at once.
    pub(crate) fn take(&self, target: &Path) -> io::Result<()> {
        let mut state = self.inner.lock();
        if matches!(*state, State::Failed(_)) {
            *state = State::Wanted;
            self.inner.changed.notify_all();
        }
        while matches!(*state, State::Wanted | State::Making) {
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if let State::Failed(why) = &*state {
            return Err(io::Error::other(format!(
                "cannot make the next segment: {why}"
            )));
        }
        if target.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists already", target.display()),
            ));
        }
        std::fs::rename(&self.path, target)?;
        segment::sync_dir(&self.dir)?;
        *state = State::Wanted;
        self.inner.changed.notify_all();
        Ok(())
    }
}

fn make_when_wanted(inner: &Inner, path: &Path, size: u64) {
    loop {
        {
            let mut state = inner.lock();
            while *state != State::Wanted {
                state = inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            *state = State::Making;
        }
        let made = segment::prepare(path, size);
        let mut state = inner.lock();
        *state = match made {
            Ok(()) => State::Ready,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot make the next audit segment; the rotation that needs it will fail");
                State::Failed(e.to_string())
            }
        };
        inner.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_are_made_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let spare = Spare::start(dir.path(), 4096).unwrap();
        for i in 1..=3 {
            let target = dir.path().join(segment::file_name(i));
            spare.take(&target).unwrap();
            let bytes = std::fs::read(&target).unwrap();
            assert_eq!(bytes.len(), 4096);
            assert_eq!(segment::records_end(&bytes), segment::End::Clean { at: 0 });
        }
        let taken = dir.path().join(segment::file_name(3));
        assert!(spare.take(&taken).is_err(), "never replaces a segment");
    }
}
