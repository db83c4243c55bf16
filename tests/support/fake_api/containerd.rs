//! How the simulated cAdvisor dials containerd's socket (Go's `net.DialTimeout` wording). The
//! gRPC calls themselves (Version, Containers/List with each container's OCI spec) go through
//! the product's own client, `cadvisor_setup::host::containerd`; [`list`] and [`version`] only
//! word its errors the way the Go client would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
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
///
/// Requests for the same socket and namespace that arrive while one call runs share the next
/// call, which starts after all of them arrived: each answer is containerd's at a moment after
/// its request came, as with a call of its own. Hundreds of simulated nodes share one real
/// containerd in scripts/bench/scale.sh, and every pod and node proxy scrape lists it (a real
/// cAdvisor answers from its in-memory container set instead); without this the real containerd
/// spends the benchmark's CPU answering the same question several times at once.
pub async fn list(
    socket: &Path,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<CtrContainer>, String> {
    let key: Key = (socket.to_path_buf(), namespace.to_string(), timeout);
    let (call, turn) = {
        let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
        let entry = calls.entry(key.clone()).or_default();
        let call = entry.pending.get_or_insert_with(Default::default).clone();
        (call, entry.turn.clone())
    };
    // One call per key at a time; the first of a batch to get its turn makes the call.
    let _turn = turn.lock().await;
    if let Some(done) = call.get() {
        return done.clone();
    }
    {
        // Requests from now on join the next batch.
        let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = calls.get_mut(&key)
            && entry
                .pending
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &call))
        {
            entry.pending = None;
        }
    }
    let listed = client::list_containers(socket, namespace, timeout)
        .await
        .map_err(|e| go_error(&e));
    let _ = call.set(listed.clone());
    listed
}

type Listed = Result<Vec<CtrContainer>, String>;

/// Per (socket, namespace, timeout): the batch of requests waiting for a call that has not
/// started, and the turn of calls.
#[derive(Default)]
struct Calls {
    pending: Option<Arc<OnceLock<Listed>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

type Key = (PathBuf, String, Duration);

static CALLS: LazyLock<Mutex<HashMap<Key, Calls>>> = LazyLock::new(Default::default);

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
