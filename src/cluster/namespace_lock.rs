//! Closes a namespace to new objects while `uninstall` makes sure it is empty and deletes it.
//!
//! Deleting a namespace deletes everything in it, and Kubernetes has no "delete if empty": an
//! object someone creates after uninstall's check and before its delete would go with the
//! namespace. So, once a first check finds nothing foreign, uninstall creates a ResourceQuota
//! that allows no object of any kind in the namespace, checks again, and only then deletes it.
//! Quota admission refuses every create past a quota's hard limit (kubernetes.io "Resource
//! Quotas", "Object count quota": `count/<resource>.<group>` for any namespaced resource;
//! k8s.io/apiserver `admission/plugin/resourcequota`), so nothing created after the quota can be
//! lost, and the second check sees whatever was created before it. The quota goes with the
//! namespace; when the namespace is kept, it is deleted again.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::discovery::ApiResource;

use super::ownership::{self, Ownership};
use super::{Cluster, ClusterError, FIELD_MANAGER, MANAGED_BY_LABEL, classify};

/// The quota's name, also how a leftover of an interrupted uninstall is found.
pub const NAME: &str = "cadvisor-setup-uninstall";

/// What [`close`] achieved.
pub enum Closed {
    /// The namespace takes no new object while this quota (its uid) stands.
    Closed { uid: String },
    /// It could not be closed, for this reason: the namespace must be kept.
    Refused(String),
}

/// Whether `kind`/`name` in a namespace is the quota [`close`] makes.
pub fn is_lock(kind: &str, name: &str) -> bool {
    kind == "ResourceQuota" && name == NAME
}

/// The quota's hard limits: 0 of every kind in `kinds` (the namespaced kinds discovery lists).
fn hard(kinds: &[ApiResource]) -> BTreeMap<String, Quantity> {
    kinds
        .iter()
        .map(|k| (count_key(k), Quantity("0".to_string())))
        .collect()
}

/// `count/<plural>` or `count/<plural>.<group>`.
fn count_key(k: &ApiResource) -> String {
    if k.group.is_empty() {
        format!("count/{}", k.plural)
    } else {
        format!("count/{}.{}", k.plural, k.group)
    }
}

/// The kinds (`<plural>.<group>`) a quota cannot name: the API server validates each
/// `spec.hard` key as a qualified name, whose part after `/` is at most 63 characters of
/// `[A-Za-z0-9-_.]`, alphanumeric at both ends (kubernetes/kubernetes pkg/apis/core/validation
/// `ValidateResourceQuotaResourceName` → apimachinery `validation.IsQualifiedName`), so one
/// such kind makes the whole quota invalid (422). Real ones exist: Azure Service Operator's
/// `mongodbdatabasecollectionthroughputsettings.documentdb.azure.com` is 64.
fn unnameable(kinds: &[ApiResource]) -> Vec<String> {
    let valid = |name: &str| {
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        !name.is_empty()
            && name.len() <= 63
            && edge(name.chars().next())
            && edge(name.chars().last())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    kinds
        .iter()
        .map(count_key)
        .filter_map(|key| {
            let name = key.strip_prefix("count/")?;
            (!valid(name)).then(|| name.to_string())
        })
        .collect()
}

/// Creates the quota that closes `namespace` to new objects of every kind in `kinds`. A quota
/// of that name left by an interrupted uninstall is used again when it is ours; anyone else's,
/// or a refusal to create one (RBAC), is [`Closed::Refused`].
pub async fn close(
    cluster: &Cluster,
    namespace: &str,
    kinds: &[ApiResource],
) -> Result<Closed, ClusterError> {
    let api: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), namespace);
    let unnameable = unnameable(kinds);
    if !unnameable.is_empty() {
        return Ok(Closed::Refused(format!(
            "it could not be closed to new objects while it was checked (a ResourceQuota cannot name {}: longer than 63 characters), so an object created meanwhile would have gone with it",
            unnameable.join(", ")
        )));
    }
    let mut meta = serde_json::json!({"metadata": {"name": NAME, "namespace": namespace}});
    ownership::mark_created(&mut meta);
    let metadata: ObjectMeta = serde_json::from_value(meta["metadata"].take())
        .map_err(|e| ClusterError::Api(format!("the namespace lock's metadata: {e}")))?;
    let quota = ResourceQuota {
        metadata,
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard(kinds)),
            ..ResourceQuotaSpec::default()
        }),
        status: None,
    };
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    // A quota of ours left by an interrupted uninstall names the kinds served then, not a kind
    // served since: it is removed and made again (once) for the kinds served now.
    let mut remade = false;
    let created = loop {
        match api.create(&params, &quota).await {
            Ok(created) => break created,
            Err(kube::Error::Api(s)) if s.code == 409 => match leftover(cluster, &api).await? {
                Some(uid) if !remade => {
                    remade = true;
                    open(cluster, namespace, &uid).await?;
                }
                Some(uid) => return Ok(Closed::Closed { uid }),
                None => {
                    return Ok(Closed::Refused(format!(
                        "a ResourceQuota {NAME} that is not ours stands in it"
                    )));
                }
            },
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 422 => {
                return Ok(Closed::Refused(format!(
                    "it could not be closed to new objects while it was checked (creating ResourceQuota {NAME} was refused: {}), so an object created meanwhile would have gone with it",
                    s.message
                )));
            }
            Err(e) => return Err(classify(&cluster.server, e)),
        }
    };
    match created.metadata.uid {
        Some(uid) => Ok(Closed::Closed { uid }),
        None => Err(ClusterError::Api(format!(
            "the API server created ResourceQuota {namespace}/{NAME} without a uid"
        ))),
    }
}

/// How long the quota controller may take to take the quota up (it syncs a new quota at once;
/// seconds are a busy controller manager).
pub const ENFORCED_WITHIN: Duration = Duration::from_secs(30);

/// Waits until quota admission enforces the quota: it compares with `status.hard`, which the
/// quota controller copies from `spec.hard` (k8s.io/apiserver `admission/plugin/resourcequota`
/// `CheckRequest`: `quota.ResourceNames(resourceQuota.Status.Hard)`; kubernetes/kubernetes
/// pkg/controller/resourcequota `syncResourceQuota`), so until then the quota refuses nothing.
/// `false` when that did not happen within `wait`.
pub async fn enforced(
    cluster: &Cluster,
    namespace: &str,
    wait: Duration,
) -> Result<bool, ClusterError> {
    let api: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), namespace);
    let deadline = crate::deadline::deadline_after(wait);
    loop {
        let taken_up = cluster.ask(api.get_opt(NAME)).await?.map(|q| {
            let wanted = q.spec.and_then(|s| s.hard);
            let enforced = q.status.and_then(|s| s.hard);
            enforced.is_some() && enforced == wanted
        });
        match taken_up {
            Some(true) => return Ok(true),
            None => return Ok(false),
            Some(false) if Instant::now() >= deadline => return Ok(false),
            Some(false) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The uid of a quota of ours named [`NAME`] in the namespace, if one stands there.
async fn leftover(
    cluster: &Cluster,
    api: &Api<ResourceQuota>,
) -> Result<Option<String>, ClusterError> {
    let Some(live) = cluster.ask(api.get_opt(NAME)).await? else {
        return Ok(None);
    };
    let ours = live
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == FIELD_MANAGER)
        && ownership::of(&serde_json::to_value(&live).unwrap_or_default()) == Ownership::Created;
    Ok(live.metadata.uid.filter(|_| ours))
}

/// Deletes the quota (only the one [`close`] made: its uid is a precondition), opening the
/// namespace again.
pub async fn open(cluster: &Cluster, namespace: &str, uid: &str) -> Result<(), ClusterError> {
    let api: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), namespace);
    let params = DeleteParams::background().preconditions(Preconditions {
        uid: Some(uid.to_string()),
        resource_version: None,
    });
    match api.delete(NAME, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(classify(&cluster.server, e)),
    }
}

/// Opens `namespace` again when an interrupted uninstall left it closed (install into it would
/// be refused by the quota otherwise). Returns whether there was one to remove.
pub async fn remove_leftover(cluster: &Cluster, namespace: &str) -> Result<bool, ClusterError> {
    let api: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), namespace);
    match leftover(cluster, &api).await {
        Ok(Some(uid)) => open(cluster, namespace, &uid).await.map(|()| true),
        Ok(None) => Ok(false),
        // A namespace that does not exist yet holds nothing; one we may not read the quotas of
        // is left to the apply, whose error then says what was refused.
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind whose `count/` key the API server would refuse (the whole quota with it, 422)
    /// is found before the quota is created, so the namespace is kept, not the uninstall failed.
    #[test]
    fn a_kind_a_quota_cannot_name_is_found_before_the_quota_is_made() {
        let kind = |group: &str, plural: &str| ApiResource {
            group: group.into(),
            version: "v1".into(),
            api_version: format!("{group}/v1"),
            kind: "K".into(),
            plural: plural.into(),
        };
        let kinds = [
            kind("", "configmaps"),
            kind("cert-manager.io", "certificaterequests"),
            // Azure Service Operator v2: 64 characters.
            kind(
                "documentdb.azure.com",
                "mongodbdatabasecollectionthroughputsettings",
            ),
        ];
        assert_eq!(
            unnameable(&kinds),
            ["mongodbdatabasecollectionthroughputsettings.documentdb.azure.com"]
        );
        assert!(unnameable(&kinds[..2]).is_empty());
    }

    #[test]
    fn the_quota_allows_no_object_of_any_kind_it_is_given() {
        let kinds = [
            ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
        ];
        let hard = hard(&kinds);
        assert_eq!(
            hard.into_iter()
                .map(|(k, v)| format!("{k}={}", v.0))
                .collect::<Vec<_>>(),
            ["count/configmaps=0", "count/deployments.apps=0"]
        );
    }
}
