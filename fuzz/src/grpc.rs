//! One gRPC call into a tonic service in this process: the request body
//! framed as a client would send it over HTTP/2, the reply's frames and
//! status read back. Nothing here knows the daemon's messages, so a target
//! can send bytes that do not decode and see what tonic answers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::service::Routes;
use tower::ServiceExt;

/// What came back: the status (`Ok` is code 0) and every message frame.
#[derive(Debug)]
pub struct Reply {
    pub code: tonic::Code,
    pub message: String,
    pub frames: Vec<Bytes>,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.code == tonic::Code::Ok
    }

    /// The reply, which must be OK.
    pub fn expect_ok(self, what: &str) -> Reply {
        assert!(
            self.is_ok(),
            "{what} failed: {:?} {}",
            self.code,
            self.message
        );
        self
    }

    /// The only frame of a successful unary reply, decoded; panics when a
    /// reply said OK without exactly one message of the method's type.
    pub fn unary<M: prost::Message + Default>(&self, method: &str) -> M {
        assert_eq!(
            self.frames.len(),
            1,
            "{method}: OK with {} frames",
            self.frames.len()
        );
        M::decode(self.frames[0].clone())
            .unwrap_or_else(|e| panic!("{method}: OK with a reply that does not decode: {e}"))
    }
}

/// Calls `path` (`/package.Service/Method`) on `routes` with `message` (the
/// protobuf bytes) as the request; `extensions` are what a transport would
/// attach (the caller's connection).
pub async fn call(
    routes: &Routes,
    path: &str,
    message: &[u8],
    extensions: &http::Extensions,
) -> Reply {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    let mut request = http::Request::new(Full::new(Bytes::from(frame)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() =
        http::Uri::try_from(format!("http://keyd{path}")).expect("a method path is a URI");
    let headers = request.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("te", http::HeaderValue::from_static("trailers"));
    *request.extensions_mut() = extensions.clone();
    let Ok(response) = routes.clone().oneshot(request).await;
    let (parts, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{path}: the reply body failed: {e}"));
    // A reply with no messages carries its status in the headers alone.
    let trailers = collected.trailers().cloned().unwrap_or(parts.headers);
    let code = trailers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or_else(|| panic!("{path}: a reply without grpc-status"));
    let message = trailers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Reply {
        code,
        message,
        frames: frames(path, collected.to_bytes()),
    }
}

/// Splits a response body into its length-prefixed messages.
fn frames(path: &str, mut body: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "{path}: a torn frame header");
        assert_eq!(body[0], 0, "{path}: a compressed frame nobody asked for");
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert!(
            body.len() >= 5 + len,
            "{path}: a frame shorter than its length"
        );
        let _ = body.split_to(5);
        out.push(body.split_to(len));
    }
    out
}
