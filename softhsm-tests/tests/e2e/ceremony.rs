//! Offline root ceremonies end to end, with the real components: the
//! virtual YubiKey (touch always) behind pcscd, SoftHSM2 tokens, notary-keyd,
//! Debian's notary-server and the stock notary CLI. Enrollment and signing
//! run in a network namespace of their own (`unshare -n`), the way the
//! offline machine has no network.

use notary_tuf::{pem, PublicKey, Root, SignedEnvelope};
use sha2::{Digest, Sha256};
use softhsm_tests::ceremony::{
    confirmation_word, copy_bundle, file_sha256, notaryctl_in, post_by_hand, transcript,
    write_chained, Network,
};
use softhsm_tests::notary_stack::{CliOutput, NotaryServer, Pki, TrustService};
use softhsm_tests::notaryctl_cli::Notaryctl;
use softhsm_tests::{Daemon, SoftHsm, Swtpm, TestDaemon};
use std::path::{Path, PathBuf};
use std::time::Duration;
use virtual_piv::{Profile, TestCard, TouchMode};

const PIN: &str = "24681357";
const PUK: &str = "13572468";
const TOKEN_PIN: &str = "4321";
const CONTENT: &[u8] = b"release signed under a ceremony root\n";

/// notary-keyd with a software keystore for the online keys (the default
/// backend), SoftHSM tokens for holders and optionally a YubiKey; a
/// notary-server; notaryctl with its own trust dir.
struct Rig {
    ctl: Notaryctl,
    server: NotaryServer,
    _daemon: Daemon,
    _hsm: SoftHsm,
    _pki: Pki,
}

/// `tokens`: (backend and label, locked until a request brings the PIN).
fn rig(name: &str, tokens: &[(&str, bool)], yubikey: Option<u32>) -> Rig {
    rig_with(name, tokens, yubikey, "")
}

/// `rig` with more `[[backend]]` sections.
fn rig_with(name: &str, tokens: &[(&str, bool)], yubikey: Option<u32>, more: &str) -> Rig {
    let hsm = SoftHsm::new("spare", TOKEN_PIN).unwrap();
    let mut config = TestDaemon::new().soft("online").toml(more);
    for (label, locked) in tokens {
        config = config
            .softhsm_token(&hsm, label, label, TOKEN_PIN, *locked)
            .unwrap();
    }
    if let Some(serial) = yubikey {
        config = config.yubikey("yk", serial);
    }
    let daemon = config.start().unwrap();
    let pki = Pki::new(name).unwrap();
    let server = NotaryServer::start(&pki, &TrustService::Local).unwrap();
    let ctl = Notaryctl::new(&server.url, &server.ca_cert, &daemon.socket).unwrap();
    Rig {
        ctl,
        server,
        _daemon: daemon,
        _hsm: hsm,
        _pki: pki,
    }
}

impl Rig {
    fn path(&self, name: &str) -> PathBuf {
        self.ctl.work_dir().join(name)
    }

    fn write(&self, name: &str, content: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// A PIN or PUK file, closed to others as notaryctl requires.
    fn write_secret(&self, name: &str, secret: &str) -> String {
        let path = self.path(name);
        softhsm_tests::write_secret(&path, &format!("{secret}\n")).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// An online notaryctl command with the holders' PINs at hand.
    fn online(&self, args: &[&str]) -> CliOutput {
        self.ctl
            .run_env(&[("NOTARY_KEYD_PIN", TOKEN_PIN)], &[], args)
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> CliOutput {
        self.online(args).ok().unwrap()
    }

    /// An offline step: no network, `pin` for a locked token, `stdin` typed.
    fn offline(&self, pin: &str, args: &[&str], stdin: &str) -> CliOutput {
        notaryctl_in(
            &self.ctl,
            Network::None,
            &[("NOTARY_KEYD_PIN", pin)],
            args,
            stdin,
        )
        .unwrap()
    }

    fn targets_key(&self, gun: &str) -> String {
        let out = self.ok(&[
            "key",
            "generate",
            "--backend",
            "online",
            "--role",
            "targets",
            "--gun",
            gun,
        ]);
        out.stdout.lines().last().unwrap().trim().to_string()
    }

    fn enroll(&self, bundle: &str, holder: &str, pin: &str) -> CliOutput {
        self.offline(pin, &["ceremony", "enroll", bundle, "--holder", holder], "")
            .ok()
            .unwrap()
    }

    fn status(&self, bundle: &str) -> CliOutput {
        self.ok(&["ceremony", "status", bundle])
    }

    /// The holder reads the words and types the last one.
    fn sign(&self, bundle: &str, holder: &str, pin: &str) -> CliOutput {
        let word = confirmation_word(&self.status(bundle).stdout).unwrap();
        self.offline(
            pin,
            &["ceremony", "sign", bundle, "--holder", holder],
            &format!("{word}\n"),
        )
    }

    fn setup_yubikey(&self, serial: u32) {
        let pin = self.write_secret("yk.pin", PIN);
        let puk = self.write_secret("yk.puk", PUK);
        self.ok(&[
            "yubikey",
            "setup",
            "--serial",
            &serial.to_string(),
            "--yes",
            "--factory-defaults",
            "--new-pin-file",
            &pin,
            "--new-puk-file",
            &puk,
        ]);
    }

    fn virtual_ca(&self) -> String {
        self.write(
            "virtual-piv-ca.pem",
            pem::encode("CERTIFICATE", &virtual_piv::root_certificate_der()).as_bytes(),
        )
    }

    fn published_root(&self, gun: &str) -> Root {
        let res = self
            .server
            .get(&format!("/v2/{gun}/_trust/tuf/root.json"))
            .unwrap();
        assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
        SignedEnvelope::parse(&res.body).unwrap().decode().unwrap()
    }

    /// Adds the target `target` (CONTENT) to `gun` and publishes it with
    /// notaryctl; returns the file it added.
    fn publish_target(&self, gun: &str, target: &str) -> String {
        let file = self.write(&format!("{target}.bin"), CONTENT);
        self.ok(&["add", gun, target, &file]);
        self.ok(&["publish", gun]);
        file
    }

    /// Publishes a target with notaryctl, then has the stock CLI (its own
    /// trust dir, trusting on first use) list and verify it.
    fn stock_cli_verifies(&self, gun: &str, target: &str) {
        let file = self.publish_target(gun, target);
        let stock = self.server.cli().unwrap();
        stock_verifies(&stock, gun, target);
        let listed = self.ok(&["list", gun]);
        listed.assert_prints(&format!("{target} "));
        self.ok(&["verify", gun, target, "-i", &file, "-q"]);
    }
}

fn stock_verifies(stock: &softhsm_tests::notary_stack::NotaryCli, gun: &str, target: &str) {
    let listed = stock.run(&["list", gun]).unwrap().ok().unwrap();
    let row: Vec<&str> = listed
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{target} ")))
        .unwrap_or_else(|| panic!("no {target} in:\n{}", listed.stdout))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], hex::encode(Sha256::digest(CONTENT)));
    let copy = stock.work_dir().join(format!("{target}.bin"));
    std::fs::write(&copy, CONTENT).unwrap();
    stock
        .run(&["verify", gun, target, "-i", copy.to_str().unwrap(), "-q"])
        .unwrap()
        .ok()
        .unwrap();
    std::fs::write(&copy, b"something else\n").unwrap();
    let wrong = stock
        .run(&["verify", gun, target, "-i", copy.to_str().unwrap(), "-q"])
        .unwrap();
    assert!(!wrong.status.success(), "wrong content accepted");
}

fn failed(out: CliOutput) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal:\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    out.stderr
}

fn lines(bundle: &str) -> usize {
    transcript(Path::new(bundle)).unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_three_on_a_yubikey_and_softhsm_tokens_is_trusted_by_stock_notary() {
    const SERIAL: u32 = 42_000_001;
    const GUN: &str = "example.com/ceremony/two-of-three";
    let card = TestCard::start(Profile::yubikey_5_7(SERIAL)).unwrap();
    let rig = rig(
        "two-of-three",
        &[("bob", false), ("carol", false)],
        Some(SERIAL),
    );
    rig.setup_yubikey(SERIAL);
    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    let targets = rig.targets_key(GUN);
    let ca = rig.virtual_ca();
    let bundle = rig.path("bundle").to_string_lossy().into_owned();
    let holder_alice = format!("alice=yubikey:serial={SERIAL}");
    let planned = rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &bundle,
        "--holder",
        &holder_alice,
        "--holder",
        "bob=pkcs11:token=bob",
        "--holder",
        "carol=pkcs11:token=carol",
        "--threshold",
        "2",
        "--targets-key",
        &targets,
        "--attestation-root",
        &ca,
    ]);
    let plan_hash = file_sha256(&Path::new(&bundle).join("plan.toml")).unwrap();
    planned.assert_prints(&plan_hash);

    // The YubiKey's key is attested by the virtual card's CA named in the
    // plan; the SoftHSM keys are recorded as unattested.
    let alice = rig.enroll(&bundle, "alice", PIN);
    alice.assert_prints("attested: YubiKey PIV chain verified against the plan's root");
    alice.assert_prints("touch always");
    assert_eq!(
        card.slot_key(0x9c).map(|(alg, _, touch)| (alg, touch)),
        Some((0x11, 2))
    );
    let bob = rig.enroll(&bundle, "bob", TOKEN_PIN);
    bob.assert_prints(
        "UNATTESTED: PKCS#11 tokens cannot attest; backend bob reports the key as generated \
             on the token and never extractable",
    );
    let carol = rig.enroll(&bundle, "carol", TOKEN_PIN);
    carol.assert_prints("Every holder has enrolled");

    // One signature: status names who is still needed, publish refuses,
    // and so does notary-server when the same root is uploaded by hand.
    let signed = rig.sign(&bundle, "alice", PIN).ok().unwrap();
    signed.assert_prints("SHA-256 of the canonical signed part of root v1");
    let status = rig.status(&bundle);
    status.assert_prints("new root v1: 1 of 2 needed (alice) ✗, 1 more of: bob, carol");
    let refused = failed(rig.online(&["ceremony", "publish", &bundle]));
    assert!(refused.contains("the bundle is incomplete"), "{refused}");
    assert!(refused.contains("1 more of: bob, carol"), "{refused}");
    // With a valid targets beside it, so that only the root's threshold
    // can be what the server refuses.
    let root_json = Path::new(&bundle).join("root.json");
    let targets_json = signed_empty_targets(&rig, &targets, GUN);
    let (code, body) = post_by_hand(
        &rig.server,
        GUN,
        &[("root", &root_json), ("targets", &targets_json)],
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("failed to validate integrity of roots"),
        "{body}"
    );

    let signed = rig.sign(&bundle, "bob", TOKEN_PIN).ok().unwrap();
    signed.assert_prints("new root v1: 2 of 2 needed (alice, bob) ✓");
    let verified = rig.ok(&["ceremony", "verify", &bundle]);
    verified.assert_prints("Witness initials");
    let published = rig.ok(&["ceremony", "publish", &bundle]);
    published.assert_prints("A fresh client trusts root v1");

    let root = rig.published_root(GUN);
    let role = &root.roles["root"];
    assert_eq!((role.threshold, role.keyids.len()), (2, 3));
    let alice_key: &PublicKey = &root.keys[&role.keyids[0]];
    assert!(alice_key.keytype().is_x509());
    rig.stock_cli_verifies(GUN, "v1");
}

/// Plans a new collection whose holders are SoftHSM tokens of the same
/// names; returns the bundle path.
fn plan_on_softhsm(
    rig: &Rig,
    gun: &str,
    holders: &[&str],
    threshold: u32,
    extra: &[&str],
) -> String {
    let bundle = rig.path(&format!("bundle-{}", gun.replace('/', "_")));
    let bundle = bundle.to_string_lossy().into_owned();
    let targets = rig.targets_key(gun);
    let specs: Vec<String> = holders
        .iter()
        .map(|h| format!("{h}=pkcs11:token={h}"))
        .collect();
    let threshold = threshold.to_string();
    let mut args = vec![
        "ceremony",
        "plan",
        gun,
        "--out",
        &bundle,
        "--threshold",
        &threshold,
        "--targets-key",
        &targets,
    ];
    for spec in &specs {
        args.extend(["--holder", spec.as_str()]);
    }
    args.extend(extra);
    rig.ok(&args);
    bundle
}

/// Plans and enrolls every holder.
fn softhsm_ceremony(
    rig: &Rig,
    gun: &str,
    holders: &[&str],
    threshold: u32,
    extra: &[&str],
) -> String {
    let bundle = plan_on_softhsm(rig, gun, holders, threshold, extra);
    for holder in holders {
        rig.enroll(&bundle, holder, TOKEN_PIN);
    }
    bundle
}

/// Plans a rotation of `gun`'s published root (alice, bob and a third
/// holder, in that order) into the bundle `out`: alice and bob keep their
/// keys, the third key is retired as `retired`'s, and dave enrolls as
/// `new_holder` (`dave=URI`); threshold 2. Dave then signs first. Returns
/// the bundle, what dave's signing printed, and the root it rotates from.
fn dave_rotates(
    rig: &Rig,
    gun: &str,
    out: &str,
    new_holder: &str,
    retired: &str,
) -> (String, CliOutput, Root) {
    let root = rig.published_root(gun);
    let ids = &root.roles["root"].keyids;
    let bundle = rig.path(out).to_string_lossy().into_owned();
    let (alice, bob, retire) = (
        format!("alice=keep:{}", ids[0]),
        format!("bob=keep:{}", ids[1]),
        format!("{retired}={}", ids[2]),
    );
    rig.ok(&[
        "ceremony",
        "plan",
        gun,
        "--rotate",
        "--out",
        &bundle,
        "--holder",
        &alice,
        "--holder",
        &bob,
        "--holder",
        new_holder,
        "--retire",
        &retire,
        "--threshold",
        "2",
    ]);
    rig.enroll(&bundle, "dave", TOKEN_PIN);
    let signed = rig.sign(&bundle, "dave", TOKEN_PIN).ok().unwrap();
    (bundle, signed, root)
}

#[test]
fn rotation_replaces_a_holder_and_a_stock_client_follows() {
    const GUN: &str = "example.com/ceremony/rotation";
    let rig = rig(
        "rotation",
        &[
            ("alice", false),
            ("bob", false),
            ("carol", false),
            ("dave", false),
            ("dave2", false),
        ],
        None,
    );
    let first = softhsm_ceremony(&rig, GUN, &["alice", "bob", "carol"], 2, &[]);
    for holder in ["alice", "bob"] {
        rig.sign(&first, holder, TOKEN_PIN).ok().unwrap();
    }
    rig.ok(&["ceremony", "publish", &first]);
    // A stock client trusts v1 and its first target.
    rig.publish_target(GUN, "v1");
    let stock = rig.server.cli().unwrap();
    stock_verifies(&stock, GUN, "v1");

    // Carol's token is replaced by dave's; alice and bob keep their keys.
    let (bundle, signed, v1) =
        dave_rotates(&rig, GUN, "rotation-2", "dave=pkcs11:token=dave", "carol");
    let ids = &v1.roles["root"].keyids;
    signed.assert_prints("Rotation of example.com/ceremony/rotation: root v1 -> v2");
    signed.assert_prints(&format!("- carol        {}", ids[2]));
    signed.assert_prints("+ dave");
    rig.sign(&bundle, "alice", TOKEN_PIN).ok().unwrap();
    let status = rig.status(&bundle);
    status.assert_prints("old root v1: 1 of 2 needed (alice) ✗, 1 more of: bob, carol — new root v2: 2 of 2 needed (alice, dave) ✓");
    // One old key is not enough: notaryctl refuses before uploading, and
    // notary-server refuses the same root uploaded by hand.
    let refused = failed(rig.online(&["ceremony", "publish", &bundle]));
    assert!(
        refused.contains("old root v1: 1 of 2 needed (alice) ✗"),
        "{refused}"
    );
    let root_json = Path::new(&bundle).join("root.json");
    let (code, body) = post_by_hand(&rig.server, GUN, &[("root", &root_json)]).unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("could not rotate trust to a new trusted root"),
        "{body}"
    );
    assert_eq!(rig.published_root(GUN).version, 1);

    let signed = rig.sign(&bundle, "bob", TOKEN_PIN).ok().unwrap();
    signed.assert_prints("old root v1: 2 of 2 needed (alice, bob) ✓ — new root v2: 3 of 2 needed (alice, bob, dave) ✓");
    let published = rig.ok(&["ceremony", "publish", &bundle]);
    published.assert_prints("A fresh client that trusted the previous root trusts root v2");
    let v2 = rig.published_root(GUN);
    assert_eq!(v2.version, 2);
    assert!(!v2.keys.contains_key(&ids[2]), "carol's key is gone");

    // The stock client that trusted v1 follows to v2 and sees a new target.
    rig.publish_target(GUN, "v2");
    stock_verifies(&stock, GUN, "v2");

    // Dave replaces his own token: his old key (v2) and his new one (v3)
    // sign, with both devices plugged in.
    let (bundle, signed, _) =
        dave_rotates(&rig, GUN, "rotation-3", "dave=pkcs11:token=dave2", "dave");
    let ids = &v2.roles["root"].keyids;
    signed.assert_prints(&format!(
        "dave signs with key {} (old root) on backend dave",
        ids[2]
    ));
    signed.assert_prints("(new root) on backend dave2");
    signed.assert_prints(
        "old root v2: 1 of 2 needed (dave) ✗, 1 more of: alice, bob — new root v3: 1 of 2 \
             needed (dave) ✗, 1 more of: alice, bob",
    );
    rig.sign(&bundle, "bob", TOKEN_PIN).ok().unwrap();
    rig.ok(&["ceremony", "publish", &bundle]);
    rig.publish_target(GUN, "v3");
    stock_verifies(&stock, GUN, "v3");
}

/// A copy of `bundle` for one tampering case.
fn tampered(rig: &Rig, bundle: &str, case: &str) -> String {
    let copy = rig.path(&format!("tampered-{case}"));
    copy_bundle(Path::new(bundle), &copy).unwrap();
    copy.to_string_lossy().into_owned()
}

/// A copy of `bundle` whose transcript lines `edit` changed as text.
fn edit_lines(rig: &Rig, bundle: &str, case: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let copy = tampered(rig, bundle, case);
    let path = Path::new(&copy).join("transcript.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    edit(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    copy
}

/// `verify` and `publish` both refuse, naming `step`.
fn refused_naming(rig: &Rig, bundle: &str, step: &str) {
    for command in ["verify", "publish"] {
        let err = failed(rig.online(&["ceremony", command, bundle]));
        assert!(err.contains(step), "{command}: {err}");
    }
}

#[test]
fn tampered_bundles_are_refused_with_the_step_named() {
    const GUN: &str = "example.com/ceremony/tampered";
    let rig = rig(
        "tampered",
        &[("alice", false), ("bob", false), ("carol", false)],
        None,
    );
    let bundle = softhsm_ceremony(&rig, GUN, &["alice", "bob", "carol"], 2, &[]);
    for holder in ["alice", "bob"] {
        rig.sign(&bundle, holder, TOKEN_PIN).ok().unwrap();
    }
    rig.ok(&["ceremony", "verify", &bundle]);
    let entries = transcript(Path::new(&bundle)).unwrap();
    let seq_of = |action: &str, actor: &str| {
        entries
            .iter()
            .position(|e| e["action"] == action && e["actor"] == actor)
            .unwrap()
    };

    // An edited, a reordered and a removed transcript line.
    let edited = edit_lines(&rig, &bundle, "edited", |lines| {
        lines[2] = lines[2].replace("backend alice", "backend mallory");
    });
    refused_naming(
        &rig,
        &edited,
        "transcript.jsonl line 4 (seq 3, key generated) does not chain",
    );
    let reordered = edit_lines(&rig, &bundle, "reordered", |lines| lines.swap(4, 5));
    refused_naming(
        &rig,
        &reordered,
        "transcript.jsonl line 5 has seq 5 where 4 was expected",
    );
    let removed = edit_lines(&rig, &bundle, "removed", |lines| {
        lines.remove(7);
    });
    refused_naming(
        &rig,
        &removed,
        "transcript.jsonl line 8 has seq 8 where 7 was expected",
    );

    // root.json changed after the last signature: a signature dropped.
    let last_signature = entries
        .iter()
        .rposition(|e| e["action"] == "signature made and verified")
        .unwrap();
    let step = format!("root.json (transcript seq {last_signature}, signature made and verified)");
    let changed = tampered(&rig, &bundle, "root-changed");
    let root_path = Path::new(&changed).join("root.json");
    let mut root = SignedEnvelope::parse(&std::fs::read(&root_path).unwrap()).unwrap();
    root.signatures.pop();
    std::fs::write(&root_path, root.to_bytes()).unwrap();
    refused_naming(
        &rig,
        &changed,
        &format!("{step}: it is not the file this step wrote"),
    );
    // The same, with the transcript re-chained to hide it: the signed part
    // is no longer the root the plan makes.
    let hidden = tampered(&rig, &bundle, "root-hidden");
    let root_path = Path::new(&hidden).join("root.json");
    let mut root = SignedEnvelope::parse(&std::fs::read(&root_path).unwrap()).unwrap();
    root.signed["expires"] = "2040-01-01T00:00:00Z".into();
    root.signed_bytes = notary_tuf::to_canonical_vec(&root.signed).unwrap();
    std::fs::write(&root_path, root.to_bytes()).unwrap();
    let mut chain = transcript(Path::new(&hidden)).unwrap();
    chain[last_signature]["outputs_sha256"] = file_sha256(&root_path).unwrap().into();
    chain.truncate(last_signature + 1);
    write_chained(Path::new(&hidden), &mut chain).unwrap();
    refused_naming(
        &rig,
        &hidden,
        "its signed part is not the root the plan and the enrollments make",
    );

    // Bob's certificate swapped for one of another key.
    let other = rig.ok(&[
        "key",
        "generate",
        "--backend",
        "carol",
        "--role",
        "root",
        "--gun",
        GUN,
    ]);
    let other = other.stdout.lines().last().unwrap().trim().to_string();
    let cert = rig
        .ok(&["key", "cert", "issue-root", &other, "--gun", GUN])
        .stdout;
    let swapped = tampered(&rig, &bundle, "cert-swapped");
    let bob_path = Path::new(&swapped).join("enrollments/bob.json");
    let mut bob: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bob_path).unwrap()).unwrap();
    bob["certificate_pem"] = cert.into();
    bob["x509_key_id"] = PublicKey::from_certificate_pem(bob["certificate_pem"].as_str().unwrap())
        .unwrap()
        .key_id()
        .into();
    std::fs::write(&bob_path, serde_json::to_vec_pretty(&bob).unwrap()).unwrap();
    let bob_step = format!(
        "enrollment of bob (transcript seq {}, key generated)",
        seq_of("key generated", "bob")
    );
    refused_naming(
        &rig,
        &swapped,
        &format!("{bob_step}: enrollments/bob.json is not the file this step wrote"),
    );
    // Hidden by re-chaining: the certificate is not for bob's key.
    let mut chain = transcript(Path::new(&swapped)).unwrap();
    chain[seq_of("key generated", "bob")]["outputs_sha256"] =
        file_sha256(&bob_path).unwrap().into();
    write_chained(Path::new(&swapped), &mut chain).unwrap();
    refused_naming(&rig, &swapped, "bob's root certificate is for key");
}

#[test]
fn enroll_and_sign_refuse_a_network_unless_allowed_and_recorded() {
    const GUN: &str = "example.com/ceremony/air-gap";
    let rig = rig("air-gap", &[("alice", false), ("bob", false)], None);
    let targets = rig.targets_key(GUN);
    let bundle = rig.path("bundle").to_string_lossy().into_owned();
    rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &bundle,
        "--holder",
        "alice=pkcs11:token=alice",
        "--holder",
        "bob=pkcs11:token=bob",
        "--threshold",
        "1",
        "--targets-key",
        &targets,
        "--rehearsal",
    ]);
    let env = [("NOTARY_KEYD_PIN", TOKEN_PIN)];
    let enroll = ["ceremony", "enroll", &bundle, "--holder", "alice"];
    let online = notaryctl_in(&rig.ctl, Network::Up, &env, &enroll, "").unwrap();
    let err = failed(online);
    assert!(
        err.contains("refusing to enroll: this machine is not offline"),
        "{err}"
    );
    assert!(err.contains("interfaces up: ceremony0, ceremony1"), "{err}");
    assert!(err.contains("default route via ceremony0"), "{err}");
    assert_eq!(lines(&bundle), 1, "nothing recorded");
    let keys = rig.ok(&["key", "list", "--backend", "alice"]);
    assert!(
        !keys.stdout.contains("root"),
        "no key was generated: {}",
        keys.stdout
    );

    rig.enroll(&bundle, "alice", TOKEN_PIN);
    let allowed = notaryctl_in(
        &rig.ctl,
        Network::Up,
        &env,
        &[
            "ceremony",
            "enroll",
            &bundle,
            "--holder",
            "bob",
            "--allow-network",
        ],
        "",
    )
    .unwrap()
    .ok()
    .unwrap();
    allowed.assert_warns("warning: --allow-network");
    let entries = transcript(Path::new(&bundle)).unwrap();
    let checks: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "air-gap check")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks[0],
        "no network interface up except loopback, no default route"
    );
    assert!(
        checks[1].starts_with("NETWORK ALLOWED with --allow-network: interfaces up: ceremony0"),
        "{checks:?}"
    );

    let word = confirmation_word(&rig.status(&bundle).stdout).unwrap();
    let sign = ["ceremony", "sign", &bundle, "--holder", "alice"];
    let err =
        failed(notaryctl_in(&rig.ctl, Network::Up, &env, &sign, &format!("{word}\n")).unwrap());
    assert!(err.contains("refusing to sign"), "{err}");
    assert!(!Path::new(&bundle).join("root.json").exists());
}

#[test]
fn required_attestation_refuses_a_softhsm_holder_at_enroll() {
    const GUN: &str = "example.com/ceremony/attestation";
    let rig = rig("attestation", &[("alice", false)], None);
    let targets = rig.targets_key(GUN);
    let ca = rig.virtual_ca();
    let bundle = rig.path("bundle").to_string_lossy().into_owned();
    let planned = rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &bundle,
        "--holder",
        "alice=pkcs11:token=alice",
        "--threshold",
        "1",
        "--targets-key",
        &targets,
        "--require-attestation",
        "--attestation-root",
        &ca,
    ]);
    planned.assert_warns("enroll will refuse it while require_attestation is true");
    let err = failed(rig.offline(
        TOKEN_PIN,
        &["ceremony", "enroll", &bundle, "--holder", "alice"],
        "",
    ));
    assert!(err.contains("the plan requires attestation"), "{err}");
    assert!(err.contains("nothing was generated"), "{err}");
    let keys = rig.ok(&["key", "list", "--backend", "alice"]);
    assert!(!keys.stdout.contains("root"), "{}", keys.stdout);
    assert_eq!(lines(&bundle), 1);
}

#[test]
fn renewal_is_due_within_six_months_and_notaryctl_never_resigns_root() {
    const GUN: &str = "example.com/ceremony/renewal";
    let rig = rig("renewal", &[("alice", false), ("bob", false)], None);
    let bundle = softhsm_ceremony(&rig, GUN, &["alice", "bob"], 2, &["--root-days", "100"]);
    for holder in ["alice", "bob"] {
        rig.sign(&bundle, holder, TOKEN_PIN).ok().unwrap();
    }
    let status = rig.status(&bundle);
    status.assert_prints("a renewal ceremony is due");
    let published = rig.ok(&["ceremony", "publish", &bundle]);
    published.assert_warns("a renewal ceremony is due");
    let root_before = rig
        .server
        .get(&format!("/v2/{GUN}/_trust/tuf/root.json"))
        .unwrap()
        .body;

    let file = rig.write("v1.bin", CONTENT);
    rig.ok(&["add", GUN, "v1", &file]);
    let publish = rig.ok(&["publish", GUN]);
    publish.assert_warns("a renewal ceremony is due");
    publish.assert_warns("needs 2 root keys");
    let root_after = rig
        .server
        .get(&format!("/v2/{GUN}/_trust/tuf/root.json"))
        .unwrap()
        .body;
    assert_eq!(root_before, root_after, "notaryctl publish left root alone");
    let listed = rig.ok(&["list", GUN]);
    listed.assert_warns("a renewal ceremony is due");
    listed.assert_prints("v1 ");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pin_and_missed_touch_sign_nothing_and_a_rehearsal_is_never_published() {
    const SERIAL: u32 = 42_000_002;
    const GUN: &str = "example.com/ceremony/rehearsal";
    let card = TestCard::start(Profile::yubikey_5_7(SERIAL)).unwrap();
    let rig = rig("rehearsal", &[("bob", true)], Some(SERIAL));
    rig.setup_yubikey(SERIAL);
    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    let targets = rig.targets_key(GUN);

    // An attestation that does not chain to the plan's root refuses the
    // holder (the test PKI's CA did not issue the card's F9 certificate).
    let elsewhere = rig.path("elsewhere").to_string_lossy().into_owned();
    let wrong_ca = rig._pki.ca_cert.to_string_lossy().into_owned();
    let slot_9a = format!("alice=yubikey:serial={SERIAL};slot=9a");
    rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &elsewhere,
        "--holder",
        &slot_9a,
        "--threshold",
        "1",
        "--targets-key",
        &targets,
        "--attestation-root",
        &wrong_ca,
        "--rehearsal",
    ]);
    let err = failed(rig.offline(
        PIN,
        &["ceremony", "enroll", &elsewhere, "--holder", "alice"],
        "",
    ));
    assert!(err.contains("alice's attestation does not verify"), "{err}");
    assert!(
        err.contains("not issued by any of the 1 pinned attestation root(s)"),
        "{err}"
    );
    assert!(err.contains("stays on the device"), "{err}");
    assert_eq!(lines(&elsewhere), 1);

    let ca = rig.virtual_ca();
    let bundle = rig.path("bundle").to_string_lossy().into_owned();
    let alice = format!("alice=yubikey:serial={SERIAL}");
    let planned = rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &bundle,
        "--holder",
        &alice,
        "--holder",
        "bob=pkcs11:token=bob",
        "--threshold",
        "2",
        "--targets-key",
        &targets,
        "--attestation-root",
        &ca,
        "--rehearsal",
    ]);
    planned.assert_warns("one lost or broken token locks the collection");
    assert!(Path::new(&bundle).join("REHEARSAL").exists());
    rig.enroll(&bundle, "alice", PIN);
    rig.enroll(&bundle, "bob", TOKEN_PIN);
    let recorded = lines(&bundle);

    // A wrong PIN and a missed touch: distinct errors, nothing appended,
    // and the bundle still verifies. (Enrollment left bob's token logged
    // in; the holder locks it.)
    rig.ok(&["key", "lock", "--backend", "bob"]);
    let err = failed(rig.sign(&bundle, "bob", "99999999"));
    assert!(
        err.contains("wrong PIN for backend bob (tries left:"),
        "{err}"
    );
    assert!(!err.contains("touch"), "{err}");
    card.set_touch(TouchMode::Never);
    card.set_touch_timeout(Duration::from_millis(300));
    let tries = card.pin_tries_left();
    let err = failed(rig.sign(&bundle, "alice", PIN));
    assert!(err.contains("touch timed out"), "{err}");
    assert!(!err.contains("wrong PIN"), "{err}");
    assert_eq!(card.pin_tries_left(), tries);
    assert_eq!(lines(&bundle), recorded);
    assert!(!Path::new(&bundle).join("root.json").exists());
    rig.ok(&["ceremony", "verify", &bundle]);

    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    rig.sign(&bundle, "alice", PIN).ok().unwrap();
    let signed = rig.sign(&bundle, "bob", TOKEN_PIN).ok().unwrap();
    assert!(signed.stdout.starts_with("REHEARSAL"), "{}", signed.stdout);
    signed.assert_prints("2 of 2 needed (alice, bob) ✓");
    let err = failed(rig.online(&["ceremony", "publish", &bundle]));
    assert!(err.contains("REHEARSAL bundle"), "{err}");
    let res = rig
        .server
        .get(&format!("/v2/{GUN}/_trust/tuf/root.json"))
        .unwrap();
    assert_eq!(res.status, 404);
}

/// A second root certificate for the root key `bare_id` (another serial,
/// so another x509 key ID), made by the daemon.
fn second_certificate(rig: &Rig, bare_id: &str, gun: &str) -> PublicKey {
    let pem = rig
        .ok(&["key", "cert", "issue-root", bare_id, "--gun", gun])
        .stdout;
    PublicKey::from_certificate_pem(&pem).unwrap()
}

#[test]
fn a_holder_enrolled_with_another_holders_key_is_refused() {
    const GUN: &str = "example.com/ceremony/duplicate";
    let rig = rig("duplicate", &[("alice", false), ("bob", false)], None);
    // Alice enrolls honestly; bob's record is forged from alice's key
    // under a second certificate, the transcript chained around it so that
    // only the key gives it away.
    let bundle = plan_on_softhsm(&rig, GUN, &["alice", "bob"], 2, &[]);
    rig.enroll(&bundle, "alice", TOKEN_PIN);
    let dir = Path::new(&bundle);
    let alice: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("enrollments/alice.json")).unwrap())
            .unwrap();
    let twin = second_certificate(&rig, alice["key_id"].as_str().unwrap(), GUN);
    let mut bob = alice.clone();
    bob["holder"] = "bob".into();
    bob["device"]["planned"] = "pkcs11:token=bob".into();
    bob["certificate_pem"] = String::from_utf8(twin.public_bytes().to_vec())
        .unwrap()
        .into();
    bob["x509_key_id"] = twin.key_id().into();
    let bob_path = dir.join("enrollments/bob.json");
    std::fs::write(&bob_path, serde_json::to_vec_pretty(&bob).unwrap()).unwrap();
    let mut chain = transcript(dir).unwrap();
    let mut forged = chain.last().unwrap().clone();
    forged["actor"] = "bob".into();
    forged["outputs_sha256"] = file_sha256(&bob_path).unwrap().into();
    chain.push(forged);
    write_chained(dir, &mut chain).unwrap();

    for command in ["status", "publish"] {
        let err = failed(rig.online(&["ceremony", command, &bundle]));
        assert!(
            err.contains("new root: alice and bob hold the same key"),
            "{command}: {err}"
        );
        assert!(err.contains("count once"), "{command}: {err}");
    }
}

/// `notaryctl sign` as JSON: {"keyid","method","sig"}.
fn keyd_signature(
    rig: &Rig,
    key: &str,
    role: &str,
    gun: &str,
    payload: &[u8],
) -> notary_tuf::Signature {
    let file = rig.write(&format!("{role}.signed"), payload);
    let out = rig.ok(&["sign", "--key", key, "--role", role, "--gun", gun, &file]);
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// An empty targets v1 for `gun`, signed through notary-keyd by `key`,
/// written in the rig's dir: what a first upload carries beside its root.
fn signed_empty_targets(rig: &Rig, key: &str, gun: &str) -> PathBuf {
    use notary_tuf::metadata::format_expires;
    use notary_tuf::{MetadataType, Targets};
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut targets = SignedEnvelope::from_metadata(&Targets {
        kind: MetadataType::Targets,
        delegations: Default::default(),
        expires: format_expires(now + 365 * 86_400, 0),
        targets: std::collections::BTreeMap::new(),
        version: 1,
    })
    .unwrap();
    targets.signatures.push(keyd_signature(
        rig,
        key,
        "targets",
        gun,
        &targets.signed_bytes,
    ));
    PathBuf::from(rig.write("targets.json", &targets.to_bytes()))
}

fn server_key(rig: &Rig, gun: &str, role: &str) -> PublicKey {
    let res = rig
        .server
        .get(&format!("/v2/{gun}/_trust/tuf/{role}.key"))
        .unwrap();
    PublicKey::from_json(&serde_json::from_slice(&res.body).unwrap()).unwrap()
}

#[test]
fn a_root_listing_one_key_twice_is_refused_by_notaryctl_though_notary_takes_it() {
    use notary_tuf::metadata::{format_expires, RootRole};
    use notary_tuf::MetadataType;
    use std::collections::BTreeMap;
    const GUN: &str = "example.com/ceremony/one-key-twice";
    let rig = rig("one-key-twice", &[("alice", false)], None);
    let key = rig.ok(&[
        "key",
        "generate",
        "--backend",
        "alice",
        "--role",
        "root",
        "--gun",
        GUN,
    ]);
    let key = key.stdout.lines().last().unwrap().trim().to_string();
    let (first, twin) = (
        second_certificate(&rig, &key, GUN),
        second_certificate(&rig, &key, GUN),
    );
    let targets_id = rig.targets_key(GUN);
    let info = rig.ok(&["key", "info", &targets_id, "--json"]);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let targets = PublicKey::from_json(&serde_json::json!({
        "keytype": info["keytype"], "keyval": {"public": info["public"], "private": null}
    }))
    .unwrap();
    let (snapshot, timestamp) = (
        server_key(&rig, GUN, "snapshot"),
        server_key(&rig, GUN, "timestamp"),
    );
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let role = |keys: &[&PublicKey], threshold| RootRole {
        keyids: keys.iter().map(|k| k.key_id()).collect(),
        threshold,
    };
    let root = Root {
        kind: MetadataType::Root,
        consistent_snapshot: false,
        expires: format_expires(now + 3650 * 86_400, 0),
        keys: [&first, &twin, &targets, &snapshot, &timestamp]
            .into_iter()
            .map(|k| (k.key_id(), k.clone()))
            .collect(),
        roles: BTreeMap::from([
            ("root".to_string(), role(&[&first, &twin], 2)),
            ("targets".to_string(), role(&[&targets], 1)),
            ("snapshot".to_string(), role(&[&snapshot], 1)),
            ("timestamp".to_string(), role(&[&timestamp], 1)),
        ]),
        version: 1,
    };
    // One signature by the one key, listed under both certificates' IDs.
    let mut root_env = SignedEnvelope::from_metadata(&root).unwrap();
    let sig = keyd_signature(&rig, &key, "root", GUN, &root_env.signed_bytes);
    for id in [first.key_id(), twin.key_id()] {
        root_env.signatures.push(notary_tuf::Signature {
            keyid: id,
            ..sig.clone()
        });
    }
    let root_file = rig.write("root.json", &root_env.to_bytes());
    let targets_file = signed_empty_targets(&rig, &targets_id, GUN);
    let (code, body) = post_by_hand(
        &rig.server,
        GUN,
        &[("root", Path::new(&root_file)), ("targets", &targets_file)],
    )
    .unwrap();
    assert!(
        (200..300).contains(&code),
        "notary-server counts key IDs and takes it: {code} {body}"
    );
    rig.server
        .cli()
        .unwrap()
        .run(&["list", GUN])
        .unwrap()
        .ok()
        .unwrap();

    let fresh = Notaryctl::new(&rig.server.url, &rig.server.ca_cert, &rig.ctl.socket).unwrap();
    let err = failed(fresh.run(&["list", GUN]).unwrap());
    assert!(
        err.contains("root is not validly signed: 1 valid signature(s) of 2 needed"),
        "{err}"
    );
    assert!(err.contains("counts once"), "{err}");
}

#[test]
fn a_tpm_holder_is_attested_by_the_attestation_key_the_plan_pins() {
    const GUN: &str = "example.com/ceremony/tpm";
    let tpm = Swtpm::start().unwrap();
    let auth = tpm.key_auth_file("root key auth").unwrap();
    let rig = rig_with(
        "tpm",
        &[("alice", false)],
        None,
        &tpm.backend_toml("tpm", &auth),
    );
    // The host's attestation key, as recorded when it was enrolled.
    let probe = rig.ok(&[
        "key",
        "generate",
        "--backend",
        "tpm",
        "--role",
        "targets",
        "--gun",
        "example.com/probe",
    ]);
    let probe = probe.stdout.lines().last().unwrap().trim().to_string();
    let attested: serde_json::Value =
        serde_json::from_str(&rig.ok(&["key", "attest", &probe]).stdout).unwrap();
    let ak = attested["attestation_key_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let targets = rig.targets_key(GUN);

    // Another TPM's fingerprint in the plan: the key is refused.
    let elsewhere = rig.path("elsewhere").to_string_lossy().into_owned();
    let wrong = format!("tess=tpm:ak={}", "0".repeat(64));
    rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &elsewhere,
        "--holder",
        &wrong,
        "--threshold",
        "1",
        "--targets-key",
        &targets,
    ]);
    let err = failed(rig.offline(
        "",
        &["ceremony", "enroll", &elsewhere, "--holder", "tess"],
        "",
    ));
    assert!(
        err.contains(&format!("certified by the TPM attestation key {ak}")),
        "{err}"
    );
    assert!(err.contains("it is another TPM"), "{err}");

    let bundle = rig.path("bundle").to_string_lossy().into_owned();
    let tess = format!("tess=tpm:ak={ak}");
    rig.ok(&[
        "ceremony",
        "plan",
        GUN,
        "--out",
        &bundle,
        "--holder",
        &tess,
        "--holder",
        "alice=pkcs11:token=alice",
        "--threshold",
        "1",
        "--targets-key",
        &targets,
    ]);
    let enrolled = rig.enroll(&bundle, "tess", "");
    enrolled.assert_prints("attested: TPM2_Certify by the attestation key the plan names");
    rig.enroll(&bundle, "alice", TOKEN_PIN);
    rig.sign(&bundle, "tess", "").ok().unwrap();
    rig.ok(&["ceremony", "verify", &bundle]);
    rig.ok(&["ceremony", "publish", &bundle]);
    rig.stock_cli_verifies(GUN, "v1");
}

#[test]
fn a_yubikey_under_eucleak_is_refused_unless_the_plan_accepts_it() {
    const SERIAL: u32 = 42_000_054;
    const GUN: &str = "example.com/ceremony/eucleak";
    let card = TestCard::start(Profile::yubikey_5_4(SERIAL)).unwrap();
    let rig = rig("eucleak", &[], Some(SERIAL));
    rig.setup_yubikey(SERIAL);
    card.set_touch(TouchMode::After(Duration::from_millis(300)));
    let targets = rig.targets_key(GUN);
    let ca = rig.virtual_ca();
    let holder = format!("alice=yubikey:serial={SERIAL}");
    let plan = |name: &str, more: &[&str]| {
        let bundle = rig.path(name).to_string_lossy().into_owned();
        let mut args = vec![
            "ceremony",
            "plan",
            GUN,
            "--out",
            &bundle,
            "--holder",
            &holder,
            "--threshold",
            "1",
            "--targets-key",
            &targets,
            "--attestation-root",
            &ca,
        ];
        args.extend_from_slice(more);
        rig.ok(&args);
        bundle
    };

    // Firmware 5.4.3 is below EUCLEAK's fix: refused before a key is made.
    let refused = plan("refused", &[]);
    let err = failed(rig.offline(
        PIN,
        &["ceremony", "enroll", &refused, "--holder", "alice"],
        "",
    ));
    assert!(
        err.contains("firmware 5.4.3, affected by YSA-2024-03"),
        "{err}"
    );
    assert!(err.contains("--accept-advisory YSA-2024-03"), "{err}");
    assert!(err.contains("nothing was generated"), "{err}");
    assert_eq!(card.slot_key(0x9c), None);
    assert_eq!(lines(&refused), 1);

    // Accepted by the plan: enrolled, and the acceptance is on record.
    let accepted = plan("accepted", &["--accept-advisory", "YSA-2024-03"]);
    let plan_text = std::fs::read_to_string(Path::new(&accepted).join("plan.toml")).unwrap();
    assert!(
        plan_text.contains("accept_advisories = [\"YSA-2024-03\"]"),
        "{plan_text}"
    );
    let enrolled = rig.enroll(&accepted, "alice", PIN);
    enrolled.assert_prints("AFFECTED BY YSA-2024-03 (accepted by the plan)");
    let recorded = transcript(Path::new(&accepted)).unwrap();
    assert!(
        recorded.iter().any(|e| e["action"] == "key generated"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("AFFECTED BY YSA-2024-03")),
        "{recorded:?}"
    );
    rig.ok(&["ceremony", "verify", &accepted]);
}
