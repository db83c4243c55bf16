//! Builds a kube client from a kubeconfig file (MicroK8s' `client.config` uses client
//! certificates; rustls verifies the server against the kubeconfig's CA).

use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterError;

/// A connected client and the server it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub server: String,
}

/// Reads `path` and builds a client. Does not contact the server.
pub async fn connect(path: &Path) -> Result<Cluster, ClusterError> {
    let shown = path.display().to_string();
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| ClusterError::Kubeconfig {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Kubeconfig {
        path: shown,
        reason: e.to_string(),
    })?;
    Ok(Cluster { client, server })
}

/// Maps a kube error to what it means for the user (exit 4 for the connection and auth cases).
pub fn classify(server: &str, err: kube::Error) -> ClusterError {
    match err {
        kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized {
            server: server.to_string(),
            reason: status.message,
        },
        kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
            reason: status.message,
        },
        kube::Error::Api(status) => ClusterError::Api(format!(
            "{} ({}): {}",
            status.reason, status.code, status.message
        )),
        kube::Error::HyperError(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        kube::Error::Service(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        other => ClusterError::Api(other.to_string()),
    }
}
