//! `detect`: host facts (and, when the API server answers, this node's kubelet facts).
//!
//! Exit 0 when a verified runtime socket was found; 3 when none was or the choice is ambiguous
//! (the report lists the candidates and the flag that settles it).

use std::time::Duration;

use serde::Serialize;

use super::Context;
use crate::cluster::node::{self, NodeFacts};
use crate::cluster::{Cluster, ClusterError};
use crate::error::ExitCode;
use crate::host::kubeconfig::KubeconfigEnv;
use crate::host::{
    self, DetectOptions, HostFacts, KubeconfigFacts, Runtime, RuntimeKind, SocketCandidate,
};
use crate::settings::{DetectSettings, SocketPath};
use crate::ui::{Human, Report, Ui};

/// How long the API server may take, in all, before detect carries on with host facts.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The flag that settles a missing or ambiguous socket.
const SETTLE_FLAG: &str = "--containerd-socket";

/// What the API server said, or why it was not asked or did not answer.
enum ClusterOutcome {
    Skipped(&'static str),
    Unreachable(String),
    /// The API server answered, but no node is this host (a workstation).
    NotANode(String),
    Node(Box<NodeFacts>),
}

pub async fn run(ctx: &Context, args: DetectSettings) -> super::Result<ExitCode> {
    let root = &ctx.host_root;
    // flag > env > `--config` answers file, checked absolute in `crate::settings`.
    let mut opts = DetectOptions {
        containerd_socket: args.containerd_socket.map(SocketPath::into_path),
        kubeconfig_flag: ctx.global.kubeconfig.clone(),
        kubeconfig_env: Some(KubeconfigEnv::from_process(ctx.global.kubeconfig.clone())),
        ..DetectOptions::default()
    };
    // Files first (cheap), then the API server once, then the probes.
    // Each host phase bounded (`host::watch`): a hung mount is exit 3 with its path, not a hang.
    let files = host::read_files_within(root, &opts, host::watch::HOST_BUDGET).await?;
    let cluster = if args.no_cluster {
        ClusterOutcome::Skipped("--no-cluster")
    } else {
        ask_cluster(root, files.kubeconfig.as_ref(), files.node_name()).await
    };
    if let ClusterOutcome::Node(n) = &cluster {
        opts.configz = n.configz.clone();
    }
    let hostname = files.node_name().map(str::to_string);
    let facts = host::probe_within(root, files, &opts, host::watch::HOST_BUDGET).await?;
    // `--cluster`: every node through the API server (this host leading for its own node).
    let (nodes, prometheus) = if args.cluster {
        let cluster = super::connect::cluster(ctx, facts.kubeconfig.as_ref()).await?;
        let layout = super::groups::read(
            &cluster,
            crate::plan::DEFAULT_NAMESPACE,
            Some(&facts),
            hostname.as_deref(),
            args.parallel,
        )
        .await?;
        for warning in &layout.warnings {
            ctx.ui.warning(warning);
        }
        let prometheus =
            crate::cluster::prometheus::candidates(&cluster, crate::plan::DEFAULT_NAMESPACE)
                .await?;
        (Some(layout), prometheus)
    } else {
        (None, None)
    };
    // With `--cluster` a machine that is not a node succeeds when nothing is ambiguous and the
    // API server's facts place every node in a group.
    let cluster_covers = nodes
        .as_ref()
        .is_some_and(|l| !facts.runtime.ambiguous && !l.groups.is_empty() && l.left_out.is_empty());
    let ok = facts.runtime.verified || cluster_covers;
    let (code, message) = match ok {
        true => (ExitCode::Success, None),
        false => (ExitCode::Detection, Some(failure_message(&facts.runtime))),
    };
    let body = Detected {
        facts,
        cluster,
        nodes,
        prometheus,
        settle_with: (!ok).then_some(SETTLE_FLAG),
    };
    Ok(ctx.ui.report(&Report::new(code, body).message(message)))
}

/// `detect`'s report body: the host facts at the top level (distribution, runtime, cgroup, kubelet, kubeconfig), what the API
/// server said under `cluster`, and the flag that settles a failed detection.
#[derive(Serialize)]
pub struct Detected {
    #[serde(flatten)]
    facts: HostFacts,
    cluster: ClusterOutcome,
    /// `--cluster`: every node's facts (each with its source) and the node groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<super::groups::NodeLayout>,
    /// `--cluster`: every Prometheus Operator Prometheus and whether install could make it
    /// select our ServiceMonitor (absent without `--cluster` or without the operator's API).
    #[serde(skip_serializing_if = "Option::is_none")]
    prometheus: Option<Vec<crate::cluster::prometheus::Candidate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settle_with: Option<&'static str>,
}

/// `cluster` in the JSON report: `checked` (asked at all), `reachable`, and the node's facts,
/// the reason it was not asked, or the error.
impl Serialize for ClusterOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize, Default)]
        struct Shown<'a> {
            checked: bool,
            reachable: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<String>,
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            node: Option<&'a NodeFacts>,
        }
        let shown = match self {
            ClusterOutcome::Skipped(why) => Shown {
                reason: Some(why),
                ..Shown::default()
            },
            ClusterOutcome::Unreachable(why) => Shown {
                checked: true,
                reachable: Some(false),
                error: Some(format!("API server not reachable: {why}")),
                ..Shown::default()
            },
            ClusterOutcome::NotANode(why) => Shown {
                checked: true,
                reachable: Some(true),
                reason: Some(why),
                ..Shown::default()
            },
            ClusterOutcome::Node(n) => Shown {
                checked: true,
                reachable: Some(true),
                node: Some(n),
                ..Shown::default()
            },
        };
        shown.serialize(s)
    }
}

/// This node's facts through `cluster` (configz, nodeInfo, the kubelet's own labels), bounded
/// by [`CLUSTER_TIMEOUT`]; never an error: why it is missing is part of the outcome.
async fn ask_node(
    read: impl std::future::Future<Output = Result<NodeFacts, ClusterError>>,
) -> ClusterOutcome {
    match tokio::time::timeout(CLUSTER_TIMEOUT, read).await {
        Ok(Ok(facts)) => ClusterOutcome::Node(Box::new(facts)),
        Ok(Err(ClusterError::NotFound { object, hint })) => {
            ClusterOutcome::NotANode(format!("no {object}: {hint}"))
        }
        Ok(Err(e)) => ClusterOutcome::Unreachable(e.to_string()),
        Err(_) => {
            ClusterOutcome::Unreachable(format!("no answer within {}s", CLUSTER_TIMEOUT.as_secs()))
        }
    }
}

/// Connects with the kubeconfig the host files named, then asks about this node.
async fn ask_cluster(
    root: &host::HostRoot,
    kc: Option<&KubeconfigFacts>,
    hostname: Option<&str>,
) -> ClusterOutcome {
    let Some(kc) = kc else {
        return ClusterOutcome::Skipped("no kubeconfig found");
    };
    if !kc.readable {
        return ClusterOutcome::Unreachable(
            kc.hint
                .clone()
                .unwrap_or_else(|| format!("cannot read {}", kc.path.display())),
        );
    }
    let confined = host::kubeconfig::confined_files(root, kc);
    let confine = confined
        .as_ref()
        .map(|c| c as crate::cluster::client::Confine<'_>);
    match crate::cluster::client::connect_merged(&kc.resolved, &kc.merged, confine).await {
        Ok(cluster) => ask_node(node::facts(&cluster, hostname.unwrap_or_default())).await,
        Err(e) => ClusterOutcome::Unreachable(e.to_string()),
    }
}

/// The kubelet's configz of this node through `cluster` (install makes the kubelet's own runtime
/// endpoint authoritative with it); `None` otherwise, with the reason shown at `-v`.
pub(super) async fn configz(
    ctx: &Context,
    cluster: &Cluster,
    hostname: Option<&str>,
) -> Option<host::ConfigzHints> {
    // Only the configz: install has no use for a scrape of the kubelet's containers.
    match ask_node(node::configz_facts(cluster, hostname.unwrap_or_default())).await {
        ClusterOutcome::Node(n) => {
            if let Some(e) = &n.configz_error {
                ctx.ui.verbose(format!("  kubelet configz: {e}"));
            }
            n.configz
        }
        ClusterOutcome::Skipped(why) => {
            ctx.ui.verbose(format!("  kubelet configz not read: {why}"));
            None
        }
        ClusterOutcome::Unreachable(why) | ClusterOutcome::NotANode(why) => {
            ctx.ui.verbose(format!("  kubelet configz not read: {why}"));
            None
        }
    }
}

fn failure_message(rt: &Runtime) -> String {
    let paths = |keep: fn(&host::SocketCandidate) -> bool| {
        let paths: Vec<String> = rt
            .candidates
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.path.display().to_string())
            .collect();
        paths.join(", ")
    };
    if rt.ambiguous {
        format!(
            "several containerd sockets hold kubelet containers ({}) and nothing says which one the kubelet uses; choose one with {SETTLE_FLAG} PATH",
            paths(|c| c.probe.kubernetes_containers.unwrap_or(0) > 0)
        )
    } else {
        let live = paths(|c| c.probe.version.is_some());
        if rt.candidates.iter().all(absent) {
            format!(
                "none of the {} socket paths known for Kubernetes distributions exists: this does not look like a Kubernetes node; on a node whose containerd listens elsewhere pass {SETTLE_FLAG} PATH, or from a workstation use `detect --cluster` (every node through the API server)",
                rt.candidates.len()
            )
        } else if live.is_empty() {
            format!(
                "no containerd socket answered; if containerd runs elsewhere, pass {SETTLE_FLAG} PATH"
            )
        } else {
            format!(
                "containerd answers at {live} but no socket holds kubelet containers in k8s.io; if one of them runs your pods (none yet?), pass {SETTLE_FLAG} PATH"
            )
        }
    }
}

impl Human for Detected {
    fn human(&self, ui: &Ui) {
        human(ui, &self.facts, &self.cluster);
        if let Some(layout) = &self.nodes {
            super::groups::print_human(ui, layout);
        }
        for p in self.prometheus.iter().flatten() {
            let verdict = match (&p.would_add, &p.reason) {
                (Some(t), _)
                    if t.service_monitor_labels.is_empty() && t.namespace_labels.is_empty() =>
                {
                    ui.good("would select our ServiceMonitor as it is")
                }
                (Some(t), _) => {
                    let pairs: Vec<String> = t
                        .service_monitor_labels
                        .iter()
                        .chain(&t.namespace_labels)
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    ui.good(&format!(
                        "would select our ServiceMonitor labelled {}",
                        pairs.join(",")
                    ))
                }
                (None, reason) => ui.warn(&format!(
                    "cannot select our ServiceMonitor: {}",
                    reason.as_deref().unwrap_or("?")
                )),
            };
            ui.line(format!(
                "{:<13}{}: {verdict}",
                "Prometheus",
                p.instance.id()
            ));
        }
    }
}

/// The facts for people; a failed detection's message (what to do) follows as `error:`.
fn human(ui: &Ui, facts: &HostFacts, cluster: &ClusterOutcome) {
    let d = &facts.distribution;
    let mut distro = d.kind.to_string();
    if let Some(v) = &d.version {
        distro.push_str(&format!(" {v}"));
    }
    let mut extra = Vec::new();
    if let Some(r) = &d.revision {
        extra.push(format!("revision {r}"));
    }
    if let Some(c) = d.confinement {
        extra.push(format!("{c:?}").to_lowercase());
    }
    if d.worker_only {
        extra.push("worker-only".into());
    }
    if !extra.is_empty() {
        distro.push_str(&format!(" ({})", extra.join(", ")));
    }
    ui.line(format!("{:<13}{distro}", "Distribution"));

    let rt = &facts.runtime;
    match &rt.socket {
        Some(sock) => {
            let version = rt.version.as_deref().unwrap_or("?");
            ui.line(format!(
                "{:<13}{}  {}",
                "Socket",
                ui.bold(&sock.display().to_string()),
                ui.good(&format!(
                    "verified ({} {version}, namespace {})",
                    kind_name(rt.kind),
                    rt.namespace
                ))
            ));
        }
        None if rt.ambiguous => ui.line(format!(
            "{:<13}{}",
            "Socket",
            ui.bad("ambiguous: several sockets hold kubelet containers")
        )),
        None => ui.line(format!("{:<13}{}", "Socket", ui.bad("none verified"))),
    }
    ui.line("Candidates");
    for c in &rt.candidates {
        ui.line(candidate_line(
            ui,
            c,
            rt.socket.as_deref() == Some(c.path.as_path()),
        ));
    }

    let cg = &facts.cgroup;
    let driver = match (cg.driver, &cg.driver_source) {
        (Some(drv), Some(src)) => format!(", driver {} ({src})", drv.as_str()),
        (Some(drv), None) => format!(", driver {}", drv.as_str()),
        (None, _) => ", driver unknown".into(),
    };
    ui.line(format!(
        "{:<13}{}{driver}",
        "Cgroups",
        format!("{:?}", cg.mode).to_lowercase()
    ));

    let k = &facts.kubelet;
    let mut kubelet = vec![format!(
        "node {}",
        k.node_name.as_deref().unwrap_or("unknown")
    )];
    if let Some(a) = &k.args_file {
        kubelet.push(format!("config {}", a.display()));
    }
    if let Some(e) = &k.runtime_endpoint {
        kubelet.push(format!("endpoint {e}"));
    }
    ui.line(format!("{:<13}{}", "Kubelet", kubelet.join(", ")));

    match &facts.kubeconfig {
        Some(kc) => ui.line(format!(
            "{:<13}{} ({}){}",
            "Kubeconfig",
            kc.path.display(),
            serde_json::to_value(kc.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            if kc.readable { "" } else { ", not readable" }
        )),
        None => ui.line(format!("{:<13}none found", "Kubeconfig")),
    }
    match cluster {
        ClusterOutcome::Skipped(why) => ui.line(format!("{:<13}not asked ({why})", "Cluster")),
        ClusterOutcome::NotANode(why) => ui.line(format!("{:<13}reachable; {why}", "Cluster")),
        ClusterOutcome::Unreachable(why) => ui.line(format!(
            "{:<13}{}",
            "Cluster",
            ui.warn(&format!("API server not reachable: {why}"))
        )),
        ClusterOutcome::Node(n) => {
            let mut parts = vec![format!(
                "node {} (matched by {})",
                n.node_name, n.matched_by
            )];
            if let Some(v) = &n.container_runtime_version {
                parts.push(v.clone());
            }
            match &n.configz {
                Some(c) => parts.push(format!(
                    "configz endpoint {}",
                    c.runtime_endpoint.as_deref().unwrap_or("unset")
                )),
                None => parts.push(format!(
                    "configz unavailable: {}",
                    n.configz_error.as_deref().unwrap_or("?")
                )),
            }
            match n.kubelet_cadvisor_pod_labels {
                Some(true) => parts.push("kubelet /metrics/cadvisor has pod labels".into()),
                Some(false) => parts.push("kubelet /metrics/cadvisor lacks pod labels".into()),
                None => parts.push(format!(
                    "kubelet /metrics/cadvisor unavailable: {}",
                    n.metrics_error.as_deref().unwrap_or("?")
                )),
            }
            ui.line(format!("{:<13}{}", "Cluster", parts.join("; ")));
        }
    }
    for w in &facts.warnings {
        ui.warning(w);
    }
}

fn kind_name(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Containerd => "containerd",
        RuntimeKind::CriO => "CRI-O",
        RuntimeKind::Docker => "Docker",
        RuntimeKind::Unknown => "unknown runtime",
    }
}

/// Nothing at the path. A path that could not be looked at (a link loop, too many links) is
/// not absent: its probe error says what is there (`host::runtime::probe` writes
/// "does not exist" for a path that is not there).
fn absent(c: &SocketCandidate) -> bool {
    !c.probe.exists
        && c.probe
            .error
            .as_deref()
            .is_none_or(|e| e == "does not exist")
}

fn candidate_line(ui: &Ui, c: &SocketCandidate, chosen: bool) -> String {
    let p = &c.probe;
    let verdict = if let Some(err) = &p.error {
        err.clone()
    } else if let Some(v) = &p.version {
        let pods = p.kubernetes_containers.unwrap_or(0);
        let mut s = format!("containerd {v}, {pods} kubelet container(s) in k8s.io");
        if pods == 0 {
            match p.namespaces.as_deref() {
                Some([]) => s.push_str(" (no namespaces: nothing ever ran here)"),
                Some(ns) => s.push_str(&format!(" (namespaces: {})", ns.join(", "))),
                None => {}
            }
        }
        s
    } else if p.connects {
        format!("{} socket accepts connections", kind_name(c.runtime))
    } else {
        "not probed".into()
    };
    if absent(c) {
        // Most well-known paths are absent on any one host: one dim line each.
        return ui.dim(&format!("  - {}  (does not exist)", c.path.display()));
    }
    let mark = if chosen { ui.good("*") } else { ui.warn("-") };
    format!(
        "  {mark} {}  {}\n      {}",
        c.path.display(),
        ui.dim(&format!("[{}]", c.origin)),
        verdict
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DistroKind;
    use crate::ui::report::envelope_collisions;

    fn body(cluster: ClusterOutcome) -> Detected {
        Detected {
            facts: crate::plan::preset(DistroKind::Microk8s),
            cluster,
            nodes: None,
            prometheus: None,
            settle_with: Some(SETTLE_FLAG),
        }
    }

    #[test]
    fn the_body_keeps_the_facts_at_the_top_level_apart_from_the_envelope() {
        for cluster in [
            ClusterOutcome::Skipped("--no-cluster"),
            ClusterOutcome::Unreachable("refused".into()),
            ClusterOutcome::NotANode("no node named `x`".into()),
            ClusterOutcome::Node(Box::default()),
        ] {
            let b = body(cluster);
            assert!(envelope_collisions(&b).is_empty());
            let doc = serde_json::to_value(&b).unwrap();
            for key in [
                "distribution",
                "runtime",
                "cgroup",
                "kubelet",
                "kubeconfig",
                "warnings",
                "cluster",
            ] {
                assert!(doc.get(key).is_some(), "{key} missing: {doc}");
            }
            assert_eq!(doc["settle_with"], SETTLE_FLAG);
        }
    }

    #[test]
    fn cluster_says_whether_it_was_asked_and_reached() {
        let doc = |c| serde_json::to_value(body(c)).unwrap()["cluster"].clone();
        assert_eq!(
            doc(ClusterOutcome::Skipped("--no-cluster")),
            serde_json::json!({"checked": false, "reachable": null, "reason": "--no-cluster"})
        );
        assert_eq!(
            doc(ClusterOutcome::Unreachable("refused".into())),
            serde_json::json!({"checked": true, "reachable": false,
                "error": "API server not reachable: refused"})
        );
        let node = doc(ClusterOutcome::Node(Box::new(NodeFacts {
            node_name: "node-1".into(),
            ..NodeFacts::default()
        })));
        assert_eq!(node["checked"], true);
        assert_eq!(node["reachable"], true);
        assert_eq!(node["node_name"], "node-1");
    }
}
