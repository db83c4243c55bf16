//! The outcome of a file, stdin or URL verification: a scan judged on its own (there is no
//! kubelet baseline for a saved scrape), with what is wrong and what to do.

use serde::Serialize;

use super::Source;
use crate::error::ExitCode;
use crate::metrics::{self, ScanReport, Verdict};

/// The body of `verify --metrics-file/--metrics-url`'s report (`commands::verify` wraps it in
/// the envelope, whose `ok` and `exit_code` come from [`Outcome::exit_code`]).
#[derive(Debug, Serialize)]
pub struct Outcome {
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
        let verdict = scan.verdict();
        Outcome {
            diagnosis: diagnosis(&scan),
            warnings: warnings(&scan),
            verdict,
            source,
            scan,
        }
    }

    /// Whether some series carries a pod label.
    pub fn passed(&self) -> bool {
        self.scan.passed()
    }

    /// 0 when [`Outcome::passed`], else 6.
    pub fn exit_code(&self) -> ExitCode {
        if self.passed() {
            ExitCode::Success
        } else {
            ExitCode::Verification
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
             {} pod(s)): the baseline, not cAdvisor's own /metrics; read cAdvisor's instead \
             (port 8080, path /metrics: --metrics-url, or a file saved from it)",
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
        assert!(ok.passed() && ok.exit_code() == ExitCode::Success && ok.diagnosis.is_none());
        let bad = Outcome::new(Source::Stdin, report("m{id=\"/x\"} 1\n"));
        assert!(!bad.passed());
        assert_eq!(bad.exit_code(), ExitCode::Verification);
        assert!(bad.diagnosis.unwrap().contains("cannot reach containerd"));
    }

    #[test]
    fn empty_input_quotes_the_first_bad_line() {
        let text = diagnosis(&report("<html>\n")).unwrap();
        assert!(text.contains("line 1") && text.contains("<html>"), "{text}");
    }

    #[test]
    fn the_real_kubelet_scrape_is_named_as_the_baseline() {
        let kubelet = include_str!("../../tests/fixtures/kubelet-metrics-cadvisor.prom");
        let outcome = Outcome::new(Source::Stdin, report(kubelet));
        assert_eq!(outcome.verdict, Verdict::KubeletFormat);
        assert!(outcome.diagnosis.unwrap().contains("the baseline"));
    }
}
