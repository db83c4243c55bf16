//! This node seen through the API server: its node object, the kubelet's configz and the
//! kubelet's own `/metrics/cadvisor` (kubernetes/kubernetes: pkg/kubelet/server/server.go).

use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

use super::ClusterError;
use super::client::{Cluster, classify};
use crate::host::{CgroupDriver, ConfigzHints};
use crate::metrics::ScanReport;

/// What the API server knows about this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    /// The node object's name.
    pub node_name: String,
    /// How it was matched: `name`, `address`, or `only node`.
    pub matched_by: String,
    /// `status.nodeInfo.containerRuntimeVersion`, e.g. `containerd://1.7.29`.
    pub container_runtime_version: Option<String>,
    /// The kubelet's configz (`None` when the proxy call failed; see `configz_error`).
    pub configz: Option<ConfigzHints>,
    pub configz_error: Option<String>,
    /// Whether the kubelet's `/metrics/cadvisor` carries non-empty pod labels.
    pub kubelet_cadvisor_pod_labels: Option<bool>,
    pub metrics_error: Option<String>,
}

/// Finds this node (by `hostname`) and reads its facts. Fails only when the API server cannot
/// be used at all (kubeconfig, connection, auth) or the node is not found; the proxy reads report
/// their own errors in the result.
pub async fn facts(cluster: &Cluster, hostname: &str) -> Result<NodeFacts, ClusterError> {
    let mut out = this_node(cluster, hostname).await?;
    let metrics_path = super::proxy::node_cadvisor_path(&out.node_name);
    let (configz, metrics) = futures::join!(
        proxy_get(cluster, &out.node_name, "configz"),
        super::proxy::stream_to(cluster, &metrics_path, |r| crate::metrics::scan(r))
    );
    match configz.and_then(|text| parse_configz(&text)) {
        Ok(hints) => out.configz = Some(hints),
        Err(e) => out.configz_error = Some(e.to_string()),
    }
    match metrics {
        Ok(Ok(report)) => out.kubelet_cadvisor_pod_labels = Some(carries_pod_labels(&report)),
        Ok(Err(e)) => out.metrics_error = Some(format!("GET {metrics_path}: {e}")),
        Err(e) => out.metrics_error = Some(e.to_string()),
    }
    Ok(out)
}

/// [`facts`] without the kubelet's `/metrics/cadvisor`: what install needs of this node (its
/// configz), not a scrape of every container on it.
pub async fn configz_facts(cluster: &Cluster, hostname: &str) -> Result<NodeFacts, ClusterError> {
    let mut out = this_node(cluster, hostname).await?;
    match proxy_get(cluster, &out.node_name, "configz")
        .await
        .and_then(|text| parse_configz(&text))
    {
        Ok(hints) => out.configz = Some(hints),
        Err(e) => out.configz_error = Some(e.to_string()),
    }
    Ok(out)
}

/// This host's node among the cluster's: listed a page at a time, each Node reduced to its
/// name, addresses and runtime as the page arrives (a real Node carries kilobytes of images).
async fn this_node(cluster: &Cluster, hostname: &str) -> Result<NodeFacts, ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let nodes: Vec<Node> =
        super::pages::list_reduced(&api, &ListParams::default(), super::pages::PAGE, reduced)
            .await
            .map_err(|e| explain(&cluster.server, e))?;
    let (node, matched_by) = find(&nodes, hostname).ok_or_else(|| {
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        ClusterError::NotFound {
            object: format!("node named or addressed `{hostname}`"),
            hint: format!(
                "this host is not one of the cluster's nodes ({})",
                names.join(", ")
            ),
        }
    })?;
    Ok(NodeFacts {
        node_name: node.metadata.name.clone().unwrap_or_default(),
        matched_by: matched_by.to_string(),
        container_runtime_version: node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.container_runtime_version.clone()),
        ..NodeFacts::default()
    })
}

/// A Node with only what [`find`] and [`NodeFacts`] read.
fn reduced(node: Node) -> Node {
    let status = node.status.map(|s| NodeStatus {
        addresses: s.addresses,
        node_info: s.node_info,
        ..NodeStatus::default()
    });
    Node {
        metadata: ObjectMeta {
            name: node.metadata.name,
            ..ObjectMeta::default()
        },
        status,
        ..Node::default()
    }
}

/// [`classify`], with the whole cause chain in the reason of a connection failure (hyper's own
/// text is only "client error (Connect)"; the OS error sits at the end of the chain).
pub(crate) fn explain(server: &str, err: kube::Error) -> ClusterError {
    let reason = crate::error::chain(&err);
    match classify(server, err) {
        ClusterError::Unreachable { server, .. } => ClusterError::Unreachable { server, reason },
        other => other,
    }
}

/// This host's node among `nodes`: by name, by address, or the only node of a one-node cluster.
pub fn find<'a>(nodes: &'a [Node], hostname: &str) -> Option<(&'a Node, &'static str)> {
    let host = hostname.to_lowercase();
    if let Some(n) = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(host.as_str()))
    {
        return Some((n, "name"));
    }
    let by_address = nodes.iter().find(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .is_some_and(|a| a.iter().any(|a| a.address.to_lowercase() == host))
    });
    if let Some(n) = by_address {
        return Some((n, "address"));
    }
    // A single-node cluster (MicroK8s' default) whose node name differs from the hostname.
    match nodes {
        [only] => Some((only, "only node")),
        _ => None,
    }
}

pub(crate) async fn proxy_get(
    cluster: &super::client::Cluster,
    node: &str,
    path: &str,
) -> Result<String, ClusterError> {
    let uri = format!("/api/v1/nodes/{node}/proxy/{path}");
    let request = http::Request::get(&uri)
        .body(Vec::new())
        .map_err(|e| ClusterError::Api(format!("GET {uri}: {e}")))?;
    let body = cluster.client.request_stream(request).await.map_err(|e| {
        match explain(&cluster.server, e) {
            ClusterError::Api(msg) => ClusterError::Api(format!("GET {uri}: {msg}")),
            other => other,
        }
    })?;
    // configz is a few KiB; a larger answer is not a kubelet's. (`/metrics/cadvisor` is
    // streamed into the metrics scanner instead: it grows with the node's containers.)
    let (bytes, complete) = super::proxy::read_at_most(body, MAX_PROXY_ANSWER)
        .await
        .map_err(|e| ClusterError::Api(format!("GET {uri}: {e}")))?;
    if !complete {
        return Err(ClusterError::Api(format!(
            "GET {uri}: the answer is larger than {MAX_PROXY_ANSWER} bytes; not a kubelet's"
        )));
    }
    String::from_utf8(bytes).map_err(|e| ClusterError::Api(format!("GET {uri}: not UTF-8: {e}")))
}

/// The largest node proxy answer (configz) we read.
const MAX_PROXY_ANSWER: u64 = 1024 * 1024;

/// `{"kubeletconfig": {"containerRuntimeEndpoint": ..., "cgroupDriver": ...}}`.
/// `containerRuntimeEndpoint` exists in configz since Kubernetes 1.27 (kubernetes/kubernetes#112136).
pub fn parse_configz(text: &str) -> Result<ConfigzHints, ClusterError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ClusterError::Api(format!("configz is not JSON: {e}")))?;
    let cfg = value
        .get("kubeletconfig")
        .ok_or_else(|| ClusterError::Api("configz has no `kubeletconfig`".into()))?;
    let text_field = |k: &str| {
        cfg.get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(ConfigzHints {
        runtime_endpoint: text_field("containerRuntimeEndpoint"),
        cgroup_driver: text_field("cgroupDriver").and_then(|d| match d.as_str() {
            "cgroupfs" => Some(CgroupDriver::Cgroupfs),
            "systemd" => Some(CgroupDriver::Systemd),
            _ => None,
        }),
    })
}

/// Does a scrape carry pod labels? The kubelet's `/metrics/cadvisor` names them `pod`; a
/// standalone cAdvisor `container_label_io_kubernetes_pod_name`. Empty values do not count.
pub fn carries_pod_labels(report: &ScanReport) -> bool {
    report.labelled_series > 0 || report.kubelet_labelled_series > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configz_fields() {
        let h = parse_configz(r#"{"kubeletconfig":{"containerRuntimeEndpoint":"unix:///run/k3s/containerd/containerd.sock","cgroupDriver":"systemd"}}"#).unwrap();
        assert_eq!(
            h.runtime_endpoint.as_deref(),
            Some("unix:///run/k3s/containerd/containerd.sock")
        );
        assert_eq!(h.cgroup_driver, Some(CgroupDriver::Systemd));
        assert!(parse_configz("{}").is_err());
    }

    #[test]
    fn pod_labels_must_be_non_empty() {
        let empty =
            "container_cpu_usage_seconds_total{container=\"\",id=\"/kubepods/x\",pod=\"\"} 1\n";
        let full = "container_cpu_usage_seconds_total{container=\"web\",id=\"/kubepods/x\",pod=\"web-0\"} 1\n";
        let standalone = "container_memory_usage_bytes{container_label_io_kubernetes_pod_name=\"web-0\",id=\"/x\"} 1\n";
        let has = |text: &str| carries_pod_labels(&crate::metrics::scan(text.as_bytes()).unwrap());
        assert!(!has(empty));
        assert!(has(full));
        assert!(has(standalone));
        assert!(!has("# HELP x pod=\"a\"\n"));
    }
}
