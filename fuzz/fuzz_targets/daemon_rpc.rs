//! Every RPC of `notary.keyd.v1.Keyd` and of notary-signer's
//! `KeyManagement`/`Signer`, called in-process through the daemon's tonic
//! services with fuzzed protobuf messages, over a real software keystore
//! (see `notary_fuzz::daemon`).
//!
//! An input is a sequence of calls, each `[selector][length: u16 LE][message]`:
//! the selector's low 7 bits pick the method, its high bit the caller the
//! policy allows nothing. A key field holding one digit `"0"`..`"9"` is
//! replaced by the ID of a key made at start-up, so the fuzzer reaches keys
//! whose IDs it could never guess. The keys a run makes are deleted after
//! it, and start-up keys it deleted are made again, so every input starts
//! from the same keys.
//!
//! What must hold, besides no panic:
//! - a reply is a status, and an OK reply is exactly the method's message
//!   (a stream: its events, one outcome last);
//! - every call of a method that uses or changes a key, or a device, leaves
//!   exactly one audit record, whose `allowed` is the call's outcome; a
//!   call that reads nothing leaves none;
//! - a signature that comes back verifies with the key's public key, over
//!   the payload sent;
//! - a payload that is notary metadata whose `_type` does not fit the
//!   signing key's bound role is never signed;
//! - the caller allowed nothing gets nothing: no signature, no key made,
//!   changed or shown.

#![no_main]

use keyd_proto::keyd as pb;
use keyd_proto::signer as spb;
use libfuzzer_sys::fuzz_target;
use notary_fuzz::daemon::{Harness, KnownKey, Recipe, Side};
use notary_fuzz::grpc::Reply;
use notary_tuf::metadata::{payload_type, Role};
use notary_tuf::{PublicKey, SignatureMethod};
use prost::Message;
use std::sync::{Mutex, OnceLock};

/// Calls per input: enough for make, use, delete; few enough to keep each
/// execution cheap.
const MAX_CALLS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    Keyd,
    KeyManagement,
    Signer,
}

#[derive(Clone, Copy, Debug)]
struct Method {
    api: Api,
    name: &'static str,
    /// Uses or changes a key or a device, so it is audited.
    audited: bool,
    /// May succeed for a caller allowed nothing (it shows nothing).
    open: bool,
}

const fn m(api: Api, name: &'static str, audited: bool, open: bool) -> Method {
    Method {
        api,
        name,
        audited,
        open,
    }
}

const METHODS: [Method; 20] = [
    m(Api::Keyd, "ListBackends", false, true),
    m(Api::Keyd, "ListKeys", false, true),
    m(Api::Keyd, "GetKey", false, false),
    m(Api::Keyd, "GenerateKey", true, false),
    m(Api::Keyd, "DeleteKey", true, false),
    m(Api::Keyd, "AttachCertificate", true, false),
    m(Api::Keyd, "GetCertificate", false, false),
    m(Api::Keyd, "IssueRootCertificate", true, false),
    m(Api::Keyd, "Sign", true, false),
    m(Api::Keyd, "Unlock", true, false),
    m(Api::Keyd, "Lock", true, false),
    m(Api::Keyd, "ReleaseDevice", true, false),
    m(Api::Keyd, "YubikeyStatus", false, true),
    m(Api::Keyd, "YubikeySetup", true, false),
    m(Api::Keyd, "AttestKey", true, false),
    m(Api::KeyManagement, "CreateKey", true, false),
    m(Api::KeyManagement, "DeleteKey", true, false),
    m(Api::KeyManagement, "GetKeyInfo", true, false),
    m(Api::Signer, "Sign", true, false),
    // Last, so the seeds' selectors keep naming the methods above.
    m(Api::Keyd, "GetDaemonStatus", false, false),
];

struct State {
    runtime: tokio::runtime::Runtime,
    harness: Harness,
    known: Vec<KnownKey>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut harness = Harness::open(&runtime);
        let known = runtime.block_on(async {
            let mut known = Vec::new();
            for recipe in Recipe::start_up() {
                let id = recipe.make(&mut harness.allowed).await;
                known.push(KnownKey { id, recipe });
            }
            harness.denied.new_records().await;
            known
        });
        Mutex::new(State {
            runtime,
            harness,
            known,
        })
    })
}

/// One call of the input, its message with key fields resolved.
struct Call {
    method: Method,
    denied: bool,
    message: Vec<u8>,
    /// The message decodes as the method's request (else tonic refuses it
    /// before any handler runs).
    decodes: bool,
}

fn calls(mut data: &[u8], known: &[KnownKey]) -> Vec<Call> {
    let mut out = Vec::new();
    while out.len() < MAX_CALLS && data.len() >= 3 {
        let selector = data[0];
        let len = usize::from(u16::from_le_bytes([data[1], data[2]]));
        let rest = &data[3..];
        let (message, tail) = rest.split_at(len.min(rest.len()));
        data = tail;
        let index = usize::from(selector & 0x7f) % METHODS.len();
        let Some((message, decodes)) = resolve(index, message, known) else {
            continue;
        };
        out.push(Call {
            method: METHODS[index],
            denied: selector & 0x80 != 0,
            message,
            decodes,
        });
    }
    out
}

/// A one-digit key field names a start-up key.
fn key_field(field: &mut String, known: &[KnownKey]) {
    let digit = match field.as_bytes() {
        [d @ b'0'..=b'9'] => usize::from(d - b'0'),
        _ => return,
    };
    field.clone_from(&known[digit % known.len()].id);
}

/// The message to send, and whether it decodes; `None`: not sent (a key
/// generation too slow to be worth an execution).
fn resolve(index: usize, bytes: &[u8], known: &[KnownKey]) -> Option<(Vec<u8>, bool)> {
    fn fixed<M: Message + Default>(bytes: &[u8], fix: impl FnOnce(&mut M)) -> (Vec<u8>, bool) {
        match M::decode(bytes) {
            Ok(mut message) => {
                fix(&mut message);
                (message.encode_to_vec(), true)
            }
            Err(_) => (bytes.to_vec(), false),
        }
    }
    let key = |f: &mut String| key_field(f, known);
    let method = METHODS[index];
    let resolved = match (method.api, method.name) {
        (Api::KeyManagement, "CreateKey") => fixed::<spb::CreateKeyRequest>(bytes, |_| {}),
        (Api::KeyManagement, _) => fixed::<spb::KeyId>(bytes, |m| key(&mut m.id)),
        (Api::Signer, _) => fixed::<spb::SignatureRequest>(bytes, |m| {
            if let Some(id) = m.key_id.as_mut() {
                key(&mut id.id);
            }
        }),
        (Api::Keyd, "GetKey") => fixed::<pb::GetKeyRequest>(bytes, |m| key(&mut m.key)),
        (Api::Keyd, "GenerateKey") => match pb::GenerateKeyRequest::decode(bytes) {
            Ok(m)
                if [pb::Algorithm::Rsa3072, pb::Algorithm::Rsa4096]
                    .iter()
                    .any(|&a| a as i32 == m.algorithm) =>
            {
                return None
            }
            decoded => (bytes.to_vec(), decoded.is_ok()),
        },
        (Api::Keyd, "DeleteKey") => fixed::<pb::DeleteKeyRequest>(bytes, |m| {
            key(&mut m.key_id);
            key(&mut m.confirm_key_id);
        }),
        (Api::Keyd, "AttachCertificate") => {
            fixed::<pb::AttachCertificateRequest>(bytes, |m| key(&mut m.key_id))
        }
        (Api::Keyd, "GetCertificate") => {
            fixed::<pb::GetCertificateRequest>(bytes, |m| key(&mut m.key_id))
        }
        (Api::Keyd, "IssueRootCertificate") => {
            fixed::<pb::IssueRootCertificateRequest>(bytes, |m| key(&mut m.key_id))
        }
        (Api::Keyd, "Sign") => fixed::<pb::SignRequest>(bytes, |m| key(&mut m.key_id)),
        (Api::Keyd, "AttestKey") => fixed::<pb::AttestKeyRequest>(bytes, |m| key(&mut m.key)),
        (Api::Keyd, "ListBackends") => fixed::<pb::ListBackendsRequest>(bytes, |_| {}),
        (Api::Keyd, "GetDaemonStatus") => fixed::<pb::GetDaemonStatusRequest>(bytes, |_| {}),
        (Api::Keyd, "ListKeys") => fixed::<pb::ListKeysRequest>(bytes, |_| {}),
        (Api::Keyd, "Unlock") => fixed::<pb::UnlockRequest>(bytes, |_| {}),
        (Api::Keyd, "Lock") => fixed::<pb::LockRequest>(bytes, |_| {}),
        (Api::Keyd, "ReleaseDevice") => fixed::<pb::ReleaseDeviceRequest>(bytes, |_| {}),
        (Api::Keyd, "YubikeyStatus") => fixed::<pb::YubiKeyStatusRequest>(bytes, |_| {}),
        (Api::Keyd, "YubikeySetup") => fixed::<pb::YubiKeySetupRequest>(bytes, |_| {}),
        (api, name) => unreachable!("{api:?}.{name} has no request type"),
    };
    Some(resolved)
}

async fn send(side: &Side, call: &Call) -> Reply {
    let method = call.method;
    match method.api {
        Api::Keyd => side.keyd(method.name, &call.message).await,
        Api::KeyManagement => {
            side.signer("KeyManagement", method.name, &call.message)
                .await
        }
        Api::Signer => side.signer("Signer", method.name, &call.message).await,
    }
}

/// What a run made or destroyed, to undo after it.
#[derive(Default)]
struct Undo {
    keyd_keys: Vec<String>,
    signer_keys: Vec<String>,
    deleted_known: bool,
}

/// The key's public key and bound role, as the allowed side shows them.
async fn key_facts(side: &Side, key_id: &str) -> (PublicKey, Option<Role>) {
    let request = pb::GetKeyRequest {
        key: key_id.to_string(),
    };
    let reply = side.keyd("GetKey", &request.encode_to_vec()).await;
    assert!(
        reply.is_ok(),
        "a key that signed is not found: {}",
        reply.message
    );
    let key: pb::Key = reply.unary("GetKey");
    let keytype = key.keytype.parse().expect("GetKey names a known key type");
    let role =
        keyd_proto::convert::role_of(key.role, &key.delegation).expect("GetKey names a valid role");
    (PublicKey::new(keytype, key.public), role)
}

/// The signature verifies, and the payload fits the key's bound role.
async fn check_signature(
    side: &Side,
    key_id: &str,
    method: SignatureMethod,
    payload: &[u8],
    signature: &[u8],
    role: Option<Role>,
) {
    let (public, bound) = key_facts(side, key_id).await;
    notary_tuf::verify(&public, method, payload, signature)
        .unwrap_or_else(|e| panic!("a signature by {key_id} does not verify: {e}"));
    if let (Some(bound), Ok(kind)) = (role.or(bound), payload_type(payload)) {
        assert!(
            kind.fits_role(&bound),
            "{kind:?} metadata signed by {key_id}, a {} key",
            bound.name()
        );
    }
}

/// Checks one reply against its call; notes what to undo.
async fn check(side: &Side, call: &Call, reply: &Reply, undo: &mut Undo, known: &[KnownKey]) {
    let name = call.method.name;
    if !call.decodes {
        assert!(
            !reply.is_ok(),
            "{name}: a message that does not decode was accepted"
        );
        return;
    }
    if call.denied && !call.method.open {
        assert!(!reply.is_ok(), "{name}: served to a caller allowed nothing");
    }
    if !reply.is_ok() {
        return;
    }
    let is_known = |id: &str| known.iter().any(|k| k.id == id);
    match (call.method.api, name) {
        (Api::Keyd, "ListBackends") => {
            let _: pb::ListBackendsResponse = reply.unary(name);
        }
        (Api::Keyd, "GetDaemonStatus") => {
            let _: pb::DaemonStatus = reply.unary(name);
        }
        (Api::Keyd, "ListKeys") => {
            let keys: pb::ListKeysResponse = reply.unary(name);
            assert!(
                !call.denied || keys.keys.is_empty(),
                "ListKeys showed keys to a caller allowed nothing"
            );
        }
        (Api::Keyd, "GenerateKey") => {
            let key: pb::Key = reply.unary(name);
            undo.keyd_keys.push(key.key_id);
        }
        (Api::Keyd, "DeleteKey") => {
            let _: pb::DeleteKeyResponse = reply.unary(name);
            let request = pb::DeleteKeyRequest::decode(&call.message[..]).unwrap_or_default();
            undo.deleted_known |= is_known(&request.key_id);
        }
        (Api::Keyd, "AttachCertificate" | "GetCertificate") => {
            let _: pb::Certificate = reply.unary(name);
        }
        (Api::Keyd, "IssueRootCertificate") => {
            let events = stream::<pb::IssueRootCertificateEvent>(reply, name);
            let last = events.last().and_then(|e| e.event.as_ref());
            assert!(
                matches!(
                    last,
                    Some(pb::issue_root_certificate_event::Event::Certificate(_))
                ),
                "{name}: OK without a certificate last"
            );
        }
        (Api::Keyd, "Sign") => {
            let events = stream::<pb::SignEvent>(reply, name);
            let Some(pb::sign_event::Event::Result(result)) =
                events.last().and_then(|e| e.event.clone())
            else {
                panic!("{name}: OK without a result last");
            };
            let request = pb::SignRequest::decode(&call.message[..]).unwrap_or_default();
            let method = pb::SignatureMethod::try_from(result.method)
                .ok()
                .and_then(pb::SignatureMethod::notary)
                .expect("a signature names its method");
            let role = keyd_proto::convert::role_of(request.role, &request.delegation)
                .ok()
                .flatten();
            check_signature(
                side,
                &result.key_id,
                method,
                &request.payload,
                &result.signature,
                role,
            )
            .await;
        }
        (Api::Keyd, "Unlock") => {
            let _: pb::UnlockResponse = reply.unary(name);
        }
        (Api::Keyd, "Lock") => {
            let _: pb::LockResponse = reply.unary(name);
        }
        (Api::Keyd, "ReleaseDevice") => {
            let _: pb::ReleaseDeviceResponse = reply.unary(name);
        }
        (Api::Keyd, "YubikeyStatus") => {
            let _: pb::YubiKeyStatusResponse = reply.unary(name);
        }
        (Api::Keyd, "YubikeySetup") => {
            let _: pb::YubiKeySetupResponse = reply.unary(name);
        }
        (Api::Keyd, "GetKey") => {
            let _: pb::Key = reply.unary(name);
        }
        (Api::Keyd, "AttestKey") => {
            let _: pb::KeyAttestation = reply.unary(name);
        }
        (Api::KeyManagement, "CreateKey") => {
            let key: spb::PublicKey = reply.unary(name);
            let id = key
                .key_info
                .and_then(|i| i.key_id)
                .map(|k| k.id)
                .unwrap_or_default();
            if !is_known(&id) {
                undo.signer_keys.push(id);
            }
        }
        (Api::KeyManagement, "DeleteKey") => {
            let _: spb::Void = reply.unary(name);
            let request = spb::KeyId::decode(&call.message[..]).unwrap_or_default();
            undo.deleted_known |= is_known(&request.id);
        }
        (Api::KeyManagement, "GetKeyInfo") => {
            let _: spb::GetKeyInfoResponse = reply.unary(name);
        }
        (Api::Signer, "Sign") => {
            let signature: spb::Signature = reply.unary(name);
            let request = spb::SignatureRequest::decode(&call.message[..]).unwrap_or_default();
            let key_id = signature
                .key_info
                .and_then(|i| i.key_id)
                .map(|k| k.id)
                .expect("a signature names its key");
            let method: SignatureMethod = signature
                .algorithm
                .map(|a| a.algorithm)
                .unwrap_or_default()
                .parse()
                .expect("a signature names its method");
            // The key's binding in the signer API's own store.
            let info = spb::KeyId { id: key_id.clone() };
            let info = side
                .signer("KeyManagement", "GetKeyInfo", &info.encode_to_vec())
                .await;
            assert!(
                info.is_ok(),
                "a key that signed has no info: {}",
                info.message
            );
            let info: spb::GetKeyInfoResponse = info.unary("GetKeyInfo");
            let role = Role::parse(&info.role).expect("GetKeyInfo names a valid role");
            check_signature(
                side,
                &key_id,
                method,
                &request.content,
                &signature.content,
                Some(role),
            )
            .await;
        }
        (api, name) => unreachable!("{api:?}.{name} has no check"),
    }
}

/// A stream's events, each the method's message.
fn stream<M: Message + Default>(reply: &Reply, name: &str) -> Vec<M> {
    reply
        .frames
        .iter()
        .map(|f| {
            M::decode(f.clone())
                .unwrap_or_else(|e| panic!("{name}: an event that does not decode: {e}"))
        })
        .collect()
}

/// Deletes what the run made and makes again the start-up keys it deleted.
async fn restore(harness: &mut Harness, known: &mut [KnownKey], undo: Undo) {
    let side = &mut harness.allowed;
    for id in undo.keyd_keys {
        let request = pb::DeleteKeyRequest {
            key_id: id.clone(),
            confirm_key_id: id,
        };
        let _ = side.keyd("DeleteKey", &request.encode_to_vec()).await;
    }
    for id in undo.signer_keys {
        let _ = side
            .signer(
                "KeyManagement",
                "DeleteKey",
                &spb::KeyId { id }.encode_to_vec(),
            )
            .await;
    }
    if undo.deleted_known {
        for key in known.iter_mut() {
            let request = pb::GetKeyRequest {
                key: key.id.clone(),
            };
            if !side.keyd("GetKey", &request.encode_to_vec()).await.is_ok() {
                key.id = key.recipe.make(side).await;
            }
        }
    }
    side.new_records().await;
    harness.denied.new_records().await;
}

fuzz_target!(|data: &[u8]| {
    let mut state = state().lock().unwrap_or_else(|e| e.into_inner());
    let State {
        runtime,
        harness,
        known,
    } = &mut *state;
    let calls = calls(data, known);
    if calls.is_empty() {
        return;
    }
    runtime.block_on(async {
        let mut undo = Undo::default();
        for call in &calls {
            let side = if call.denied {
                &mut harness.denied
            } else {
                &mut harness.allowed
            };
            let reply = send(side, call).await;
            let records = side.new_records().await;
            let expected = usize::from(call.method.audited && call.decodes);
            assert_eq!(
                records.len(),
                expected,
                "{}: {} audit records for one call ({:?} {}): {records:?}",
                call.method.name,
                records.len(),
                reply.code,
                reply.message
            );
            if let Some(record) = records.first() {
                assert_eq!(
                    record.get("allowed").and_then(serde_json::Value::as_bool),
                    Some(reply.is_ok()),
                    "{}: the audit record's outcome is not the reply's ({:?} {}): {record}",
                    call.method.name,
                    reply.code,
                    reply.message
                );
            }
            check(side, call, &reply, &mut undo, known).await;
            // The checks' own calls (GetKeyInfo) are not the input's.
            side.new_records().await;
        }
        restore(harness, known, undo).await;
    });
});
