//! The cluster's nodes and their groups, wired for `detect --cluster`, `render --cluster` and
//! `install`: node facts through the API server (`cluster::nodes`), this host's detection
//! leading for its own node, then the groups (`plan::groups`).

use serde::Serialize;

use crate::cluster::nodes::{self, ClusterNode};
use crate::cluster::{Cluster, ClusterError};
use crate::host::HostFacts;
use crate::plan::groups::{self, Group};
use crate::ui::Ui;

/// Every node's facts and the groups they form.
#[derive(Debug, Clone, Serialize)]
pub struct NodeLayout {
    pub nodes: Vec<ClusterNode>,
    pub groups: Vec<Group>,
    /// Nodes with no known runtime socket: no DaemonSet serves them.
    pub left_out: Vec<String>,
    pub warnings: Vec<String>,
}

impl NodeLayout {
    /// Worth a place in install's report: several groups, a fallback, or a node left out.
    pub fn notable(&self) -> bool {
        self.groups.len() > 1 || self.nodes.iter().any(|n| n.fallback) || !self.left_out.is_empty()
    }
}

/// Reads every node (configz at most `parallel` at once) and groups them. `host` leads for this
/// host's node when it verified a runtime socket (`hostname` as the kubelet names it).
pub async fn read(
    cluster: &Cluster,
    namespace: &str,
    host: Option<&HostFacts>,
    hostname: Option<&str>,
    parallel: usize,
) -> Result<NodeLayout, ClusterError> {
    let mut nodes = nodes::facts(cluster, parallel).await?;
    let mut warnings = Vec::new();
    // Only a verified socket speaks for a node: a workstation's Docker containerd must not
    // stand in for the only node of a one-node cluster.
    let host = host.filter(|h| h.runtime.socket.is_some() && h.runtime.verified);
    let this = host.and_then(|_| nodes::find_this_host(&nodes, hostname));
    if let (Some(i), Some(h)) = (this, host) {
        nodes::lead_with_host(&mut nodes[i], h, &mut warnings);
    }
    for n in nodes.iter().filter(|n| n.fallback) {
        let why = n.configz_error.as_deref().map_or_else(
            || "configz lacks the runtime endpoint or the cgroup driver".to_string(),
            |e| format!("configz not read: {e}"),
        );
        warnings.push(format!(
            "node {}: {why}; using socket {} ({}) and cgroup driver {} ({}) instead of the kubelet's own",
            n.name,
            n.socket
                .as_ref()
                .map_or_else(|| "unknown".to_string(), |s| s.display().to_string()),
            n.socket_source,
            n.cgroup_driver.map_or("unknown", |d| d.as_str()),
            n.cgroup_driver_source
        ));
    }
    let serving =
        crate::cluster::status::serving_socket(cluster, namespace, crate::plan::NAME).await;
    // The DaemonSets select `kubernetes.io/os: linux`: other nodes are in no group.
    let linux = |n: &&ClusterNode| n.os.as_deref().is_none_or(|os| os == "linux");
    for n in nodes.iter().filter(|n| !linux(n)) {
        warnings.push(format!(
            "node {}: runs {}; cAdvisor's DaemonSets run on Linux nodes only",
            n.name,
            n.os.as_deref().unwrap_or("?")
        ));
    }
    let members: Vec<groups::Member> = nodes
        .iter()
        .filter(linux)
        .map(ClusterNode::member)
        .collect();
    let this_name = this.map(|i| nodes[i].name.clone());
    let (groups, left_out) = groups::group(&members, this_name.as_deref(), serving.as_deref());
    for n in &left_out {
        let endpoint = nodes
            .iter()
            .find(|node| &node.name == n)
            .and_then(|node| node.runtime_endpoint.as_deref());
        warnings.push(match endpoint {
            Some(e) => format!(
                "node {n}: its runtime endpoint `{e}` is not a usable unix socket path (an absolute path without `..`, white space or control characters); no DaemonSet serves it"
            ),
            None => format!(
                "node {n}: its runtime socket is unknown; no DaemonSet serves it"
            ),
        });
    }
    Ok(NodeLayout {
        nodes,
        groups,
        left_out,
        warnings,
    })
}

/// [`read`] for `install`: the layout, or `None` (with a warning) when the nodes cannot be read
/// and no node group is installed, so this host's plan alone is what it was before groups.
/// With node groups installed, that one unpinned DaemonSet would land on every group's nodes:
/// exit 4 before anything is applied.
pub async fn read_for_install(
    ctx: &super::Context,
    cluster: &Cluster,
    namespace: &str,
    host: &HostFacts,
    parallel: usize,
) -> super::Result<Option<NodeLayout>> {
    let node_name = host.kubelet.node_name.as_deref();
    let err = match read(cluster, namespace, Some(host), node_name, parallel).await {
        Ok(layout) => return Ok(Some(layout)),
        Err(e) => e,
    };
    let reason = crate::error::first_line(&err);
    let prefix = format!("{}-", crate::plan::NAME);
    let installed: Vec<String> = crate::cluster::status::our_daemonsets(cluster, namespace)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o.name.starts_with(&prefix))
        .map(|o| o.describe())
        .collect();
    if !installed.is_empty() {
        return super::error::Failure::err(
            crate::error::ExitCode::Cluster,
            format!(
                "cannot read the cluster's nodes ({reason}), and node groups are installed ({}); nothing was applied\n  install needs to list nodes and read nodes/NAME/proxy/configz to keep every node in its group; use a kubeconfig allowed to",
                installed.join(", ")
            ),
        );
    }
    ctx.ui.warning(format!(
        "cannot read the cluster's nodes ({reason}); planning for this host alone"
    ));
    Ok(None)
}

/// What to deploy: one plan per node group when the cluster's layout is known, else (no layout,
/// or this host's detection is ambiguous: exit 3 naming `--containerd-socket`) this host's
/// plan alone, as before node groups existed.
/// With `label_nodes` (and several groups) each group's DaemonSet matches the node label
/// `cadvisor-setup/group` instead of the hostnames.
pub fn plans(
    layout: Option<&NodeLayout>,
    host: &HostFacts,
    opts: &crate::plan::PlanOptions,
    label_nodes: bool,
) -> Result<Vec<crate::plan::Plan>, crate::plan::PlanError> {
    match grouped(layout, host) {
        Some(l) => groups::plans(&l.groups, Some(host), opts, label_nodes),
        None => Ok(vec![crate::plan::make(host, opts)?]),
    }
}

/// The layout the plans follow, when they follow one.
fn grouped<'a>(layout: Option<&'a NodeLayout>, host: &HostFacts) -> Option<&'a NodeLayout> {
    layout.filter(|l| !l.groups.is_empty() && !host.runtime.ambiguous)
}

/// `--label-nodes`: the value of `cadvisor-setup/group` each node should carry (empty with one
/// group: every node may drop ours); `None` when the plans follow no node layout (the nodes
/// could not be read), so no node label may be touched.
pub fn wanted_labels(
    layout: Option<&NodeLayout>,
    host: &HostFacts,
) -> Option<std::collections::BTreeMap<String, String>> {
    grouped(layout, host).map(|l| groups::wanted_labels(&l.groups))
}

/// The per-node table and the groups, for people.
pub fn print_human(ui: &Ui, layout: &NodeLayout) {
    ui.line(ui.bold("nodes (through the API server):"));
    for n in &layout.nodes {
        ui.line(format!(
            "  {}{}: {} ({}), {}{}, {}/{}",
            n.name,
            if n.this_host { " (this host)" } else { "" },
            n.distribution,
            n.distribution_source,
            format!("{:?}", n.runtime).to_lowercase(),
            n.runtime_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            n.os.as_deref().unwrap_or("?"),
            n.arch.as_deref().unwrap_or("?"),
        ));
        ui.line(format!(
            "    socket: {} ({}{})",
            n.socket
                .as_ref()
                .map_or_else(|| "unknown".to_string(), |s| s.display().to_string()),
            n.socket_source,
            if n.fallback {
                format!(", {}", ui.warn("fallback"))
            } else {
                String::new()
            }
        ));
        ui.line(format!(
            "    cgroup driver: {} ({})",
            n.cgroup_driver.map_or("unknown", |d| d.as_str()),
            n.cgroup_driver_source
        ));
        if let Some(e) = &n.configz_error {
            ui.line(format!("    configz: {}", ui.warn(e)));
        }
    }
    ui.line(ui.bold(&format!(
        "groups ({} DaemonSet{}):",
        layout.groups.len(),
        if layout.groups.len() == 1 { "" } else { "s" }
    )));
    for g in &layout.groups {
        ui.line(format!(
            "  {}: socket {}, --raw_cgroup_prefix_whitelist={}, nodes {}",
            g.name,
            g.socket.display(),
            g.raw_cgroup_prefix,
            g.nodes.join(", ")
        ));
    }
    for n in &layout.left_out {
        ui.line(format!(
            "  {} {n} (runtime socket unknown)",
            ui.warn("no DaemonSet:")
        ));
    }
}
