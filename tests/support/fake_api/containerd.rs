//! How the simulated cAdvisor dials containerd's socket (Go's `net.DialTimeout` wording). The
//! gRPC calls themselves (Version, Containers/List with each container's OCI spec) go through
//! the product's own client, `cadvisor_setup::host::containerd`; [`list`] and [`version`] only
//! word its errors the way the Go client would.

use std::path::Path;
use std::time::Duration;

pub use cadvisor_setup::host::containerd::ContainerInfo as CtrContainer;
use cadvisor_setup::host::containerd::{self as client, ProbeError};

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

/// containerd's version (`1.6.20~ds1`).
pub async fn version(socket: &Path, timeout: Duration) -> Result<String, String> {
    client::version(socket, timeout)
        .await
        .map(|v| v.version)
        .map_err(|e| go_error(&e))
}

/// Every container in `namespace`, each with its OCI spec (see `cadvisor::cgroups_path`).
pub async fn list(
    socket: &Path,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<CtrContainer>, String> {
    client::list_containers(socket, namespace, timeout)
        .await
        .map_err(|e| go_error(&e))
}

/// grpc-go's wording of a failed call (`rpc error: code = X desc = Y`).
fn go_error(e: &ProbeError) -> String {
    match e {
        ProbeError::Rpc { code, message, .. } => {
            format!("rpc error: code = {code:?} desc = {message}")
        }
        ProbeError::Timeout { .. } => {
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into()
        }
        ProbeError::Connect { reason, .. } => {
            format!("rpc error: code = Unavailable desc = {reason}")
        }
    }
}
