//! Verification through the API server: every node running a pod of cAdvisor's DaemonSet.
//!
//! Per node: scan that pod's `/metrics` (pod proxy) and the kubelet's `/metrics/cadvisor` (node
//! proxy), then [`judge`]. Nodes are checked concurrently, at most
//! [`VerifyOptions::concurrency`] at a time. cAdvisor needs a housekeeping interval before new
//! containers show up, so the nodes that fail are checked again with backoff until the timeout;
//! a node that passed is not scraped again (unless its pod was replaced). Failing nodes are then
//! diagnosed from the DaemonSet's manifest and their pod's log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Serialize;

use super::judge::{Baseline, judge};
use crate::cluster::diagnose::{self, Registration};
use crate::cluster::{self, Cluster, ClusterError, proxy, rollout};
use crate::error::ExitCode;
use crate::metrics::{self, ScanReport, Verdict};

/// How many nodes are checked at once unless the caller says otherwise: enough for a large
/// cluster to finish within one housekeeping interval, few enough not to load the API server.
pub const DEFAULT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub namespace: String,
    pub daemonset: String,
    pub timeout: Duration,
    /// The containerd socket detection found (host path), for the manifest diagnosis.
    pub expected_socket: Option<PathBuf>,
    /// Nodes checked at once (at least 1).
    pub concurrency: usize,
}

impl VerifyOptions {
    pub fn new(namespace: &str, daemonset: &str, timeout: Duration) -> VerifyOptions {
        VerifyOptions {
            namespace: namespace.to_string(),
            daemonset: daemonset.to_string(),
            timeout,
            expected_socket: None,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
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

impl Verification {
    /// Several DaemonSets' verifications (one per node group) as one: every node, ok when all
    /// are, named after the first (`cadvisor`). `None` for none.
    pub fn merge(all: Vec<Verification>) -> Option<Verification> {
        let mut all = all.into_iter();
        let mut out = all.next()?;
        for v in all {
            out.ok &= v.ok;
            out.nodes.extend(v.nodes);
            out.attempts = out.attempts.max(v.attempts);
            out.elapsed_seconds = out.elapsed_seconds.max(v.elapsed_seconds);
        }
        out.nodes
            .sort_by(|a, b| a.node.cmp(&b.node).then_with(|| a.pod.cmp(&b.pod)));
        Some(out)
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.ok {
            ExitCode::Success
        } else {
            ExitCode::Verification
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeResult {
    pub node: String,
    pub pod: String,
    pub passed: bool,
    /// `namespace/pod` named by `container_label_io_kubernetes_pod_name` in cAdvisor's metrics.
    pub labelled_pods: Vec<String>,
    /// `namespace/pod` with containers in the kubelet's `/metrics/cadvisor` (empty when that
    /// baseline is unavailable: see `kubelet_error`).
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
    /// On which attempt this result was taken (a node that passed is not checked again).
    pub attempt: u32,
}

impl NodeResult {
    /// A node not (yet) checked: nothing seen, not passed.
    pub fn unchecked(node: String, pod: String, attempt: u32) -> NodeResult {
        NodeResult {
            node,
            pod,
            attempt,
            ..NodeResult::default()
        }
    }
}

/// Checks every node, retrying the failing ones with backoff until `opts.timeout`.
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
    // Pod name → its latest result.
    let mut results: BTreeMap<String, NodeResult> = BTreeMap::new();
    loop {
        attempts += 1;
        results = attempt(cluster, opts, attempts, deadline, results, &mut on_progress).await?;
        let passed = results.values().filter(|r| r.passed).count();
        on_progress(&progress(passed, results.len(), attempts));
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
                return Err(ClusterError::Interrupted { by: "Ctrl-C", doing: "verifying the metrics".to_string() });
            }
        }
        // An attempt started at the deadline would be cut at once: the last one stands.
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    let mut nodes: Vec<NodeResult> = results.into_values().collect();
    if nodes.iter().any(|r| !r.passed) {
        let ds = daemonset(cluster, opts).await?;
        let check = diagnose::check_manifest(&ds, opts.expected_socket.as_deref());
        let diagnosed = futures::stream::iter(nodes.iter_mut().filter(|r| !r.passed))
            .for_each_concurrent(opts.concurrency.max(1), |result| {
                diagnose_node(cluster, opts, &check, result)
            });
        diagnosed.await;
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node).then_with(|| a.pod.cmp(&b.pod)));
    Ok(Verification {
        ok: !nodes.is_empty() && nodes.iter().all(|r| r.passed),
        namespace: opts.namespace.clone(),
        daemonset: opts.daemonset.clone(),
        nodes,
        attempts,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The progress line: `verified/nodes`, as the rollout shows `ready/desired`.
fn progress(verified: usize, nodes: usize, attempt: u32) -> String {
    format!("verifying pod labels: {verified}/{nodes} nodes verified (attempt {attempt})")
}

async fn daemonset(cluster: &Cluster, opts: &VerifyOptions) -> Result<DaemonSet, ClusterError> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), &opts.namespace);
    cluster
        .ask(api.get_opt(&opts.daemonset))
        .await?
        .ok_or_else(|| ClusterError::NotFound {
            object: format!("DaemonSet {}/{}", opts.namespace, opts.daemonset),
            hint: "is cAdvisor installed? `cadvisor-setup install`, or pass --namespace/--daemonset for an install made by hand".to_string(),
        })
}

/// One pass: the DaemonSet's current pods; those that passed before keep their result, the
/// others are checked, at most `opts.concurrency` at once.
async fn attempt(
    cluster: &Cluster,
    opts: &VerifyOptions,
    number: u32,
    deadline: tokio::time::Instant,
    mut previous: BTreeMap<String, NodeResult>,
    on_progress: &mut impl FnMut(&str),
) -> Result<BTreeMap<String, NodeResult>, ClusterError> {
    let pods = rollout::daemonset_pods_as(
        cluster,
        &opts.namespace,
        &opts.daemonset,
        crate::cluster::pages::PAGE,
        DaemonPod::of,
    )
    .await?;
    let mut results = BTreeMap::new();
    let mut to_check = Vec::new();
    // Pods of a previous revision may still be terminating after the rollout.
    for pod in pods.into_iter().filter(|p| !p.deleting) {
        match previous.remove(&pod.name) {
            Some(done) if done.passed => {
                results.insert(pod.name, done);
            }
            before => to_check.push((pod, before)),
        }
    }
    let nodes = results.len() + to_check.len();
    let mut verified = results.len();
    on_progress(&progress(verified, nodes, number));
    let mut checks = futures::stream::iter(to_check)
        .map(|(pod, before)| check_until(cluster, &opts.namespace, pod, before, number, deadline))
        .buffer_unordered(opts.concurrency.max(1));
    while let Some(checked) = checks.next().await {
        let result = checked?;
        if result.passed {
            verified += 1;
            on_progress(&progress(verified, nodes, number));
        }
        results.insert(result.pod.clone(), result);
    }
    Ok(results)
}

/// [`check_node`], cut at `deadline`: an answer that never ends must not hold the verification
/// past the timeout. A cut check tells less than the one before it, which then stands.
async fn check_until(
    cluster: &Cluster,
    namespace: &str,
    pod: DaemonPod,
    before: Option<NodeResult>,
    attempt: u32,
    deadline: tokio::time::Instant,
) -> Result<NodeResult, ClusterError> {
    let (name, node) = (pod.name.clone(), pod.node.clone());
    match tokio::time::timeout_at(deadline, check_node(cluster, namespace, pod, attempt)).await {
        Ok(checked) => checked,
        Err(_) => Ok(before.unwrap_or_else(|| {
            let mut cut = NodeResult::unchecked(node, name, attempt);
            cut.error = Some(
                "no complete answer from the API server's proxies before the timeout".to_string(),
            );
            cut
        })),
    }
}

/// The cluster cannot be used at all (no retry helps): unreachable, unauthenticated, forbidden.
fn is_fatal(e: &ClusterError) -> bool {
    matches!(
        e,
        ClusterError::Kubeconfig { .. }
            | ClusterError::Unreachable { .. }
            | ClusterError::Misbehaving { .. }
            | ClusterError::Unauthorized { .. }
            | ClusterError::Forbidden { .. }
    )
}

async fn check_node(
    cluster: &Cluster,
    namespace: &str,
    pod: DaemonPod,
    attempt: u32,
) -> Result<NodeResult, ClusterError> {
    let DaemonPod {
        name,
        node,
        phase,
        port,
        ..
    } = pod;
    let mut result = NodeResult::unchecked(node.clone(), name.clone(), attempt);
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
    let pod_path = proxy::pod_metrics_path(namespace, &name, port);
    let cadvisor = match scan(cluster, &pod_path).await {
        Ok(report) => report,
        Err(e) if is_fatal(&e) => return Err(e),
        Err(e) => {
            result.error = Some(format!("reading pod {name}'s /metrics: {e}"));
            return Ok(result);
        }
    };
    let baseline = match scan(cluster, &proxy::node_cadvisor_path(&node)).await {
        Ok(kubelet) => Baseline::from_kubelet(&kubelet),
        Err(e) if is_fatal(&e) => return Err(e),
        Err(e) => Baseline::Unavailable {
            reason: e.to_string(),
        },
    };
    let verdict = judge(&cadvisor, baseline);
    result.passed = verdict.passed;
    result.verdict = Some(verdict.verdict);
    result.labelled_pods = verdict.labelled_pods;
    result.kubelet_pods = verdict.kubelet_pods;
    result.missing = verdict.missing;
    result.labelled_series = verdict.labelled_series;
    result.id_only_series = verdict.id_only_series;
    result.kubelet_error = verdict.baseline_unavailable;
    Ok(result)
}

/// One of the DaemonSet's pods, reduced to what its check needs (a whole Pod is kilobytes; a
/// verification of hundreds of nodes holds this instead).
#[derive(Debug, Clone)]
struct DaemonPod {
    name: String,
    /// Empty when not scheduled yet.
    node: String,
    phase: Option<String>,
    port: u16,
    deleting: bool,
}

impl DaemonPod {
    fn of(pod: Pod) -> DaemonPod {
        DaemonPod {
            port: metrics_port(&pod),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            phase: pod.status.and_then(|s| s.phase),
            node: pod.spec.and_then(|s| s.node_name).unwrap_or_default(),
            name: pod.metadata.name.unwrap_or_default(),
        }
    }
}

/// The cAdvisor container's port named `http`, else its first declared port (its `--port`),
/// default 8080.
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
    check: &diagnose::ManifestCheck,
    result: &mut NodeResult,
) {
    result.manifest_problems = check.problems.clone();
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

/// Stores the result on the DaemonSet when we installed it (never on a hand-made install).
///
/// Written only when the result differs from the stored one (ok, nodes, passed), so a rerun that
/// changes nothing leaves every resourceVersion as it was; `time` is when this result was first
/// seen. Returns whether it wrote.
pub async fn record(cluster: &Cluster, v: &Verification) -> Result<bool, ClusterError> {
    let stored = match cluster::status::daemonset(cluster, &v.namespace, &v.daemonset).await? {
        Some(ds) if ds.ours => ds.last_verification,
        _ => return Ok(false),
    };
    let passed = v.nodes.iter().filter(|n| n.passed).count();
    let same = stored.as_ref().is_some_and(|s| {
        s.get("ok") == Some(&serde_json::json!(v.ok))
            && s.get("nodes") == Some(&serde_json::json!(v.nodes.len()))
            && s.get("passed") == Some(&serde_json::json!(passed))
    });
    if same {
        return Ok(false);
    }
    let value = serde_json::json!({
        "time": k8s_openapi::jiff::Timestamp::now().to_string(),
        "ok": v.ok,
        "nodes": v.nodes.len(),
        "passed": passed,
    });
    cluster::status::record_verification(cluster, &v.namespace, &v.daemonset, &value).await?;
    Ok(true)
}
