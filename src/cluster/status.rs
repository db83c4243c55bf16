//! What is installed: the DaemonSet's image and readiness, our objects with their field managers,
//! and the last verification recorded on the DaemonSet.

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;

use super::ownership::{self, Ownership};
use super::resources::{self, KNOWN};
use super::{
    Cluster, ClusterError, FIELD_MANAGER, LAST_VERIFICATION_ANNOTATION, MANAGED_BY_LABEL, classify,
    describe,
};

#[derive(Debug, Clone, Serialize)]
pub struct ManagedObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Field managers from `metadata.managedFields`, in order, deduplicated.
    pub managers: Vec<String>,
    /// Created by install, adopted with `--force`, or only carrying our label.
    pub ownership: Ownership,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub terminating: bool,
    /// `metadata.uid`: a delete names it as a precondition, so an object replaced since it was
    /// judged ours (deleted and created again by someone else, same name) is not deleted.
    #[serde(skip)]
    pub uid: Option<String>,
}

impl ManagedObject {
    pub fn describe(&self) -> String {
        describe(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonSetState {
    pub namespace: String,
    pub name: String,
    pub image: Option<String>,
    /// The image tag (cAdvisor's version), e.g. `0.60.5`.
    pub version: Option<String>,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub ours: bool,
    /// The `cadvisor-setup/last-verification` annotation, parsed when it is JSON.
    pub last_verification: Option<serde_json::Value>,
}

/// The DaemonSet `namespace/name`, `None` when absent.
pub async fn daemonset(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Option<DaemonSetState>, ClusterError> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), namespace);
    let Some(ds) = cluster.ask(api.get_opt(name)).await? else {
        return Ok(None);
    };
    let image = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| {
            p.containers
                .iter()
                .find(|c| c.name == "cadvisor")
                .or(p.containers.first())
        })
        .and_then(|c| c.image.clone());
    let version = image.as_deref().and_then(image_tag);
    let status = ds.status.clone().unwrap_or_default();
    let last_verification = ds
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_VERIFICATION_ANNOTATION))
        .map(|text| serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.clone())));
    Ok(Some(DaemonSetState {
        namespace: namespace.to_string(),
        name: name.to_string(),
        image,
        version,
        desired: status.desired_number_scheduled,
        ready: status.number_ready,
        updated: status.updated_number_scheduled.unwrap_or(0),
        available: status.number_available.unwrap_or(0),
        ours: ownership::of(&serde_json::to_value(&ds.metadata).map_or(
            serde_json::Value::Null,
            |m| serde_json::json!({"metadata": m}),
        ))
        .is_ours(),
        last_verification,
    }))
}

/// `ghcr.io/google/cadvisor:0.60.5` → `0.60.5` (a digest-only reference has no tag).
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag.to_string())
}

/// Every object of the kinds we render that carries our managed-by label, in `namespace` for
/// namespaced kinds and cluster-wide otherwise (Namespace included). Kinds the server does not
/// serve (no ServiceMonitor CRD) are skipped.
pub async fn managed_objects(
    cluster: &Cluster,
    namespace: &str,
) -> Result<Vec<ManagedObject>, ClusterError> {
    let selector = format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}");
    let mut out = Vec::new();
    for (api_version, kind, _) in KNOWN {
        let resource = resources::resolve(cluster, api_version, kind).await?;
        let namespaced = !matches!(*kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding");
        let api = resources::api(cluster, &resource, namespaced.then_some(namespace));
        let listed = super::pages::list_reduced(
            &api,
            &ListParams::default().labels(&selector),
            super::pages::PAGE,
            |object| {
                let mine = match *kind {
                    "Namespace" => object.metadata.name.as_deref() == Some(namespace),
                    // Cluster-scoped: only ours, or unmarked (written before the mark existed).
                    _ if !namespaced => object
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(ownership::INSTALL_NAMESPACE_ANNOTATION))
                        .is_none_or(|n| n == namespace),
                    _ => true,
                };
                mine.then(|| managed_object(api_version, kind, &object))
            },
        )
        .await;
        match listed {
            Ok(objects) => out.extend(objects.into_iter().flatten()),
            // Not served (ServiceMonitor without the Prometheus Operator). Every API server
            // serves core/v1 and apps/v1, so a 404 for one of those is no API server at all (a
            // web server at the kubeconfig's address), not "none of ours".
            Err(kube::Error::Api(s))
                if s.code == 404 && !matches!(*api_version, "v1" | "apps/v1") =>
            {
                continue;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(ClusterError::Misbehaving {
                    server: cluster.server.clone(),
                    reason: format!(
                        "it answered 404 to listing {kind}s, which every API server serves ({})",
                        s.message.lines().next().unwrap_or_default()
                    ),
                });
            }
            Err(e) => return Err(classify(&cluster.server, e)),
        }
    }
    Ok(out)
}

/// Our DaemonSets in `namespace` (by the managed-by label), by name: `cadvisor` and one per
/// further node group (`plan::groups`).
pub async fn our_daemonsets(
    cluster: &Cluster,
    namespace: &str,
) -> Result<Vec<ManagedObject>, ClusterError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        namespace,
        &kube::discovery::ApiResource::erase::<DaemonSet>(&()),
    );
    let selector = format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}");
    let listed = cluster
        .ask(super::pages::list_reduced(
            &api,
            &ListParams::default().labels(&selector),
            super::pages::PAGE,
            |o| managed_object("apps/v1", "DaemonSet", &o),
        ))
        .await?;
    let mut out: Vec<ManagedObject> = listed
        .into_iter()
        .filter(|o| o.ownership.is_ours())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The runtime socket the live `name` DaemonSet was planned for (its
/// `cadvisor-setup/runtime-socket` annotation), so a rerun keeps that name on that layout.
pub async fn serving_socket(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Option<std::path::PathBuf> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), namespace);
    let ds = api.get_opt(name).await.ok()??;
    ds.metadata
        .annotations?
        .get("cadvisor-setup/runtime-socket")
        .map(std::path::PathBuf::from)
}

fn managed_object(api_version: &str, kind: &str, object: &DynamicObject) -> ManagedObject {
    let json = serde_json::to_value(object).unwrap_or_default();
    ManagedObject {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: object.metadata.name.clone().unwrap_or_default(),
        namespace: object.metadata.namespace.clone(),
        managers: ownership::managers(&json),
        ownership: ownership::of(&json),
        terminating: object.metadata.deletion_timestamp.is_some(),
        uid: object.metadata.uid.clone(),
    }
}

/// Stores the last verification on the DaemonSet (a merge patch under our field manager; an
/// annotation change bumps no generation, so no pod restarts).
pub async fn record_verification(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), ClusterError> {
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), namespace);
    let patch = serde_json::json!({
        "metadata": {"annotations": {LAST_VERIFICATION_ANNOTATION: value.to_string()}}
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    cluster
        .ask(api.patch(name, &params, &Patch::Merge(&patch)))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(
            image_tag("ghcr.io/google/cadvisor:0.60.5").as_deref(),
            Some("0.60.5")
        );
        assert_eq!(
            image_tag("localhost:5000/cadvisor:v1@sha256:ab").as_deref(),
            Some("v1")
        );
        assert_eq!(image_tag("localhost:5000/cadvisor"), None);
    }
}
