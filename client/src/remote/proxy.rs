//! The HTTP proxy notary's Go client would use: `HTTPS_PROXY` for an
//! https:// server, `HTTP_PROXY` for an http:// one (upper case first, then
//! lower case), none for a host `NO_PROXY` names, and, as in Go, none for
//! localhost and loopback addresses. notaryctl reaches the server through
//! an HTTP CONNECT tunnel, so TLS still runs end to end with the server.

use super::RemoteError;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use secrecy::{ExposeSecret, SecretString};
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How much of a proxy's answer to CONNECT notaryctl reads at most.
const MAX_HEAD: usize = 8 * 1024;

#[derive(Debug)]
pub(super) struct Proxy {
    host: String,
    port: u16,
    /// `user:password` from the proxy URL, base64 for Proxy-Authorization.
    auth: Option<SecretString>,
}

impl Proxy {
    /// The proxy for the server `host:port` (https when `tls`), with `var`
    /// looking up environment variables.
    pub(super) fn for_server(
        tls: bool,
        host: &str,
        port: u16,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, RemoteError> {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let names = if tls {
            ["HTTPS_PROXY", "https_proxy"]
        } else {
            ["HTTP_PROXY", "http_proxy"]
        };
        let Some((name, value)) = first(names) else {
            return Ok(None);
        };
        let no_proxy = first(["NO_PROXY", "no_proxy"]).map(|(_, v)| v);
        if is_loopback(host) || no_proxy.is_some_and(|list| bypasses(&list, host, port)) {
            return Ok(None);
        }
        parse(name, value.trim()).map(Some)
    }

    /// `host:port` of the proxy, for messages.
    pub(super) fn address(&self) -> String {
        authority(&self.host, self.port)
    }

    /// A TCP connection to the proxy, tunnelled on to `host:port`.
    pub(super) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let via = |why: String| format!("through the proxy {}: {why}", self.address());
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| via(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let target = authority(host, port);
        let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| via(e.to_string()))?;
        if let Some(auth) = &self.auth {
            let line = SecretString::from(format!(
                "Proxy-Authorization: Basic {}\r\n",
                auth.expose_secret()
            ));
            tcp.write_all(line.expose_secret().as_bytes())
                .await
                .map_err(|e| via(e.to_string()))?;
        }
        tcp.write_all(b"\r\n")
            .await
            .map_err(|e| via(e.to_string()))?;
        let answer = read_head(&mut tcp).await.map_err(via)?;
        let status_line = answer.lines().next().unwrap_or_default();
        match status_line.split(' ').nth(1) {
            Some(code) if code.starts_with('2') && code.len() == 3 => Ok(tcp),
            _ => Err(via(format!("it answered CONNECT with {status_line:?}"))),
        }
    }
}

/// The proxy's answer up to its blank line, read a byte at a time so that
/// nothing of the tunnel behind it is consumed.
async fn read_head(tcp: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!(
                "its answer to CONNECT is longer than {MAX_HEAD} bytes"
            ));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err("it closed the connection instead of answering CONNECT".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// `http://[user:password@]host[:port][/]`, or the same without a scheme.
fn parse(name: &'static str, value: &str) -> Result<Proxy, RemoteError> {
    let bad = |why: &str| RemoteError::BadProxy {
        var: name,
        why: why.to_string(),
    };
    let rest = match value.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "notaryctl reaches proxies over http:// only, not {scheme}://"
            )))
        }
        None => value,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (auth, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let decoded = percent_encoding::percent_decode_str(userinfo)
                .decode_utf8()
                .map_err(|_| bad("its user name or password is not UTF-8 once decoded"))?;
            (
                Some(SecretString::from(B64.encode(decoded.as_bytes()))),
                host_port,
            )
        }
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad("its port is not a number"))?,
        ),
        _ => (host_port, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    Ok(Proxy {
        host: host.to_string(),
        port,
        auth,
    })
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `NO_PROXY` (comma-separated) exempts `host:port`: `*`, the host
/// itself, a domain (`example.com` or `.example.com`, and `*.example.com`)
/// it is in, each optionally with a port.
fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = host.to_ascii_lowercase();
    list.split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.parse::<IpAddr>() {
                Ok(_) => (entry.as_str(), None),
                Err(_) => match entry.rsplit_once(':') {
                    Some((name, p)) if p.parse::<u16>().is_ok() => (name, p.parse::<u16>().ok()),
                    _ => (entry.as_str(), None),
                },
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let name = name.strip_prefix('*').unwrap_or(name);
            match name.strip_prefix('.') {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == name || host.ends_with(&format!(".{name}")),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn chosen(tls: bool, host: &str, pairs: &[(&str, &str)]) -> Option<String> {
        Proxy::for_server(tls, host, 4443, env(pairs))
            .unwrap()
            .map(|p| p.address())
    }

    #[test]
    fn the_scheme_picks_the_variable_and_upper_case_wins() {
        let vars = [
            ("HTTPS_PROXY", "http://secure.proxy:3128"),
            ("https_proxy", "http://lower.proxy:1"),
            ("http_proxy", "plain.proxy"),
        ];
        assert_eq!(
            chosen(true, "notary.example", &vars).as_deref(),
            Some("secure.proxy:3128")
        );
        assert_eq!(
            chosen(false, "notary.example", &vars).as_deref(),
            Some("plain.proxy:80")
        );
        assert_eq!(
            chosen(
                true,
                "notary.example",
                &[("https_proxy", "http://lower.proxy:1")]
            )
            .as_deref(),
            Some("lower.proxy:1")
        );
        assert_eq!(
            chosen(true, "notary.example", &[("HTTPS_PROXY", " ")]),
            None
        );
        assert_eq!(chosen(true, "notary.example", &[]), None);
    }

    #[test]
    fn no_proxy_and_loopback_go_direct() {
        fn with(no_proxy: &str) -> Vec<(&str, &str)> {
            vec![("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", no_proxy)]
        }
        for (no_proxy, host, direct) in [
            ("*", "notary.example", true),
            ("notary.example", "notary.example", true),
            ("example", "notary.example", true),
            (".example", "notary.example", true),
            (".notary.example", "notary.example", false),
            ("*.example", "notary.example", true),
            ("other.example, NOTARY.example", "notary.example", true),
            ("notary.example:4443", "notary.example", true),
            ("notary.example:443", "notary.example", false),
            ("tary.example", "notary.example", false),
            ("10.0.0.7", "10.0.0.7", true),
            ("10.0.0.7", "10.0.0.8", false),
            ("", "localhost", true),
            ("", "127.0.0.1", true),
            ("", "::1", true),
        ] {
            assert_eq!(
                chosen(true, host, &with(no_proxy)).is_none(),
                direct,
                "NO_PROXY={no_proxy:?} host {host}"
            );
        }
    }

    #[test]
    fn credentials_are_sent_but_never_shown() {
        let proxy = Proxy::for_server(
            true,
            "notary.example",
            443,
            env(&[("HTTPS_PROXY", "http://ci%40corp:s3cr%3At@p.corp:8080/")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(proxy.address(), "p.corp:8080");
        let auth = proxy.auth.as_ref().unwrap().expose_secret().to_string();
        assert_eq!(B64.decode(&auth).unwrap(), b"ci@corp:s3cr:t");
        let shown = format!("{proxy:?}");
        assert!(!shown.contains("s3cr") && !shown.contains(&auth), "{shown}");
    }

    #[test]
    fn unusable_proxies_are_named() {
        for (value, why) in [
            ("socks5://p:1080", "http:// only"),
            ("http://p:port", "port is not a number"),
            ("http://", "no host"),
        ] {
            let err = Proxy::for_server(true, "n.example", 443, env(&[("HTTPS_PROXY", value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("HTTPS_PROXY") && err.contains(why),
                "{value}: {err}"
            );
        }
    }

    /// A loopback proxy that reads one CONNECT request, hands it to the
    /// test, and answers with `answer` followed by `tunnelled`.
    async fn proxy_answering(
        answer: &'static str,
        tunnelled: &'static [u8],
    ) -> (Proxy, tokio::sync::oneshot::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let head = read_head(&mut stream).await.unwrap();
            let _ = tx.send(head);
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.write_all(tunnelled).await.unwrap();
        });
        let proxy = parse("HTTPS_PROXY", &format!("http://u:pw@127.0.0.1:{port}")).unwrap();
        (proxy, rx)
    }

    #[tokio::test]
    async fn a_tunnel_carries_the_bytes_after_the_proxy_answer() {
        let (proxy, request) = proxy_answering(
            "HTTP/1.1 200 Connection established\r\n\r\n",
            b"server hello",
        )
        .await;
        let mut tcp = proxy.tunnel("notary.example", 4443).await.unwrap();
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"server hello", "nothing of the tunnel was lost");
        let request = request.await.unwrap();
        assert!(
            request.starts_with("CONNECT notary.example:4443 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                B64.encode("u:pw")
            )),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_refused_connect_names_the_proxy_and_its_answer() {
        let (proxy, _request) =
            proxy_answering("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", b"").await;
        let err = proxy.tunnel("notary.example", 4443).await.unwrap_err();
        assert!(err.contains(&proxy.address()), "{err}");
        assert!(err.contains("407 Proxy Authentication Required"), "{err}");
    }
}
