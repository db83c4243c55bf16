//! Every answer of the API server that kube reads whole (gets, lists, patches, discovery) is
//! cut at [`MAX_ANSWER`] bytes and must be complete within [`ANSWER_TIME`], so no cluster answer
//! can grow memory without bound or, sent a byte at a time, hold a command past its timeout (the
//! client's own read timeout restarts with every byte). Watches and proxied reads are streams
//! and are left whole: their readers bound them themselves (watch events one at a time under the
//! rollout's deadline; `/metrics` through the scanner under verify's; configz and Prometheus' API
//! through `proxy::read_at_most` under theirs).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use http::{Request, Response};
use http_body_util::{Either, LengthLimitError, Limited};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest answer read whole: a page of 100 objects of the largest kind etcd accepts
/// (1.5 MiB each: etcd's default `--max-request-bytes`) would not fit, but no real page of
/// Nodes, Pods or our objects comes near it.
pub const MAX_ANSWER: usize = 64 << 20;

/// How long an answer read whole may take, from the request to its last byte. A real API server
/// answers a page of 100 objects in well under a second.
pub const ANSWER_TIME: Duration = Duration::from_secs(60);

/// The tower layer: wraps kube's HTTP service.
pub fn layer<S>(inner: S) -> Bounded<S> {
    Bounded { inner }
}

#[derive(Clone)]
pub struct Bounded<S> {
    inner: S,
}

/// Watches and proxied reads stream; every other request is read whole by kube.
fn streamed(uri: &http::Uri) -> bool {
    uri.path().contains("/proxy/")
        || uri.query().is_some_and(|q| {
            q.split('&')
                .any(|pair| pair == "watch=true" || pair == "watch=1")
        })
}

impl<S, B> tower::Service<Request<kube::client::Body>> for Bounded<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Unpin,
{
    type Response = Response<Either<Limited<Timed<B>>, B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let streamed = streamed(request.uri());
        let answer = self.inner.call(request);
        if streamed {
            return Box::pin(async move {
                let response = answer.await.map_err(Into::into)?;
                Ok(response.map(Either::Right))
            });
        }
        let deadline = crate::deadline::deadline_after(ANSWER_TIME);
        Box::pin(async move {
            let response = tokio::time::timeout_at(deadline, answer)
                .await
                .map_err(|_| Box::new(Late) as BoxError)?
                .map_err(Into::into)?;
            Ok(response.map(|body| {
                let timed = Timed {
                    body,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                };
                Either::Left(Limited::new(timed, MAX_ANSWER))
            }))
        })
    }
}

/// An answer not complete within [`ANSWER_TIME`].
#[derive(Debug, thiserror::Error)]
#[error("no complete answer within {}s", ANSWER_TIME.as_secs())]
pub struct Late;

/// A body that fails with [`Late`] once its deadline has passed.
pub struct Timed<B> {
    body: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> Body for Timed<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Late)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Whether `err` (anywhere in its chain) is an answer cut at [`MAX_ANSWER`].
pub fn exceeded(err: &(dyn std::error::Error + 'static)) -> bool {
    in_chain::<LengthLimitError>(err)
}

/// Whether `err` (anywhere in its chain) is an answer not complete within [`ANSWER_TIME`].
pub fn late(err: &(dyn std::error::Error + 'static)) -> bool {
    in_chain::<Late>(err)
}

fn in_chain<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use http_body_util::StreamBody;
    use hyper::body::{Bytes, Frame};
    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;

    use super::*;
    use crate::cluster::ClusterError;

    /// A client through [`layer`] whose API server answers every request with `chunks` MiB of
    /// spaces (valid JSON whitespace, so only the size can fail).
    fn answering(chunks: usize) -> kube::Client {
        let service = tower::service_fn(move |_req: Request<kube::client::Body>| {
            let mib = Bytes::from(vec![b' '; 1 << 20]);
            let frames = futures::stream::repeat(mib)
                .take(chunks)
                .map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
            async move { Ok::<_, std::convert::Infallible>(Response::new(StreamBody::new(frames))) }
        });
        kube::Client::new(layer(service), "default")
    }

    #[tokio::test]
    async fn an_answer_read_whole_is_cut_at_the_limit_and_says_so() {
        let client = answering(MAX_ANSWER / (1 << 20) + 1);
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let err = pods.list(&Default::default()).await.unwrap_err();
        let err = crate::cluster::client::classify("https://api:6443", err);
        assert!(
            matches!(&err, ClusterError::Api(m) if m.contains("larger than 64 MiB")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_proxied_stream_is_left_whole() {
        let client = answering(MAX_ANSWER / (1 << 20) + 4);
        let request = Request::get("/api/v1/nodes/n1/proxy/metrics/cadvisor")
            .body(Vec::new())
            .unwrap();
        let mut stream = std::pin::pin!(client.request_stream(request).await.unwrap());
        let mut bytes = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = futures::AsyncReadExt::read(&mut stream, &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            bytes += n;
        }
        assert_eq!(bytes, MAX_ANSWER + (4 << 20));
    }

    /// A client through [`layer`] whose API server sends a header at once (or, `silent`,
    /// never), then one byte of whitespace every 10 s, `bytes` in all.
    fn dripping(bytes: usize, silent: bool) -> kube::Client {
        let service = tower::service_fn(move |_req: Request<kube::client::Body>| {
            let frames = futures::stream::iter(0..bytes)
                .then(|_| async {
                    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b" ")))
                })
                .boxed();
            async move {
                if silent {
                    futures::future::pending::<()>().await;
                }
                Ok::<_, std::convert::Infallible>(Response::new(StreamBody::new(frames)))
            }
        });
        kube::Client::new(layer(service), "default")
    }

    async fn list_error(client: kube::Client) -> ClusterError {
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let err = pods.list(&Default::default()).await.unwrap_err();
        crate::cluster::client::classify("https://api:6443", err)
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_sent_a_byte_at_a_time_ends_at_the_answer_time() {
        let started = tokio::time::Instant::now();
        let err = list_error(dripping(10, false)).await;
        assert!(
            matches!(&err, ClusterError::Unreachable { reason, .. } if reason.contains("no complete answer within 60s")),
            "{err}"
        );
        assert_eq!(started.elapsed(), ANSWER_TIME);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_never_starts_ends_at_the_answer_time() {
        let started = tokio::time::Instant::now();
        let err = list_error(dripping(0, true)).await;
        assert!(
            matches!(&err, ClusterError::Unreachable { reason, .. } if reason.contains("no complete answer within 60s")),
            "{err}"
        );
        assert_eq!(started.elapsed(), ANSWER_TIME);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_proxied_stream_is_not_cut_by_the_answer_time() {
        let client = dripping(12, false);
        let request = Request::get("/api/v1/nodes/n1/proxy/metrics/cadvisor")
            .body(Vec::new())
            .unwrap();
        let mut stream = std::pin::pin!(client.request_stream(request).await.unwrap());
        let mut text = Vec::new();
        futures::AsyncReadExt::read_to_end(&mut stream, &mut text)
            .await
            .unwrap();
        assert_eq!(text.len(), 12, "two minutes of answer, read whole");
    }

    #[test]
    fn watches_and_proxies_stream_everything_else_is_read_whole() {
        for (uri, expected) in [
            (
                "/api/v1/namespaces/cadvisor/pods?labelSelector=a%3Db",
                false,
            ),
            (
                "/apis/apps/v1/namespaces/cadvisor/daemonsets?watch=true&resourceVersion=5",
                true,
            ),
            ("/api/v1/pods?fieldSelector=x&watch=1", true),
            ("/api/v1/pods?watch=false", false),
            ("/api/v1/nodes/n1/proxy/configz", true),
            (
                "/api/v1/namespaces/m/services/https:prometheus-operated:web/proxy/api/v1/targets",
                true,
            ),
            ("/api/v1/nodes/proxy", false),
        ] {
            assert_eq!(streamed(&uri.parse().unwrap()), expected, "{uri}");
        }
    }
}
