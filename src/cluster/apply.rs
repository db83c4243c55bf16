//! Server-side apply of the rendered manifests with field manager `cadvisor-setup`.
//!
//! `changed` per object compares the `resourceVersion` before and after: the API server does not
//! write (and so does not bump `resourceVersion`) when an apply changes nothing
//! (kubernetes.io "Server-Side Apply"), which is what makes a rerun a no-op that restarts no pod.
//! For a dry run the server returns the would-be object without storing it, so there the live
//! object and the result are compared with the volatile fields stripped.

use kube::api::{DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

use super::resources;
use super::{Cluster, ClusterError, FIELD_MANAGER, MANAGED_BY_LABEL, classify, describe};
use crate::render::Manifest;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Take over fields owned by other managers (and a DaemonSet someone else created).
    pub force: bool,
    /// Server-side dry run: nothing is stored.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
}

/// One object after apply.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub action: Action,
    pub changed: bool,
    pub resource_version: Option<String>,
    /// The live object before apply (stripped of volatile fields), `None` when it did not exist.
    #[serde(skip)]
    pub before: Option<Value>,
    /// What the server returned (stripped), the would-be object for a dry run.
    #[serde(skip)]
    pub after: Value,
    /// Something worth telling (e.g. a pre-existing namespace left without our label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl AppliedObject {
    pub fn describe(&self) -> String {
        describe(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub dry_run: bool,
    pub objects: Vec<AppliedObject>,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.objects.iter().any(|o| o.changed)
    }

    /// "Namespace cadvisor, ServiceAccount cadvisor/cadvisor", or "nothing".
    pub fn summary(&self) -> String {
        list_or_nothing(self.objects.iter().map(AppliedObject::describe))
    }

    /// A unified diff per changed object (live vs result), for `install --dry-run`.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for object in self.objects.iter().filter(|o| o.changed) {
            let old = object.before.as_ref().map(to_yaml).unwrap_or_default();
            let new = to_yaml(&object.after);
            let title = object.describe();
            let diff = similar::TextDiff::from_lines(&old, &new);
            let (a, b) = if object.before.is_some() {
                (format!("live {title}"), format!("applied {title}"))
            } else {
                ("/dev/null".to_string(), format!("applied {title}"))
            };
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&a, &b)
                    .to_string(),
            );
        }
        out
    }
}

fn list_or_nothing(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| format!("{value:#}"))
}

/// Applies `manifests` (Namespace first, then the rest in [`resources::KNOWN`] order).
///
/// Refuses, before writing anything, to take over a DaemonSet that exists without our
/// managed-by label unless `force`. On a failure the error says what was applied before it.
pub async fn apply(
    cluster: &Cluster,
    manifests: &[Manifest],
    opts: ApplyOptions,
) -> Result<Applied, ClusterError> {
    let mut ordered: Vec<&Manifest> = manifests.iter().collect();
    ordered.sort_by_key(|m| resources::order(&m.kind));

    if !opts.force {
        for m in ordered.iter().filter(|m| m.kind == "DaemonSet") {
            refuse_foreign(cluster, m).await?;
        }
    }

    let mut applied = Applied {
        dry_run: opts.dry_run,
        objects: Vec::new(),
    };
    // Namespaces a dry run would create: the server cannot dry-run objects inside them (it
    // answers 404), so those are shown as rendered.
    let mut pending: Vec<String> = Vec::new();
    for (i, manifest) in ordered.iter().enumerate() {
        let outcome = match &manifest.namespace {
            Some(ns) if opts.dry_run && pending.contains(ns) => Ok(as_rendered(manifest, ns)),
            _ => apply_one(cluster, manifest, opts).await,
        };
        match outcome {
            Ok(object) => {
                if opts.dry_run && object.kind == "Namespace" && object.action == Action::Created {
                    pending.push(object.name.clone());
                }
                applied.objects.push(object)
            }
            Err(source) => {
                return Err(ClusterError::Partial {
                    applied: applied.summary(),
                    not_applied: list_or_nothing(
                        ordered[i..]
                            .iter()
                            .map(|m| describe(&m.kind, m.namespace.as_deref(), &m.name)),
                    ),
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(applied)
}

fn as_rendered(manifest: &Manifest, namespace: &str) -> AppliedObject {
    AppliedObject {
        api_version: manifest.api_version.clone(),
        kind: manifest.kind.clone(),
        name: manifest.name.clone(),
        namespace: manifest.namespace.clone(),
        action: Action::Created,
        changed: true,
        resource_version: None,
        before: None,
        after: manifest.object.clone(),
        note: Some(format!(
            "namespace {namespace} does not exist yet, so this object is shown as rendered (not validated by the server)"
        )),
    }
}

async fn refuse_foreign(cluster: &Cluster, manifest: &Manifest) -> Result<(), ClusterError> {
    let resource = resources::resolve(cluster, &manifest.api_version, &manifest.kind).await?;
    let api = resources::api(cluster, &resource, manifest.namespace.as_deref());
    let live = api
        .get_opt(&manifest.name)
        .await
        .map_err(|e| classify(&cluster.server, e))?;
    if let Some(live) = live
        && !is_ours(&live)
    {
        return Err(ClusterError::Foreign {
            object: describe(
                &manifest.kind,
                manifest.namespace.as_deref(),
                &manifest.name,
            ),
        });
    }
    Ok(())
}

/// Carries `app.kubernetes.io/managed-by=cadvisor-setup`.
pub fn is_ours(object: &DynamicObject) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == FIELD_MANAGER)
}

async fn apply_one(
    cluster: &Cluster,
    manifest: &Manifest,
    opts: ApplyOptions,
) -> Result<AppliedObject, ClusterError> {
    let what = describe(
        &manifest.kind,
        manifest.namespace.as_deref(),
        &manifest.name,
    );
    let resource = resources::resolve(cluster, &manifest.api_version, &manifest.kind).await?;
    let api = resources::api(cluster, &resource, manifest.namespace.as_deref());
    let live = api
        .get_opt(&manifest.name)
        .await
        .map_err(|e| classify(&cluster.server, e))?;

    let mut object = manifest.object.clone();
    let mut note = None;
    // A namespace the user already had stays theirs: we do not put our managed-by label on it,
    // so `uninstall` never deletes it.
    if manifest.kind == "Namespace"
        && let Some(live) = &live
        && !is_ours(live)
    {
        if let Some(labels) = object
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove(MANAGED_BY_LABEL);
        }
        note = Some(format!(
            "{what} existed before; it keeps no {MANAGED_BY_LABEL} label, so uninstall will leave it"
        ));
    }

    let mut params = PatchParams::apply(FIELD_MANAGER);
    if opts.force {
        params = params.force();
    }
    if opts.dry_run {
        params = params.dry_run();
    }
    let result = api
        .patch(&manifest.name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| match e {
            kube::Error::Api(status) if status.code == 409 => conflict(&what, &status),
            other => classify(&cluster.server, other),
        })?;

    let before_version = live
        .as_ref()
        .and_then(|l| l.metadata.resource_version.clone());
    let after_version = result.metadata.resource_version.clone();
    let before = live.as_ref().map(strip);
    let after = strip(&result);
    let changed = match (&before, opts.dry_run) {
        (None, _) => true,
        (Some(before), true) => *before != after,
        (Some(_), false) => before_version != after_version,
    };
    let action = match (&before, changed) {
        (None, _) => Action::Created,
        (Some(_), true) => Action::Configured,
        (Some(_), false) => Action::Unchanged,
    };
    Ok(AppliedObject {
        api_version: manifest.api_version.clone(),
        kind: manifest.kind.clone(),
        name: manifest.name.clone(),
        namespace: manifest.namespace.clone(),
        action,
        changed,
        resource_version: after_version,
        before,
        after,
        note,
    })
}

/// The other manager and the field from a 409 apply conflict. The API server's Status carries
/// one cause per field: `{reason: FieldManagerConflict, message: "conflict with \"kubectl\" ...",
/// field: ".spec..."}` (k8s.io/apiserver `internal.NewConflictError`).
fn conflict(object: &str, status: &kube::core::Status) -> ClusterError {
    let cause = status
        .details
        .as_ref()
        .and_then(|d| d.causes.iter().find(|c| !c.field.is_empty()));
    let text = cause.map_or(status.message.as_str(), |c| c.message.as_str());
    let manager = quoted_after(text, "conflict with ")
        .or_else(|| quoted_after(&status.message, "conflict with "))
        .unwrap_or_else(|| "another manager".to_string());
    let field = cause
        .map(|c| c.field.clone())
        .or_else(|| status.message.rsplit_once(": ").map(|(_, f)| f.to_string()))
        .unwrap_or_else(|| "(unknown)".to_string());
    ClusterError::Conflict {
        object: object.to_string(),
        manager,
        field,
    }
}

fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// The object without what the server maintains: managedFields, resourceVersion, uid,
/// timestamps, generation and status.
pub fn strip(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(super::LAST_VERIFICATION_ANNOTATION);
            annotations.remove("deprecated.daemonset.template.generation");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_manager_and_field() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.template.spec.containers[name=\"cadvisor\"].image",
            "details": {"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-client-side-apply\" using apps/v1",
                "field": ".spec.template.spec.containers[name=\"cadvisor\"].image"}]}
        }))
        .unwrap();
        let err = conflict("DaemonSet cadvisor/cadvisor", &status);
        let text = err.to_string();
        assert!(text.contains("\"kubectl-client-side-apply\""), "{text}");
        assert!(text.contains(".spec.template.spec.containers[name=\"cadvisor\"].image"));
        assert!(text.contains("--force"));
    }

    #[test]
    fn conflict_without_causes_uses_the_message() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 409,
            "message": "Apply failed with 1 conflict: conflict with \"helm\": .spec.replicas"
        }))
        .unwrap();
        match conflict("x", &status) {
            ClusterError::Conflict { manager, field, .. } => {
                assert_eq!(manager, "helm");
                assert_eq!(field, ".spec.replicas");
            }
            other => panic!("{other}"),
        }
    }
}
