//! notary-server's error bodies (docker-distribution errcode JSON) as one
//! line: `{"errors":[{"code":"INVALID_UPDATE","message":"…","detail":…}]}`.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Body {
    errors: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: Value,
}

/// The codes of the body, if it is an errcode body.
pub(super) fn codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Body>(body)
        .map(|b| b.errors.into_iter().map(|e| e.code).collect())
        .unwrap_or_default()
}

/// `CODE: message (detail)` for each error, joined by "; "; for a body that
/// is not errcode JSON, its first line (bounded).
pub(super) fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .iter()
            .map(|e| {
                let detail = detail_text(&e.detail);
                let mut line = e.code.clone();
                if !e.message.is_empty() {
                    line.push_str(": ");
                    line.push_str(&e.message);
                }
                if !detail.is_empty() {
                    line.push_str(&format!(" ({detail})"));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => {
            let text = String::from_utf8_lossy(body);
            let first = text.lines().next().unwrap_or("").trim();
            first.chars().take(200).collect()
        }
    }
}

/// notary's details: a string, or `{"Name":"ErrBadRoot","Error":{"Msg":…}}`.
fn detail_text(detail: &Value) -> String {
    match detail {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let name = o.get("Name").and_then(Value::as_str);
            let msg = o
                .get("Error")
                .and_then(|e| e.get("Msg").or(Some(e)))
                .map(|m| match m {
                    Value::String(s) => s.clone(),
                    Value::Object(inner) if inner.is_empty() => String::new(),
                    other => other.to_string(),
                });
            match (name, msg) {
                (Some(n), Some(m)) if !m.is_empty() => format!("{n}: {m}"),
                (Some(n), _) => n.to_string(),
                _ => detail.to_string(),
            }
        }
        other => other.to_string(),
    }
    .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_update_with_detail_is_one_line() {
        let body = br#"{"errors":[{"code":"INVALID_UPDATE","message":"update submitted was invalid","detail":{"Name":"ErrBadRoot","Error":{"Msg":"root\nsignature invalid"}}}]}"#;
        assert_eq!(
            describe(body),
            "INVALID_UPDATE: update submitted was invalid (ErrBadRoot: root signature invalid)"
        );
        assert_eq!(codes(body), ["INVALID_UPDATE"]);
    }

    #[test]
    fn plain_codes_and_non_json() {
        let body = br#"{"errors":[{"code":"VERSION","message":"version specified is invalid","detail":null}]}"#;
        assert_eq!(describe(body), "VERSION: version specified is invalid");
        assert_eq!(describe(b"<html>\nbad gateway"), "<html>");
        assert!(codes(b"nope").is_empty());
    }
}
