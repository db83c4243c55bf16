//! Every answer of the API server is bounded, in size and (unless it is a stream) in time.
//!
//! kube-client reads a whole answer into memory (`Client::request_text`: `collect()`, no limit)
//! and its `read_timeout` is per read, so an API server (or something posing as one at the
//! kubeconfig's `server`) that sends an endless body would grow our memory without bound, and
//! one that sends a byte every few seconds would hold us forever. This layer, added to kube's
//! own stack in [`super::client::connect_merged`], sees every request and its decompressed
//! answer:
//!
//! - an ordinary request (get, list, apply, delete, a pod's log) must be answered within
//!   [`ANSWER_DEADLINE`], headers and body, with at most [`MAX_ANSWER`] bytes;
//! - a watch (`?watch=true`) may last as long as its caller waits (rollout and uninstall have
//!   their own `--timeout`), but no line of it, one event, may exceed [`MAX_ANSWER`] bytes
//!   (kube splits it with an unbounded `LinesCodec`);
//! - a proxy request (`.../proxy/...`: cAdvisor's metrics, configz, Prometheus) passes as it is:
//!   its callers stream or cap it (`cluster::proxy`) within their own deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use kube::client::{Body, DynBody};
use tower::BoxError;

/// The largest answer (or watch event) we read: 256 MiB. etcd stores objects of at most
/// 1.5 MiB (etcd `--max-request-bytes` default) and we list in pages of `pages::PAGE`; real
/// pages of pods, nodes or events are a few MiB.
pub const MAX_ANSWER: u64 = 256 * 1024 * 1024;

/// How long an ordinary request may take, answer included. kube-apiserver itself gives up on a
/// request that is not long-running after `--request-timeout` (default 1m0s,
/// kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver); a little more
/// leaves room for the network.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(70);

/// What bounds a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Size and time.
    Answer,
    /// Size of each line (a watch event).
    Watch,
    /// Nothing here: the caller bounds it.
    Proxy,
}

impl Kind {
    /// From the request's URI: the `proxy` subresource of a node, pod or service
    /// (`/api/v1/nodes/N/proxy/...`, `/api/v1/namespaces/NS/{pods,services}/N/proxy/...`), or a
    /// `watch=true` (or `1`) parameter. A namespace or object merely named `proxy` is no proxy.
    pub fn of(uri: &http::Uri) -> Kind {
        let segments: Vec<&str> = uri.path().split('/').skip(1).collect();
        let proxy = matches!(
            segments.as_slice(),
            ["api", "v1", "nodes", _, "proxy", ..]
                | [
                    "api",
                    "v1",
                    "namespaces",
                    _,
                    "pods" | "services",
                    _,
                    "proxy",
                    ..
                ]
        );
        if proxy {
            return Kind::Proxy;
        }
        let watch = uri.query().is_some_and(|q| {
            q.split('&')
                .any(|pair| matches!(pair, "watch=true" | "watch=1"))
        });
        if watch { Kind::Watch } else { Kind::Answer }
    }
}

/// The tower layer for `kube::client::ClientBuilder::with_layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedLayer;

impl<S> tower::Layer<S> for BoundedLayer {
    type Service = Bounded<S>;

    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded { inner }
    }
}

/// kube's service, with every answer bounded.
#[derive(Debug, Clone)]
pub struct Bounded<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S> tower::Service<Request<Body>> for Bounded<S>
where
    S: tower::Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<BoundedBody>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let kind = Kind::of(request.uri());
        let what = format!("{} {}", request.method(), request.uri());
        let answer = self.inner.call(request);
        Box::pin(async move {
            if kind != Kind::Answer {
                let response = answer.await?;
                return Ok(response.map(|body| BoundedBody::new(body, kind, what, None)));
            }
            let deadline = crate::deadline::deadline_after(ANSWER_DEADLINE);
            let response = tokio::time::timeout_at(deadline, answer)
                .await
                .map_err(|_| too_slow(&what))??;
            Ok(response.map(|body| BoundedBody::new(body, kind, what, Some(deadline))))
        })
    }
}

fn too_slow(what: &str) -> BoxError {
    format!(
        "no complete answer to {what} within {}s (a real API server gives up on it after 60s); stopped waiting",
        ANSWER_DEADLINE.as_secs()
    )
    .into()
}

fn too_large(what: &str, kind: Kind, limit: u64) -> BoxError {
    let unit = if kind == Kind::Watch {
        "an event of the watch"
    } else {
        "the answer"
    };
    Box::new(Oversized(format!(
        "{unit} to {what} is larger than {} MiB, which no real API server sends; stopped reading",
        limit / (1024 * 1024)
    )))
}

/// An answer (or watch event) cut at [`MAX_ANSWER`]: the server is not behaving as an API
/// server, which [`oversized`] lets the client's error classification say.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Oversized(String);

/// Whether an [`Oversized`] is anywhere in `err`'s chain.
pub fn oversized(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<Oversized>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// An answer's body, failing once it is too large or too late.
pub struct BoundedBody {
    inner: Box<DynBody>,
    kind: Kind,
    what: String,
    /// Bytes of the answer so far ([`Kind::Answer`]), or since the last newline ([`Kind::Watch`]).
    seen: u64,
    limit: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
}

impl BoundedBody {
    pub fn new(
        inner: Box<DynBody>,
        kind: Kind,
        what: String,
        deadline: Option<tokio::time::Instant>,
    ) -> Self {
        BoundedBody {
            inner,
            kind,
            what,
            seen: 0,
            limit: MAX_ANSWER,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            failed: false,
        }
    }

    /// The same with another size limit (tests).
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl HttpBody for BoundedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if this.kind == Kind::Proxy {
            return Pin::new(&mut this.inner).poll_frame(cx);
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            let error = too_slow(&this.what);
            return this.fail(error);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            this.seen = match (this.kind, memchr::memrchr(b'\n', data)) {
                (Kind::Watch, Some(last)) => (data.len() - last - 1) as u64,
                _ => this.seen.saturating_add(len),
            };
            if this.seen > this.limit {
                let error = too_large(&this.what, this.kind, this.limit);
                return this.fail(error);
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.failed {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const MIB: u64 = 1024 * 1024;

    fn body_of(chunks: Vec<Vec<u8>>) -> Box<DynBody> {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c)))),
        );
        Box::new(http_body_util::StreamBody::new(stream))
    }

    #[test]
    fn kinds_come_from_the_path_and_the_watch_parameter() {
        let kind = |uri: &str| Kind::of(&uri.parse().unwrap());
        assert_eq!(kind("/api/v1/namespaces?limit=500"), Kind::Answer);
        assert_eq!(
            kind("/apis/apps/v1/namespaces/c/daemonsets/x/log"),
            Kind::Answer
        );
        assert_eq!(
            kind(
                "/apis/apps/v1/namespaces/c/daemonsets?fieldSelector=x&watch=true&timeoutSeconds=290"
            ),
            Kind::Watch
        );
        assert_eq!(kind("/api/v1/pods?watch=1"), Kind::Watch);
        assert_eq!(kind("/api/v1/pods?watch=false"), Kind::Answer);
        assert_eq!(kind("/api/v1/pods?xwatch=true"), Kind::Answer);
        assert_eq!(kind("/api/v1/nodes/n1/proxy/metrics/cadvisor"), Kind::Proxy);
        assert_eq!(
            kind("/api/v1/namespaces/m/services/p:9090/proxy/api/v1/query?watch=true"),
            Kind::Proxy
        );
        assert_eq!(kind("/api/v1/namespaces/proxyish/pods"), Kind::Answer);
        // `-n proxy`, a DaemonSet named proxy: ordinary requests, bounded.
        assert_eq!(
            kind("/api/v1/namespaces/proxy/pods?limit=100"),
            Kind::Answer
        );
        assert_eq!(
            kind("/apis/apps/v1/namespaces/proxy/daemonsets/proxy"),
            Kind::Answer
        );
        assert_eq!(kind("/api/v1/nodes/proxy"), Kind::Answer);
        assert_eq!(
            kind("/api/v1/namespaces/c/pods/cadvisor-x:8080/proxy/metrics"),
            Kind::Proxy
        );
        assert_eq!(kind("/api/v1/nodes/proxy/proxy/configz"), Kind::Proxy);
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_limit_is_an_error_not_memory() {
        let mib = vec![b' '; 1024 * 1024];
        // An endless body: the error must come after MAX_ANSWER, not never.
        let endless = futures::stream::repeat_with(move || {
            Ok::<_, BoxError>(Frame::data(Bytes::from(mib.clone())))
        });
        let body = BoundedBody::new(
            Box::new(http_body_util::StreamBody::new(endless)),
            Kind::Answer,
            "GET /api/v1/namespaces".into(),
            None,
        );
        assert_eq!(body.limit, MAX_ANSWER);
        let err = body
            .with_limit(8 * MIB)
            .collect()
            .await
            .expect_err("an endless answer is an error");
        assert!(
            err.to_string()
                .starts_with("the answer to GET /api/v1/namespaces is larger than 8 MiB"),
            "{err}"
        );
        // At the limit exactly: read whole.
        let exact = body_of(vec![
            vec![b'x'; 3 * MIB as usize],
            vec![b'x'; 5 * MIB as usize],
        ]);
        let body = BoundedBody::new(exact, Kind::Answer, "GET /x".into(), None).with_limit(8 * MIB);
        assert_eq!(
            body.collect().await.unwrap().to_bytes().len() as u64,
            8 * MIB
        );
    }

    #[tokio::test]
    async fn a_watch_may_be_long_but_no_event_may_be_huge() {
        // Many short lines add up to more than the limit: fine.
        let line = {
            let mut l = vec![b'x'; 1024 * 1024 - 1];
            l.push(b'\n');
            l
        };
        let lines = vec![line; 16];
        let body = BoundedBody::new(body_of(lines), Kind::Watch, "GET /w".into(), None)
            .with_limit(4 * MIB);
        assert!(body.collect().await.is_ok());
        // One line longer than the limit, across chunks: an error.
        let mut chunks = vec![b"{\"type\":\"ADDED\"}\n".to_vec()];
        chunks.extend(std::iter::repeat_n(vec![b'x'; 1024 * 1024], 5));
        let body = BoundedBody::new(body_of(chunks), Kind::Watch, "GET /w".into(), None)
            .with_limit(4 * MIB);
        let err = body.collect().await.expect_err("a huge event is an error");
        assert!(
            err.to_string()
                .starts_with("an event of the watch to GET /w"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_trickling_past_the_deadline_is_an_error() {
        // One byte a second, forever: without a deadline this never ends.
        let slow = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok::<_, BoxError>(Frame::data(Bytes::from_static(b" "))), ()))
        });
        let started = tokio::time::Instant::now();
        let body = BoundedBody::new(
            Box::new(http_body_util::StreamBody::new(Box::pin(slow))),
            Kind::Answer,
            "GET /api/v1/namespaces".into(),
            Some(crate::deadline::deadline_after(ANSWER_DEADLINE)),
        );
        let err = body.collect().await.expect_err("a trickle is an error");
        assert!(
            err.to_string()
                .starts_with("no complete answer to GET /api/v1/namespaces within 70s"),
            "{err}"
        );
        assert!(started.elapsed() <= ANSWER_DEADLINE + Duration::from_secs(1));
    }
}
