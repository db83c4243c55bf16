//! Everything that talks to the API server (kube-rs): client, apply, rollout, proxy, uninstall.
//! Never reads host files itself: the kubeconfig path comes in from `host::kubeconfig`.

pub mod client;
pub mod node;

use crate::error::{Classify, ExitCode};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kubeconfig {path} is not usable: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("cannot reach the API server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("the API server at {server} rejected our credentials (401): {reason}")]
    Unauthorized { server: String, reason: String },
    #[error("forbidden (403): {reason}")]
    Forbidden { reason: String },
    #[error("API request failed: {0}")]
    Api(String),
}

impl Classify for ClusterError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ClusterError::Kubeconfig { .. }
            | ClusterError::Unreachable { .. }
            | ClusterError::Unauthorized { .. }
            | ClusterError::Forbidden { .. } => ExitCode::Cluster,
            ClusterError::Api(_) => ExitCode::Unexpected,
        }
    }
}
