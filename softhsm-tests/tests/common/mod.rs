//! Helpers shared by the end-to-end tests.

#![allow(dead_code)] // each test file uses a different subset

pub mod outage;

use keyd_proto::keyd as pb;
use keyd_proto::keyd::keyd_client::KeydClient;
use tonic::transport::Channel;

/// Runs the real `notaryctl` against `daemon`.
pub fn notaryctl(daemon: &softhsm_tests::Daemon, args: &[&str]) -> std::process::Output {
    std::process::Command::new(softhsm_tests::bin_path("notaryctl").unwrap())
        .arg("--keyd")
        .arg(&daemon.socket)
        .args(args)
        .env_remove("NOTARY_KEYD_SOCKET")
        .output()
        .unwrap()
}

/// A canonical Targets `signed` object, as notary would sign it.
pub fn targets_payload(version: u32) -> Vec<u8> {
    format!(
        r#"{{"_type":"Targets","delegations":{{"keys":{{}},"roles":[]}},"expires":"2029-11-25T12:00:00Z","targets":{{}},"version":{version}}}"#
    )
    .into_bytes()
}

pub fn root_payload() -> Vec<u8> {
    br#"{"_type":"Root","consistent_snapshot":false,"expires":"2036-11-25T12:00:00Z","keys":{},"roles":{},"version":1}"#.to_vec()
}

pub async fn generate(
    client: &mut KeydClient<Channel>,
    backend: &str,
    algorithm: &str,
    curve: &str,
    bits: u32,
    role: &str,
    gun: &str,
) -> pb::Key {
    client
        .generate_key(pb::GenerateKeyRequest {
            backend: backend.into(),
            algorithm: algorithm.into(),
            curve: curve.into(),
            bits,
            label: format!("e2e {algorithm}{curve}{bits}"),
            role: role.into(),
            gun: gun.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("generate {algorithm} on {backend}: {s:?}"))
        .into_inner()
}

/// Runs a Sign stream to its end: the progress events seen and the result.
pub async fn sign(
    client: &mut KeydClient<Channel>,
    key_id: &str,
    payload: Vec<u8>,
    role: &str,
    gun: &str,
    pin: &str,
) -> (
    Vec<pb::progress::Kind>,
    Result<pb::SignResult, tonic::Status>,
) {
    let request = pb::SignRequest {
        key_id: key_id.into(),
        payload,
        gun: gun.into(),
        role: role.into(),
        pin: pin.into(),
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

pub fn reason(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("keyd-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
