//! notary-server's HTTP API for one GUN: metadata downloads, publishing,
//! server-held keys, deletion. Every failure is one readable line.

mod errcode;
mod http;
mod multipart;
mod proxy;

pub(crate) use http::{Timeouts, TlsFiles};

use http::Http;
use hyper::{Method, StatusCode};
use notary_tuf::PublicKey;

/// notary's cap for timestamp.json, and for a root of unknown size.
pub(crate) const TIMESTAMP_LIMIT: usize = 1 << 20;
pub(crate) const ROOT_LIMIT: usize = 100 << 20;
/// The most a signed length may make notaryctl download (notary has no cap).
pub(crate) const SIGNED_LENGTH_LIMIT: usize = 100 << 20;
/// Answers that carry no metadata (keys, errors) are small.
const SMALL_LIMIT: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("notary server URL {0:?} is invalid: {1}")]
    BadUrl(String, String),
    #[error("TLS setup for the notary server: {0}")]
    TlsConfig(String),
    #[error("the proxy in ${var} is unusable: {why} (fix it, or exempt the server in $NO_PROXY)")]
    BadProxy { var: &'static str, why: String },
    #[error(
        "cannot reach the notary server at {url}: {cause} (check -s/--server or \
         remote_server.url, and that the server is running)"
    )]
    Unreachable { url: String, cause: String },
    #[error("TLS handshake with the notary server at {url} failed: {cause}")]
    Tls { url: String, cause: String },
    #[error(
        "the connection to the notary server at {url} broke during {what} ({cause}); whether \
         the server finished it is unknown: run the command again once the server is back"
    )]
    Broken {
        url: String,
        what: String,
        cause: String,
    },
    #[error(
        "the notary server at {url} answered {what} with something that is not HTTP ({cause})"
    )]
    NotHttp {
        url: String,
        what: String,
        cause: String,
    },
    #[error("unexpected HTTP exchange with the notary server: {0}")]
    Protocol(String),
    #[error(
        "the notary server's answer to {what} is longer than {limit} bytes (its signed \
         length, or notaryctl's cap); stopped reading and refused"
    )]
    TooLarge { what: String, limit: usize },
    #[error(
        "the notary server at {url} is too slow: {why}; gave up (if it is merely slow, raise \
         remote_server.read_timeout or request_timeout in the client config)"
    )]
    TooSlow { url: String, why: String },
    #[error("notary server: {what} failed with HTTP {status}: {text}")]
    Server {
        what: String,
        status: u16,
        text: String,
        codes: Vec<String>,
    },
}

impl RemoteError {
    /// True for failures to talk to the server at all (as opposed to a
    /// refusal): reads may fall back to the verified cache then.
    pub(crate) fn is_offline(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::Broken { .. }
                | RemoteError::NotHttp { .. }
        )
    }
}

pub(crate) struct Remote {
    http: Http,
    gun: String,
}

impl Remote {
    /// `trace` prints each request and its status on stderr (`-D`).
    pub(crate) fn new(
        url: &str,
        tls: &TlsFiles,
        timeouts: Timeouts,
        gun: &str,
        trace: bool,
    ) -> Result<Remote, RemoteError> {
        Ok(Remote {
            http: Http::new(url, tls, timeouts, trace)?,
            gun: gun.to_string(),
        })
    }

    pub(crate) fn url(&self) -> &str {
        self.http.url()
    }

    /// True for an `http://` server: nothing protects what it serves.
    pub(crate) fn is_plain_http(&self) -> bool {
        self.http.is_plain()
    }

    fn tuf_path(&self, file: &str) -> String {
        format!("/v2/{}/_trust/tuf/{file}", self.gun)
    }

    /// The current `<role>.json`, or `None` if the server has none (404).
    pub(crate) async fn get_meta(
        &mut self,
        role: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        self.get_optional(&self.tuf_path(&format!("{role}.json")), limit)
            .await
    }

    /// `<role>.<sha256 hex>.json`, as the stock client downloads snapshot,
    /// targets and delegations.
    pub(crate) async fn get_meta_by_hash(
        &mut self,
        role: &str,
        sha256: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let file = format!("{role}.{}.json", hex::encode(sha256));
        self.get_optional(&self.tuf_path(&file), limit).await
    }

    /// `<version>.root.json`, for following root rotations.
    pub(crate) async fn get_root_version(
        &mut self,
        version: u64,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        self.get_optional(&self.tuf_path(&format!("{version}.root.json")), ROOT_LIMIT)
            .await
    }

    /// The server's timestamp or snapshot key (created on first ask).
    pub(crate) async fn get_key(&mut self, role: &str) -> Result<PublicKey, RemoteError> {
        self.key(Method::GET, role).await
    }

    /// A new server key for `role`, pending until a root naming it is published.
    pub(crate) async fn rotate_key(&mut self, role: &str) -> Result<PublicKey, RemoteError> {
        self.key(Method::POST, role).await
    }

    async fn key(&mut self, method: Method, role: &str) -> Result<PublicKey, RemoteError> {
        let path = self.tuf_path(&format!("{role}.key"));
        let what = format!("{method} {role}.key");
        let response = self.http.send(method, &path, None, SMALL_LIMIT).await?;
        let body = ok_body(&what, response)?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RemoteError::Protocol(format!("{what}: not JSON: {e}")))?;
        PublicKey::from_json(&value)
            .map_err(|e| RemoteError::Protocol(format!("{what}: not a key object: {e}")))
    }

    /// Uploads metadata files in one atomic update.
    pub(crate) async fn publish(&mut self, files: &[(String, Vec<u8>)]) -> Result<(), RemoteError> {
        let (content_type, body) = multipart::form(files);
        let path = self.tuf_path("");
        let response = self
            .http
            .send(Method::POST, &path, Some((content_type, body)), SMALL_LIMIT)
            .await?;
        ok_body("publish", response).map(|_| ())
    }

    /// Deletes all of the GUN's metadata on the server.
    pub(crate) async fn delete(&mut self) -> Result<(), RemoteError> {
        let path = self.tuf_path("");
        let response = self
            .http
            .send(Method::DELETE, &path, None, SMALL_LIMIT)
            .await?;
        ok_body("delete", response).map(|_| ())
    }

    async fn get_optional(
        &mut self,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let response = self.http.send(Method::GET, path, None, limit).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let name = path.rsplit("/_trust/tuf/").next().unwrap_or(path);
        ok_body(&format!("GET {name}"), response).map(Some)
    }
}

fn ok_body(what: &str, response: http::Response) -> Result<Vec<u8>, RemoteError> {
    if response.status.is_success() {
        return Ok(response.body.to_vec());
    }
    Err(RemoteError::Server {
        what: what.to_string(),
        status: response.status.as_u16(),
        text: errcode::describe(&response.body),
        codes: errcode::codes(&response.body),
    })
}
