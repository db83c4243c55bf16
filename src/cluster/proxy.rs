//! Reads through the API server's proxies: a pod's `/metrics` (pod proxy), the kubelet's
//! `/metrics/cadvisor` (node proxy) and a pod's log.
//!
//! Metrics bodies are streamed into a synchronous reader (the scanner in `crate::metrics`) through
//! tokio-util's `SyncIoBridge`, so memory stays constant whatever the payload size.

use std::io::Read;

use futures::AsyncReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use tokio_util::compat::FuturesAsyncReadCompatExt;
use tokio_util::io::SyncIoBridge;

use super::{Cluster, ClusterError};

/// cAdvisor's default `--port` (google/cadvisor `cmd/cadvisor.go`).
pub const CADVISOR_PORT: u16 = 8080;

/// `/api/v1/namespaces/NS/pods/NAME:PORT/proxy/metrics` (Kubernetes API "proxy" subresource).
pub fn pod_metrics_path(namespace: &str, pod: &str, port: u16) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/metrics")
}

/// `/api/v1/nodes/NAME/proxy/metrics/cadvisor`: the kubelet's embedded cAdvisor.
pub fn node_cadvisor_path(node: &str) -> String {
    format!("/api/v1/nodes/{node}/proxy/metrics/cadvisor")
}

/// GETs `path` and feeds the body to `consume` as a `std::io::Read`, on a thread of its own.
///
/// The body is bridged chunk by chunk ([`SyncIoBridge`]): it is never held whole.
pub async fn stream_to<T, F>(cluster: &Cluster, path: &str, consume: F) -> Result<T, ClusterError>
where
    F: FnOnce(&mut dyn Read) -> T + Send + 'static,
    T: Send + 'static,
{
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| ClusterError::Api(format!("bad request path {path}: {e}")))?;
    let body = cluster.ask(cluster.client.request_stream(request)).await?;
    read_on_thread(Box::pin(body).compat(), consume)
        .await
        .map_err(|e| ClusterError::Api(format!("reading {path}: {e}")))
}

/// Runs `consume` over `reader` on a plain thread, bridged to the runtime by [`SyncIoBridge`].
///
/// A detached thread, not `spawn_blocking`: the runtime waits for its blocking tasks when it
/// shuts down (docs.rs/tokio `Runtime::shutdown_background`: "dropping a runtime will block
/// indefinitely for spawned blocking tasks to complete"), so a body that never ends must not
/// be read on one; a caller that gives up (a timeout) drops the receiver and the thread ends
/// with the process at the latest.
pub async fn read_on_thread<R, T, F>(reader: R, consume: F) -> std::io::Result<T>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    F: FnOnce(&mut dyn Read) -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("metrics-reader".into())
        .spawn(move || {
            let mut bridge = SyncIoBridge::new_with_handle(reader, handle);
            // Nobody waits any more after a timeout.
            let _ = tx.send(consume(&mut bridge));
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("the reading thread stopped without a result"))
}

/// The pod's log from its start (the containerd factory registration line is among the first),
/// at most [`MAX_LOG`] bytes even from a server that ignores `limitBytes`.
pub async fn pod_log(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
) -> Result<String, ClusterError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let params = LogParams {
        container: container.map(str::to_string),
        limit_bytes: Some(MAX_LOG as i64),
        ..LogParams::default()
    };
    let stream = cluster.ask(api.log_stream(pod, &params)).await?;
    let (bytes, _complete) = read_at_most(stream, MAX_LOG)
        .await
        .map_err(|e| ClusterError::Api(format!("reading the log of pod {namespace}/{pod}: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The most of a pod log we read.
pub const MAX_LOG: u64 = 4 * 1024 * 1024;

/// Up to `limit` bytes of `body`, and whether that was all of it. Memory is bounded by `limit`
/// whatever the server sends.
pub async fn read_at_most(
    body: impl futures::AsyncRead,
    limit: u64,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let body = std::pin::pin!(body);
    body.take(limit + 1).read_to_end(&mut out).await?;
    let complete = out.len() as u64 <= limit;
    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((out, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_are_capped_whatever_the_body() {
        let body = futures::io::Cursor::new(vec![b'x'; 10_000]);
        let (bytes, complete) = read_at_most(body, 100).await.unwrap();
        assert_eq!(bytes.len(), 100);
        assert!(!complete);
        let body = futures::io::Cursor::new(b"short".to_vec());
        let (bytes, complete) = read_at_most(body, 100).await.unwrap();
        assert_eq!(bytes, b"short");
        assert!(complete);
    }
}
