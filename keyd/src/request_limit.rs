//! Requests in progress per uid on the Unix socket (`[server.limits]
//! max_requests_per_uid`), as a layer around every service the socket
//! serves. A request holds its uid's slot until its response body ends,
//! so a streamed Sign counts while it waits for the device, for a touch,
//! and until its reply is sent. A request beyond the limit is answered
//! RESOURCE_EXHAUSTED before any service sees it: it costs no device
//! time, no key lookup and no audit record.

use crate::limits::{UidCounts, UidSlot};
use crate::peer::PeerInfo;
use crate::status::refusal;
use crate::warn_throttle::WarnThrottle;
use keyd_proto::Reason;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::Status;

/// The layer; `Server::builder().layer(RequestsPerUid::new(max))`.
#[derive(Clone)]
pub(crate) struct RequestsPerUid {
    counts: UidCounts,
    warnings: Arc<WarnThrottle<u32>>,
}

impl RequestsPerUid {
    pub(crate) fn new(max: usize) -> RequestsPerUid {
        RequestsPerUid {
            counts: UidCounts::new(max),
            warnings: Arc::new(WarnThrottle::new()),
        }
    }
}

impl<S> tower_layer::Layer<S> for RequestsPerUid {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            counts: self.counts.clone(),
            warnings: Arc::clone(&self.warnings),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Limited<S> {
    inner: S,
    counts: UidCounts,
    warnings: Arc<WarnThrottle<u32>>,
}

type Responding<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Limited<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Responding<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let uid = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|info| info.cred)
            .map(|cred| cred.uid());
        // A peer without credentials is refused by every RPC (Caller::of);
        // there is no uid to count it under.
        let slot = match uid.map(|uid| (uid, self.counts.take(uid))) {
            Some((uid, None)) => {
                let max = self.counts.max();
                if let Some(held_back) = self.warnings.admit(uid) {
                    tracing::warn!(
                        uid,
                        max,
                        held_back,
                        "request refused: the uid has [server.limits] max_requests_per_uid requests in progress"
                    );
                }
                let refusal = refusal(
                    Reason::TooManyRequests,
                    format!(
                        "uid {uid} already has {max} requests in progress, the most \
                         [server.limits] max_requests_per_uid allows"
                    ),
                );
                return Box::pin(std::future::ready(Ok(refusal.into_http())));
            }
            Some((_, slot)) => slot,
            None => None,
        };
        let responding = self.inner.call(request);
        Box::pin(async move {
            let response = responding.await?;
            Ok(response.map(|body| match slot {
                Some(slot) => Body::new(Holding { body, _slot: slot }),
                None => body,
            }))
        })
    }
}

/// A response body that keeps its request's slot until it ends or is
/// dropped (the client went away).
struct Holding {
    body: Body,
    _slot: UidSlot,
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
