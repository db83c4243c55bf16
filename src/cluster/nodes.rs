//! Every node seen through the API server (`detect --cluster`, `install` and `render --cluster`):
//! the kubelet's runtime endpoint and cgroup driver from its configz, the runtime from
//! `status.nodeInfo`, OS and architecture, and the distribution from node labels and the kubelet
//! version. A node whose configz cannot be read gets its distribution's defaults from the same
//! layout table host detection uses (`host::layout`), and says so: every fact names its source.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::ClusterError;
use super::client::Cluster;
use super::node::{explain, parse_configz, proxy_get};
use crate::host::kubelet::endpoint_path;
use crate::host::{CgroupDriver, ConfigzHints, DistroKind, HostFacts, RuntimeKind, layout};
use crate::plan::groups::Member;

/// `kubernetes.io/hostname`, set by the kubelet on its Node (kubernetes.io: "Well-Known Labels,
/// Annotations and Taints"); what the DaemonSets' node affinity matches.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// A node's runtime endpoint as the socket its DaemonSet would mount, `None` unless it is a
/// unix socket path that passes the checks `--containerd-socket` does (no `..`, no white space
/// or control characters): it comes from the cluster, and one odd node must not stop the plan
/// of every other one (that node is left out, with a warning naming the endpoint).
fn usable_socket(endpoint: &str) -> Option<PathBuf> {
    let path = endpoint_path(endpoint).map(run_not_var_run)?;
    let text = path.to_str()?;
    crate::validate::absolute_file_path("containerRuntimeEndpoint", text)
        .is_ok()
        .then_some(path)
}

/// kubeadm records the node's CRI socket on its Node (kubernetes/kubernetes:
/// cmd/kubeadm/app/constants/constants.go `AnnotationKubeadmCRISocket`).
pub const KUBEADM_CRI_SOCKET: &str = "kubeadm.alpha.kubernetes.io/cri-socket";
/// How long one node's configz may take before the node falls back to its defaults.
const CONFIGZ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading every node's configz may take in all: with hundreds of silent kubelets the
/// command goes on with their defaults after this, not after nodes / parallel × 10 s.
const CONFIGZ_BUDGET: Duration = Duration::from_secs(30);

/// One node's facts, each with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterNode {
    pub name: String,
    /// The node's `kubernetes.io/hostname` label (its name when unlabelled).
    pub hostname: String,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub kubelet_version: Option<String>,
    /// From `status.nodeInfo.containerRuntimeVersion` (`containerd://1.7.29`).
    pub runtime: RuntimeKind,
    pub runtime_version: Option<String>,
    pub distribution: DistroKind,
    /// e.g. `label microk8s.io/cluster`, `kubelet version v1.33.4+k3s1`.
    pub distribution_source: String,
    /// As the kubelet reports it (may carry `unix://`).
    pub runtime_endpoint: Option<String>,
    /// The runtime socket as a host path of that node.
    pub socket: Option<PathBuf>,
    pub socket_source: String,
    pub cgroup_driver: Option<CgroupDriver>,
    pub cgroup_driver_source: String,
    /// Why configz could not be used (403, error, not a kubelet's answer).
    pub configz_error: Option<String>,
    /// The socket or the cgroup driver is a distribution default, not the kubelet's own.
    pub fallback: bool,
    /// This is the node the command runs on: host detection leads.
    pub this_host: bool,
    /// `status.addresses`, to find this host's node by address.
    #[serde(skip)]
    pub addresses: Vec<String>,
    /// The addresses it sends from, for a NetworkPolicy (`prometheus::source_cidrs`).
    #[serde(skip)]
    pub source_cidrs: Vec<String>,
}

impl ClusterNode {
    /// The node as the grouping sees it.
    pub fn member(&self) -> Member {
        Member {
            node: self.name.clone(),
            hostname: self.hostname.clone(),
            runtime: self.runtime,
            socket: self.socket.clone(),
            cgroup_driver: self.cgroup_driver,
            distribution: self.distribution,
        }
    }
}

/// Lists every node and reads their configz, at most `parallel` at once and all within
/// [`CONFIGZ_BUDGET`]. Fails only when the nodes cannot be listed; a configz that cannot be read
/// is part of that node's facts.
pub async fn facts(cluster: &Cluster, parallel: usize) -> Result<Vec<ClusterNode>, ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    // A real Node carries its image list (kilobytes per node) and managedFields; neither is a
    // fact here, so each goes as its page arrives.
    let mut nodes: Vec<Node> =
        super::pages::list_reduced(&api, &ListParams::default(), super::pages::PAGE, |mut n| {
            n.metadata.managed_fields = None;
            if let Some(status) = n.status.as_mut() {
                status.images = None;
            }
            n
        })
        .await
        .map_err(|e| explain(&cluster.server, e))?;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let names = nodes
        .iter()
        .map(|n| n.metadata.name.clone().unwrap_or_default())
        .collect();
    let configz = read_configz(
        names,
        parallel,
        CONFIGZ_TIMEOUT,
        CONFIGZ_BUDGET,
        |name| async move {
            proxy_get(cluster, &name, "configz")
                .await
                .and_then(|text| parse_configz(&text))
                // The reason only: the hints under a cluster error's first line are for a whole
                // command, not for one node's row.
                .map_err(|e| crate::error::first_line(&e))
        },
    )
    .await;
    Ok(nodes
        .iter()
        .zip(configz)
        .map(|(node, c)| of(node, c))
        .collect())
}

/// Reads each named node's configz with `read`, at most `parallel` at once, each within
/// `per_node` and all within `budget`: a node not answered in time, or not yet asked when the
/// budget runs out, gets the reason instead (and falls back to its distribution's defaults).
/// Results are in the order of `names`.
async fn read_configz<F, Fut>(
    names: Vec<String>,
    parallel: usize,
    per_node: Duration,
    budget: Duration,
    read: F,
) -> Vec<Result<ConfigzHints, String>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<ConfigzHints, String>>,
{
    let deadline = crate::deadline::deadline_after(budget);
    let read = &read;
    futures::stream::iter(names)
        .map(|name| async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "not read: reading every node's configz took its {} s",
                    budget.as_secs()
                ));
            }
            let wait = per_node.min(left);
            tokio::time::timeout(wait, read(name))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer in {} s (the kubelet or the API server's proxy is slow)",
                        wait.as_secs_f64().ceil()
                    ))
                })
        })
        .buffered(parallel.max(1))
        .collect()
        .await
}

/// One node's facts from its object and its configz (or why configz is missing). Pure.
pub fn of(node: &Node, configz: Result<ConfigzHints, String>) -> ClusterNode {
    let name = node.metadata.name.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let annotations = node.metadata.annotations.clone().unwrap_or_default();
    let info = node.status.as_ref().and_then(|s| s.node_info.as_ref());
    let kubelet_version = info.map(|i| i.kubelet_version.clone());
    let (runtime, runtime_version) = info
        .map(|i| runtime_of(&i.container_runtime_version))
        .unwrap_or((RuntimeKind::Unknown, None));
    let (distribution, distribution_source) = distribution_hint(
        &labels,
        &annotations,
        kubelet_version.as_deref().unwrap_or(""),
    );
    let row = layout::of(distribution);
    let default_name = if distribution == DistroKind::Unknown {
        "containerd (unknown distribution)".to_string()
    } else {
        distribution.to_string()
    };
    let (hints, configz_error) = match configz {
        Ok(h) => (h, None),
        Err(e) => (ConfigzHints::default(), Some(e)),
    };
    let mut fallback = false;
    let (runtime_endpoint, socket, socket_source) = match &hints.runtime_endpoint {
        Some(endpoint) => (
            Some(endpoint.clone()),
            usable_socket(endpoint),
            "configz containerRuntimeEndpoint".to_string(),
        ),
        None => match annotations.get(KUBEADM_CRI_SOCKET) {
            Some(endpoint) => (
                Some(endpoint.clone()),
                usable_socket(endpoint),
                format!("annotation {KUBEADM_CRI_SOCKET}"),
            ),
            None => {
                fallback = true;
                let default = row.sockets.first();
                (
                    None,
                    default.map(|s| PathBuf::from(s.value)),
                    default.map_or_else(
                        || "none".to_string(),
                        |s| format!("{default_name} default ({})", s.source),
                    ),
                )
            }
        },
    };
    let (cgroup_driver, cgroup_driver_source) = match hints.cgroup_driver {
        Some(d) => (Some(d), "configz cgroupDriver".to_string()),
        None => match row.cgroup_driver {
            Some((d, source)) => {
                fallback = true;
                (Some(d), format!("{default_name} default ({source})"))
            }
            None => (None, "unknown".to_string()),
        },
    };
    ClusterNode {
        hostname: labels
            .get(HOSTNAME_LABEL)
            .cloned()
            .unwrap_or_else(|| name.clone()),
        name,
        os: info.map(|i| i.operating_system.clone()),
        arch: info.map(|i| i.architecture.clone()),
        kubelet_version,
        runtime,
        runtime_version,
        distribution,
        distribution_source,
        runtime_endpoint,
        socket,
        socket_source,
        cgroup_driver,
        cgroup_driver_source,
        configz_error,
        fallback,
        this_host: false,
        addresses: node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .map(|a| a.iter().map(|a| a.address.to_lowercase()).collect())
            .unwrap_or_default(),
        source_cidrs: super::prometheus::source_cidrs(node),
    }
}

/// This host's node: by name, by address, or the only node of a one-node cluster (MicroK8s'
/// default node name may differ from the hostname), as `node::find` does.
pub fn find_this_host(nodes: &[ClusterNode], hostname: Option<&str>) -> Option<usize> {
    let host = hostname.unwrap_or_default().to_lowercase();
    if !host.is_empty() {
        if let Some(i) = nodes.iter().position(|n| n.name == host) {
            return Some(i);
        }
        if let Some(i) = nodes.iter().position(|n| n.addresses.contains(&host)) {
            return Some(i);
        }
    }
    (nodes.len() == 1).then_some(0)
}

/// `/var/run/X` → `/run/X`: `/var/run` is a symlink to `/run` (Filesystem Hierarchy Standard
/// 3.0, 5.13 "/var/run"), and kubeadm writes its endpoints under `/var/run`
/// (kubernetes/kubernetes: cmd/kubeadm/app/constants/constants_unix.go `CRISocketContainerd`)
/// while detection finds the socket under `/run`: one socket, one group.
fn run_not_var_run(path: PathBuf) -> PathBuf {
    match path.strip_prefix("/var/run") {
        Ok(rest) => std::path::Path::new("/run").join(rest),
        Err(_) => path,
    }
}

/// `containerd://1.7.29` → containerd, `1.7.29` (kubernetes/kubernetes:
/// pkg/kubelet/nodestatus/setters.go `VersionInfo`: `RuntimeName://version`).
pub fn runtime_of(version: &str) -> (RuntimeKind, Option<String>) {
    let (name, v) = version.split_once("://").unwrap_or((version, ""));
    let kind = match name {
        "containerd" => RuntimeKind::Containerd,
        "cri-o" => RuntimeKind::CriO,
        "docker" => RuntimeKind::Docker,
        _ => RuntimeKind::Unknown,
    };
    (kind, (!v.is_empty()).then(|| v.to_string()))
}

/// The distribution a node runs, from its labels, annotations and kubelet version, with what
/// told. Pure.
pub fn distribution_hint(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    kubelet_version: &str,
) -> (DistroKind, String) {
    // Build metadata of the kubelet version: k3s-io/k3s and rancher/rke2 tag releases
    // `v1.33.4+k3s1` / `v1.33.4+rke2r1`, k0sproject/k0s `v1.33.4+k0s.0`.
    for (marker, kind) in [
        ("+k3s", DistroKind::K3s),
        ("+rke2", DistroKind::Rke2),
        ("+k0s", DistroKind::K0s),
    ] {
        if kubelet_version.contains(marker) {
            return (kind, format!("kubelet version {kubelet_version}"));
        }
    }
    // canonical/microk8s: microk8s-resources/default-args/kubelet (`--node-labels
    // microk8s.io/cluster=true,node.kubernetes.io/microk8s-controlplane=...`).
    for key in [
        "microk8s.io/cluster",
        "node.kubernetes.io/microk8s-controlplane",
        "node.kubernetes.io/microk8s-worker",
    ] {
        if labels.contains_key(key) {
            return (DistroKind::Microk8s, format!("label {key}"));
        }
    }
    // canonical/k8s-snap: src/k8s/pkg/k8sd/setup/kubelet.go (`k8sd.io/role=control-plane|worker`).
    if labels.contains_key("k8sd.io/role") {
        return (DistroKind::K8sSnap, "label k8sd.io/role".to_string());
    }
    // k3s' and RKE2's cloud provider set the instance type to their name
    // (k3s-io/k3s: pkg/cloudprovider/instances.go).
    let instance_type = labels.get("node.kubernetes.io/instance-type");
    for (name, kind) in [("k3s", DistroKind::K3s), ("rke2", DistroKind::Rke2)] {
        if instance_type.is_some_and(|t| t == name) {
            return (
                kind,
                format!("label node.kubernetes.io/instance-type={name}"),
            );
        }
    }
    if let Some(key) = labels.keys().find(|k| k.starts_with("node.k0sproject.io/")) {
        return (DistroKind::K0s, format!("label {key}"));
    }
    if annotations.contains_key(KUBEADM_CRI_SOCKET) {
        return (
            DistroKind::Kubeadm,
            format!("annotation {KUBEADM_CRI_SOCKET}"),
        );
    }
    (DistroKind::Unknown, "no distribution hint".to_string())
}

/// The node this command runs on, with host detection leading: its socket, runtime and cgroup
/// driver become the host's, and each disagreement with the kubelet's configz is a warning
/// naming both. `host` must have found a socket.
pub fn lead_with_host(node: &mut ClusterNode, host: &HostFacts, warnings: &mut Vec<String>) {
    let Some(socket) = host.runtime.socket.clone() else {
        return;
    };
    node.this_host = true;
    if node.socket_source.starts_with("configz")
        && let Some(theirs) = &node.socket
        && theirs != &socket
    {
        warnings.push(format!(
            "node {}: this host's detection found runtime socket {}, but the kubelet's configz says {}; using this host's",
            node.name,
            socket.display(),
            theirs.display()
        ));
    }
    if node.cgroup_driver_source.starts_with("configz")
        && let (Some(theirs), Some(ours)) = (node.cgroup_driver, host.cgroup.driver)
        && theirs != ours
    {
        warnings.push(format!(
            "node {}: this host's detection found cgroup driver {}, but the kubelet's configz says {}; using this host's",
            node.name,
            ours.as_str(),
            theirs.as_str()
        ));
    }
    node.socket = Some(socket);
    node.socket_source = "this host's detection".to_string();
    node.runtime = host.runtime.kind;
    node.cgroup_driver = host.cgroup.driver;
    node.cgroup_driver_source = host.cgroup.driver_source.clone().map_or_else(
        || "this host's detection".to_string(),
        |s| format!("this host: {s}"),
    );
    if host.distribution.kind != DistroKind::Unknown {
        node.distribution = host.distribution.kind;
        node.distribution_source = "this host's detection".to_string();
    }
    node.fallback = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_configz` with a kubelet per name that answers after the given number of seconds
    /// (`None`: never), on tokio's paused clock: time moves only when every task waits.
    fn configz_after(
        delays: &[Option<u64>],
        parallel: usize,
        per_node: u64,
        budget: u64,
    ) -> Vec<Result<ConfigzHints, String>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        let names = (0..delays.len()).map(|i| i.to_string()).collect();
        runtime.block_on(read_configz(
            names,
            parallel,
            Duration::from_secs(per_node),
            Duration::from_secs(budget),
            |name| async move {
                let i: usize = name.parse().expect("index");
                match delays[i] {
                    Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                    None => std::future::pending::<()>().await,
                }
                Ok(ConfigzHints::default())
            },
        ))
    }

    #[test]
    fn a_silent_kubelet_costs_its_own_timeout_and_the_others_are_read() {
        let read = configz_after(&[Some(1), None, Some(2)], 2, 10, 30);
        assert!(read[0].is_ok() && read[2].is_ok(), "{read:?}");
        assert_eq!(
            read[1].as_ref().unwrap_err(),
            "no answer in 10 s (the kubelet or the API server's proxy is slow)"
        );
    }

    #[test]
    fn the_budget_bounds_reading_every_node_however_many_are_silent() {
        // 100 silent kubelets, 2 at once, 10 s each: 500 s without a budget. With 30 s, the
        // first six are asked (three waves of 10 s) and the rest are not asked at all.
        let read = configz_after(&[None; 100], 2, 10, 30);
        let silent = read
            .iter()
            .filter(|r| r.as_ref().is_err_and(|e| e.starts_with("no answer")))
            .count();
        let unasked = read
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|e| e == "not read: reading every node's configz took its 30 s")
            })
            .count();
        assert_eq!((silent, unasked), (6, 94), "{read:?}");
    }

    #[test]
    fn a_node_asked_late_gets_only_what_is_left_of_the_budget() {
        // Two waves of one: the first answers after 8 s, so the second may wait 4 s, not 10.
        let read = configz_after(&[Some(8), None], 1, 10, 12);
        assert!(read[0].is_ok());
        assert_eq!(
            read[1].as_ref().unwrap_err(),
            "no answer in 4 s (the kubelet or the API server's proxy is slow)"
        );
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn distributions_are_told_by_labels_annotations_and_kubelet_version() {
        let none = BTreeMap::new();
        let hint = |labels: &[(&str, &str)], annotations: &[(&str, &str)], version: &str| {
            distribution_hint(&map(labels), &map(annotations), version).0
        };
        assert_eq!(hint(&[], &[], "v1.33.4+k3s1"), DistroKind::K3s);
        assert_eq!(hint(&[], &[], "v1.33.4+rke2r1"), DistroKind::Rke2);
        assert_eq!(hint(&[], &[], "v1.33.4+k0s"), DistroKind::K0s);
        assert_eq!(
            hint(&[("microk8s.io/cluster", "true")], &[], "v1.33.4"),
            DistroKind::Microk8s
        );
        assert_eq!(
            hint(&[("k8sd.io/role", "worker")], &[], "v1.33.4"),
            DistroKind::K8sSnap
        );
        assert_eq!(
            hint(
                &[("node.kubernetes.io/instance-type", "k3s")],
                &[],
                "v1.33.4"
            ),
            DistroKind::K3s
        );
        assert_eq!(
            hint(&[("node.k0sproject.io/role", "worker")], &[], "v1.33.4"),
            DistroKind::K0s
        );
        assert_eq!(
            hint(
                &[],
                &[(KUBEADM_CRI_SOCKET, "unix:///run/containerd/containerd.sock")],
                "v1.33.4"
            ),
            DistroKind::Kubeadm
        );
        let (kind, why) = distribution_hint(&none, &none, "v1.33.4");
        assert_eq!(
            (kind, why.as_str()),
            (DistroKind::Unknown, "no distribution hint")
        );
        // The kubelet version is the strongest hint: a k3s node labelled by hand stays k3s.
        assert_eq!(
            hint(&[("microk8s.io/cluster", "true")], &[], "v1.33.4+k3s1"),
            DistroKind::K3s
        );
    }

    #[test]
    fn runtime_names_and_versions() {
        assert_eq!(
            runtime_of("containerd://1.7.29"),
            (RuntimeKind::Containerd, Some("1.7.29".into()))
        );
        assert_eq!(
            runtime_of("cri-o://1.30.0"),
            (RuntimeKind::CriO, Some("1.30.0".into()))
        );
        assert_eq!(runtime_of(""), (RuntimeKind::Unknown, None));
    }

    fn node(labels: serde_json::Value, annotations: serde_json::Value) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": labels, "annotations": annotations},
            "status": {"nodeInfo": {
                "architecture": "arm64", "bootID": "", "containerRuntimeVersion": "containerd://2.0.5-k3s1",
                "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "v1.33.4+k3s1",
                "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""
            }}
        }))
        .unwrap()
    }

    #[test]
    fn configz_leads_and_a_forbidden_one_falls_back_to_the_distribution_default() {
        let n = node(
            serde_json::json!({"kubernetes.io/hostname": "host-1"}),
            serde_json::json!({}),
        );
        let read = of(
            &n,
            Ok(ConfigzHints {
                runtime_endpoint: Some("unix:///custom/containerd.sock".into()),
                cgroup_driver: Some(CgroupDriver::Cgroupfs),
            }),
        );
        assert_eq!(read.socket, Some(PathBuf::from("/custom/containerd.sock")));
        assert_eq!(read.socket_source, "configz containerRuntimeEndpoint");
        assert_eq!(read.cgroup_driver, Some(CgroupDriver::Cgroupfs));
        assert!(!read.fallback);
        assert_eq!(read.hostname, "host-1");
        assert_eq!(read.arch.as_deref(), Some("arm64"));
        assert_eq!(read.runtime_version.as_deref(), Some("2.0.5-k3s1"));

        let forbidden = of(&n, Err("forbidden (403)".into()));
        assert!(forbidden.fallback);
        assert_eq!(forbidden.distribution, DistroKind::K3s);
        assert_eq!(
            forbidden.socket,
            Some(PathBuf::from("/run/k3s/containerd/containerd.sock"))
        );
        assert!(
            forbidden.socket_source.starts_with("k3s default ("),
            "{}",
            forbidden.socket_source
        );
        assert_eq!(forbidden.cgroup_driver, Some(CgroupDriver::Systemd));
        assert_eq!(forbidden.configz_error.as_deref(), Some("forbidden (403)"));
    }

    #[test]
    fn kubeadms_annotation_names_the_socket_when_configz_cannot() {
        let n = node(
            serde_json::json!({}),
            serde_json::json!({KUBEADM_CRI_SOCKET: "unix:///var/run/containerd/containerd.sock"}),
        );
        let read = of(&n, Err("403".into()));
        // The kubelet version says k3s, so that wins for the distribution...
        assert_eq!(read.distribution, DistroKind::K3s);
        // ...but the node's own annotation is more specific than any default for the socket.
        assert_eq!(
            read.socket,
            Some(PathBuf::from("/run/containerd/containerd.sock")),
            "/var/run is /run"
        );
        assert_eq!(
            read.socket_source,
            format!("annotation {KUBEADM_CRI_SOCKET}")
        );
    }
}
