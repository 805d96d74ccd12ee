//! The multipart/form-data body of a publish: one part per role, field name
//! `files`, filename = role name (slashes included for delegations).

/// Content type and body for `files`, a list of (role, metadata bytes).
pub(super) fn form(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = boundary(files);
    let mut body = Vec::new();
    for (role, bytes) in files {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A boundary that occurs in no part: metadata is JSON, so a run of dashes
/// and hex never appears, but it is checked all the same.
fn boundary(files: &[(String, Vec<u8>)]) -> String {
    let mut n: u64 = 0x6e6f_7461_7279;
    loop {
        let candidate = format!("notaryctl-{n:016x}");
        let clash = files.iter().any(|(_, bytes)| {
            bytes
                .windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        });
        if !clash {
            return candidate;
        }
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_part_per_role() {
        let (ct, body) = form(&[
            ("root".into(), b"{}".to_vec()),
            ("targets/releases".into(), b"{\"a\":1}".to_vec()),
        ]);
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 2);
        assert!(text.contains("name=\"files\"; filename=\"targets/releases\"\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
