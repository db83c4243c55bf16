//! The one top-level error type, and the one exhaustive `match` from errors to exit codes.
//!
//! Every layer keeps its own `thiserror` enum and knows nothing about exit codes (bat's
//! `src/error.rs`: one enum with `#[from]` conversions). This enum has one variant per layer
//! error, so `?` converts them, and [`Error::exit_code`] maps every variant of every layer
//! error with no wildcard: adding a variant anywhere fails to compile until it is given a code.
//! `commands` is the top of the crate, so importing every layer from here makes no cycle
//! (`crate::error` holds only [`ExitCode`]).

use crate::cluster::ClusterError;
use crate::error::ExitCode;
use crate::host::HostError;
use crate::host::containerd::ProbeError;
use crate::metrics::ScanError;
use crate::options::OptionsError;
use crate::plan::PlanError;
use crate::render::RenderError;
use crate::settings::SettingsError;
use crate::ui::prompts::PromptError;

use crate::verify::prometheus::PrometheusError;
use crate::verify::{FetchError, VerifyError};

/// What every command returns.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, environment variable or answers-file value that is not valid (exit 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The answers file or the kubeconfig flag cannot be used (exit 2).
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A command's own failure, with its code.
    #[error(transparent)]
    Failure(#[from] Failure),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// An I/O failure of the command itself (a thread, the runtime): unexpected.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// What the command was doing when `source` happened; the code is `source`'s.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The exit-code table (`ExitCode::TABLE`), for every error this crate can return.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Settings(_) | Error::Options(_) => ExitCode::Usage,
            Error::Failure(f) => f.code,
            Error::Host(e) => host(e),
            Error::Probe(e) => probe(e),
            Error::Plan(e) => plan(e),
            Error::Render(e) => render(e),
            Error::Cluster(e) => cluster(e),
            Error::Scan(e) => scan(e),
            Error::Fetch(e) => fetch(e),
            Error::Verify(e) => verify(e),
            // An API that never answered proves nothing about the labels (like --metrics-url).
            Error::Prometheus(PrometheusError::Api(_)) => ExitCode::Unexpected,
            Error::Prometheus(PrometheusError::Cluster(e)) => cluster(e),
            // Like an ambiguous detection without a prompt: name one.
            Error::Prometheus(PrometheusError::Choice(_)) => ExitCode::Detection,
            Error::Prompt(e) => prompt(e),
            Error::Io(_) => ExitCode::Unexpected,
            Error::Context { source, .. } => source.exit_code(),
        }
    }
}

fn host(e: &HostError) -> ExitCode {
    match e {
        HostError::BadHostRoot { .. } => ExitCode::Usage,
        HostError::Resolve(_)
        | HostError::Input(_)
        | HostError::Detection(_)
        | HostError::NoAnswer { .. } => ExitCode::Detection,
    }
}

fn probe(e: &ProbeError) -> ExitCode {
    match e {
        ProbeError::Connect { .. } | ProbeError::Timeout { .. } | ProbeError::Rpc { .. } => {
            ExitCode::Detection
        }
    }
}

fn plan(e: &PlanError) -> ExitCode {
    match e {
        PlanError::Invalid { .. } => ExitCode::Usage,
        PlanError::NoRuntime(_) => ExitCode::Detection,
    }
}

fn render(e: &RenderError) -> ExitCode {
    match e {
        RenderError::Template { .. }
        | RenderError::Overrides { .. }
        | RenderError::Unsafe { .. } => ExitCode::Usage,
        RenderError::Write { .. } => ExitCode::Unexpected,
    }
}

/// The code of a cluster error (also for commands that report it themselves, e.g. `install`
/// after something was applied).
pub fn cluster(e: &ClusterError) -> ExitCode {
    match e {
        ClusterError::Kubeconfig { .. }
        | ClusterError::Unreachable { .. }
        | ClusterError::Misbehaving { .. }
        | ClusterError::Unauthorized { .. }
        | ClusterError::Forbidden { .. }
        | ClusterError::NamespaceTerminating { .. } => ExitCode::Cluster,
        ClusterError::Conflict { .. }
        | ClusterError::Foreign { .. }
        | ClusterError::ForeignNodeLabel { .. }
        | ClusterError::Replaced { .. }
        | ClusterError::CreatedMeanwhile { .. }
        | ClusterError::PodSecurity { .. } => ExitCode::Conflict,
        ClusterError::Rollout(_) | ClusterError::Timeout { .. } | ClusterError::Gone { .. } => {
            ExitCode::Rollout
        }
        ClusterError::NotFound { .. } => ExitCode::Verification,
        ClusterError::Partial { source, .. } => cluster(source),
        // Ctrl-C is not in the exit-code contract (`ExitCode::TABLE`); it is "not a success and
        // nothing unexpected", reported as 1 with what was applied.
        ClusterError::Interrupted { .. } | ClusterError::Api(_) => ExitCode::Unexpected,
    }
}

fn scan(e: &ScanError) -> ExitCode {
    match e {
        // An unreadable source proves nothing about the labels: not a verification failure.
        ScanError::Read(_) | ScanError::Gzip(_) => ExitCode::Unexpected,
    }
}

fn fetch(e: &FetchError) -> ExitCode {
    match e {
        // The flag's value is wrong: a usage error.
        FetchError::BadUrl { .. } => ExitCode::Usage,
        // An endpoint that cannot be read proves nothing about the labels, so it is not a
        // verification failure (6); nor is it the cluster (4): an unexpected error (1).
        FetchError::Unreachable { .. }
        | FetchError::Status { .. }
        | FetchError::Redirects { .. }
        | FetchError::BadRedirect { .. }
        | FetchError::Timeout { .. } => ExitCode::Unexpected,
        FetchError::Scan { error, .. } => scan(error),
    }
}

fn verify(e: &VerifyError) -> ExitCode {
    match e {
        // Not a file that could hold a scrape: the flag's value is wrong.
        VerifyError::NoSuchFile { .. }
        | VerifyError::Directory { .. }
        | VerifyError::NotAFile { .. } => ExitCode::Usage,
        VerifyError::Fetch(e) => fetch(e),
        VerifyError::Scan { error, .. } => scan(error),
        VerifyError::Open { .. }
        | VerifyError::Thread(_)
        | VerifyError::ReaderGone { .. }
        | VerifyError::Timeout { .. } => ExitCode::Unexpected,
    }
}

fn prompt(e: &PromptError) -> ExitCode {
    match e {
        // No consent, like declining at the confirmation (exit 2, nothing changed).
        PromptError::Cancelled => ExitCode::Usage,
        PromptError::Invalid(e) => plan(e),
        PromptError::Terminal(_) => ExitCode::Unexpected,
    }
}

/// `.context(..)` / `.with_context(..)` for any result whose error converts into [`Error`]
/// (anyhow's spelling, without losing the exit code of the cause).
pub trait ResultExt<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.with_context(|| context)
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().into(),
            source: Box::new(e.into()),
        })
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

    /// `Err` of a new [`Failure`]: `return Failure::err(code, message)`.
    pub fn err<T>(code: ExitCode, message: impl Into<String>) -> Result<T> {
        Err(Failure::new(code, message).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemonset_deleted_during_the_rollout_is_a_rollout_failure() {
        let gone = ClusterError::Gone {
            object: "DaemonSet cadvisor/cadvisor".into(),
            doing: "waiting for its rollout".into(),
        };
        assert_eq!(Error::from(gone).exit_code(), ExitCode::Rollout);
    }

    #[test]
    fn context_keeps_the_code_of_its_cause() {
        let r: std::result::Result<(), PlanError> = Err(PlanError::NoRuntime("none".into()));
        let e = r.context("planning").unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Detection);
        assert_eq!(e.to_string(), "planning");
    }

    #[test]
    fn partial_failures_keep_the_code_of_what_failed() {
        let e = ClusterError::Partial {
            applied: "Namespace cadvisor".into(),
            not_applied: "DaemonSet cadvisor/cadvisor".into(),
            source: Box::new(ClusterError::Forbidden {
                reason: "no".into(),
            }),
        };
        assert_eq!(Error::from(e).exit_code(), ExitCode::Cluster);
    }

    /// The layers below `commands` and `ui` (no layer imports a higher one: the stages never talk to the terminal or know the order of stages):
    /// the stages, and the value checks they share, never import `commands` or `ui`.
    #[test]
    fn no_lower_layer_imports_commands_or_ui() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut checked = 0;
        for layer in [
            "host", "plan", "render", "cluster", "metrics", "validate", "input", "error",
            "settings", "options", "deadline",
        ] {
            let mut files = Vec::new();
            for candidate in [src.join(format!("{layer}.rs")), src.join(layer)] {
                collect_rs(&candidate, &mut files);
            }
            assert!(!files.is_empty(), "no source for layer {layer}");
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                checked += 1;
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    let bad = imports_higher(code);
                    if bad {
                        offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(checked > 20, "only {checked} files checked");
        assert!(
            offenders.is_empty(),
            "lower layers import commands or ui:\n{}",
            offenders.join("\n")
        );
    }

    /// Whether a line of code names `crate::commands` or `crate::ui`, in any `use` spelling.
    fn imports_higher(line: &str) -> bool {
        let compact: String = line.split_whitespace().collect();
        let grouped = compact.starts_with("usecrate::{") || compact.starts_with("pubusecrate::{");
        ["commands", "ui"].iter().any(|high| {
            compact.contains(&format!("crate::{high}::"))
                || compact.contains(&format!("crate::{high};"))
                || compact.contains(&format!("crate::{{{high}"))
                || (grouped
                    && [",", "}", "::"]
                        .iter()
                        .any(|after| compact.contains(&format!(",{high}{after}"))))
        })
    }

    fn collect_rs(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for entry in entries {
                collect_rs(&entry, out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    #[test]
    fn the_layer_check_sees_every_spelling_of_an_import() {
        let bad = imports_higher;
        assert!(bad("use crate::commands::error::Error;"));
        assert!(bad("use crate::ui;"));
        assert!(bad("use crate::{host, ui};"));
        assert!(bad("use crate::{ui::Ui, host};"));
        assert!(bad("let x = crate::ui::escape::escape_controls(s);"));
        assert!(!bad("use crate::host::HostRoot;"));
        assert!(!bad("use crate::{plan, render};"));
    }
}
