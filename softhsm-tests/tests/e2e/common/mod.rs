//! Helpers shared by the end-to-end tests.

pub(crate) mod outage;

use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
pub(crate) use keyd_proto::keyd::Algorithm;
pub(crate) use keyd_proto::{Failure, Reason};
use tonic::transport::Channel;

/// Every backend the daemon lists, as ListBackends answers.
pub(crate) async fn backends(client: &mut KeydClient<Channel>) -> Vec<pb::Backend> {
    client
        .list_backends(pb::ListBackendsRequest {})
        .await
        .unwrap()
        .into_inner()
        .backends
}

/// Runs the real `notaryctl` against `daemon`.
pub(crate) fn notaryctl(daemon: &softhsm_tests::Daemon, args: &[&str]) -> std::process::Output {
    let notaryctl = softhsm_tests::bin_path("notaryctl").unwrap();
    against(&mut std::process::Command::new(notaryctl), daemon, args)
}

/// Runs `command` (notaryctl, or a wrapper ending in its path) with
/// `daemon`'s socket and `args`, whatever socket the environment names.
fn against(
    command: &mut std::process::Command,
    daemon: &softhsm_tests::Daemon,
    args: &[&str],
) -> std::process::Output {
    command
        .arg("--keyd")
        .arg(&daemon.socket)
        .args(args)
        .env_remove("NOTARY_KEYD_SOCKET")
        .output()
        .unwrap()
}

/// Runs notaryctl as another uid/gid with no supplementary groups.
pub(crate) fn notaryctl_as(
    uid: u32,
    gid: u32,
    daemon: &softhsm_tests::Daemon,
    args: &[&str],
) -> std::process::Output {
    notaryctl_with_groups(uid, gid, &[], daemon, args)
}

/// Runs notaryctl as another uid/gid with exactly these supplementary groups.
pub(crate) fn notaryctl_with_groups(
    uid: u32,
    gid: u32,
    groups: &[u32],
    daemon: &softhsm_tests::Daemon,
    args: &[&str],
) -> std::process::Output {
    let groups = if groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        format!("--groups={}", list.join(","))
    };
    let mut setpriv = std::process::Command::new("setpriv");
    setpriv
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            &groups,
        ])
        .arg(softhsm_tests::bin_path("notaryctl").unwrap());
    against(&mut setpriv, daemon, args)
}

/// A canonical Targets `signed` object, as notary would sign it.
pub(crate) fn targets_payload(version: u32) -> Vec<u8> {
    format!(
        r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"2029-11-25T12:00:00Z","targets":{{}},"version":{version}}}"#
    )
    .into_bytes()
}

pub(crate) fn root_payload() -> Vec<u8> {
    br#"{"_type":"Root","consistent_snapshot":false,"expires":"2036-11-25T12:00:00Z","keys":{},"roles":{},"version":1}"#.to_vec()
}

/// The API's algorithm for the CLI's words (curve and bits default as the
/// daemon does).
pub(crate) fn algorithm(algorithm: &str, curve: &str, bits: u32) -> pb::Algorithm {
    match (algorithm, curve, bits) {
        ("ecdsa", "" | "p256", _) => pb::Algorithm::EcdsaP256,
        ("ecdsa", "p384", _) => pb::Algorithm::EcdsaP384,
        ("ed25519", ..) => pb::Algorithm::Ed25519,
        ("rsa", _, 2048) => pb::Algorithm::Rsa2048,
        ("rsa", _, 0 | 3072) => pb::Algorithm::Rsa3072,
        ("rsa", _, 4096) => pb::Algorithm::Rsa4096,
        other => panic!("no algorithm {other:?}"),
    }
}

/// A role name as the API's fields; "" is no role. A name that is not a
/// role goes out as a delegation name, for the daemon to refuse.
pub(crate) fn role(name: &str) -> (i32, String) {
    match notary_tuf::metadata::Role::parse(name) {
        _ if name.is_empty() => keyd_proto::convert::role_fields(None),
        Ok(role) => keyd_proto::convert::role_fields(Some(&role)),
        Err(_) => (pb::KeyRole::Delegation as i32, name.to_string()),
    }
}

/// What `generate` asks the daemon for: a P-256 key on `backend` without
/// role or GUN unless the methods say otherwise.
pub(crate) struct NewKey<'a> {
    backend: &'a str,
    algorithm: Algorithm,
    role: &'a str,
    gun: &'a str,
}

impl<'a> NewKey<'a> {
    pub(crate) fn on(backend: &'a str) -> NewKey<'a> {
        NewKey {
            backend,
            algorithm: Algorithm::EcdsaP256,
            role: "",
            gun: "",
        }
    }

    /// A targets key of `gun`.
    pub(crate) fn targets(self, gun: &'a str) -> NewKey<'a> {
        self.role("targets").gun(gun)
    }

    pub(crate) fn algorithm(self, algorithm: Algorithm) -> NewKey<'a> {
        NewKey { algorithm, ..self }
    }

    /// A role name (a delegation's name goes out as one).
    pub(crate) fn role(self, role: &'a str) -> NewKey<'a> {
        NewKey { role, ..self }
    }

    pub(crate) fn gun(self, gun: &'a str) -> NewKey<'a> {
        NewKey { gun, ..self }
    }
}

pub(crate) async fn generate(client: &mut KeydClient<Channel>, key: NewKey<'_>) -> pb::Key {
    let (role, delegation) = self::role(key.role);
    let name = key.algorithm.as_str_name();
    client
        .generate_key(pb::GenerateKeyRequest {
            backend: key.backend.into(),
            algorithm: key.algorithm as i32,
            label: format!("e2e {name}"),
            role,
            delegation,
            gun: key.gun.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("generate {name} on {}: {s:?}", key.backend))
        .into_inner()
}

/// What a `sign` request says besides the key and payload: by default no
/// role, no GUN and no PIN.
#[derive(Default)]
pub(crate) struct SignAs<'a> {
    role: &'a str,
    gun: &'a str,
    pin: &'a str,
}

impl<'a> SignAs<'a> {
    /// The role the payload is for.
    pub(crate) fn role(self, role: &'a str) -> SignAs<'a> {
        SignAs { role, ..self }
    }

    pub(crate) fn gun(self, gun: &'a str) -> SignAs<'a> {
        SignAs { gun, ..self }
    }

    /// Targets metadata of `gun`.
    pub(crate) fn targets(self, gun: &'a str) -> SignAs<'a> {
        self.role("targets").gun(gun)
    }

    pub(crate) fn pin(self, pin: &'a str) -> SignAs<'a> {
        SignAs { pin, ..self }
    }
}

/// Signs `payload` with no role, GUN or PIN in the request; see `sign_as`.
pub(crate) async fn sign(
    client: &mut KeydClient<Channel>,
    key_id: &str,
    payload: Vec<u8>,
) -> (
    Vec<pb::progress::Kind>,
    Result<pb::SignResult, tonic::Status>,
) {
    sign_as(client, key_id, payload, SignAs::default()).await
}

/// Runs a Sign stream to its end: the progress events seen and the result.
pub(crate) async fn sign_as(
    client: &mut KeydClient<Channel>,
    key_id: &str,
    payload: Vec<u8>,
    how: SignAs<'_>,
) -> (
    Vec<pb::progress::Kind>,
    Result<pb::SignResult, tonic::Status>,
) {
    let (role, delegation) = self::role(how.role);
    let request = pb::SignRequest {
        key_id: key_id.into(),
        payload,
        gun: how.gun.into(),
        role,
        delegation,
        pin: how.pin.into(),
    };
    let mut stream = match client.sign(request).await {
        Ok(s) => s.into_inner(),
        Err(st) => return (Vec::new(), Err(st)),
    };
    let mut events = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(pb::SignEvent {
                event: Some(pb::sign_event::Event::Progress(p)),
            })) => {
                if let Some(k) = p.kind {
                    events.push(k);
                }
            }
            Ok(Some(pb::SignEvent {
                event: Some(pb::sign_event::Event::Result(r)),
            })) => return (events, Ok(r)),
            Ok(Some(_)) => {}
            Ok(None) => {
                return (
                    events,
                    Err(tonic::Status::internal("stream ended without a result")),
                )
            }
            Err(st) => return (events, Err(st)),
        }
    }
}

/// A signature's method as notary (and openssl_verify) writes it.
pub(crate) fn method_of(result: &pb::SignResult) -> &'static str {
    result
        .method()
        .notary()
        .expect("a signature method")
        .as_str()
}

/// The daemon's reason for a failed request.
pub(crate) fn reason(status: &tonic::Status) -> Option<Reason> {
    Reason::of(status)
}

/// PIN (or auth value) tries left that a failed request reports.
pub(crate) fn tries_left(status: &tonic::Status) -> Option<u32> {
    Failure::of(status).and_then(|f| f.tries_left)
}
