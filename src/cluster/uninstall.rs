//! Undoes `install` under the ownership model ([`super::ownership`]): deletes what install
//! created, restores what `--force` adopted, keeps everything else and says why; the namespace
//! last, deleted only when install created it and discovery finds nothing else in it; then
//! waits until the deleted objects and our pods are gone.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watch_object};
use serde::Serialize;
use serde_json::Value;

use super::namespace_lock;
use super::ownership::{self, Ownership};
use super::resources;
use super::status::{ManagedObject, managed_objects};
use super::{Cluster, ClusterError, FIELD_MANAGER, classify};
use crate::deadline::deadline_after;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Uninstalled {
    pub deleted: Vec<String>,
    /// Adopted with `install --force`: put back as they were, not deleted.
    pub restored: Vec<String>,
    /// Left in place, with the reason (not ours, or a namespace that still holds something).
    pub kept: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub object: String,
    pub reason: String,
}

/// What [`run`] would do, in order (namespace last).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub delete: Vec<ManagedObject>,
    pub restore: Vec<ManagedObject>,
    pub kept: Vec<Kept>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.restore.is_empty()
    }

    /// "delete Namespace cadvisor, ...; restore ServiceAccount x/y" for the confirmation.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .delete
            .iter()
            .map(|o| format!("delete {}", o.describe()))
            .collect();
        out.extend(
            self.restore
                .iter()
                .map(|o| format!("restore {} (adopted with --force)", o.describe())),
        );
        out
    }
}

/// Sorts our labelled objects in `namespace` (and the namespace itself) into delete, restore
/// and keep.
pub async fn plan(cluster: &Cluster, namespace: &str) -> Result<Plan, ClusterError> {
    let mut objects = managed_objects(cluster, namespace).await?;
    objects.sort_by_key(|o| std::cmp::Reverse(resources::order(&o.kind)));
    let mut plan = Plan::default();
    for o in objects {
        match o.ownership {
            Ownership::Created => plan.delete.push(o),
            Ownership::Adopted => plan.restore.push(o),
            Ownership::Foreign => plan.kept.push(Kept {
                reason: format!(
                    "it carries our label but cadvisor-setup did not create it (managers: {})",
                    o.managers.join(", ")
                ),
                object: o.describe(),
            }),
        }
    }
    Ok(plan)
}

/// Carries out `plan` within `timeout`: restores, deletes (namespace last, only when empty),
/// and waits until what was deleted, and every pod of our DaemonSets, is gone.
pub async fn run(
    cluster: &Cluster,
    namespace: &str,
    plan: Plan,
    timeout: Duration,
) -> Result<Uninstalled, ClusterError> {
    let deadline = deadline_after(timeout);
    let mut done = Uninstalled {
        kept: plan.kept,
        ..Uninstalled::default()
    };
    let (namespaces, objects): (Vec<_>, Vec<_>) =
        plan.delete.into_iter().partition(|o| o.kind == "Namespace");

    let mut pod_selectors = Vec::new();
    let mut gone = Vec::new();
    for object in &objects {
        let api = api_for(cluster, object)
            .await
            .map_err(|e| partial(&done, object.describe(), e))?;
        let selector = if object.kind == "DaemonSet" {
            pod_selector(&api, &object.name).await
        } else {
            None
        };
        if let Deleted::Replaced = delete_one(cluster, &api, object, &done).await? {
            done.kept.push(replaced(object));
            continue;
        }
        pod_selectors.extend(selector);
        gone.push((api, object.describe(), object.name.clone()));
        done.deleted.push(object.describe());
    }
    for object in &plan.restore {
        match restore(cluster, object).await {
            Ok(()) => done.restored.push(object.describe()),
            Err(Restore::NoRecord) => done.kept.push(Kept {
                object: object.describe(),
                reason: "adopted with --force, but its record of what it was before is missing or unreadable: left as it is".to_string(),
            }),
            Err(Restore::Cluster(e)) => return Err(partial(&done, object.describe(), e)),
        }
    }
    let namespaces_left = || {
        let left: Vec<String> = namespaces.iter().map(|n| n.describe()).collect();
        if left.is_empty() {
            "nothing".to_string()
        } else {
            left.join(", ")
        }
    };
    for (api, what, name) in &gone {
        if let Err(e) = wait_gone(api, name, deadline, timeout, what).await {
            return Err(partial(&done, namespaces_left(), e));
        }
    }
    for selector in &pod_selectors {
        if let Err(e) = wait_pods_gone(cluster, namespace, selector, deadline, timeout).await {
            return Err(partial(&done, namespaces_left(), e));
        }
    }

    let ours: Vec<(String, String)> = objects
        .iter()
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    for object in &namespaces {
        // Past here every error names what was deleted and restored already.
        let (kinds, undiscovered) = namespaced_kinds(cluster, deadline)
            .await
            .map_err(|e| partial(&done, namespaces_left(), e))?;
        if !undiscovered.is_empty() {
            done.kept.push(still_holds(object, &undiscovered));
            continue;
        }
        // Checked, closed to new objects (namespace_lock), checked again: what someone created
        // before the lock is seen by the second check, and a create after it is refused.
        let holds = foreign_contents(cluster, namespace, &kinds, &ours)
            .await
            .map_err(|e| partial(&done, namespaces_left(), e))?;
        if !holds.is_empty() {
            done.kept.push(still_holds(object, &holds));
            continue;
        }
        let uid = match namespace_lock::close(cluster, namespace, &kinds).await? {
            namespace_lock::Closed::Closed { uid } => uid,
            namespace_lock::Closed::Refused(reason) => {
                done.kept.push(Kept {
                    object: object.describe(),
                    reason: format!(
                        "{reason}; delete it yourself once you know it is empty (kubectl delete namespace {})",
                        object.name
                    ),
                });
                continue;
            }
        };
        let api = api_for(cluster, object)
            .await
            .map_err(|e| partial(&done, namespaces_left(), e))?;
        let checked = async {
            let wait = namespace_lock::ENFORCED_WITHIN
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            if !namespace_lock::enforced(cluster, namespace, wait).await? {
                return Ok(Some(Kept {
                    object: object.describe(),
                    reason: format!(
                        "the ResourceQuota {} that closes it to new objects was not enforced within {}s (the quota controller did not write its status), so an object created meanwhile would have gone with it; delete it yourself once you know it is empty (kubectl delete namespace {})",
                        namespace_lock::NAME,
                        wait.as_secs(),
                        object.name
                    ),
                }));
            }
            let holds = foreign_contents(cluster, namespace, &kinds, &ours).await?;
            if !holds.is_empty() {
                return Ok(Some(still_holds(object, &holds)));
            }
            Ok(match delete_one(cluster, &api, object, &done).await? {
                Deleted::Gone => None,
                Deleted::Replaced => Some(replaced(object)),
            })
        };
        // What is not done when the lock cannot be removed: the namespace stays closed.
        let left_closed = || {
            format!(
                "{}; namespace {namespace} is left closed to new objects: kubectl delete resourcequota --namespace {namespace} {}",
                namespaces_left(),
                namespace_lock::NAME
            )
        };
        match checked.await {
            Ok(None) => {}
            Ok(Some(kept)) => {
                if let Err(e) = namespace_lock::open(cluster, namespace, &uid).await {
                    return Err(partial(&done, left_closed(), e));
                }
                done.kept.push(kept);
                continue;
            }
            Err(e) => {
                // Not left closed: reopen it (best effort) before saying what failed.
                let reopened = namespace_lock::open(cluster, namespace, &uid).await.is_ok();
                return Err(match e {
                    ClusterError::Partial { .. } if reopened => e,
                    _ if reopened => partial(&done, namespaces_left(), e),
                    _ => partial(&done, left_closed(), e),
                });
            }
        }
        if let Err(e) = wait_gone(&api, &object.name, deadline, timeout, &object.describe()).await {
            return Err(partial(
                &done,
                format!("{} (deleting)", object.describe()),
                e,
            ));
        }
        done.deleted.push(object.describe());
    }
    Ok(done)
}

/// The kinds install renders only when asked (`--network-policy`, `--service-monitor`,
/// `--grafana-dashboard`): a rerun whose plan no longer has one deletes ours.
pub const OPTIONAL_KINDS: &[&str] = &["NetworkPolicy", "ServiceMonitor", "ConfigMap"];

/// Deletes what install created in `namespace` that its plan (`planned`, `(kind, name)`) no
/// longer names: objects of [`OPTIONAL_KINDS`] and, with `group_prefix`, our node-group
/// DaemonSets (`cadvisor-<layout>`) whose group became empty or merged into another. Adopted,
/// foreign or terminating objects are never touched. Returns what was deleted (`Kind ns/name`,
/// DaemonSets first); with `dry_run`, what would be, deleting nothing.
pub async fn prune(
    cluster: &Cluster,
    namespace: &str,
    planned: &[(String, String)],
    group_prefix: Option<&str>,
    dry_run: bool,
) -> Result<Vec<String>, ClusterError> {
    let is_group = |o: &ManagedObject| {
        o.kind == "DaemonSet"
            && group_prefix
                .and_then(|prefix| o.name.strip_prefix(prefix))
                .is_some_and(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let mut unplanned: Vec<ManagedObject> = managed_objects(cluster, namespace)
        .await?
        .into_iter()
        .filter(|o| {
            (is_group(o) || OPTIONAL_KINDS.contains(&o.kind.as_str()))
                && o.namespace.as_deref() == Some(namespace)
                && o.ownership == Ownership::Created
                && !o.terminating
                && !planned.iter().any(|(k, n)| *k == o.kind && *n == o.name)
        })
        .collect();
    unplanned.sort_by_key(|o| o.kind != "DaemonSet");
    let mut deleted = Vec::new();
    for o in unplanned {
        if !dry_run {
            let api = api_for(cluster, &o).await?;
            if let Deleted::Replaced =
                delete_one(cluster, &api, &o, &Uninstalled::default()).await?
            {
                continue;
            }
        }
        deleted.push(o.describe());
    }
    Ok(deleted)
}

async fn api_for(cluster: &Cluster, o: &ManagedObject) -> Result<Api<DynamicObject>, ClusterError> {
    let resource = resources::resolve(cluster, &o.api_version, &o.kind).await?;
    Ok(resources::api(cluster, &resource, o.namespace.as_deref()))
}

fn partial(done: &Uninstalled, not_done: String, source: ClusterError) -> ClusterError {
    let mut applied: Vec<String> = done
        .deleted
        .iter()
        .map(|d| format!("deleted {d}"))
        .collect();
    applied.extend(done.restored.iter().map(|r| format!("restored {r}")));
    ClusterError::Partial {
        applied: if applied.is_empty() {
            "nothing".to_string()
        } else {
            applied.join(", ")
        },
        not_applied: not_done,
        source: Box::new(source),
    }
}

/// What became of a delete.
enum Deleted {
    /// Deleted, or already gone.
    Gone,
    /// Not deleted: the object of that name is no longer the one judged ours (its uid differs:
    /// someone deleted ours and created their own since we listed it).
    Replaced,
}

fn replaced(object: &ManagedObject) -> Kept {
    Kept {
        object: object.describe(),
        reason: "it was replaced since it was read (another object of the same name, a different uid): not deleted".to_string(),
    }
}

/// Deletes `object` only if it is still the object we listed: its uid is a precondition
/// (DeleteOptions `preconditions.uid`; the API server answers 409 Conflict "Precondition
/// failed: UID in precondition ..." otherwise, k8s.io/apiserver `storage.Preconditions.Check`).
async fn delete_one(
    cluster: &Cluster,
    api: &Api<DynamicObject>,
    object: &ManagedObject,
    done: &Uninstalled,
) -> Result<Deleted, ClusterError> {
    let mut params = DeleteParams::background();
    if let Some(uid) = &object.uid {
        params = params.preconditions(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        });
    }
    match api.delete(&object.name, &params).await {
        Ok(_) => Ok(Deleted::Gone),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Deleted::Gone),
        Err(kube::Error::Api(s)) if s.code == 409 && s.message.contains("Precondition failed") => {
            Ok(Deleted::Replaced)
        }
        Err(e) => Err(partial(
            done,
            object.describe(),
            classify(&cluster.server, e),
        )),
    }
}

/// `app=cadvisor,...`: the DaemonSet's pod selector, to wait for its pods.
async fn pod_selector(api: &Api<DynamicObject>, name: &str) -> Option<String> {
    let ds = api.get_opt(name).await.ok()??;
    let labels = ds.data["spec"]["selector"]["matchLabels"].as_object()?;
    let selector: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!selector.is_empty()).then(|| selector.join(","))
}

enum Restore {
    NoRecord,
    Cluster(ClusterError),
}

/// Puts an adopted object back as its record says (optimistic concurrency: a write in between
/// makes us read it again, up to three times).
async fn restore(cluster: &Cluster, object: &ManagedObject) -> Result<(), Restore> {
    let api = api_for(cluster, object).await.map_err(Restore::Cluster)?;
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let Some(live) = api
            .get_opt(&object.name)
            .await
            .map_err(|e| Restore::Cluster(classify(&cluster.server, e)))?
        else {
            return Ok(());
        };
        let live = serde_json::to_value(live).unwrap_or(Value::Null);
        let previous = ownership::recorded(&live).ok_or(Restore::NoRecord)?;
        let restored: DynamicObject = serde_json::from_value(ownership::restored(&live, &previous))
            .map_err(|e| {
                Restore::Cluster(ClusterError::Api(format!(
                    "restoring {}: {e}",
                    object.describe()
                )))
            })?;
        match api.replace(&object.name, &params, &restored).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempts < 3 => continue,
            Err(e) => return Err(Restore::Cluster(classify(&cluster.server, e))),
        }
    }
}

async fn wait_gone(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: &str,
) -> Result<(), ClusterError> {
    let mut stream = std::pin::pin!(watch_object(api.clone(), name).default_backoff());
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(None)) | None => return Ok(()),
                Some(Ok(Some(_))) => {}
                Some(Err(e)) => tracing::debug!("watch error while waiting for {what} to go: {e}"),
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

/// Watches our pods (by the DaemonSet's selector) until none is left.
async fn wait_pods_gone(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    let config = watcher::Config::default().labels(selector);
    let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut live: BTreeSet<String> = BTreeSet::new();
    let mut initial: BTreeSet<String> = BTreeSet::new();
    let mut listed = false;
    let name = |o: &DynamicObject| o.metadata.name.clone().unwrap_or_default();
    loop {
        tokio::select! {
            event = stream.try_next() => match event {
                Ok(Some(watcher::Event::Init)) => initial.clear(),
                Ok(Some(watcher::Event::InitApply(o))) => { initial.insert(name(&o)); }
                Ok(Some(watcher::Event::InitDone)) => {
                    live = std::mem::take(&mut initial);
                    listed = true;
                }
                Ok(Some(watcher::Event::Apply(o))) => { live.insert(name(&o)); }
                Ok(Some(watcher::Event::Delete(o))) => { live.remove(&name(&o)); }
                Ok(None) => return Ok(()),
                Err(e) => tracing::debug!("watch error while waiting for pods to go: {e}"),
            },
            _ = tokio::time::sleep_until(deadline) => {
                let left: Vec<String> = live.iter().map(|p| format!("Pod {namespace}/{p}")).collect();
                return Err(ClusterError::Timeout {
                    seconds: timeout.as_secs(),
                    doing: format!(
                        "waiting for cAdvisor's pods to terminate; still terminating: {} (raise --timeout; they are going away on their own)",
                        if left.is_empty() { "unknown (the watch did not list them)".to_string() } else { left.join(", ") }
                    ),
                });
            }
        }
        if listed && live.is_empty() {
            return Ok(());
        }
    }
}

/// Objects in `namespace` that are not ours, over every namespaced kind the server serves and
/// lets us list (as `kubectl api-resources --namespaced --verbs=list` finds them), ignoring what
/// Kubernetes puts in every namespace (the `kube-root-ca.crt` ConfigMap, the `default`
/// ServiceAccount, Events) and what belongs to our objects (owner references). A kind we may
/// not list counts as "something there": we cannot tell the namespace is empty.
async fn foreign_contents(
    cluster: &Cluster,
    namespace: &str,
    kinds: &[ApiResource],
    ours: &[(String, String)],
) -> Result<Vec<String>, ClusterError> {
    let mut out = Vec::new();
    for resource in kinds {
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), namespace, resource);
        let kind = resource.kind.clone();
        let listed =
            super::pages::list_reduced(&api, &ListParams::default(), super::pages::PAGE, |item| {
                let name = item.metadata.name.as_deref().unwrap_or("?");
                (!put_there_by_kubernetes(&kind, &item)
                    && !belongs_to(&kind, &item, ours)
                    && !namespace_lock::is_lock(&kind, name))
                .then(|| format!("{kind} {name}"))
            })
            .await;
        match listed {
            Ok(left) => out.extend(left.into_iter().flatten()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => continue,
            Err(kube::Error::Api(s)) if s.code == 403 => {
                out.push(format!(
                    "{} we may not list (403), so it cannot be known to be empty",
                    resource.plural
                ));
                continue;
            }
            Err(e) => return Err(classify(&cluster.server, e)),
        };
    }
    Ok(out)
}

fn still_holds(object: &ManagedObject, holds: &[String]) -> Kept {
    Kept {
        object: object.describe(),
        reason: format!("it still holds {}", holds.join(", ")),
    }
}

/// How long one group version's discovery may take. A real API server answers in milliseconds;
/// an aggregated API whose backend is down (metrics-server is the usual one) answers 503, which
/// kube's client retries with a growing backoff: that group is reported, not waited on.
const GROUP_DISCOVERY_LIMIT: Duration = Duration::from_secs(10);

/// The namespaced kinds but Events of every group's preferred version that can be listed (as
/// `kubectl api-resources --namespaced --verbs=list` finds them), and the group versions whose
/// discovery failed, with why (kubectl, too, carries on past them: "unable to retrieve the complete list of
/// server APIs"). kube's `Discovery::run` fails as a whole on one such group.
async fn namespaced_kinds(
    cluster: &Cluster,
    deadline: tokio::time::Instant,
) -> Result<(Vec<ApiResource>, Vec<String>), ClusterError> {
    let client = &cluster.client;
    // Within what is left of --timeout too (a second at least, to ask at all).
    let limit = GROUP_DISCOVERY_LIMIT
        .min(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .max(Duration::from_secs(1));
    let core = cluster.ask(client.list_core_api_versions()).await?;
    let groups = cluster.ask(client.list_api_groups()).await?;
    let mut versions: Vec<(String, String)> = Vec::new();
    if let Some(v) = core
        .versions
        .iter()
        .find(|v| *v == "v1")
        .or(core.versions.first())
    {
        versions.push((String::new(), v.clone()));
    }
    for g in &groups.groups {
        let preferred = g.preferred_version.as_ref().or(g.versions.first());
        if let Some(p) = preferred {
            versions.push((g.name.clone(), p.version.clone()));
        }
    }
    let fetched =
        futures::future::join_all(versions.into_iter().map(|(group, version)| async move {
            let gv = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            let listed = if group.is_empty() {
                tokio::time::timeout(limit, client.list_core_api_resources(&version)).await
            } else {
                tokio::time::timeout(limit, client.list_api_group_resources(&gv)).await
            };
            (group, version, gv, listed)
        }))
        .await;
    let mut resources = Vec::new();
    let mut failed = Vec::new();
    let cannot_know = |gv: &str, why: String| {
        format!(
            "whatever API {gv} serves (its discovery failed: {why}), so it cannot be known to be empty"
        )
    };
    for (group, version, gv, listed) in fetched {
        let list = match listed {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                failed.push(cannot_know(&gv, classify(&cluster.server, e).to_string()));
                continue;
            }
            Err(_) => {
                let why = format!("no answer within {}s", limit.as_secs());
                failed.push(cannot_know(&gv, why));
                continue;
            }
        };
        for r in list.resources {
            // Subresources (`pods/log`) are not kinds of their own; Events are not contents.
            if !r.namespaced
                || r.name.contains('/')
                || r.name == "events"
                || !r.verbs.iter().any(|v| v == "list")
            {
                continue;
            }
            resources.push(ApiResource {
                group: group.clone(),
                version: version.clone(),
                api_version: gv.clone(),
                kind: r.kind,
                plural: r.name,
            });
        }
    }
    Ok((resources, failed))
}

/// Made by a controller for one of the objects we deleted: our pods, the DaemonSet's
/// ControllerRevisions, the Service's EndpointSlices (owner references) and its Endpoints (same
/// name, no owner reference); the garbage collector and the endpoints controller remove them.
fn belongs_to(kind: &str, item: &DynamicObject, ours: &[(String, String)]) -> bool {
    let name = item.metadata.name.as_deref().unwrap_or_default();
    // Every owner ours: the garbage collector deletes a dependent only once none of its owners
    // is left (kubernetes.io "Garbage Collection": owner references), so one that also names
    // an owner of someone else's stays, and the namespace with it.
    let owners = item
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default();
    let owned = !owners.is_empty()
        && owners
            .iter()
            .all(|r| ours.iter().any(|(k, n)| *k == r.kind && *n == r.name));
    owned || (kind == "Endpoints" && ours.iter().any(|(k, n)| k == "Service" && n == name))
}

/// What Kubernetes itself puts in every namespace, or is going away / ours.
fn put_there_by_kubernetes(kind: &str, item: &DynamicObject) -> bool {
    let name = item.metadata.name.as_deref().unwrap_or_default();
    // kube-root-ca.crt: root-ca-cert-publisher; default: serviceaccount-controller
    // (kubernetes/kubernetes: pkg/controller/certificates/rootcacertpublisher,
    // pkg/controller/serviceaccount).
    (kind == "ConfigMap" && name == "kube-root-ca.crt")
        || (kind == "ServiceAccount" && name == "default")
        || item.metadata.deletion_timestamp.is_some()
        || ownership::of(&serde_json::to_value(item).unwrap_or_default()) == Ownership::Created
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, labels: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "cadvisor", "labels": labels}
        }))
        .unwrap()
    }

    #[test]
    fn only_what_all_its_owners_being_ours_makes_ours_is_ignored() {
        let ours = vec![("DaemonSet".to_string(), "cadvisor".to_string())];
        let owned_by = |owners: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "cadvisor", "ownerReferences": owners}
            }))
            .unwrap()
        };
        let ds = serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "cadvisor", "uid": "1"});
        let theirs =
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "2"});
        assert!(belongs_to(
            "ConfigMap",
            &owned_by(serde_json::json!([ds.clone()])),
            &ours
        ));
        assert!(!belongs_to(
            "ConfigMap",
            &owned_by(serde_json::json!([ds, theirs])),
            &ours
        ));
        assert!(!belongs_to(
            "ConfigMap",
            &owned_by(serde_json::json!([])),
            &ours
        ));
    }

    #[test]
    fn only_what_kubernetes_puts_everywhere_is_ignored() {
        let none = serde_json::json!({});
        assert!(put_there_by_kubernetes(
            "ConfigMap",
            &object("ConfigMap", "kube-root-ca.crt", none.clone())
        ));
        assert!(put_there_by_kubernetes(
            "ServiceAccount",
            &object("ServiceAccount", "default", none.clone())
        ));
        assert!(!put_there_by_kubernetes(
            "ConfigMap",
            &object("ConfigMap", "openshift-service-ca.crt", none.clone())
        ));
        assert!(!put_there_by_kubernetes(
            "Pod",
            &object("Pod", "user-pod", none.clone())
        ));
        // Our label alone (copied by someone) is not ours.
        let labelled = serde_json::json!({super::super::MANAGED_BY_LABEL: FIELD_MANAGER});
        assert!(!put_there_by_kubernetes(
            "Role",
            &object("Role", "r", labelled)
        ));
    }
}
