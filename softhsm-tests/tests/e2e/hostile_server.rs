//! notaryctl against a hostile notary server: a real HTTPS process on
//! loopback serving metadata signed by keys the attacker (this test) holds.
//! For each attack: notaryctl exits non-zero naming the problem, the cached
//! metadata stays byte for byte, no file appears anywhere in its temp dir,
//! and a later `list` of the honest state works. The stock notary CLI is
//! run against the same server where it finishes, and what it does is
//! asserted (docs/security-model.md lists where notaryctl is stricter).

use notary_tuf::{KeyType, PublicKey};
use softhsm_tests::hostile::{expires_in, tree, Files, HostileServer, Key, Repo};
use softhsm_tests::notary_stack::{openssl, p256_key, CliOutput, NotaryCli, Pki};
use softhsm_tests::notaryctl_cli::Notaryctl;
use std::path::Path;

const GUN: &str = "hostile.example.com/app";

/// A hostile server serving an honest-looking collection, notaryctl and
/// the stock CLI pointed at it.
struct Scene {
    pki: Pki,
    server: HostileServer,
    repo: Repo,
    ctl: Notaryctl,
}

impl Scene {
    /// `root_key` makes the root key (from the scene's PKI, if it likes).
    fn new(name: &str, gun: &str, root_key: impl FnOnce(&Pki) -> Key) -> Scene {
        let pki = Pki::new(name).unwrap();
        let server =
            HostileServer::start(&pki.issue("hostile-notary", "serverAuth").unwrap()).unwrap();
        let repo = Repo::new(gun, root_key(&pki), 10);
        server.serve(&repo.files().unwrap()).unwrap();
        let ctl = notaryctl(&server, &pki);
        Scene {
            pki,
            server,
            repo,
            ctl,
        }
    }

    fn honest(name: &str) -> Scene {
        Scene::new(name, GUN, |_| Key::root(GUN, 1).unwrap())
    }

    fn stock(&self) -> NotaryCli {
        NotaryCli::new(&self.server.url, &self.pki.ca_cert).unwrap()
    }

    /// Serves the honest state (`self.repo`) again.
    fn serve_honest(&self) {
        self.server.serve(&self.repo.files().unwrap()).unwrap();
    }

    /// Serves `files`, runs `list` and checks the refusal and that nothing
    /// under notaryctl's temp dir changed.
    fn refused(&self, files: &Files, flags: &[&str], needle: &str) -> CliOutput {
        let before = tree(self.ctl.work_dir()).unwrap();
        self.server.serve(files).unwrap();
        let out = self.ctl.run_with(flags, &["list", &files.gun]).unwrap();
        assert!(
            !out.status.success(),
            "notaryctl accepted the attack: {}",
            out.stdout
        );
        assert!(
            out.stderr.contains(needle),
            "{needle:?} not in: {}",
            out.stderr
        );
        assert_eq!(
            tree(self.ctl.work_dir()).unwrap(),
            before,
            "a refused update changed files under {}",
            self.ctl.work_dir().display()
        );
        out
    }

    /// The stock CLI's `list` while the server serves `files`.
    fn stock_against(&self, stock: &NotaryCli, files: &Files) -> CliOutput {
        self.server.serve(files).unwrap();
        stock_list(stock, &files.gun)
    }

    /// `list` of the honest state works (again).
    fn lists_honest(&self, flags: &[&str]) {
        self.serve_honest();
        let out = self
            .ctl
            .run_with(flags, &["list", &self.repo.gun])
            .unwrap()
            .ok()
            .unwrap();
        out.assert_prints("v1 ");
    }
}

fn notaryctl(server: &HostileServer, pki: &Pki) -> Notaryctl {
    // `list` never talks to notary-keyd.
    Notaryctl::new(
        &server.url,
        &pki.ca_cert,
        Path::new("/nonexistent/keyd.sock"),
    )
    .unwrap()
}

fn stock_list(cli: &NotaryCli, gun: &str) -> CliOutput {
    cli.run(&["list", gun]).unwrap()
}

#[test]
fn delegation_names_that_climb_out_of_the_trust_dir() {
    let scene = Scene::honest("climb");
    // targets → targets/.. → targets/../.. → … → targets/../../../../../../.notary/config:
    // cached as <trust>/tuf/<gun>/metadata/<name>.json, the last one would be
    // $HOME/.notary/config.json, notaryctl's default client config.
    let mut evil = scene.repo.clone();
    evil.republish();
    let key = Key::ecdsa(77);
    let mut parent = "targets".to_string();
    for segment in ["..", "..", "..", "..", "..", "..", ".notary", "config"] {
        let name = format!("{parent}/{segment}");
        evil.delegate(&parent, &name, &key);
        parent = name;
    }
    let files = evil.files().unwrap();

    // First use: nothing may be written anywhere.
    let fresh = notaryctl(&scene.server, &scene.pki);
    std::fs::create_dir_all(fresh.work_dir()).unwrap();
    let before = tree(fresh.work_dir()).unwrap();
    scene.server.serve(&files).unwrap();
    let out = fresh.run(&["list", GUN]).unwrap();
    assert!(!out.status.success(), "{}", out.stdout);
    out.assert_warns("invalid delegation \"targets/..\"");
    assert_eq!(tree(fresh.work_dir()).unwrap(), before);

    // A collection trusted before: its cache stays as it was.
    scene.lists_honest(&[]);
    scene.refused(&files, &[], "invalid delegation \"targets/..\"");
    scene.lists_honest(&[]);

    // The stock CLI refuses the file too (its name check has no '.').
    let stock = scene.stock();
    let out = scene.stock_against(&stock, &files);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(!stock.trust_dir.join("../.notary").exists());
}

#[test]
fn rollback_of_timestamp_snapshot_and_targets() {
    let mut scene = Scene::honest("rollback");
    scene.repo.republish();
    scene.repo.republish();
    scene.lists_honest(&[]); // timestamp, snapshot and targets at version 3
    let stock = scene.stock();
    stock_list(&stock, GUN).ok().unwrap();

    let mut old_ts = scene.repo.clone();
    old_ts.timestamp.version = 2;
    let mut old_snap = scene.repo.clone();
    old_snap.timestamp.version = 4;
    old_snap.snapshot.version = 2;
    let mut old_targets = scene.repo.clone();
    old_targets.timestamp.version = 4;
    old_targets.snapshot.version = 4;
    old_targets.targets().metadata.version = 2;
    for (repo, role) in [
        (old_ts, "timestamp"),
        (old_snap, "snapshot"),
        (old_targets, "targets"),
    ] {
        let files = repo.files().unwrap();
        scene.refused(
            &files,
            &[],
            &format!("{role} version 2 is older than the trusted version 3 (rollback refused)"),
        );
        scene.lists_honest(&[]);
        let out = scene.stock_against(&stock, &files);
        assert!(
            !out.status.success(),
            "stock notary took the {role} rollback"
        );
    }
}

#[test]
fn an_expired_timestamp_freezes_nothing() {
    let scene = Scene::honest("freeze");
    scene.lists_honest(&[]);
    let stock = scene.stock();
    stock_list(&stock, GUN).ok().unwrap();
    let mut frozen = scene.repo.clone();
    frozen.timestamp.version += 1;
    frozen.timestamp.expires = expires_in(-1);
    let files = frozen.files().unwrap();
    scene.refused(&files, &[], "timestamp expired at");
    scene.lists_honest(&[]);
    assert!(!scene.stock_against(&stock, &files).status.success());
}

#[test]
fn mix_and_match_of_files_their_parents_do_not_describe() {
    let mut scene = Scene::honest("mix");
    let older = scene.repo.files().unwrap();
    scene.repo.republish();
    scene.lists_honest(&[]);
    let current = scene.repo.files().unwrap();

    // The snapshot the timestamp names, swapped for an older, validly
    // signed one; the same for targets under the snapshot. (A stock CLI
    // that cached the current files never downloads them again, so a
    // fresh one is asked.)
    for (role, parent) in [("snapshot", "timestamp"), ("targets", "snapshot")] {
        let mut files = current.clone();
        let name = current.hashed(role).to_string();
        files.set(&name, older.bytes(&format!("{role}.json")).to_vec());
        scene.refused(
            &files,
            &[],
            &format!("{role} does not match what {parent} says about it"),
        );
        scene.lists_honest(&[]);
        let out = scene.stock_against(&scene.stock(), &files);
        assert!(!out.status.success(), "stock took {role}: {}", out.stdout);
    }

    // The same root, in other bytes than the snapshot describes.
    let mut files = current.clone();
    let respaced = String::from_utf8(current.bytes("root.json").to_vec())
        .unwrap()
        .replacen("{\"signed\":", "{ \"signed\":", 1);
    files.set("root.json", respaced.into_bytes());
    scene.refused(
        &files,
        &[],
        "root does not match what snapshot says about it",
    );
    scene.lists_honest(&[]);
    // The stock CLI retries with the root the snapshot names by hash
    // (root.<sha256>.json, served honestly here), so it ends up right.
    scene.stock_against(&scene.stock(), &files).ok().unwrap();
    assert!(scene.server.requests().contains(current.hashed("root")));
}

#[test]
fn endless_answers_are_cut_at_their_signed_length_or_the_cap() {
    let scene = Scene::honest("endless");
    scene.lists_honest(&[]);
    let mut repo = scene.repo.clone();
    repo.republish();
    let honest = repo.files().unwrap();

    let mut files = honest.clone();
    let snapshot = honest.hashed("snapshot").to_string();
    files.behave(&snapshot, "endless");
    let signed_length = honest.bytes(&snapshot).len();
    scene.refused(
        &files,
        &[],
        &format!("answer to GET {snapshot} is longer than {signed_length} bytes"),
    );
    // The server saw the client stop reading early: an endless answer ends
    // only when the client goes away.
    let line = scene
        .server
        .answer_to(&snapshot, std::time::Duration::from_secs(20))
        .unwrap();
    let sent: u64 = line.split(' ').nth(3).unwrap().parse().unwrap();
    assert!(line.ends_with("aborted") && sent < 64 << 20, "{line}");

    let mut files = honest.clone();
    files.behave("timestamp.json", "endless");
    scene.refused(
        &files,
        &[],
        "answer to GET timestamp.json is longer than 1048576 bytes",
    );
    scene.lists_honest(&[]);

    // The stock CLI reads a snapshot only up to its signed length, so it
    // takes the snapshot and never notices the rest.
    let stock = scene.stock();
    scene.serve_honest();
    stock_list(&stock, GUN).ok().unwrap();
    let mut files = honest.clone();
    files.behave(&snapshot, "endless");
    scene.stock_against(&stock, &files).ok().unwrap();
}

#[test]
fn slow_retrieval_ends_at_the_request_deadline() {
    let scene = Scene::honest("slow");
    let config = scene.ctl.work_dir().join("config.json");
    std::fs::write(
        &config,
        r#"{"remote_server":{"read_timeout":30,"request_timeout":2}}"#,
    )
    .unwrap();
    let flags = ["-c", config.to_str().unwrap()];
    scene.lists_honest(&flags);
    let mut repo = scene.repo.clone();
    repo.republish();
    let mut files = repo.files().unwrap();
    // One byte a second: never silent for long, never done.
    files.behave("timestamp.json", "slow 1000");
    scene.refused(
        &files,
        &flags,
        "is too slow: one request took longer than 2s",
    );
    scene.lists_honest(&flags);
}

#[test]
fn a_signature_by_a_key_the_root_does_not_list() {
    let scene = Scene::honest("unknown-key");
    scene.lists_honest(&[]);
    let stock = scene.stock();
    stock_list(&stock, GUN).ok().unwrap();
    let mut forged = scene.repo.clone();
    forged.timestamp.version += 1;
    forged.timestamp.signers = vec![Key::ecdsa(99)];
    let files = forged.files().unwrap();
    scene.refused(
        &files,
        &[],
        "timestamp is not validly signed: 0 valid signature(s) of 1 needed",
    );
    scene.lists_honest(&[]);
    assert!(!scene.stock_against(&stock, &files).status.success());
}

#[test]
fn a_threshold_met_by_one_key_listed_twice() {
    let scene = Scene::honest("twice");
    scene.lists_honest(&[]);
    // Root v2, properly signed, asks two targets signatures, and lists one
    // key twice: bare and as a certificate. One signature, under both IDs.
    let mut attack = scene.repo.clone();
    let root_key = attack.root_signers[0].clone();
    attack.next_root(vec![root_key]).unwrap();
    let k = Key::ecdsa(55);
    let k_cert = k.certified("targets key", 5).unwrap();
    attack.set_root_role("targets", &[&k, &k_cert], 2);
    attack.targets().signers = vec![k.clone(), k_cert.clone()];
    attack.republish();
    let files = attack.files().unwrap();
    scene.refused(
        &files,
        &[],
        "targets is not validly signed: 1 valid signature(s) of 2 needed",
    );
    let out = scene.refused(&files, &[], "are the same key, which counts once");
    assert!(out.stderr.contains(&k.id()) && out.stderr.contains(&k_cert.id()));
    scene.lists_honest(&[]);

    // The stock CLI counts key IDs, so one key meets the threshold of 2.
    let stock = scene.stock();
    scene.stock_against(&stock, &files).ok().unwrap();

    // A first root whose root role is two certificates of one key,
    // threshold 2: refused on first use, nothing written.
    let key = Key::root(GUN, 1).unwrap();
    let twin = Key::root(GUN, 1).unwrap().certified(GUN, 9).unwrap();
    assert_ne!(key.id(), twin.id());
    let mut dup = Repo::new(GUN, key.clone(), 10);
    dup.set_root_role("root", &[&key, &twin], 2);
    dup.root_signers = vec![key, twin];
    let fresh = notaryctl(&scene.server, &scene.pki);
    std::fs::create_dir_all(fresh.work_dir()).unwrap();
    scene.server.serve(&dup.files().unwrap()).unwrap();
    let out = fresh.run(&["list", GUN]).unwrap();
    assert!(!out.status.success(), "{}", out.stdout);
    out.assert_warns("counts once");
    assert!(!fresh.trust_dir.exists());
    // The stock CLI: two certificates are two keys to it.
    let stock = scene.stock();
    stock_list(&stock, GUN).ok().unwrap();
}

#[test]
fn a_tls_certificate_from_another_ca() {
    let scene = Scene::honest("tls");
    scene.lists_honest(&[]);
    let other = Pki::new("other").unwrap();
    let impostor =
        HostileServer::start(&other.issue("hostile-notary", "serverAuth").unwrap()).unwrap();
    impostor.serve(&scene.repo.files().unwrap()).unwrap();
    let mut ctl = notaryctl(&impostor, &scene.pki);
    ctl.trust_dir = scene.ctl.trust_dir.clone();
    let before = tree(scene.ctl.work_dir()).unwrap();
    let out = ctl.run(&["list", GUN]).unwrap();
    assert!(!out.status.success());
    out.assert_warns("TLS handshake with the notary server");
    out.assert_warns("UnknownIssuer");
    assert_eq!(tree(scene.ctl.work_dir()).unwrap(), before);
    scene.lists_honest(&[]);
    let stock = NotaryCli::new(&impostor.url, &scene.pki.ca_cert).unwrap();
    let out = stock_list(&stock, GUN);
    assert!(
        !out.status.success() && out.stderr.contains("unknown authority"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_fast_forwarded_timestamp_is_undone_by_a_key_rotation() {
    let scene = Scene::honest("fast-forward");
    scene.lists_honest(&[]);
    let stock = scene.stock();
    stock_list(&stock, GUN).ok().unwrap();
    // A leaked timestamp key signs a far-future version; clients take it.
    let mut leaked = scene.repo.clone();
    leaked.timestamp.version = 1 << 40;
    let files = leaked.files().unwrap();
    scene.server.serve(&files).unwrap();
    scene.ctl.run(&["list", GUN]).unwrap().ok().unwrap();
    stock_list(&stock, GUN).ok().unwrap();
    // Until the key is rotated, the honest timestamp is a rollback.
    let mut honest = scene.repo.clone();
    honest.republish();
    scene.refused(&honest.files().unwrap(), &[], "rollback refused");

    // The owners rotate the timestamp key in root v2.
    let root_key = honest.root_signers[0].clone();
    honest.next_root(vec![root_key]).unwrap();
    let fresh_key = Key::ecdsa(66);
    honest.set_root_role("timestamp", &[&fresh_key], 1);
    honest.timestamp.signers = vec![fresh_key];
    let files = honest.files().unwrap();
    scene.server.serve(&files).unwrap();
    let out = scene.ctl.run(&["list", GUN]).unwrap().ok().unwrap();
    out.assert_warns("rollback floors start over");
    // The next update holds the new floor.
    scene.ctl.run(&["list", GUN]).unwrap().ok().unwrap();
    // The stock CLI keeps the leaked version as its floor for good.
    let out = stock_list(&stock, GUN);
    assert!(!out.status.success(), "{}", out.stdout);
}

#[test]
fn a_damaged_cache_is_an_error_not_a_lost_floor() {
    let scene = Scene::honest("damaged");
    scene.lists_honest(&[]);
    let cached = scene
        .ctl
        .trust_dir
        .join("tuf")
        .join(GUN)
        .join("metadata/timestamp.json");
    let good = std::fs::read(&cached).unwrap();
    std::fs::write(&cached, &good[..good.len() / 2]).unwrap();
    scene.refused(
        &scene.repo.files().unwrap(),
        &[],
        "the cached timestamp of hostile.example.com/app is damaged",
    );
}

/// GUN of the CA-pinned tests: `Pki::issue` takes no '/' in a CN.
const PINNED_GUN: &str = "pinned.example.com";

/// A client config pinning `ca` for the `pinned.` prefix, in `dir`.
fn pin_ca(dir: &Path, ca: &Path) -> String {
    let path = dir.join("pinned.json");
    let config = serde_json::json!({"trust_pinning": {"ca": {"pinned.": ca}}});
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// The stock CLI with the same CA pin.
fn stock_pinned(scene: &Scene) -> NotaryCli {
    let stock = scene.stock();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stock.config).unwrap()).unwrap();
    config["trust_pinning"] = serde_json::json!({"ca": {"pinned.": scene.pki.ca_cert}});
    std::fs::write(&stock.config, serde_json::to_vec(&config).unwrap()).unwrap();
    stock
}

/// A root certificate from the scene's CA. Go's default key usage check in
/// notary's CA pinning wants serverAuth; codeSigning alone is refused there.
fn ca_issued_root(pki: &Pki) -> Key {
    let leaf = pki.issue(PINNED_GUN, "serverAuth,codeSigning").unwrap();
    Key::from_files(&leaf.cert, &leaf.key).unwrap()
}

#[test]
fn a_rotation_to_an_unpinned_certificate() {
    let scene = Scene::new("unpinned", PINNED_GUN, ca_issued_root);
    let config = pin_ca(scene.ctl.work_dir(), &scene.pki.ca_cert);
    let flags = ["-c", config.as_str()];
    scene.lists_honest(&flags);
    let stock = stock_pinned(&scene);
    stock_list(&stock, PINNED_GUN).ok().unwrap();

    // Root v2 is signed by the trusted root key and moves to a
    // self-signed certificate the pinned CA never issued.
    let mut attack = scene.repo.clone();
    let old = attack.root_signers[0].clone();
    let own = Key::root(PINNED_GUN, 42).unwrap();
    attack.next_root(vec![old, own.clone()]).unwrap();
    attack.set_root_role("root", &[&own], 1);
    attack.republish();
    let files = attack.files().unwrap();
    scene.refused(
        &files,
        &flags,
        "root of pinned.example.com does not match the trust pinning",
    );
    scene.lists_honest(&flags);

    // Stock notary checks pinning on the first root only and follows.
    scene.stock_against(&stock, &files).ok().unwrap();
}

#[test]
fn a_root_forged_under_an_end_entity_certificate() {
    // Team B holds a certificate and key from the pinned CA (CA:FALSE) and
    // uses them to issue a root certificate for another team's GUN.
    let scene = Scene::new("forged", PINNED_GUN, |pki| {
        let cert = pki
            .issue("team-b.example.com", "serverAuth,codeSigning")
            .unwrap();
        let dir = cert.cert.parent().unwrap().to_path_buf();
        p256_key("forged.key", &dir).unwrap();
        std::fs::write(
            dir.join("forged.ext"),
            "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,codeSigning\n",
        )
        .unwrap();
        let cn = format!("/CN={PINNED_GUN}");
        openssl(
            &[
                "req",
                "-new",
                "-key",
                "forged.key",
                "-subj",
                &cn,
                "-out",
                "forged.csr",
            ],
            &dir,
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "forged.csr",
                "-CA",
                cert.cert.to_str().unwrap(),
                "-CAkey",
                cert.key.to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                "forged.ext",
                "-out",
                "forged.crt",
            ],
            &dir,
        )
        .unwrap();
        let forged = Key::from_files(&dir.join("forged.crt"), &dir.join("forged.key")).unwrap();
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(dir.join("forged.crt")).unwrap(),
            std::fs::read_to_string(&cert.cert).unwrap()
        );
        forged.listed_as(PublicKey::new(KeyType::EcdsaX509, chain.into_bytes()))
    });
    let config = pin_ca(scene.ctl.work_dir(), &scene.pki.ca_cert);
    let before = tree(scene.ctl.work_dir()).unwrap();
    let out = scene
        .ctl
        .run_with(&["-c", &config], &["list", PINNED_GUN])
        .unwrap();
    assert!(!out.status.success(), "{}", out.stdout);
    out.assert_warns("no valid root certificate");
    out.assert_warns("more than one leaf");
    assert_eq!(tree(scene.ctl.work_dir()).unwrap(), before);
    // notary keeps only bundles with exactly one leaf, so it refuses too.
    let out = stock_list(&stock_pinned(&scene), PINNED_GUN);
    assert!(!out.status.success(), "{}", out.stdout);
}
