//! Exit codes, and the one place where an error becomes one.
//!
//! Every layer has its own `thiserror` enum; each implements [`Classify`] so `main` can map the
//! outermost cause that knows its code to the process exit status (ripgrep/bat style: errors are
//! values until the edge).

use std::fmt;

/// The process exit codes, the contract of `../shared/design.md` §5 and of the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitCode {
    /// 0: success (install: applied, rolled out, verified).
    Success,
    /// 1: unexpected error.
    Unexpected,
    /// 2: usage error (bad flag or value, or consent missing).
    Usage,
    /// 3: detection failed or ambiguous, and no prompt was allowed.
    Detection,
    /// 4: cluster unreachable, unauthenticated or forbidden.
    Cluster,
    /// 5: rollout failed or timed out.
    Rollout,
    /// 6: verification failed: metrics lack the pod labels.
    Verification,
    /// 7: conflict: objects owned by another field manager.
    Conflict,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Unexpected => 1,
            ExitCode::Usage => 2,
            ExitCode::Detection => 3,
            ExitCode::Cluster => 4,
            ExitCode::Rollout => 5,
            ExitCode::Verification => 6,
            ExitCode::Conflict => 7,
        }
    }

    /// The table printed by `--help` and the README.
    pub const TABLE: &'static str = "\
EXIT CODES:
  0  success (install: applied, rolled out and verified)
  1  unexpected error
  2  usage error or no consent: a bad flag or value, --yes missing without a
     terminal, or declined at the prompt (nothing was changed)
  3  detection failed or is ambiguous and no prompt was allowed
  4  cluster unreachable, unauthenticated or forbidden
  5  rollout failed or timed out
  6  verification failed: cAdvisor's metrics lack the pod labels
  7  conflict: objects are owned by another field manager (use --force)";
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Implemented by every layer's error type: which exit code it means.
pub trait Classify {
    fn exit_code(&self) -> ExitCode;
}

/// A bad value given by the user (exit 2), found after clap has parsed the flags.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
        }
    }
}

impl Classify for UsageError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Usage
    }
}

/// An error that already carries its exit code, for the commands layer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl Classify for Failure {
    fn exit_code(&self) -> ExitCode {
        self.code
    }
}

/// Walks the cause chain and returns the code of the first cause that knows one.
///
/// Each layer registers its error type here; an unknown error is exit 1.
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Failure>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<UsageError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::host::HostError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::host::containerd::ProbeError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::render::RenderError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::plan::PlanError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::metrics::ScanError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::verify::VerifyError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::verify::FetchError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::ui::prompts::PromptError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::options::OptionsError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::cluster::ClusterError>() {
            return e.exit_code();
        }
    }
    ExitCode::Unexpected
}
