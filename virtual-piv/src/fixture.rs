//! What a test uses: the shared pcscd, exclusive use of its virtual
//! readers, and cards plugged into them.

use crate::card::VirtualYubiKey;
use crate::pcscd::{TestPcscd, BASE_PORT, PORT_COUNT};
use crate::profile::Profile;
use nix::fcntl::Flock;
use std::ffi::CString;
use std::fs::File;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// How long pcscd may take to notice a card come or go (it polls).
const DETECTION_TIMEOUT: Duration = Duration::from_secs(20);
const STATUS_POLL: Duration = Duration::from_millis(500);

/// This test's hold on the virtual readers of the shared pcscd. Cards
/// inserted through it keep the hold alive; it ends when the last drops.
#[derive(Clone)]
pub struct TestReaders {
    inner: Arc<Readers>,
}

struct Readers {
    _exclusive: Flock<File>,
    ports_in_use: Mutex<Vec<u16>>,
}

/// The thread that acquired the readers, to turn a self-deadlock (a second
/// acquire in the same test) into an error.
static HOLDER: Mutex<Option<ThreadId>> = Mutex::new(None);

impl Drop for Readers {
    fn drop(&mut self) {
        *HOLDER.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl TestReaders {
    /// Starts the shared pcscd if needed and waits for exclusive use of its
    /// readers. A test that needs two cards inserts both through one
    /// `TestReaders`: acquiring twice on one thread is refused.
    pub fn acquire() -> Result<TestReaders, String> {
        let me = std::thread::current().id();
        if *HOLDER.lock().unwrap_or_else(|e| e.into_inner()) == Some(me) {
            return Err(
                "this thread already holds the virtual readers: insert further \
                        cards through the same TestReaders"
                    .into(),
            );
        }
        let pcscd = TestPcscd::shared()?;
        let exclusive = pcscd.lock_readers().map_err(|e| e.to_string())?;
        *HOLDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(me);
        Ok(TestReaders {
            inner: Arc::new(Readers {
                _exclusive: exclusive,
                ports_in_use: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Plugs a factory-fresh card into a free reader and waits until pcscd sees it.
    pub fn insert(&self, profile: Profile) -> Result<TestCard, String> {
        let port = {
            let mut used = self
                .inner
                .ports_in_use
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let port = (BASE_PORT..BASE_PORT + PORT_COUNT)
                .find(|p| !used.contains(p))
                .ok_or_else(|| format!("all {PORT_COUNT} virtual readers hold a card"))?;
            used.push(port);
            port
        };
        let card = TestCard {
            card: VirtualYubiKey::insert_new(port, profile),
            _port: PortInUse {
                readers: self.clone(),
                port,
            },
        };
        wait_for_reader(port, true)?;
        Ok(card)
    }
}

/// A virtual YubiKey in a reader of the shared test pcscd. Dropping it
/// unplugs the card and frees the reader.
pub struct TestCard {
    // Field order is drop order: stop the card, then free its reader.
    card: VirtualYubiKey,
    _port: PortInUse,
}

impl TestCard {
    /// One card, with exclusive use of the readers for as long as it lives
    /// (for two cards, use [`TestReaders::insert`] twice).
    pub fn start(profile: Profile) -> Result<TestCard, String> {
        TestReaders::acquire()?.insert(profile)
    }

    /// Pulls the card out and waits until pcscd reports the reader empty.
    pub fn remove(&self) -> Result<(), String> {
        self.card.remove();
        wait_for_reader(self.card.port(), false)
    }

    /// Re-inserts a removed card and waits until pcscd reports it present.
    pub fn reinsert(&self) -> Result<(), String> {
        self.card.insert();
        wait_for_reader(self.card.port(), true)
    }
}

impl Drop for TestCard {
    /// The reader is free again only once pcscd has seen it empty; otherwise
    /// the next card in it could be taken for this one.
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!(port = self.card.port(), "unplugging: {e}");
        }
    }
}

impl Deref for TestCard {
    type Target = VirtualYubiKey;

    fn deref(&self) -> &VirtualYubiKey {
        &self.card
    }
}

struct PortInUse {
    readers: TestReaders,
    port: u16,
}

impl Drop for PortInUse {
    fn drop(&mut self) {
        self.readers
            .inner
            .ports_in_use
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != self.port);
    }
}

/// The name pcscd gives the vpcd slot behind `port` (see scripts/test-pcscd.sh:
/// one reader per even port, its second slot on the next port).
pub fn reader_name(port: u16) -> String {
    let slot = (port - BASE_PORT) % 2;
    format!("Notary Test PCD {} 00 {slot:02}", port - slot)
}

/// Waits until pcscd reports a card in the reader at `port` (or none).
fn wait_for_reader(port: u16, present: bool) -> Result<(), String> {
    let name = reader_name(port);
    let context = pcsc::Context::establish(pcsc::Scope::System)
        .map_err(|e| format!("cannot talk to pcscd: {e}"))?;
    let c_name = CString::new(name.clone()).map_err(|e| e.to_string())?;
    let mut states = [pcsc::ReaderState::new(c_name, pcsc::State::UNAWARE)];
    let deadline = Instant::now() + DETECTION_TIMEOUT;
    loop {
        match context.get_status_change(STATUS_POLL, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(format!("pcscd status of {name}: {e}")),
        }
        let state = states[0].event_state();
        let done = if present {
            state.contains(pcsc::State::PRESENT)
        } else {
            state.contains(pcsc::State::EMPTY)
        };
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pcscd did not report {name} {} within {DETECTION_TIMEOUT:?}",
                if present { "holding a card" } else { "empty" }
            ));
        }
        states[0].sync_current_state();
    }
}
