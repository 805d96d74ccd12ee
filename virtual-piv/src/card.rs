//! A virtual YubiKey plugged into a vpcd reader port: a thread that
//! connects to vpcd as the card and answers it with the PIV applet, and a
//! handle through which a test touches, removes and re-inserts the card.

use crate::applet::{PivApplet, TouchSensor};
use crate::profile::Profile;
use crate::vpcd::{read_message, write_message, Message};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// YubiKey 5 NFC ATR; it offers T=1, the only protocol the `yubikey` crate asks for.
pub const ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// How long a real YubiKey blinks for a touch before it answers 6982.
pub const YUBIKEY_TOUCH_TIMEOUT: Duration = Duration::from_secs(15);

const RECONNECT_INTERVAL: Duration = Duration::from_millis(50);

/// What the "user" does when the card asks for a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchMode {
    /// Touches at once (the default: tests that do not care about touch).
    Immediate,
    /// Touches this long after the card starts waiting.
    After(Duration),
    /// Never touches: the card answers 6982 after the touch timeout.
    Never,
    /// Waits for [`VirtualYubiKey::touch`] (or the timeout).
    Manual,
}

/// One command the card answered (no data: PINs and keys stay out of logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedCommand {
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub sw: u16,
}

struct Control {
    touch_mode: TouchMode,
    touch_timeout: Duration,
    waiting_for_touch: bool,
    touched: bool,
    touch_requests: u64,
    /// What the test wants; `connected` is what the card thread achieved.
    inserted: bool,
    connected: bool,
    stop: bool,
    socket: Option<TcpStream>,
    log: Vec<LoggedCommand>,
    /// Instruction byte of the next command to stop at, before executing it.
    hold: Option<u8>,
    /// Stopped at a held command, waiting for `release_hold` or removal.
    holding: bool,
}

struct Shared {
    applet: Mutex<PivApplet>,
    control: Mutex<Control>,
    changed: Condvar,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn applet(&self) -> MutexGuard<'_, PivApplet> {
        self.applet.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `done` holds or `timeout` passes; returns whether it holds.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut control = self.control();
        while !done(&control) {
            control = match deadline {
                None => self
                    .changed
                    .wait(control)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.changed
                        .wait_timeout(control, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        true
    }
}

/// A virtual YubiKey 5 (PIV) in the vpcd reader on `127.0.0.1:port`.
/// Dropping it removes the card and stops its thread.
pub struct VirtualYubiKey {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    port: u16,
    profile: Profile,
}

impl VirtualYubiKey {
    /// Inserts a factory-fresh card (PIN 123456, PUK 12345678, default
    /// management key) into the reader at `port`. The card keeps trying to
    /// connect until vpcd listens (pcscd notices the card a poll later).
    pub fn insert_new(port: u16, profile: Profile) -> VirtualYubiKey {
        let shared = Arc::new(Shared {
            applet: Mutex::new(PivApplet::new(profile)),
            control: Mutex::new(Control {
                touch_mode: TouchMode::Immediate,
                touch_timeout: YUBIKEY_TOUCH_TIMEOUT,
                waiting_for_touch: false,
                touched: false,
                touch_requests: 0,
                inserted: true,
                connected: false,
                stop: false,
                socket: None,
                log: Vec::new(),
                hold: None,
                holding: false,
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("virtual-yubikey-{}", profile.serial))
                .spawn(move || run(&shared, port))
                .expect("spawn card thread")
        };
        VirtualYubiKey {
            shared,
            thread: Some(thread),
            port,
            profile,
        }
    }

    pub fn serial(&self) -> u32 {
        self.profile.serial
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_touch(&self, mode: TouchMode) {
        self.shared.control().touch_mode = mode;
        self.shared.changed.notify_all();
    }

    /// How long the card waits for a touch before answering 6982 (15 s by default).
    pub fn set_touch_timeout(&self, timeout: Duration) {
        self.shared.control().touch_timeout = timeout;
        self.shared.changed.notify_all();
    }

    /// Touches the card if it is waiting for a touch; `false` if it was not.
    pub fn touch(&self) -> bool {
        let mut control = self.shared.control();
        if !control.waiting_for_touch {
            return false;
        }
        control.touched = true;
        drop(control);
        self.shared.changed.notify_all();
        true
    }

    /// Waits until the card is blinking for a touch.
    pub fn wait_for_touch_request(&self, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |c| c.waiting_for_touch)
    }

    /// How many times the card has asked for a touch so far.
    pub fn touch_requests(&self) -> u64 {
        self.shared.control().touch_requests
    }

    /// Pulls the card out: the vpcd connection closes (pcscd reports the
    /// card removed) and the session state is lost; keys and PINs stay.
    /// Returns once the card is disconnected.
    pub fn remove(&self) {
        {
            let mut control = self.shared.control();
            control.inserted = false;
            if let Some(socket) = control.socket.take() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();
        self.shared.wait_until(Duration::MAX, |c| !c.connected);
    }

    /// Puts the card back; returns once it is connected to vpcd again
    /// (pcscd notices it a poll later).
    pub fn insert(&self) {
        {
            let mut control = self.shared.control();
            control.inserted = true;
        }
        self.shared.changed.notify_all();
        self.shared
            .wait_until(Duration::MAX, |c| c.connected || c.stop);
    }

    /// Stops the card at the next command with instruction byte `ins`,
    /// before it executes it, until [`release_hold`](Self::release_hold)
    /// (it then executes the command, as a card that received it whole
    /// does, whatever became of the host) or removal (it never does).
    /// Once: later commands run as usual.
    pub fn hold_before(&self, ins: u8) {
        self.shared.control().hold = Some(ins);
        self.shared.changed.notify_all();
    }

    /// Waits until the card has stopped at the held command.
    pub fn wait_for_hold(&self, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |c| c.holding)
    }

    /// Lets the held command execute.
    pub fn release_hold(&self) {
        self.shared.control().holding = false;
        self.shared.changed.notify_all();
    }

    /// Commands answered so far, oldest first.
    pub fn commands(&self) -> Vec<LoggedCommand> {
        self.shared.control().log.clone()
    }

    pub fn clear_commands(&self) {
        self.shared.control().log.clear();
    }

    /// Like the other state accessors, waits while the card is busy (e.g.
    /// blinking for a touch).
    pub fn pin_tries_left(&self) -> u8 {
        self.shared.applet().pin_tries_left()
    }

    pub fn puk_tries_left(&self) -> u8 {
        self.shared.applet().puk_tries_left()
    }

    /// `(algorithm, pin policy, touch policy)` of the key in `slot`, if any.
    pub fn slot_key(&self, slot: u8) -> Option<(u8, u8, u8)> {
        let applet = self.shared.applet();
        applet
            .slot(slot)
            .map(|k| (k.key.alg(), k.pin_policy, k.touch_policy))
    }
}

impl Drop for VirtualYubiKey {
    fn drop(&mut self) {
        {
            let mut control = self.shared.control();
            control.stop = true;
            control.inserted = false;
            if let Some(socket) = control.socket.take() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The card thread: connect while inserted, serve until disconnected, repeat.
fn run(shared: &Shared, port: u16) {
    loop {
        {
            let mut control = shared.control();
            while !control.inserted && !control.stop {
                control = shared
                    .changed
                    .wait(control)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if control.stop {
                return;
            }
        }
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            // vpcd not listening yet (pcscd starting); try again shortly.
            let control = shared.control();
            let _ = shared.changed.wait_timeout(control, RECONNECT_INTERVAL);
            continue;
        };
        let _ = stream.set_nodelay(true);
        {
            let mut control = shared.control();
            if !control.inserted || control.stop {
                continue;
            }
            control.socket = stream.try_clone().ok();
            control.connected = true;
        }
        shared.changed.notify_all();
        tracing::debug!(port, "card connected to vpcd");
        if let Err(e) = serve(shared, stream) {
            tracing::debug!(port, error = %e, "vpcd connection ended");
        }
        shared.applet().power_cycle();
        {
            let mut control = shared.control();
            control.connected = false;
            control.socket = None;
        }
        shared.changed.notify_all();
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    while let Some(message) = read_message(&mut stream)? {
        tracing::trace!(?message, "from vpcd");
        match message {
            Message::GetAtr => write_message(&mut stream, &ATR)?,
            Message::PowerOff | Message::PowerOn | Message::Reset => shared.applet().power_cycle(),
            Message::Apdu(apdu) => {
                if !held_until_released(shared, &apdu) {
                    return Ok(());
                }
                let response = shared.applet().process(&apdu, &Touch(shared));
                if let [_, ins, p1, p2, ..] = apdu[..] {
                    shared.control().log.push(LoggedCommand {
                        ins,
                        p1,
                        p2,
                        sw: response.sw,
                    });
                }
                write_message(&mut stream, &response.to_bytes())?;
            }
        }
    }
    Ok(())
}

/// Stops at a command the test holds; `false` if the card was pulled out
/// meanwhile (the command is then never executed).
fn held_until_released(shared: &Shared, apdu: &[u8]) -> bool {
    let mut control = shared.control();
    if control.hold.is_none() || control.hold != apdu.get(1).copied() {
        return true;
    }
    control.hold = None;
    control.holding = true;
    shared.changed.notify_all();
    tracing::info!(ins = format!("{:02x}", apdu[1]), "holding a command");
    while control.holding && control.inserted && !control.stop {
        control = shared
            .changed
            .wait(control)
            .unwrap_or_else(|e| e.into_inner());
    }
    let released = !control.holding;
    control.holding = false;
    drop(control);
    shared.changed.notify_all();
    released
}

/// The test-controlled touch sensor.
struct Touch<'a>(&'a Shared);

impl TouchSensor for Touch<'_> {
    fn wait_for_touch(&self, slot: u8) -> bool {
        let shared = self.0;
        let start = Instant::now();
        let mut control = shared.control();
        control.touch_requests += 1;
        control.waiting_for_touch = true;
        control.touched = false;
        shared.changed.notify_all();
        tracing::info!(slot = format!("{slot:02x}"), "waiting for touch");
        let touched = loop {
            if control.touched {
                break true;
            }
            if !control.inserted || control.stop {
                break false;
            }
            let elapsed = start.elapsed();
            let touch_at = match control.touch_mode {
                TouchMode::Immediate => Some(Duration::ZERO),
                TouchMode::After(delay) => Some(delay),
                TouchMode::Never | TouchMode::Manual => None,
            };
            if touch_at.is_some_and(|at| at <= elapsed && at <= control.touch_timeout) {
                break true;
            }
            if elapsed >= control.touch_timeout {
                break false;
            }
            let wake = touch_at
                .map_or(control.touch_timeout, |at| at.min(control.touch_timeout))
                .saturating_sub(elapsed);
            control = shared
                .changed
                .wait_timeout(control, wake)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        control.waiting_for_touch = false;
        control.touched = false;
        drop(control);
        shared.changed.notify_all();
        tracing::info!(touched, "touch wait over");
        touched
    }
}
