//! How keys and backends are shown: text for people, `--json` for scripts.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use keyd_proto::convert::role_name;
use keyd_proto::keyd as pb;
use serde::Serialize;
use std::io::Write;

/// A key as `--json` shows it; field names follow notary's key objects
/// (`keyid`, `keytype`, `public` in standard base64).
#[derive(Debug, Serialize)]
pub(crate) struct KeyJson<'a> {
    pub keyid: &'a str,
    pub keytype: &'a str,
    pub public: String,
    pub algorithm: &'static str,
    pub backend: &'a str,
    pub uri: &'a str,
    pub label: &'a str,
    pub role: String,
    pub gun: &'a str,
    pub x509_keyid: &'a str,
}

impl<'a> From<&'a pb::Key> for KeyJson<'a> {
    fn from(k: &'a pb::Key) -> Self {
        KeyJson {
            keyid: &k.key_id,
            keytype: &k.keytype,
            public: B64.encode(&k.public),
            algorithm: k.algorithm().word(),
            backend: &k.backend,
            uri: &k.uri,
            label: &k.label,
            role: role_name(k.role, &k.delegation),
            gun: &k.gun,
            x509_keyid: &k.x509_key_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct DeviceJson<'a> {
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub label: &'a str,
    pub serial: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct BackendJson<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub available: bool,
    pub unavailable_reason: &'a str,
    pub device: DeviceJson<'a>,
    pub algorithms: Vec<&'static str>,
    pub has_login: bool,
    pub logged_in: bool,
    pub key_count: u32,
    pub default: bool,
}

impl<'a> From<&'a pb::Backend> for BackendJson<'a> {
    fn from(b: &'a pb::Backend) -> Self {
        let device = b.device.as_ref();
        let field = |f: fn(&pb::DeviceInfo) -> &str| device.map_or("", f);
        BackendJson {
            name: &b.name,
            kind: b.r#type().word(),
            available: b.available,
            unavailable_reason: &b.unavailable_reason,
            device: DeviceJson {
                manufacturer: field(|d| &d.manufacturer),
                model: field(|d| &d.model),
                label: field(|d| &d.label),
                serial: field(|d| &d.serial),
            },
            algorithms: b.algorithms().map(pb::Algorithm::word).collect(),
            has_login: b.has_login,
            logged_in: b.logged_in,
            key_count: b.key_count,
            default: b.is_default,
        }
    }
}

/// Pretty JSON of a serialisable value.
pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

/// Empty cells show as "-" so every row splits into the same columns.
fn cell(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Left-aligned columns with a dashed rule under the header, laid out as
/// notary lays out its tables (Go's tabwriter: cells padded by 4 spaces,
/// columns at least 4 wide), so the same data gives the same bytes.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(4).padding(4);
    let mut line = |cells: &[String]| {
        // Infallible: the writer is a Vec.
        let _ = writeln!(tw, "{}", cells.join("\t"));
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(
        &header
            .iter()
            .map(|h| "-".repeat(h.len()))
            .collect::<Vec<_>>(),
    );
    for row in rows {
        line(row);
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `notaryctl key list` as text.
pub(crate) fn key_table(keys: &[pb::Key]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                cell(&role_name(k.role, &k.delegation)).to_string(),
                cell(&k.gun).to_string(),
                k.key_id.clone(),
                cell(&k.backend).to_string(),
                cell(k.algorithm().word()).to_string(),
            ]
        })
        .collect();
    table(&["ROLE", "GUN", "KEY ID", "BACKEND", "ALGORITHM"], &rows)
}

/// `notaryctl key info` as text.
pub(crate) fn key_details(k: &pb::Key) -> String {
    let role = role_name(k.role, &k.delegation);
    let fields = [
        ("Key ID", k.key_id.clone()),
        ("X509 key ID", cell(&k.x509_key_id).to_string()),
        ("Key type", k.keytype.clone()),
        ("Algorithm", k.algorithm().word().to_string()),
        ("Backend", k.backend.clone()),
        ("URI", k.uri.clone()),
        ("Label", cell(&k.label).to_string()),
        (
            "Role",
            if role.is_empty() {
                "(any)".into()
            } else {
                role
            },
        ),
        (
            "GUN",
            if k.gun.is_empty() {
                "(any)".into()
            } else {
                k.gun.clone()
            },
        ),
        ("Public key", B64.encode(&k.public)),
    ];
    fields
        .iter()
        .map(|(name, value)| format!("{:<13}{value}\n", format!("{name}:")))
        .collect()
}

fn login_state(b: &pb::Backend) -> &'static str {
    match (b.has_login, b.logged_in) {
        (false, _) => "no PIN",
        (true, true) => "logged in",
        (true, false) => "locked",
    }
}

fn device_text(d: Option<&pb::DeviceInfo>) -> String {
    let Some(d) = d else { return "-".into() };
    let parts: Vec<&str> = [
        d.manufacturer.as_str(),
        d.model.as_str(),
        d.label.as_str(),
        d.serial.as_str(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" / ")
    }
}

/// A backend's STATE cell: "available", or why it is not.
pub(crate) fn backend_state(available: bool, reason: &str) -> String {
    if available {
        "available".to_string()
    } else {
        format!("unavailable: {reason}")
    }
}

/// `notaryctl backend list` as text; STATE comes last because a reason can be long.
pub(crate) fn backend_table(backends: &[pb::Backend]) -> String {
    let rows: Vec<Vec<String>> = backends
        .iter()
        .map(|b| {
            let state = backend_state(b.available, &b.unavailable_reason);
            vec![
                b.name.clone(),
                if b.is_default { "*".into() } else { "-".into() },
                b.r#type().word().to_string(),
                b.key_count.to_string(),
                login_state(b).to_string(),
                device_text(b.device.as_ref()),
                state,
            ]
        })
        .collect();
    table(
        &[
            "NAME", "DEFAULT", "TYPE", "KEYS", "LOGIN", "DEVICE", "STATE",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sample_key() -> pb::Key {
        pb::Key {
            key_id: "ab12".into(),
            keytype: "ecdsa".into(),
            public: vec![1, 2, 3],
            algorithm: pb::Algorithm::EcdsaP256 as i32,
            backend: "hsm".into(),
            uri: "pkcs11:token=notary;id=%01".into(),
            label: "example.com/app targets".into(),
            role: pb::KeyRole::Targets as i32,
            delegation: String::new(),
            gun: "example.com/app".into(),
            x509_key_id: String::new(),
        }
    }

    #[test]
    fn key_json_shape() {
        let key = sample_key();
        let v: Value = serde_json::from_str(&json(&KeyJson::from(&key)).unwrap()).unwrap();
        let obj = v.as_object().unwrap();
        let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "algorithm",
                "backend",
                "gun",
                "keyid",
                "keytype",
                "label",
                "public",
                "role",
                "uri",
                "x509_keyid"
            ]
        );
        assert_eq!(v["keyid"], "ab12");
        assert_eq!(v["keytype"], "ecdsa");
        assert_eq!(v["public"], "AQID");
        assert_eq!(v["algorithm"], "ecdsa-p256");
        assert_eq!(v["backend"], "hsm");
        assert_eq!(v["uri"], "pkcs11:token=notary;id=%01");
        assert_eq!(v["role"], "targets");
        assert_eq!(v["gun"], "example.com/app");
        assert_eq!(v["x509_keyid"], "");

        let list: Vec<KeyJson> = vec![KeyJson::from(&key)];
        let v: Value = serde_json::from_str(&json(&list).unwrap()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["keyid"], "ab12");
    }

    #[test]
    fn backend_json_shape() {
        let b = pb::Backend {
            name: "hsm".into(),
            r#type: pb::BackendType::Pkcs11 as i32,
            available: false,
            unavailable_reason: "token absent".into(),
            device: None,
            algorithms: vec![pb::Algorithm::EcdsaP256 as i32],
            has_login: true,
            logged_in: false,
            key_count: 2,
            is_default: true,
        };
        let v: Value = serde_json::from_str(&json(&BackendJson::from(&b)).unwrap()).unwrap();
        assert_eq!(v["type"], "pkcs11");
        assert_eq!(v["available"], false);
        assert_eq!(v["unavailable_reason"], "token absent");
        assert_eq!(v["device"]["serial"], "");
        assert_eq!(v["key_count"], 2);
        assert_eq!(v["default"], true);
        let text = backend_table(&[b]);
        assert!(
            text.lines()
                .nth(2)
                .unwrap()
                .ends_with("unavailable: token absent"),
            "{text}"
        );
    }

    #[test]
    fn key_table_columns() {
        let mut unbound = sample_key();
        unbound.role = pb::KeyRole::Unspecified as i32;
        unbound.gun.clear();
        let text = key_table(&[sample_key(), unbound]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["ROLE", "GUN", "KEY", "ID", "BACKEND", "ALGORITHM"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["targets", "example.com/app", "ab12", "hsm", "ecdsa-p256"]
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["-", "-", "ab12", "hsm", "ecdsa-p256"]
        );
    }
}
