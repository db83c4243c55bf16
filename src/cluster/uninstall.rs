//! Deletes exactly what `install` created: objects carrying our managed-by label *and* written by
//! our field manager, in reverse apply order, the namespace last and only when nothing else lives
//! in it; then watches until they are gone.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::runtime::watcher::watch_object;
use serde::Serialize;

use super::resources;
use super::status::{ManagedObject, managed_objects};
use super::{Cluster, ClusterError, classify};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Uninstalled {
    pub deleted: Vec<String>,
    /// Objects with our label that another manager wrote (not ours to delete), or a namespace
    /// that still holds other objects.
    pub kept: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub object: String,
    pub reason: String,
}

/// What `delete` would remove, in deletion order (namespace last), and what it would keep.
pub async fn targets(
    cluster: &Cluster,
    namespace: &str,
) -> Result<(Vec<ManagedObject>, Vec<Kept>), ClusterError> {
    let mut objects = managed_objects(cluster, namespace).await?;
    objects.sort_by_key(|o| std::cmp::Reverse(resources::order(&o.kind)));
    let (ours, foreign): (Vec<_>, Vec<_>) = objects.into_iter().partition(|o| o.managed_by_us());
    let kept = foreign
        .into_iter()
        .map(|o| Kept {
            reason: format!(
                "it carries our label but field manager cadvisor-setup never wrote it (managers: {})",
                o.managers.join(", ")
            ),
            object: o.describe(),
        })
        .collect();
    Ok((ours, kept))
}

/// Deletes `objects` (from [`targets`]) and waits until each is gone, within `timeout`.
pub async fn delete(
    cluster: &Cluster,
    namespace: &str,
    objects: &[ManagedObject],
    mut kept: Vec<Kept>,
    timeout: Duration,
) -> Result<Uninstalled, ClusterError> {
    let mut done = Uninstalled::default();
    let deadline = crate::deadline::deadline_after(timeout);
    for object in objects {
        if object.kind == "Namespace" {
            let others = foreign_objects(cluster, namespace).await?;
            if !others.is_empty() {
                kept.push(Kept {
                    object: object.describe(),
                    reason: format!("it still holds {}", others.join(", ")),
                });
                continue;
            }
        }
        let resource = resources::resolve(cluster, &object.api_version, &object.kind).await?;
        let api = resources::api(cluster, &resource, object.namespace.as_deref());
        match api.delete(&object.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(ClusterError::Partial {
                    applied: format!("deleted {}", list(&done.deleted)),
                    not_applied: object.describe(),
                    source: Box::new(classify(&cluster.server, e)),
                });
            }
        }
        wait_gone(&api, &object.name, deadline, timeout, &object.describe()).await?;
        done.deleted.push(object.describe());
    }
    done.kept = kept;
    Ok(done)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

async fn wait_gone(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: &str,
) -> Result<(), ClusterError> {
    let mut stream = std::pin::pin!(watch_object(api.clone(), name));
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(None)) | None => return Ok(()),
                Some(Ok(Some(_))) => {}
                Some(Err(e)) => {
                    tracing::debug!("watch error while waiting for {what} to go: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ClusterError::Timeout {
                    seconds: timeout.as_secs(),
                    doing: format!("waiting for {what} to be deleted (raise --timeout; it may carry a finalizer)"),
                });
            }
        }
    }
}

/// Objects in `namespace` that are not ours, of the common kinds (ignoring what Kubernetes puts
/// in every namespace: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap).
async fn foreign_objects(cluster: &Cluster, namespace: &str) -> Result<Vec<String>, ClusterError> {
    const KINDS: &[(&str, &str, &str)] = &[
        ("v1", "ConfigMap", "configmaps"),
        ("v1", "Secret", "secrets"),
        ("v1", "Service", "services"),
        ("v1", "ServiceAccount", "serviceaccounts"),
        ("apps/v1", "Deployment", "deployments"),
        ("apps/v1", "DaemonSet", "daemonsets"),
        ("apps/v1", "StatefulSet", "statefulsets"),
    ];
    let mut out = Vec::new();
    for (api_version, kind, plural) in KINDS {
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &resources::gvk(api_version, kind),
            plural,
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), namespace, &resource);
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => continue,
            Err(e) => return Err(classify(&cluster.server, e)),
        };
        for item in items {
            let name = item.metadata.name.clone().unwrap_or_default();
            let builtin = (*kind == "ServiceAccount" && name == "default")
                || (*kind == "ConfigMap" && name == "kube-root-ca.crt")
                || item.metadata.deletion_timestamp.is_some();
            // Ours = our label *and* our field manager (what `targets` deletes); a look-alike
            // another manager wrote stays, and so must the namespace holding it.
            let written_by_us = item
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .any(|f| f.manager.as_deref() == Some(super::FIELD_MANAGER));
            let ours = super::apply::is_ours(&item) && written_by_us;
            if !builtin && !ours {
                out.push(format!("{kind} {name}"));
            }
        }
    }
    Ok(out)
}
