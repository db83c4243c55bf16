//! The few containerd calls the simulated cAdvisor and kubelet make, over tonic's generic client
//! with hand-declared messages (shared/reference/containerd-api.md): Version, and Containers/List
//! in a namespace, including each container's OCI spec for its cgroup path. Test-only: the
//! product's own probe lives in `cadvisor_setup::host::containerd`; this one also needs the spec.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic_prost::ProstCodec;

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
struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    containers: Vec<Container>,
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

#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// One container as containerd lists it.
#[derive(Debug, Clone)]
pub struct CtrContainer {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    /// `linux.cgroupsPath` of the OCI spec.
    pub cgroups_path: Option<String>,
}

/// Why a connection failed, worded as Go's `net.Dial` would (`connect: no such file or
/// directory`, `connect: connection refused`).
#[derive(Debug, Clone)]
pub struct DialError(pub String);

/// Dials the socket the way cAdvisor's client does first (`net.DialTimeout("unix", addr, 2s)`).
pub async fn dial(socket: &Path) -> Result<(), DialError> {
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(DialError(match e.kind() {
            std::io::ErrorKind::NotFound => "connect: no such file or directory".into(),
            std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
            std::io::ErrorKind::PermissionDenied => "connect: permission denied".into(),
            _ => format!("connect: {e}"),
        })),
        Err(_) => Err(DialError("i/o timeout".into())),
    }
}

async fn grpc(socket: &Path) -> Result<tonic::client::Grpc<tonic::transport::Channel>, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
    let mut g = tonic::client::Grpc::new(channel).max_decoding_message_size(16 << 20);
    g.ready().await.map_err(|e| e.to_string())?;
    Ok(g)
}

/// containerd's version (`1.6.20~ds1`).
pub async fn version(socket: &Path, timeout: Duration) -> Result<String, String> {
    let mut g = grpc(socket).await?;
    let mut req = tonic::Request::new(());
    req.set_timeout(timeout);
    let resp = g
        .unary(
            req,
            PathAndQuery::from_static("/containerd.services.version.v1.Version/Version"),
            ProstCodec::<(), VersionResponse>::default(),
        )
        .await
        .map_err(|s| format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))?;
    Ok(resp.into_inner().version)
}

/// Every container in `namespace`.
pub async fn list(
    socket: &Path,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<CtrContainer>, String> {
    let mut g = grpc(socket).await?;
    let mut req = tonic::Request::new(ListContainersRequest { filters: vec![] });
    req.metadata_mut().insert(
        "containerd-namespace",
        namespace
            .parse()
            .map_err(|_| format!("bad namespace {namespace:?}"))?,
    );
    req.set_timeout(timeout);
    let resp = g
        .unary(
            req,
            PathAndQuery::from_static("/containerd.services.containers.v1.Containers/List"),
            ProstCodec::<ListContainersRequest, ListContainersResponse>::default(),
        )
        .await
        .map_err(|s| format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))?;
    Ok(resp
        .into_inner()
        .containers
        .into_iter()
        .map(|c| {
            let cgroups_path = c.spec.and_then(|any| {
                serde_json::from_slice::<serde_json::Value>(&any.value)
                    .ok()
                    .and_then(|spec| spec["linux"]["cgroupsPath"].as_str().map(str::to_string))
            });
            CtrContainer {
                id: c.id,
                labels: c.labels.into_iter().collect(),
                image: c.image,
                cgroups_path,
            }
        })
        .collect())
}
