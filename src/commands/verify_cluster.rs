//! `verify` through the API server, and the last stage of `install`.
//!
//! For every node running a pod of cAdvisor's DaemonSet: scan that pod's `/metrics` (pod proxy)
//! and the kubelet's `/metrics/cadvisor` (node proxy). A node passes when every pod the kubelet
//! reports with containers there appears in cAdvisor's metrics with
//! `container_label_io_kubernetes_pod_name` (design §4). cAdvisor needs a housekeeping interval
//! before new containers show up, so failing nodes are retried with backoff until `--timeout`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;

use super::Context;
use crate::cluster::diagnose::{self, Registration};
use crate::cluster::{self, Cluster, ClusterError, proxy, rollout};
use crate::error::ExitCode;
use crate::metrics::{self, ScanReport, Verdict};
use crate::settings::VerifySettings;

/// The kubelet's pseudo-container of a pod's sandbox in `/metrics/cadvisor` (older kubelets).
const SANDBOX_CONTAINER: &str = "POD";

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub namespace: String,
    pub daemonset: String,
    pub timeout: Duration,
    /// The containerd socket detection found (host path), for the manifest diagnosis.
    pub expected_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub namespace: String,
    pub daemonset: String,
    pub nodes: Vec<NodeResult>,
    pub attempts: u32,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    pub node: String,
    pub pod: String,
    pub passed: bool,
    /// `namespace/pod` named by `container_label_io_kubernetes_pod_name` in cAdvisor's metrics.
    pub labelled_pods: Vec<String>,
    /// `namespace/pod` with containers in the kubelet's `/metrics/cadvisor`.
    pub kubelet_pods: Vec<String>,
    /// Kubelet pods cAdvisor does not label.
    pub missing: Vec<String>,
    pub verdict: Option<Verdict>,
    pub labelled_series: u64,
    pub id_only_series: u64,
    /// Why this node could not be checked (pod not running, proxy error).
    pub error: Option<String>,
    /// Set when the kubelet baseline could not be read (the node is then judged on labels alone).
    pub kubelet_error: Option<String>,
    /// On failure: the containerd factory registration line of the pod log.
    pub registration: Option<Registration>,
    /// On failure: what is wrong with the DaemonSet's `--containerd` flag and mounts.
    pub manifest_problems: Vec<String>,
}

/// `verify` without `--metrics-url`/`--metrics-file`.
pub async fn run(ctx: &Context, args: VerifySettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let opts = VerifyOptions {
        namespace: args.namespace.to_string(),
        daemonset: args.daemonset.to_string(),
        timeout: args.timeout,
        expected_socket: None,
    };
    let spinner = crate::ui::progress::spinner(
        &ctx.ui,
        format!("verifying DaemonSet {}/{}", opts.namespace, opts.daemonset),
    );
    let result = verify(&cluster, &opts, |msg| spinner.set_message(msg.to_string())).await;
    spinner.finish_and_clear();
    let verification = result?;
    record(ctx, &cluster, &verification).await;
    if ctx.ui.json() {
        ctx.ui.emit_json(&serde_json::json!({
            "ok": verification.ok,
            "changed": false,
            "exit_code": code_of(&verification).code(),
            "verification": verification,
        }));
    } else {
        print_human(ctx, &verification);
    }
    Ok(code_of(&verification))
}

pub fn code_of(v: &Verification) -> ExitCode {
    if v.ok {
        ExitCode::Success
    } else {
        ExitCode::Verification
    }
}

/// Stores the result on the DaemonSet when we installed it (never on a hand-made install).
///
/// Written only when the result differs from the stored one (ok, nodes, passed), so a rerun that
/// changes nothing leaves every resourceVersion as it was; `time` is when this result was first
/// seen.
pub async fn record(ctx: &Context, cluster: &Cluster, v: &Verification) {
    let stored = match cluster::status::daemonset(cluster, &v.namespace, &v.daemonset).await {
        Ok(Some(ds)) if ds.ours => ds.last_verification,
        _ => return,
    };
    let passed = v.nodes.iter().filter(|n| n.passed).count();
    let same = stored.as_ref().is_some_and(|s| {
        s.get("ok") == Some(&serde_json::json!(v.ok))
            && s.get("nodes") == Some(&serde_json::json!(v.nodes.len()))
            && s.get("passed") == Some(&serde_json::json!(passed))
    });
    if same {
        return;
    }
    let value = serde_json::json!({
        "time": k8s_openapi::jiff::Timestamp::now().to_string(),
        "ok": v.ok,
        "nodes": v.nodes.len(),
        "passed": passed,
    });
    if let Err(e) =
        cluster::status::record_verification(cluster, &v.namespace, &v.daemonset, &value).await
    {
        ctx.ui
            .verbose(format!("could not record the verification result: {e}"));
    }
}

/// Checks every node, retrying failing ones with backoff until `opts.timeout`.
///
/// Cluster-level failures (unreachable, 401, 403, no DaemonSet) are errors; a node that fails is
/// a `Verification` with `ok: false`.
pub async fn verify(
    cluster: &Cluster,
    opts: &VerifyOptions,
    mut on_progress: impl FnMut(&str),
) -> Result<Verification, ClusterError> {
    let started = Instant::now();
    let deadline = crate::deadline::deadline_after(opts.timeout);
    let mut backoff = Duration::from_millis(250);
    let mut attempts = 0;
    let mut results: Vec<NodeResult>;
    loop {
        attempts += 1;
        results = attempt(cluster, opts).await?;
        let passed = results.iter().filter(|r| r.passed).count();
        on_progress(&format!(
            "verifying pod labels: {passed}/{} nodes pass (attempt {attempts})",
            results.len()
        ));
        if !results.is_empty() && passed == results.len() {
            break;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.min(deadline.saturating_duration_since(now))) => {}
            _ = tokio::signal::ctrl_c() => {
                return Err(ClusterError::Interrupted { doing: "verifying the metrics".to_string() });
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let ds = daemonset(cluster, opts).await?;
    for result in results.iter_mut().filter(|r| !r.passed) {
        diagnose_node(cluster, opts, &ds, result).await;
    }
    Ok(Verification {
        ok: !results.is_empty() && results.iter().all(|r| r.passed),
        namespace: opts.namespace.clone(),
        daemonset: opts.daemonset.clone(),
        nodes: results,
        attempts,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

async fn daemonset(cluster: &Cluster, opts: &VerifyOptions) -> Result<DaemonSet, ClusterError> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), &opts.namespace);
    api.get_opt(&opts.daemonset)
        .await
        .map_err(|e| cluster::classify(&cluster.server, e))?
        .ok_or_else(|| ClusterError::NotFound {
            object: format!("DaemonSet {}/{}", opts.namespace, opts.daemonset),
            hint: "is cAdvisor installed? `cadvisor-setup install`, or pass --namespace/--daemonset for an install made by hand".to_string(),
        })
}

/// One pass over every node.
async fn attempt(cluster: &Cluster, opts: &VerifyOptions) -> Result<Vec<NodeResult>, ClusterError> {
    let pods = rollout::daemonset_pods(cluster, &opts.namespace, &opts.daemonset).await?;
    let mut results = Vec::new();
    // Pods of a previous revision may still be terminating after the rollout.
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        results.push(check_node(cluster, &opts.namespace, pod).await?);
    }
    results.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(results)
}

fn is_fatal(e: &ClusterError) -> bool {
    super::error::cluster(e) == ExitCode::Cluster
}

async fn check_node(
    cluster: &Cluster,
    namespace: &str,
    pod: &Pod,
) -> Result<NodeResult, ClusterError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let mut result = NodeResult {
        node: node.clone(),
        pod: name.clone(),
        passed: false,
        labelled_pods: Vec::new(),
        kubelet_pods: Vec::new(),
        missing: Vec::new(),
        verdict: None,
        labelled_series: 0,
        id_only_series: 0,
        error: None,
        kubelet_error: None,
        registration: None,
        manifest_problems: Vec::new(),
    };
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
    if node.is_empty() || phase.as_deref() != Some("Running") {
        result.error = Some(format!(
            "pod {name} is {} on {}",
            phase.as_deref().unwrap_or("unknown"),
            if node.is_empty() {
                "no node yet"
            } else {
                &node
            }
        ));
        return Ok(result);
    }
    let port = metrics_port(pod);
    let cadvisor = match scan(cluster, &proxy::pod_metrics_path(namespace, &name, port)).await {
        Ok(report) => report,
        Err(e) if is_fatal(&e) => return Err(e),
        Err(e) => {
            result.error = Some(format!("reading pod {name}'s /metrics: {e}"));
            return Ok(result);
        }
    };
    result.verdict = Some(cadvisor.verdict());
    result.labelled_series = cadvisor.labelled_series;
    result.id_only_series = cadvisor.id_only_series;
    let labelled: BTreeSet<String> = cadvisor
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.pod))
        .collect();
    result.labelled_pods = labelled.iter().cloned().collect();
    match scan(cluster, &proxy::node_cadvisor_path(&node)).await {
        Ok(kubelet) => {
            let with_containers: BTreeSet<String> = kubelet
                .pods_kubelet_format
                .iter()
                .filter(|p| {
                    p.containers
                        .iter()
                        .any(|c| !c.is_empty() && c != SANDBOX_CONTAINER)
                })
                .map(|p| format!("{}/{}", p.namespace, p.pod))
                .collect();
            result.missing = with_containers.difference(&labelled).cloned().collect();
            result.kubelet_pods = with_containers.into_iter().collect();
        }
        Err(e) if is_fatal(&e) => return Err(e),
        Err(e) => result.kubelet_error = Some(e.to_string()),
    }
    result.passed = cadvisor.passed() && result.missing.is_empty();
    Ok(result)
}

/// The cAdvisor container's first declared port (its `--port`), default 8080.
fn metrics_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == "cadvisor")
                .or(s.containers.first())
        })
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some("http"))
                .or(ports.first())
        })
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(proxy::CADVISOR_PORT)
}

async fn scan(cluster: &Cluster, path: &str) -> Result<ScanReport, ClusterError> {
    proxy::stream_to(cluster, path, |reader| metrics::scan(reader))
        .await?
        .map_err(|e| ClusterError::Api(format!("{path}: {e}")))
}

async fn diagnose_node(
    cluster: &Cluster,
    opts: &VerifyOptions,
    ds: &DaemonSet,
    result: &mut NodeResult,
) {
    let check = diagnose::check_manifest(ds, opts.expected_socket.as_deref());
    result.manifest_problems = check.problems;
    match proxy::pod_log(
        cluster,
        &opts.namespace,
        &result.pod,
        check.container.as_deref(),
    )
    .await
    {
        Ok(log) => result.registration = Some(diagnose::registration(&log)),
        Err(e) => tracing::debug!("no log for {}: {e}", result.pod),
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
pub fn print_human(ctx: &Context, v: &Verification) {
    let ui = &ctx.ui;
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
            ui.line(format!(
                "{} node {}: {} labelled (the kubelet reports {} with containers)",
                ui.good("ok"),
                n.node,
                pods(n.labelled_pods.len()),
                pods(n.kubelet_pods.len())
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
        ui.line(format!(
            "{} after {:.0}s ({} attempts). Fix: `cadvisor-setup install` mounts containerd's socket directory and passes --containerd",
            ui.bad("verification failed"),
            v.elapsed_seconds,
            v.attempts
        ));
    }
}
