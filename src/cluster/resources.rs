//! apiVersion + kind → the REST resource to call, for the kinds `render` produces.
//!
//! Plurals are fixed by the Kubernetes API (kubernetes.io API reference); the table avoids a
//! discovery round trip for every install. Unknown kinds fall back to discovery.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::oneshot;

use super::{Cluster, ClusterError, classify};

const RBAC: &str = "rbac.authorization.k8s.io/v1";

/// Kinds cadvisor-setup may render, with their plurals, in apply order (namespace first).
pub const KNOWN: &[(&str, &str, &str)] = &[
    ("v1", "Namespace", "namespaces"),
    ("v1", "ServiceAccount", "serviceaccounts"),
    ("v1", "ConfigMap", "configmaps"),
    (RBAC, "ClusterRole", "clusterroles"),
    (RBAC, "ClusterRoleBinding", "clusterrolebindings"),
    (RBAC, "Role", "roles"),
    (RBAC, "RoleBinding", "rolebindings"),
    // Before the DaemonSet, so cAdvisor's pods never run unprotected.
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ("v1", "Service", "services"),
    ("apps/v1", "DaemonSet", "daemonsets"),
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "servicemonitors",
    ),
];

/// Position of a kind in apply order (unknown kinds go just before the DaemonSet's successors).
pub fn order(kind: &str) -> usize {
    KNOWN
        .iter()
        .position(|(_, k, _)| *k == kind)
        .unwrap_or(KNOWN.len())
}

pub fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    match api_version.split_once('/') {
        Some((group, version)) => GroupVersionKind::gvk(group, version, kind),
        None => GroupVersionKind::gvk("", api_version, kind),
    }
}

/// The resource for `api_version`/`kind`: from the table, or asked of the server.
pub async fn resolve(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
) -> Result<ApiResource, ClusterError> {
    let gvk = gvk(api_version, kind);
    if let Some((_, _, plural)) = KNOWN
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    {
        return Ok(ApiResource::from_gvk_with_plural(&gvk, plural));
    }
    let (resource, _caps) = cluster
        .ask(oneshot::pinned_kind(&cluster.client, &gvk))
        .await?;
    Ok(resource)
}

/// A dynamic API handle, namespaced when `namespace` is given.
pub fn api(
    cluster: &Cluster,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, resource),
        None => Api::all_with(cluster.client.clone(), resource),
    }
}

/// The resources (plurals) the server serves in `api_version`, empty when it serves none (e.g.
/// the Prometheus operator's `monitoring.coreos.com/v1`, present only when its CRDs are
/// installed): one discovery request, whose answer a command may consult for several kinds.
pub async fn served(cluster: &Cluster, api_version: &str) -> Result<Vec<String>, ClusterError> {
    match cluster.client.list_api_group_resources(api_version).await {
        Ok(list) => Ok(list.resources.into_iter().map(|r| r.name).collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(classify(&cluster.server, e)),
    }
}
