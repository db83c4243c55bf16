//! Every answer of the API server that kube reads whole (gets, lists, patches, discovery) is
//! cut at [`MAX_ANSWER`] bytes, so no cluster answer can grow memory without bound. Watches and
//! proxied reads are streams and are left whole: their readers bound them themselves (watch
//! events one at a time; `/metrics` through the scanner; configz and Prometheus' API through
//! `proxy::read_at_most`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::{Either, LengthLimitError, Limited};

/// The largest answer read whole: a page of 100 objects of the largest kind etcd accepts
/// (1.5 MiB each: etcd's default `--max-request-bytes`) would not fit, but no real page of
/// Nodes, Pods or our objects comes near it.
pub const MAX_ANSWER: usize = 64 << 20;

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
{
    type Response = Response<Either<Limited<B>, B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let streamed = streamed(request.uri());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| {
                if streamed {
                    Either::Right(body)
                } else {
                    Either::Left(Limited::new(body, MAX_ANSWER))
                }
            }))
        })
    }
}

/// Whether `err` (anywhere in its chain) is an answer cut at [`MAX_ANSWER`].
pub fn exceeded(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<LengthLimitError>() {
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
