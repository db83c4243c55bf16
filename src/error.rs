//! Exit codes: the contract printed by `--help` and listed in the README; and [`chain`] and
//! [`first_line`], the text of an error with its causes or without its hints, which several
//! layers need.
//!
//! Which error means which code is decided in one place, `crate::commands::error::Error::exit_code`
//! (one exhaustive `match` over every layer's error); this module sits below every layer, so
//! any of them may name an [`ExitCode`] without importing a higher one.

use std::fmt;

/// `err` and its causes joined with `: `, each left out when an earlier text already holds it:
/// hyper's and kube's own text is only "client error (Connect)", the cause (refused,
/// certificate unknown) sits at the end of the chain.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in std::iter::successors(Some(err), |e| e.source()) {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The first line of `err`'s text: the reason alone, without the hints a message carries under
/// it (or a parser's snippet of the input).
pub fn first_line(err: &dyn fmt::Display) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The process exit codes, the contract of `--help` (`ExitCode::TABLE`) and of the README.
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
  1  unexpected error; also a metrics URL or a Prometheus that cannot be read
     (it proves nothing either way), and Ctrl-C while waiting
  2  usage error or no consent: a bad flag or value, --yes missing without a
     terminal, or declined at the prompt (nothing was changed)
  3  detection failed or is ambiguous and no prompt was allowed, or the
     Prometheus asked for cannot be found or cannot select our ServiceMonitor
  4  cluster unreachable, unauthenticated or forbidden, or no usable kubeconfig
  5  rollout failed or timed out
  6  verification failed: cAdvisor's metrics lack the pod labels (or Prometheus
     does not see them, or the DaemonSet to verify does not exist)
  7  conflict: objects are owned by another field manager (use --force)";
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}
