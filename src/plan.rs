//! HostFacts + options → Plan: the cAdvisor image, flags, mounts, security and resources.
//! Pure: no I/O. (Filled in by the render work; the types below are the contract.)

use serde::Serialize;

use crate::error::{Classify, ExitCode};
use crate::host::HostFacts;

/// The newest cAdvisor release, pinned (reference/cadvisor.md §2: v0.60.5, 2026-07-11,
/// published by google/cadvisor:.github/workflows/publish-container.yml).
pub const DEFAULT_IMAGE: &str = "ghcr.io/google/cadvisor:0.60.5";
pub const DEFAULT_NAMESPACE: &str = "cadvisor";

/// Options after precedence (flag > env > file > default) was applied, see `crate::options`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanOptions {
    pub namespace: String,
    pub image: String,
    pub metrics: Option<Vec<String>>,
    pub extra_labels: Vec<String>,
    pub containerd_namespace: Option<String>,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    pub privileged: bool,
    pub service_monitor: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            namespace: DEFAULT_NAMESPACE.to_string(),
            image: DEFAULT_IMAGE.to_string(),
            metrics: None,
            extra_labels: Vec::new(),
            containerd_namespace: None,
            cpu_request: None,
            cpu_limit: None,
            memory_request: None,
            memory_limit: None,
            privileged: false,
            service_monitor: false,
        }
    }
}

/// What will be deployed. Plain data, rendered by `crate::render`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub namespace: String,
    pub image: String,
    pub args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid {field} `{value}`: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    NoRuntime(String),
}

impl Classify for PlanError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PlanError::Invalid { .. } => ExitCode::Usage,
            PlanError::NoRuntime(_) => ExitCode::Detection,
        }
    }
}

pub fn make(_facts: &HostFacts, opts: &PlanOptions) -> Result<Plan, PlanError> {
    Ok(Plan {
        namespace: opts.namespace.clone(),
        image: opts.image.clone(),
        args: Vec::new(),
    })
}
