//! `verify`: build the source from the flags, run the verification stage (`crate::verify`),
//! print what it found.
//!
//! Exit codes: 0 labelled; 6 not labelled; 2 for a file that does not exist, a directory, a
//! device or a socket, or an unusable URL; 1 when the source cannot be read (unreachable
//! endpoint, HTTP error, corrupt gzip, or no end of input within `--timeout`, for a URL, a file,
//! a FIFO or stdin alike): an unreadable source proves nothing about the labels, so it is not a
//! verification failure.
//!
//! `--prometheus` (the last hop, `crate::verify::prometheus`): 0 when Prometheus has our targets
//! up on every node and answers a query by pod/namespace/container; 6 naming the first broken
//! step; 1 when Prometheus' API cannot be read; 3 when `auto` finds no Prometheus or several.

use serde::Serialize;

use super::Context;
use crate::cluster::diagnose::Registration;
use crate::error::ExitCode;
use crate::metrics::{self, Verdict};
use crate::settings::{PrometheusTarget, VerifySettings};
use crate::ui::{Human, Report, Ui};
use crate::verify::prometheus::{self, Endpoint, PrometheusOptions, PrometheusVerification};
use crate::verify::{self, Outcome, Source, Verification, VerifyOptions};

/// How many pods the human summary names before "and N more".
const PODS_SHOWN: usize = 5;

pub async fn run(ctx: &Context, args: VerifySettings) -> super::Result<ExitCode> {
    if let Some(target) = &args.prometheus {
        return run_prometheus(ctx, &args, target).await;
    }
    let source = match (&args.metrics_url, &args.metrics_file) {
        (Some(url), _) => Source::Url(url.clone()),
        (None, Some(path)) => Source::file(path),
        (None, None) => return run_cluster(ctx, args).await,
    };
    let report = source.scan(args.timeout).await?;
    let outcome = Outcome::new(source, report);
    Ok(ctx.ui.report(&scanned(outcome)))
}

/// `verify` without `--metrics-url`/`--metrics-file`: every node through the API server.
async fn run_cluster(ctx: &Context, args: VerifySettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let opts = VerifyOptions {
        concurrency: args.parallel,
        ..VerifyOptions::new(
            args.namespace.as_str(),
            args.daemonset.as_str(),
            args.timeout,
        )
    };
    // `cadvisor` and the DaemonSets of the other node groups install made (by our label).
    let mut names = vec![opts.daemonset.clone()];
    if opts.daemonset == crate::plan::NAME {
        let prefix = format!("{}-", crate::plan::NAME);
        let ours = crate::cluster::status::our_daemonsets(&cluster, &opts.namespace)
            .await
            .unwrap_or_default();
        names.extend(
            ours.into_iter()
                .map(|o| o.name)
                .filter(|n| n.starts_with(&prefix)),
        );
    }
    let spinner = crate::ui::progress::spinner(
        &ctx.ui,
        format!("verifying DaemonSet {}/{}", opts.namespace, opts.daemonset),
    );
    let each = names.into_iter().map(|daemonset| VerifyOptions {
        daemonset,
        ..opts.clone()
    });
    let results = verify_each(&cluster, each.collect(), &spinner).await;
    spinner.finish_and_clear();
    let mut all = Vec::new();
    for result in results {
        let verification = result?;
        record(ctx, &cluster, &verification).await;
        all.push(verification);
    }
    let Some(verification) = Verification::merge(all) else {
        return super::error::Failure::err(ExitCode::Unexpected, "nothing was verified");
    };
    Ok(ctx.ui.report(&verified(verification)))
}

/// Verifies every DaemonSet of `each` at once, sharing the bound on nodes checked at a time
/// (each one's `concurrency`); with several, the spinner names the DaemonSet of each message.
pub(super) async fn verify_each(
    cluster: &crate::cluster::Cluster,
    each: Vec<VerifyOptions>,
    spinner: &indicatif::ProgressBar,
) -> Vec<Result<Verification, crate::cluster::ClusterError>> {
    let count = each.len();
    let several = count > 1;
    let checks = each.into_iter().map(|mut opts| {
        if several {
            opts.concurrency = (opts.concurrency / count).max(1);
        }
        async move {
            verify::verify(cluster, &opts, |msg| {
                if several {
                    spinner.set_message(format!("{}: {msg}", opts.daemonset));
                } else {
                    spinner.set_message(msg.to_string());
                }
            })
            .await
        }
    });
    futures::future::join_all(checks).await
}

/// `verify --prometheus`: what the cluster runs, against what Prometheus shows.
async fn run_prometheus(
    ctx: &Context,
    args: &VerifySettings,
    target: &PrometheusTarget,
) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let endpoint = match target {
        PrometheusTarget::Url(url) => Endpoint::Url { url: url.clone() },
        PrometheusTarget::Operator(choice) => {
            let (endpoint, id) = prometheus::operator::endpoint(&cluster, choice).await?;
            ctx.ui
                .verbose(format!("asking Prometheus {id} at {}", endpoint.describe()));
            endpoint
        }
    };
    let opts = PrometheusOptions::new(
        endpoint,
        args.namespace.as_str(),
        args.daemonset.as_str(),
        args.timeout,
    );
    let spinner = crate::ui::progress::spinner(&ctx.ui, "asking Prometheus");
    let result =
        prometheus::verify(&cluster, &opts, |msg| spinner.set_message(msg.to_string())).await;
    spinner.finish_and_clear();
    let checked = result?;
    let message = (!checked.ok).then(|| {
        format!(
            "verification through Prometheus failed: {}",
            checked.message.as_deref().unwrap_or("no reason given")
        )
    });
    Ok(ctx.ui.report(
        &Report::new(
            checked.exit_code(),
            ThroughPrometheus {
                prometheus: checked,
            },
        )
        .message(message),
    ))
}

/// `verify --prometheus`'s report body: the result under `prometheus`.
#[derive(Debug, Serialize)]
pub struct ThroughPrometheus {
    prometheus: PrometheusVerification,
}

impl Human for ThroughPrometheus {
    fn human(&self, ui: &Ui) {
        print_prometheus(ui, &self.prometheus);
    }
}

/// A verification through Prometheus for people (also install's last step).
pub fn print_prometheus(ui: &Ui, p: &PrometheusVerification) {
    ui.line(format!(
        "{} {}, job {:?}",
        ui.bold("Prometheus"),
        p.endpoint.describe(),
        p.job
    ));
    for n in &p.nodes {
        let mark = if n.health == "up" {
            ui.good("ok")
        } else {
            ui.bad("FAILED")
        };
        let url = n.scrape_url.as_deref().unwrap_or("no target");
        ui.line(format!(
            "{mark} node {} (pod {}): target {} ({url})",
            n.node, n.pod, n.health
        ));
        if let Some(e) = &n.last_error {
            ui.line(format!("  last error: {e}"));
        }
    }
    ui.line(format!("  query   {}", p.query));
    ui.line(format!("  series  {}", p.series));
    if p.ok {
        let what = match &p.subject {
            Some(s) => format!("{}/{} container {}", s.namespace, s.pod, s.container),
            None => "pods".to_string(),
        };
        ui.line(format!(
                "{} Prometheus scrapes cAdvisor on {} node(s) and answers by pod, namespace and container ({what}).",
                ui.good("PASS"),
                p.nodes.len()
            ));
    } else {
        // The explanation is the report's message (on stderr), not repeated here.
        let reason = p
            .reason
            .and_then(|r| serde_json::to_value(r).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "no running cAdvisor pod".to_string());
        ui.line(format!("{} {reason}", ui.bad("FAIL")));
    }
}

/// The cluster form's report: exit 6 with [`failure_message`] when a node failed.
fn verified(verification: Verification) -> Report<Verified> {
    let message = failure_message(&verification);
    Report::new(verification.exit_code(), Verified { verification }).message(message)
}

/// `verify`'s report body in the cluster form: the per-node result under `verification`
/// (recording the result on the DaemonSet is not a change: never `changed`).
#[derive(Debug, Serialize)]
pub struct Verified {
    verification: Verification,
}

impl Human for Verified {
    fn human(&self, ui: &Ui) {
        print_human(ui, &self.verification);
    }
}

/// The `message` of a failed cluster verification (also install's), `None` when it passed.
pub fn failure_message(v: &Verification) -> Option<String> {
    if v.ok {
        return None;
    }
    if v.nodes.is_empty() {
        return Some(format!(
            "verification failed: DaemonSet {}/{} has no pods",
            v.namespace, v.daemonset
        ));
    }
    let failed = v.nodes.iter().filter(|n| !n.passed).count();
    Some(format!(
        "verification failed on {failed} of {} node(s)",
        v.nodes.len()
    ))
}

/// The file/URL form's report: exit 6 with a message when no series carries a pod label.
fn scanned(outcome: Outcome) -> Report<Scanned> {
    let message = (!outcome.passed()).then(|| {
        "verification failed: no series carries a pod label (container_label_io_kubernetes_pod_name)"
            .to_string()
    });
    Report::new(outcome.exit_code(), Scanned(outcome)).message(message)
}

/// `verify`'s report body in the file/URL form: `source`, `verdict`, `diagnosis`, `warnings`
/// and `scan` at the top level.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Scanned(Outcome);

/// Records the result on the DaemonSet ([`verify::record`]); a failure to record is only
/// mentioned with `--verbose`: the verification itself stands.
pub async fn record(ctx: &Context, cluster: &crate::cluster::Cluster, v: &Verification) {
    if let Err(e) = verify::record(cluster, v).await {
        ctx.ui
            .verbose(format!("could not record the verification result: {e}"));
    }
}

/// A file or URL verification for people.
impl Human for Scanned {
    fn human(&self, ui: &Ui) {
        let outcome = &self.0;
        let s = &outcome.scan;
        let compressed = if s.gzip { ", gzip" } else { "" };
        ui.line(format!(
            "{} {} ({}{compressed})",
            ui.bold("Metrics from"),
            outcome.source.describe(),
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
        for warning in &outcome.warnings {
            ui.line(format!("{} {warning}", ui.warn("warning:")));
        }
        if outcome.passed() {
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
        if let Some(diagnosis) = &outcome.diagnosis {
            ui.line(format!("  {diagnosis}"));
        }
    }
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

fn pods(n: usize) -> String {
    if n == 1 {
        "1 pod".to_string()
    } else {
        format!("{n} pods")
    }
}

/// The per-node report for people.
pub fn print_human(ui: &Ui, v: &Verification) {
    if v.nodes.is_empty() {
        ui.line(format!(
            "{} DaemonSet {}/{} has no pods: no node to verify",
            ui.bad("FAILED"),
            v.namespace,
            v.daemonset
        ));
    }
    for n in &v.nodes {
        if n.passed {
            let baseline = match &n.kubelet_error {
                // The node proxy was refused (e.g. `400 BadRequest: address not allowed` for a
                // loopback node address): the kubelet reported nothing, not "0 pods".
                Some(_) => "the kubelet baseline was unavailable".to_string(),
                None => format!(
                    "the kubelet reports {} with containers",
                    pods(n.kubelet_pods.len())
                ),
            };
            ui.line(format!(
                "{} node {}: {} labelled ({baseline})",
                ui.good("ok"),
                n.node,
                pods(n.labelled_pods.len()),
            ));
            ui.verbose(format!("  labelled: {}", n.labelled_pods.join(", ")));
            if let Some(e) = &n.kubelet_error {
                ui.line(format!(
                    "  {} kubelet baseline unavailable ({e}); judged on labels alone",
                    ui.warn("note:")
                ));
            }
            continue;
        }
        let node = if n.node.is_empty() { "?" } else { &n.node };
        let what = match (&n.error, n.verdict) {
            (Some(e), _) => e.clone(),
            (None, Some(Verdict::IdOnly)) => format!(
                "cAdvisor's {} container series carry only `id`, no pod labels: its containerd factory did not register",
                n.id_only_series
            ),
            (None, Some(Verdict::Labelled)) => format!(
                "{} of {} kubelet pods are not labelled",
                n.missing.len(),
                n.kubelet_pods.len()
            ),
            (None, Some(other)) => format!("unexpected metrics from pod {}: {other:?}", n.pod),
            (None, None) => "not checked".to_string(),
        };
        ui.line(format!(
            "{} node {node} (pod {}): {what}",
            ui.bad("FAILED"),
            n.pod
        ));
        if !n.missing.is_empty() {
            ui.line(format!("  missing: {}", n.missing.join(", ")));
        }
        if let Some(e) = &n.kubelet_error {
            ui.line(format!("  kubelet baseline unavailable: {e}"));
        }
        match &n.registration {
            Some(Registration::Failed(line)) | Some(Registration::Succeeded(line)) => {
                ui.line(format!("  log: {line}"))
            }
            Some(Registration::Absent) => ui.line(
                "  log: no containerd factory registration line (cAdvisor still starting, or an old version)",
            ),
            None => {}
        }
        for p in &n.manifest_problems {
            ui.line(format!("  manifest: {p}"));
        }
    }
    if v.ok {
        ui.line(format!(
            "{} every node's cAdvisor labels its pods (container_label_io_kubernetes_pod_name)",
            ui.good("verified:")
        ));
    } else {
        // No failing node could be read at all: their labels are unknown, and the reason is
        // each node's error (a pod not listening on its declared port, a proxy refused).
        let unread = v
            .nodes
            .iter()
            .filter(|n| !n.passed)
            .all(|n| n.error.is_some());
        let fix = if unread {
            "Fix what each failing node names: its cAdvisor could not be read, so its labels are unknown"
        } else {
            "Fix: `cadvisor-setup install` mounts containerd's socket directory and passes --containerd"
        };
        ui.line(format!(
            "{} after {:.0}s ({} attempts). {fix}",
            ui.bad("verification failed"),
            v.elapsed_seconds,
            v.attempts
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::report::envelope_collisions;
    use crate::verify::nodes::NodeResult;

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

    fn scan(text: &str) -> metrics::ScanReport {
        metrics::scan(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_file_form_is_failed_with_a_message_only_without_pod_labels() {
        let labelled = "m{container_label_io_kubernetes_pod_name=\"p\",id=\"/x\"} 1\n";
        let pass = scanned(Outcome::new(Source::Stdin, scan(labelled)));
        assert!(pass.ok() && pass.message_text().is_none());
        assert!(envelope_collisions(pass.body()).is_empty());
        let doc = serde_json::to_value(&pass).unwrap();
        assert_eq!(doc["exit_code"], 0);
        assert_eq!(doc["verdict"], "labelled");
        assert_eq!(doc["source"]["kind"], "stdin");

        let fail = scanned(Outcome::new(Source::Stdin, scan("m{id=\"/x\"} 1\n")));
        assert_eq!(fail.exit_code(), ExitCode::Verification);
        assert!(!fail.ok() && !fail.is_changed());
        assert!(
            fail.message_text()
                .unwrap()
                .contains("no series carries a pod label")
        );
        let doc = serde_json::to_value(&fail).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["verdict"], "id-only");
    }

    fn node(name: &str, passed: bool) -> NodeResult {
        NodeResult {
            passed,
            ..NodeResult::unchecked(name.into(), format!("cadvisor-{name}"), 1)
        }
    }

    fn verification(nodes: Vec<NodeResult>) -> Verification {
        Verification {
            ok: !nodes.is_empty() && nodes.iter().all(|n| n.passed),
            namespace: "cadvisor".into(),
            daemonset: "cadvisor".into(),
            nodes,
            attempts: 1,
            elapsed_seconds: 0.5,
        }
    }

    #[test]
    fn the_cluster_form_counts_the_failed_nodes_in_its_message() {
        let pass = verified(verification(vec![node("a", true)]));
        assert!(pass.ok() && pass.message_text().is_none());
        assert!(envelope_collisions(pass.body()).is_empty());
        let doc = serde_json::to_value(&pass).unwrap();
        assert_eq!(doc["verification"]["nodes"][0]["node"], "a");
        assert_eq!(doc["changed"], false);

        let fail = verified(verification(vec![node("a", true), node("b", false)]));
        assert_eq!(fail.exit_code(), ExitCode::Verification);
        assert_eq!(
            fail.message_text(),
            Some("verification failed on 1 of 2 node(s)")
        );
        let none = verified(verification(vec![]));
        assert_eq!(
            none.message_text(),
            Some("verification failed: DaemonSet cadvisor/cadvisor has no pods")
        );
    }
}
