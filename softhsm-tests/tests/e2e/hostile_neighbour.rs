//! A hostile neighbour: another local user (a second uid, through
//! `setpriv`) listens where a victim's notaryctl might look for the
//! daemon, with a real process that records every byte it receives. The
//! victim's notaryctl, with a PIN at hand in `NOTARY_KEYD_PIN_FILE`, must
//! refuse each planted socket and send it nothing; the victim's own
//! personal daemon must refuse a planted directory too. Needs root (to
//! switch uids); skipped otherwise.

use softhsm_tests::{bin_path, output_within};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Each test has its own pair of uids: the /tmp path below is per victim
/// uid and shared by the whole machine.
struct Uids {
    victim: u32,
    attacker: u32,
}

const PIN: &str = "victim-pin-2468";
const LIMIT: Duration = Duration::from_secs(30);

fn as_uid(uid: u32, program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
    ])
    .arg(program)
    .env_remove("NOTARY_KEYD_SOCKET")
    .env_remove("XDG_RUNTIME_DIR")
    .env_remove("XDG_STATE_HOME")
    .env_remove("XDG_DATA_HOME")
    .env_remove("NOTARY_KEYD_PIN");
    cmd
}

fn chown(path: &Path, uid: u32) {
    let id = Some(nix::unistd::Uid::from_raw(uid));
    nix::unistd::chown(path, id, Some(nix::unistd::Gid::from_raw(uid))).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A temp tree both uids can traverse: the victim's home (0700, with its
/// PIN file, 0600) and the attacker's own directory.
struct World {
    uids: Uids,
    root: tempfile::TempDir,
}

impl World {
    /// The world of `victim` and its attacker (the next uid), when this
    /// test runs as root and can switch to them; `None` (skipped) otherwise.
    fn as_root(victim: u32) -> Option<World> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to run the victim and the attacker as other uids");
            return None;
        }
        Some(World::new(Uids {
            victim,
            attacker: victim + 1,
        }))
    }

    fn new(uids: Uids) -> World {
        let root = tempfile::tempdir().unwrap();
        chmod(root.path(), 0o711);
        let world = World { uids, root };
        for (dir, uid) in [
            (world.home(), world.uids.victim),
            (world.attacker_dir(), world.uids.attacker),
        ] {
            std::fs::create_dir(&dir).unwrap();
            chown(&dir, uid);
            chmod(&dir, 0o700);
        }
        std::fs::write(world.pin_file(), format!("{PIN}\n")).unwrap();
        chown(&world.pin_file(), world.uids.victim);
        chmod(&world.pin_file(), 0o600);
        world
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("victim")
    }

    fn attacker_dir(&self) -> PathBuf {
        self.root.path().join("attacker")
    }

    fn pin_file(&self) -> PathBuf {
        self.home().join("hsm.pin")
    }

    fn personal_dir(&self) -> PathBuf {
        self.home().join(".local/state/notary-keyd")
    }

    /// notaryctl as the victim with no runtime dir, its PIN file at hand.
    fn victim_notaryctl(&self, args: &[&str]) -> Output {
        let mut cmd = as_uid(self.uids.victim, &bin_path("notaryctl").unwrap());
        cmd.args(args)
            .env("HOME", self.home())
            .env("NOTARY_KEYD_PIN_FILE", self.pin_file());
        output_within(&mut cmd, LIMIT).unwrap()
    }

    /// The victim's personal daemon (no config, no runtime dir).
    fn victim_daemon(&self) -> Command {
        let mut cmd = as_uid(self.uids.victim, &bin_path("notary-keyd").unwrap());
        cmd.env("HOME", self.home());
        cmd
    }

    /// The attacker's fake daemon on `socket`.
    fn listen_as_attacker(&self, socket: &Path) -> Listener {
        let record = self.attacker_dir().join(format!(
            "{}.record",
            socket.file_name().unwrap().to_string_lossy()
        ));
        let mut child = as_uid(self.uids.attacker, &bin_path("hostile-listener").unwrap())
            .arg(socket)
            .arg(&record)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let listener = Listener {
            child: Some(child),
            socket: socket.to_path_buf(),
            record,
        };
        assert_eq!(line, "listening\n", "the hostile listener did not start");
        listener
    }
}

/// The attacker's process, stopped by its pid when the test ends.
struct Listener {
    child: Option<Child>,
    socket: PathBuf,
    record: PathBuf,
}

impl Listener {
    /// Every connection the listener has seen, as the bytes each sent. A
    /// probe of our own goes last: once it is answered, every earlier
    /// connection is on record. The probe itself is left out.
    fn connections(&self) -> Vec<Vec<u8>> {
        let mut probe = UnixStream::connect(&self.socket).unwrap();
        probe.write_all(b"probe").unwrap();
        probe.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        probe.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "recorded\n");
        let text = std::fs::read_to_string(&self.record).unwrap();
        let mut seen: Vec<Vec<u8>> = text
            .lines()
            .map(|line| {
                let (len, bytes) = line.split_once(' ').unwrap();
                let bytes = hex::decode(bytes).unwrap();
                assert_eq!(len.parse::<usize>().unwrap(), bytes.len());
                bytes
            })
            .collect();
        assert_eq!(seen.pop().as_deref(), Some(&b"probe"[..]), "{text}");
        seen
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_socket_planted_in_tmp_is_not_where_notaryctl_looks() {
    let Some(world) = World::as_root(64011) else {
        return;
    };
    // The attacker makes the directory the old fallback used.
    let planted = PathBuf::from(format!("/tmp/notary-keyd-{}", world.uids.victim));
    if planted.exists() {
        std::fs::remove_dir_all(&planted).unwrap();
    }
    let listener = world.listen_as_attacker(&planted.join("keyd.sock"));

    // No daemon where notaryctl looks: "daemon unreachable" (exit 4).
    let out = world.victim_notaryctl(&["key", "unlock", "--backend", "hsm"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains(&planted.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_eq!(listener.connections(), Vec::<Vec<u8>>::new());
    drop(listener);
    std::fs::remove_dir_all(&planted).unwrap();
}

#[test]
fn a_socket_another_uid_serves_gets_no_byte_and_no_pin() {
    let Some(world) = World::as_root(64021) else {
        return;
    };
    // Where the victim was told the daemon is: a directory the attacker
    // can write.
    let dir = world.root.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    chown(&dir, world.uids.attacker);
    chmod(&dir, 0o755);
    let shared = dir.join("keyd.sock");
    let listener = world.listen_as_attacker(&shared);
    let socket = shared.to_str().unwrap();

    for args in [
        vec!["--keyd", socket, "key", "unlock", "--backend", "hsm"],
        vec!["--keyd", socket, "backend", "list"],
    ] {
        let out = world.victim_notaryctl(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "refusing notary-keyd at {socket}: the process listening there runs as uid {}, \
                 but notary-keyd must run as uid {} (you), uid 0 (root)",
                world.uids.attacker, world.uids.victim
            )),
            "{err}"
        );
        assert!(err.contains("nothing was sent to it"), "{err}");
    }
    // Both commands connected, and neither sent a single byte.
    assert_eq!(listener.connections(), vec![Vec::<u8>::new(); 2]);
}

#[test]
fn a_planted_personal_directory_is_refused_by_notaryctl_and_the_daemon() {
    let Some(world) = World::as_root(64031) else {
        return;
    };
    // A victim whose ~/.local/state others may write: the attacker gets
    // in first and listens in the daemon's place.
    chmod(&world.home(), 0o711);
    let state = world.home().join(".local/state");
    std::fs::create_dir_all(&state).unwrap();
    chown(&world.home().join(".local"), world.uids.victim);
    chown(&state, world.uids.victim);
    chmod(&state, 0o777);
    let personal = world.personal_dir();
    let listener = world.listen_as_attacker(&personal.join("keyd.sock"));
    let refusal = format!(
        "refusing the personal socket directory {}: it is owned by uid {} with mode 0755, \
         but must be owned by uid {} with mode 0700",
        personal.display(),
        world.uids.attacker,
        world.uids.victim
    );

    let out = world.victim_notaryctl(&["key", "unlock", "--backend", "hsm"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&refusal), "{}", stderr(&out));

    let daemon = output_within(&mut world.victim_daemon(), LIMIT).unwrap();
    assert_eq!(daemon.status.code(), Some(1), "{}", stderr(&daemon));
    assert!(stderr(&daemon).contains(&refusal), "{}", stderr(&daemon));
    assert!(
        std::fs::symlink_metadata(personal.join("keyd.sock")).is_ok(),
        "the daemon left the planted socket alone"
    );
    assert_eq!(listener.connections(), Vec::<Vec<u8>>::new());
}

#[test]
fn a_personal_directory_open_to_others_is_refused_even_if_the_user_owns_it() {
    let Some(world) = World::as_root(64041) else {
        return;
    };
    let personal = world.personal_dir();
    std::fs::create_dir_all(&personal).unwrap();
    for dir in [
        world.home().join(".local"),
        world.home().join(".local/state"),
        personal.clone(),
    ] {
        chown(&dir, world.uids.victim);
    }
    chmod(&personal, 0o755);
    let refusal = format!(
        "refusing the personal socket directory {}: it is owned by uid {} with mode 0755",
        personal.display(),
        world.uids.victim
    );
    let daemon = output_within(&mut world.victim_daemon(), LIMIT).unwrap();
    assert_eq!(daemon.status.code(), Some(1), "{}", stderr(&daemon));
    assert!(stderr(&daemon).contains(&refusal), "{}", stderr(&daemon));
    let out = world.victim_notaryctl(&["backend", "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&refusal), "{}", stderr(&out));
}

/// The control for the refusals above: the victim's own personal daemon,
/// with no runtime dir, is found and trusted.
#[test]
fn the_victims_own_personal_daemon_is_found_and_trusted() {
    let Some(world) = World::as_root(64051) else {
        return;
    };
    let mut daemon = world
        .victim_daemon()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = world.personal_dir().join("keyd.sock");
    let deadline = Instant::now() + LIMIT;
    while UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline || daemon.try_wait().unwrap().is_some() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!("the personal daemon never listened on {}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = world.victim_notaryctl(&["backend", "list"]);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("soft"));
}
