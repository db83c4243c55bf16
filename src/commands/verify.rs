//! `verify`: do cAdvisor's metrics carry pod labels?
//!
//! Three sources, one criterion (at least one series with a non-empty
//! `container_label_io_kubernetes_pod_name`):
//! - `--metrics-file PATH` (`-` for stdin): a saved scrape, plain or gzip;
//! - `--metrics-url URL`: one plain-HTTP endpoint, e.g. a port-forwarded cAdvisor;
//! - neither: every node through the API server ([`super::verify_cluster`]).
//!
//! Exit codes: 0 labelled; 6 not labelled; 2 for a file that does not exist, a directory, a
//! device or a socket, or an unusable URL; 1 when the source cannot be read (unreachable
//! endpoint, HTTP error, corrupt gzip, or no end of input within `--timeout`, for a URL, a file,
//! a FIFO or stdin alike): an unreadable source proves nothing about the labels, so it is not a
//! verification failure.

mod http;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use http::FetchError;

use super::Context;
use super::error::{Error, ResultExt as _};
use super::error::{Failure, UsageError};
use crate::error::ExitCode;
use crate::input::FileKind;
use crate::metrics::{self, ScanReport, Verdict};
use crate::settings::VerifySettings;
use crate::ui::Ui;

/// How many pods the human summary names before "and N more".
const PODS_SHOWN: usize = 5;

pub async fn run(ctx: &Context, args: VerifySettings) -> super::Result<ExitCode> {
    let (source, report) = match (&args.metrics_url, &args.metrics_file) {
        (Some(url), _) => (
            Source::Url(url.clone()),
            http::scan_url(url, args.timeout).await?,
        ),
        (None, Some(path)) => {
            let source = Source::file(path);
            let report = scan_file(path.clone(), args.timeout).await?;
            (source, report)
        }
        (None, None) => return super::verify_cluster::run(ctx, args).await,
    };
    let outcome = Outcome::new(source, report);
    outcome.print(&ctx.ui);
    Ok(outcome.exit_code)
}

/// Where the metrics came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "location", rename_all = "lowercase")]
pub enum Source {
    File(PathBuf),
    Stdin,
    Url(String),
}

impl Source {
    fn file(path: &Path) -> Source {
        if path == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(path.to_path_buf())
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "stdin".to_string(),
            Source::Url(url) => url.clone(),
        }
    }
}

/// Scans a file, a FIFO or stdin on a thread of its own, for at most `timeout`.
///
/// A FIFO or stdin may never end (or never get a writer: opening a FIFO blocks until one comes),
/// so the read is bounded by `--timeout` like a URL. The reading thread is a plain detached
/// thread, not tokio's `spawn_blocking`: the runtime waits for its blocking tasks when it shuts
/// down (docs.rs/tokio `Runtime::shutdown_background`: "dropping a runtime will block
/// indefinitely for spawned blocking tasks to complete"), whereas a detached thread ends with
/// the process. The scanner reads incrementally,
/// so memory stays flat whatever the stream's length.
async fn scan_file(path: PathBuf, timeout: Duration) -> super::Result<ScanReport> {
    let stdin = path == Path::new("-");
    if !stdin {
        check_path(&path)?;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reader_path = path.clone();
    std::thread::Builder::new()
        .name("metrics-file".into())
        .spawn(move || {
            let result = if stdin {
                metrics::scan(std::io::stdin().lock()).map_err(Error::from)
            } else {
                scan_path(&reader_path)
            };
            // The receiver is gone after a timeout: nobody wants the result any more.
            let _ = tx.send(result);
        })
        .context("cannot start the thread that reads --metrics-file")?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::msg(format!(
            "the thread reading --metrics-file {} stopped without a result",
            path.display()
        ))),
        Err(_) => Err(Failure::new(
            ExitCode::Unexpected,
            format!(
                "reading --metrics-file {} timed out after {}: the input did not end (a FIFO or \
                 stdin whose writer has not finished, or has not started); raise --timeout, or \
                 save the scrape to a file first",
                Source::file(&path).describe(),
                human_duration(timeout)
            ),
        )
        .into()),
    }
}

/// What `--metrics-file` may be: a regular file, or a FIFO (a stream like stdin). A directory,
/// a device or a socket is a usage error (exit 2), found before anything is opened.
fn check_path(path: &Path) -> super::Result<()> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UsageError::new(format!(
                "--metrics-file {shown}: no such file; save a scrape first \
                 (curl -s http://127.0.0.1:8080/metrics > metrics.txt) or use `-` for stdin"
            ))
            .into());
        }
        Err(e) => {
            return Err(e).context(format!("cannot open --metrics-file {shown}"));
        }
    };
    refuse_kind(path, meta.file_type())
}

fn refuse_kind(path: &Path, file_type: std::fs::FileType) -> super::Result<()> {
    let shown = path.display();
    match FileKind::of(file_type) {
        None | Some(FileKind::Fifo) => Ok(()),
        Some(FileKind::Directory) => Err(UsageError::new(format!(
            "--metrics-file {shown} is a directory; give a file saved from cAdvisor's /metrics"
        ))
        .into()),
        Some(kind) => Err(UsageError::new(format!(
            "--metrics-file {shown} is {kind}, not a file or a FIFO; give a file saved from \
             cAdvisor's /metrics, or `-` to read stdin"
        ))
        .into()),
    }
}

/// Opens and scans a regular file or a FIFO (on the reading thread: opening a FIFO blocks until
/// a writer opens it). Checked again on the open file, in case the path changed since.
fn scan_path(path: &Path) -> super::Result<ScanReport> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
        .with_context(|| format!("cannot open --metrics-file {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot open --metrics-file {shown}"))?;
    refuse_kind(path, meta.file_type())?;
    metrics::scan(file).with_context(|| format!("scanning {shown}"))
}

/// `60s`, `1.5s`, `250ms`.
fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The result of a file or URL verification: what `-o json` prints.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub changed: bool,
    pub exit_code: ExitCode,
    pub source: Source,
    pub verdict: Verdict,
    /// What is wrong and what to do, when not `ok`.
    pub diagnosis: Option<String>,
    /// Remarks that do not decide the outcome (malformed or overlong lines, truncated lists).
    pub warnings: Vec<String>,
    pub scan: ScanReport,
}

impl Outcome {
    pub fn new(source: Source, scan: ScanReport) -> Outcome {
        let ok = scan.passed();
        let verdict = scan.verdict();
        Outcome {
            ok,
            changed: false,
            exit_code: if ok {
                ExitCode::Success
            } else {
                ExitCode::Verification
            },
            diagnosis: diagnosis(&scan),
            warnings: warnings(&scan),
            verdict,
            source,
            scan,
        }
    }

    fn print(&self, ui: &Ui) {
        if ui.json() {
            let mut value = serde_json::to_value(self).unwrap_or_default();
            // `exit_code` as the number Ansible compares with `rc`.
            value["exit_code"] = self.exit_code.code().into();
            ui.emit_json(&value);
            return;
        }
        let s = &self.scan;
        let compressed = if s.gzip { ", gzip" } else { "" };
        ui.line(format!(
            "{} {} ({}{compressed})",
            ui.bold("Metrics from"),
            self.source.describe(),
            human_bytes(s.text_bytes)
        ));
        ui.line(format!("  series            {}", s.series));
        ui.line(format!(
            "  container series  {}  (with an `id` label)",
            s.container_series
        ));
        ui.line(format!(
            "  pod-labelled      {}  (non-empty container_label_io_kubernetes_pod_name)",
            s.labelled_series
        ));
        ui.line(format!("  id only           {}", s.id_only_series));
        if s.kubelet_labelled_series > 0 {
            ui.line(format!(
                "  kubelet-labelled  {}  (pod/namespace/container: the kubelet's format)",
                s.kubelet_labelled_series
            ));
        }
        let pods = if s.pods.is_empty() {
            &s.pods_kubelet_format
        } else {
            &s.pods
        };
        if !pods.is_empty() {
            ui.line(format!(
                "  pods              {}: {}",
                pods.len(),
                pod_list(pods)
            ));
        }
        for warning in &self.warnings {
            ui.line(format!("{} {warning}", ui.warn("warning:")));
        }
        if self.ok {
            ui.line(format!(
                "{} {} series carry pod labels, from {} pod(s).",
                ui.good("PASS"),
                s.labelled_series,
                s.pods.len()
            ));
        } else {
            ui.line(format!(
                "{} no series carries a non-empty container_label_io_kubernetes_pod_name.",
                ui.bad("FAIL")
            ));
        }
        if let Some(diagnosis) = &self.diagnosis {
            ui.line(format!("  {diagnosis}"));
        }
    }
}

fn diagnosis(s: &ScanReport) -> Option<String> {
    match s.verdict() {
        Verdict::Labelled => None,
        Verdict::IdOnly => Some(format!(
            "{} container series carry only `id`: cAdvisor cannot reach containerd: check \
             --containerd and the socket mount; see `cadvisor-setup detect`",
            s.id_only_series
        )),
        Verdict::KubeletFormat => Some(format!(
            "these are the kubelet's /metrics/cadvisor series (labels pod, namespace, container; \
             {} pod(s)): the baseline, not cAdvisor's own /metrics; point --metrics-url at \
             cAdvisor (port 8080, path /metrics)",
            s.pods_kubelet_format.len()
        )),
        Verdict::NoContainerSeries => Some(format!(
            "{} series but none has an `id` label: these are not cAdvisor's container metrics",
            s.series
        )),
        Verdict::Empty => {
            let mut text = format!(
                "no Prometheus series found in {} line(s): is this a metrics endpoint or file?",
                s.lines
            );
            if let Some(first) = &s.first_malformed {
                text.push_str(&format!(
                    " (line {}: {}: `{}`)",
                    first.line, first.reason, first.excerpt
                ));
            }
            Some(text)
        }
    }
}

fn warnings(s: &ScanReport) -> Vec<String> {
    let mut out = Vec::new();
    // With no series at all the diagnosis already quotes the first malformed line.
    if let (n @ 1.., Some(first), 1..) = (s.malformed_lines, &s.first_malformed, s.series) {
        out.push(format!(
            "{n} malformed line(s) skipped; the first is line {}: {}",
            first.line, first.reason
        ));
    }
    if s.overlong_lines > 0 {
        out.push(format!(
            "{} line(s) longer than {} bytes skipped",
            s.overlong_lines,
            metrics::MAX_LINE
        ));
    }
    if s.pods_truncated {
        out.push(format!(
            "more than {} pods and containers: the lists are cut short",
            metrics::MAX_ENTRIES
        ));
    }
    out
}

fn pod_list(pods: &[metrics::PodSeen]) -> String {
    let mut parts: Vec<String> = pods
        .iter()
        .take(PODS_SHOWN)
        .map(|p| {
            if p.containers.is_empty() {
                format!("{}/{}", p.namespace, p.pod)
            } else {
                format!("{}/{} ({})", p.namespace, p.pod, p.containers.join(", "))
            }
        })
        .collect();
    if pods.len() > PODS_SHOWN {
        parts.push(format!("and {} more", pods.len() - PODS_SHOWN));
    }
    parts.join(", ")
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str) -> ScanReport {
        metrics::scan(text.as_bytes()).unwrap()
    }

    #[test]
    fn outcome_codes_follow_the_labels() {
        let ok = Outcome::new(
            Source::Stdin,
            report("m{container_label_io_kubernetes_pod_name=\"p\",id=\"/x\"} 1\n"),
        );
        assert!(ok.ok && ok.exit_code == ExitCode::Success && ok.diagnosis.is_none());
        let bad = Outcome::new(Source::Stdin, report("m{id=\"/x\"} 1\n"));
        assert_eq!(bad.exit_code, ExitCode::Verification);
        assert!(bad.diagnosis.unwrap().contains("cannot reach containerd"));
    }

    #[test]
    fn empty_input_quotes_the_first_bad_line() {
        let text = diagnosis(&report("<html>\n")).unwrap();
        assert!(text.contains("line 1") && text.contains("<html>"), "{text}");
    }

    #[test]
    fn long_pod_lists_are_cut() {
        let pods: Vec<_> = (0..8)
            .map(|i| metrics::PodSeen {
                namespace: "ns".into(),
                pod: format!("p{i}"),
                containers: vec![],
            })
            .collect();
        assert!(pod_list(&pods).ends_with("ns/p4, and 3 more"));
    }
}
