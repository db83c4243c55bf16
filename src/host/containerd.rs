//! A minimal containerd gRPC client: `Version`, `Containers/List` and `Namespaces/List`.
//!
//! No protoc and no generated code: tonic's generic client with `tonic_prost::ProstCodec` and the
//! few messages declared by hand with their field numbers from containerd's
//! `api/services/{version,containers,namespaces}/v1/*.proto` (containerd/containerd). Undeclared
//! fields (a container's runtime, snapshot, ...) are skipped by prost.
//!
//! Every call carries a per-request timeout: a socket that accepts connections but never answers
//! fails at the deadline (tonic reports `Cancelled: Timeout expired`), it never hangs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

/// The kubelet's (CRI's) containerd namespace (canonical/microk8s:
/// microk8s-resources/default-args/ctr), also cAdvisor's default.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// The label every container the kubelet creates carries.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// containerd's `namespaces.GRPCHeader`.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// List returns every container's OCI spec (~9 KB each); 16 MiB is containerd's own send limit.
const MAX_MESSAGE: usize = 16 << 20;
/// The longest per-call timeout we hand to tonic: it encodes the timeout as the `grpc-timeout`
/// header, at most 8 digits of hours, and panics beyond that (hyperium/tonic: tonic/src/request.rs
/// `duration_to_grpc_timeout`, "duration is unrealistically large"). A day is plenty for a probe.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

const VERSION_PATH: &str = "/containerd.services.version.v1.Version/Version";
const CONTAINERS_LIST_PATH: &str = "/containerd.services.containers.v1.Containers/List";
const NAMESPACES_LIST_PATH: &str = "/containerd.services.namespaces.v1.Namespaces/List";

#[derive(Clone, PartialEq, prost::Message)]
struct VersionResponse {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    revision: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListContainersRequest {
    #[prost(string, repeated, tag = "1")]
    filters: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Container {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(map = "string, string", tag = "2")]
    labels: HashMap<String, String>,
    #[prost(string, tag = "3")]
    image: String,
    #[prost(message, optional, tag = "5")]
    spec: Option<Any>,
}

/// `google.protobuf.Any`: a container's OCI runtime spec is one (JSON in `value`).
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    containers: Vec<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListNamespacesRequest {
    #[prost(string, tag = "1")]
    filter: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Namespace {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListNamespacesResponse {
    #[prost(message, repeated, tag = "1")]
    namespaces: Vec<Namespace>,
}

/// containerd's answer to `Version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub revision: String,
}

/// One container of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// The OCI runtime spec as containerd stores it (JSON; empty when it has none). Kept raw:
    /// detection does not need it, so it is parsed only on demand ([`Self::cgroups_path`]).
    pub spec: Vec<u8>,
}

impl ContainerInfo {
    /// Created by the kubelet (carries `io.kubernetes.pod.name`).
    pub fn is_kubernetes(&self) -> bool {
        self.labels.contains_key(POD_NAME_LABEL)
    }
}

/// Why talking to a containerd socket failed. Messages name the socket.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot connect to {socket}: {reason}")]
    Connect { socket: PathBuf, reason: String },
    #[error("{socket} did not answer {call} within {after:?} (not containerd, or hung)")]
    Timeout {
        socket: PathBuf,
        call: &'static str,
        after: Duration,
    },
    #[error("{socket} answered {call} with an error: {code:?}: {message}")]
    Rpc {
        socket: PathBuf,
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
}

/// containerd's version (`ctr version`'s "Server" part).
pub async fn version(socket: &Path, timeout: Duration) -> Result<VersionInfo, ProbeError> {
    let resp: VersionResponse = call(socket, timeout, "Version", VERSION_PATH, None, ()).await?;
    Ok(VersionInfo {
        version: resp.version,
        revision: resp.revision,
    })
}

/// Every container of `namespace` (what `ctr -n NAMESPACE containers ls` shows).
pub async fn list_containers(
    socket: &Path,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<ContainerInfo>, ProbeError> {
    let resp: ListContainersResponse = call(
        socket,
        timeout,
        "Containers/List",
        CONTAINERS_LIST_PATH,
        Some(namespace),
        ListContainersRequest::default(),
    )
    .await?;
    Ok(resp
        .containers
        .into_iter()
        .map(|c| ContainerInfo {
            id: c.id,
            image: c.image,
            labels: c.labels.into_iter().collect(),
            spec: c.spec.map(|any| any.value).unwrap_or_default(),
        })
        .collect())
}

/// The namespaces that exist (e.g. `k8s.io`, or `moby` on Docker's containerd).
pub async fn list_namespaces(socket: &Path, timeout: Duration) -> Result<Vec<String>, ProbeError> {
    let resp: ListNamespacesResponse = call(
        socket,
        timeout,
        "Namespaces/List",
        NAMESPACES_LIST_PATH,
        None,
        ListNamespacesRequest::default(),
    )
    .await?;
    let mut names: Vec<String> = resp.namespaces.into_iter().map(|n| n.name).collect();
    names.sort();
    Ok(names)
}

async fn call<Req, Resp>(
    socket: &Path,
    timeout: Duration,
    name: &'static str,
    path: &'static str,
    namespace: Option<&str>,
    message: Req,
) -> Result<Resp, ProbeError>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    // Saturate: a huge timeout (Duration::MAX) must neither overflow below nor panic in tonic.
    let timeout = timeout.min(MAX_CALL_TIMEOUT);
    let timed_out = || ProbeError::Timeout {
        socket: socket.to_path_buf(),
        call: name,
        after: timeout,
    };
    // The per-request timeout is the one that matters; the outer one is a backstop for the
    // connection setup (observed with tonic 0.14: connect_timeout is ignored on unix sockets).
    let fut = async {
        let channel = connect(socket, timeout).await?;
        let mut grpc = Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE);
        grpc.ready().await.map_err(|e| ProbeError::Connect {
            socket: socket.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        if let Some(ns) = namespace {
            let value = ns.parse().map_err(|_| ProbeError::Rpc {
                socket: socket.to_path_buf(),
                call: name,
                code: tonic::Code::InvalidArgument,
                message: format!("namespace `{ns}` is not a valid header value"),
            })?;
            request.metadata_mut().insert(NAMESPACE_HEADER, value);
        }
        let codec = ProstCodec::<Req, Resp>::default();
        grpc.unary(request, PathAndQuery::from_static(path), codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status_error(socket, name, timeout, status))
    };
    let within = tokio::time::timeout(timeout.saturating_add(Duration::from_millis(250)), fut);
    within.await.unwrap_or_else(|_| Err(timed_out()))
}

async fn connect(socket: &Path, timeout: Duration) -> Result<Channel, ProbeError> {
    let uri = format!("unix://{}", socket.display());
    let endpoint = Endpoint::from_shared(uri).map_err(|e| ProbeError::Connect {
        socket: socket.to_path_buf(),
        reason: e.to_string(),
    })?;
    endpoint
        .timeout(timeout)
        .connect_timeout(timeout)
        .connect()
        .await
        .map_err(|e| ProbeError::Connect {
            socket: socket.to_path_buf(),
            reason: root_cause(&e),
        })
}

fn status_error(
    socket: &Path,
    call: &'static str,
    timeout: Duration,
    status: tonic::Status,
) -> ProbeError {
    // A silent peer: tonic cancels at the deadline with `Cancelled: Timeout expired`
    // (observed with tonic 0.14 against containerd 1.6.20).
    let message = status.message().to_string();
    if matches!(status.code(), tonic::Code::DeadlineExceeded)
        || (status.code() == tonic::Code::Cancelled && message.contains("Timeout"))
    {
        return ProbeError::Timeout {
            socket: socket.to_path_buf(),
            call,
            after: timeout,
        };
    }
    if status.code() == tonic::Code::Unavailable {
        return ProbeError::Connect {
            socket: socket.to_path_buf(),
            reason: if message.is_empty() {
                root_cause(&status)
            } else {
                message
            },
        };
    }
    ProbeError::Rpc {
        socket: socket.to_path_buf(),
        call,
        code: status.code(),
        message,
    }
}

/// The innermost cause's text (the OS error), since tonic repeats it through the chain.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let innermost = std::iter::successors(Some(err), |e| e.source()).last();
    innermost.unwrap_or(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_timeout_saturates_instead_of_panicking() {
        // Old code: `timeout + 250ms` overflowed (a panic) with Duration::MAX.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing.sock");
        let err = version(&missing, Duration::MAX).await.unwrap_err();
        assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");
    }
}
