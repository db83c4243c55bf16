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

use super::namespace_lock;
use super::ownership::{self, Ownership};
use super::{Cluster, ClusterError, FIELD_MANAGER, classify, describe};
use super::{pod_security, resources};
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
    /// Created by this install (or an earlier one), adopted with `--force`, or someone else's
    /// namespace left as it is.
    pub ownership: Ownership,
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

/// Applies `manifests` (Namespace first, then the rest in [`resources::KNOWN`] order), under
/// the ownership model of [`ownership`]: everything is read and decided before anything is
/// written, so a refusal (exit 7) leaves the cluster as it was.
///
/// - An object that exists and is not ours is refused unless `force`, which adopts it.
/// - A namespace that exists and is not ours is never relabelled without `force`; cAdvisor's pod
///   is first admitted with a server-side dry run ([`pod_security::check`]).
///
/// On a failure while writing, the error says what was applied before it.
pub async fn apply(
    cluster: &Cluster,
    manifests: &[Manifest],
    opts: ApplyOptions,
) -> Result<Applied, ClusterError> {
    let mut ordered: Vec<&Manifest> = manifests.iter().collect();
    ordered.sort_by_key(|m| resources::order(&m.kind));
    let steps = read_and_decide(cluster, &ordered, opts.force).await?;
    let left_namespace = steps
        .iter()
        .find(|(_, _, d)| *d == Decision::LeaveNamespace)
        .and_then(|(_, live, _)| live.as_ref());
    let mut warnings = Vec::new();
    if let Some(namespace) = left_namespace
        && let Some(daemonset) = ordered.iter().find(|m| m.kind == "DaemonSet")
        && let Some(warning) = pod_security::check(cluster, namespace, daemonset).await?
    {
        warnings.push(warning);
    }

    // An uninstall interrupted while it held our namespace closed (namespace_lock) would
    // have every create below refused: open it again first.
    let ours_reopened = match steps
        .iter()
        .find(|(m, _, d)| m.kind == "Namespace" && *d == Decision::Update(Ownership::Created))
    {
        Some((namespace, _, _)) if !opts.dry_run => {
            namespace_lock::remove_leftover(cluster, &namespace.name).await?
        }
        _ => false,
    };

    let mut applied = Applied {
        dry_run: opts.dry_run,
        objects: Vec::new(),
    };
    // Namespaces a dry run would create: the server cannot dry-run objects inside them (it
    // answers 404), so those are shown as rendered.
    let mut pending: Vec<String> = Vec::new();
    for (i, (manifest, live, decision)) in steps.iter().enumerate() {
        let outcome = match (&manifest.namespace, decision) {
            (_, Decision::LeaveNamespace) => Ok(left_as_is(manifest, live.as_ref(), &mut warnings)),
            (Some(ns), _) if opts.dry_run && pending.contains(ns) => Ok(as_rendered(manifest, ns)),
            _ => {
                let install = Install {
                    namespace: install_namespace(&ordered),
                    opts,
                };
                apply_one(cluster, manifest, live.as_ref(), *decision, install).await
            }
        };
        match outcome {
            Ok(mut object) => {
                if ours_reopened && object.kind == "Namespace" {
                    object.note = Some(format!(
                        "namespace {} was left closed to new objects by an interrupted uninstall (ResourceQuota {}): opened again",
                        object.name,
                        namespace_lock::NAME
                    ));
                }
                if opts.dry_run && object.kind == "Namespace" && object.action == Action::Created {
                    pending.push(object.name.clone());
                }
                applied.objects.push(object)
            }
            Err(source) => {
                return Err(ClusterError::Partial {
                    applied: applied.summary(),
                    not_applied: list_or_nothing(ordered[i..].iter().map(|m| described(m))),
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(applied)
}

/// Every manifest's live object and what to do with it; a refusal (someone else's object, no
/// `force`) for any of them is the error, before anything is written.
async fn read_and_decide<'m>(
    cluster: &Cluster,
    ordered: &[&'m Manifest],
    force: bool,
) -> Result<Vec<(&'m Manifest, Option<Value>, Decision)>, ClusterError> {
    let mut steps = Vec::with_capacity(ordered.len());
    let mut refused = Vec::new();
    for manifest in ordered.iter().copied() {
        let resource = resources::resolve(cluster, &manifest.api_version, &manifest.kind).await?;
        let api = resources::api(cluster, &resource, manifest.namespace.as_deref());
        let live = cluster
            .ask(api.get_opt(&manifest.name))
            .await?
            .map(|l| serde_json::to_value(l).unwrap_or(Value::Null));
        if manifest.kind == "Namespace"
            && live
                .as_ref()
                .is_some_and(|l| l["metadata"]["deletionTimestamp"].is_string())
        {
            // Nothing can be created in it (NamespaceLifecycle admission): stop before writing.
            return Err(ClusterError::Partial {
                applied: "nothing".to_string(),
                not_applied: list_or_nothing(ordered.iter().map(|m| described(m))),
                source: Box::new(ClusterError::NamespaceTerminating {
                    namespace: manifest.name.clone(),
                }),
            });
        }
        let mut decision = decide(manifest, live.as_ref(), force);
        if decision == Decision::Refuse {
            let live = live.as_ref().unwrap_or(&Value::Null);
            refused.push(format!(
                "{} ({})",
                described(manifest),
                ownership::made_by(live)
            ));
        }
        // A cluster-scoped object of ours that another install (another namespace) wrote is
        // theirs: taking it over would leave them without it when we uninstall.
        if let (Some(live), Some(ours), false) = (&live, install_namespace(ordered), force)
            && matches!(decision, Decision::Update(_))
            && cluster_scoped(manifest)
            && let Some(theirs) = ownership::install_namespace(live).filter(|t| *t != ours)
        {
            decision = Decision::Refuse;
            refused.push(format!(
                "{} (written by the cadvisor-setup install in namespace {theirs}; name yours differently in your templates)",
                described(manifest)
            ));
        }
        steps.push((manifest, live, decision));
    }
    if !refused.is_empty() {
        return Err(ClusterError::Foreign { objects: refused });
    }
    Ok(steps)
}

/// What [`apply`] would refuse (exit 7), found with reads only: for a step that must come
/// before the manifests are applied but after we know they will be (labelling nodes).
pub async fn check(
    cluster: &Cluster,
    manifests: &[Manifest],
    opts: ApplyOptions,
) -> Result<(), ClusterError> {
    let ordered: Vec<&Manifest> = manifests.iter().collect();
    read_and_decide(cluster, &ordered, opts.force)
        .await
        .map(|_| ())
}

/// What to do with one manifest, given what is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Nothing there: create it, marked as created.
    Create,
    /// Ours already (created or adopted): apply, keeping its ownership marks.
    Update(Ownership),
    /// Someone else's, and `--force`: take it over, recording what it was.
    Adopt,
    /// Someone else's namespace, no `--force`: do not touch it.
    LeaveNamespace,
    /// Someone else's object, no `--force`: exit 7 before writing anything.
    Refuse,
}

fn decide(manifest: &Manifest, live: Option<&Value>, force: bool) -> Decision {
    let Some(live) = live else {
        return Decision::Create;
    };
    match ownership::of(live) {
        own @ (Ownership::Created | Ownership::Adopted) => Decision::Update(own),
        Ownership::Foreign if force => Decision::Adopt,
        Ownership::Foreign if manifest.kind == "Namespace" => Decision::LeaveNamespace,
        Ownership::Foreign => Decision::Refuse,
    }
}

/// A namespace that is not ours, reported and not applied.
fn left_as_is(
    manifest: &Manifest,
    live: Option<&Value>,
    warnings: &mut Vec<String>,
) -> AppliedObject {
    let mut note = format!(
        "{} existed before and is not ours: left as it is (labels unchanged); uninstall will not delete it",
        described(manifest)
    );
    for w in warnings.drain(..) {
        note.push_str("\n  ");
        note.push_str(&w);
    }
    let before = live.cloned().map(strip_value);
    AppliedObject {
        api_version: manifest.api_version.clone(),
        kind: manifest.kind.clone(),
        name: manifest.name.clone(),
        namespace: manifest.namespace.clone(),
        action: Action::Unchanged,
        changed: false,
        ownership: Ownership::Foreign,
        resource_version: live.and_then(|l| {
            l["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string)
        }),
        after: before.clone().unwrap_or(Value::Null),
        before,
        note: Some(note),
    }
}

fn as_rendered(manifest: &Manifest, namespace: &str) -> AppliedObject {
    let mut object = manifest.object.clone();
    ownership::mark_created(&mut object);
    AppliedObject {
        api_version: manifest.api_version.clone(),
        kind: manifest.kind.clone(),
        name: manifest.name.clone(),
        namespace: manifest.namespace.clone(),
        action: Action::Created,
        changed: true,
        ownership: Ownership::Created,
        resource_version: None,
        before: None,
        after: object,
        note: Some(format!(
            "namespace {namespace} does not exist yet, so this object is shown as rendered (not validated by the server)"
        )),
    }
}

/// The install an object is applied for: its namespace and options.
#[derive(Clone, Copy)]
struct Install<'a> {
    namespace: Option<&'a str>,
    opts: ApplyOptions,
}

/// The namespace this install's manifests are in (their Namespace object's name).
fn install_namespace<'m>(ordered: &[&'m Manifest]) -> Option<&'m str> {
    ordered
        .iter()
        .find(|m| m.kind == "Namespace")
        .map(|m| m.name.as_str())
}

/// A cluster-scoped object other than a Namespace (a ClusterRole from `--templates`): one
/// install's, shared by none.
fn cluster_scoped(manifest: &Manifest) -> bool {
    manifest.namespace.is_none() && manifest.kind != "Namespace"
}

async fn apply_one(
    cluster: &Cluster,
    manifest: &Manifest,
    live: Option<&Value>,
    decision: Decision,
    install: Install<'_>,
) -> Result<AppliedObject, ClusterError> {
    let opts = install.opts;
    let what = described(manifest);
    let resource = resources::resolve(cluster, &manifest.api_version, &manifest.kind).await?;
    let api = resources::api(cluster, &resource, manifest.namespace.as_deref());

    let mut object = manifest.object.clone();
    if manifest.kind == "DaemonSet"
        && matches!(
            decision,
            Decision::Adopt | Decision::Update(Ownership::Adopted)
        )
        && let Some(live) = live
    {
        keep_live_selector(&mut object, live).map_err(|reason| ClusterError::Foreign {
            objects: vec![format!("{what} ({reason})")],
        })?;
    }
    let (owned, note) = match (decision, live) {
        (Decision::Update(Ownership::Adopted), Some(live)) => {
            // Keep the record of what it was before we first took it over.
            let previous = ownership::recorded(live).unwrap_or_default();
            ownership::mark_adopted(&mut object, &previous).map_err(|e| adopt_error(&what, e))?;
            (Ownership::Adopted, None)
        }
        (Decision::Adopt, Some(live)) => {
            let previous = ownership::previous_of(&object, live);
            ownership::mark_adopted(&mut object, &previous).map_err(|e| adopt_error(&what, e))?;
            (
                Ownership::Adopted,
                Some(format!(
                    "{what} was not ours ({}); taken over with --force, its previous labels and fields are recorded and `uninstall` restores them",
                    ownership::made_by(live)
                )),
            )
        }
        _ => {
            ownership::mark_created(&mut object);
            (Ownership::Created, None)
        }
    };
    if cluster_scoped(manifest)
        && let Some(namespace) = install.namespace
    {
        ownership::mark_install_namespace(&mut object, namespace);
    }

    // What was judged from the live object holds only for that object: its uid in the applied
    // configuration makes the API server refuse the write (uid is immutable: 422 "field is
    // immutable", k8s.io/apiserver rest.BeforeUpdate → ValidateObjectMetaUpdate) if someone
    // replaced it since. A create ignores it (rest.FillObjectMetaSystemFields sets a new one).
    let live_uid = live.and_then(|l| l["metadata"]["uid"].as_str());
    if let (Decision::Update(_) | Decision::Adopt, Some(uid)) = (decision, live_uid) {
        object["metadata"]["uid"] = Value::from(uid);
    }
    let mut params = PatchParams::apply(FIELD_MANAGER);
    // Field conflicts are forced only on objects we adopt or already own with --force. Never
    // on a create: the name was free when read, so a conflict there is someone else's object
    // made since, and forcing would take their values (which the withdrawal below would then
    // remove): it stays a conflict (exit 7), and a rerun with --force adopts it on the record.
    if opts.force && decision != Decision::Create {
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
            kube::Error::Api(status)
                if status.code == 422
                    && status.message.contains("metadata.uid")
                    && status.message.contains("field is immutable") =>
            {
                ClusterError::Replaced {
                    object: what.clone(),
                }
            }
            other => classify(&cluster.server, other),
        })?;

    // Nothing was there when read, but someone else created it before our apply arrived: our
    // apply merged into theirs (any field they set differently was a 409 above). Withdraw it
    // (an apply of nothing under our manager removes what only we set, our marks included)
    // and leave theirs as they made it.
    if decision == Decision::Create && !opts.dry_run {
        let written = serde_json::to_value(&result).unwrap_or(Value::Null);
        if let Some(writer) = other_writer(&written) {
            let nothing = serde_json::json!({
                "apiVersion": manifest.api_version,
                "kind": manifest.kind,
                "metadata": {"name": manifest.name},
            });
            let withdrawn = api
                .patch(
                    &manifest.name,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Apply(&nothing),
                )
                .await
                .map_err(|e| classify(&cluster.server, e));
            return Err(ClusterError::CreatedMeanwhile {
                object: what,
                writer,
                withdrawn: withdrawn.is_ok(),
            });
        }
    }
    let before_version = live.and_then(|l| {
        l["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    });
    let after_version = result.metadata.resource_version.clone();
    let before = live.cloned().map(strip_value);
    let after = strip(&result);
    let changed = match (&before, opts.dry_run) {
        (None, _) => true,
        (Some(before), true) => *before != after,
        // A new resourceVersion is a write, unless all that moved since our read is the status
        // (a controller's, e.g. a DaemonSet's counters while nodes are being labelled): then
        // the object and who owns which field are as they were.
        (Some(before), false) => {
            before_version != after_version
                && (*before != after
                    || live.map(owners_of_spec)
                        != Some(owners_of_spec(
                            &serde_json::to_value(&result).unwrap_or(Value::Null),
                        )))
        }
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
        ownership: owned,
        resource_version: after_version,
        before,
        after,
        note,
    })
}

/// A manager other than ours that wrote the object's own fields (not its status), if any.
fn other_writer(object: &Value) -> Option<String> {
    owners_of_spec(object)
        .into_iter()
        .filter_map(|(manager, _, _)| manager.as_str().map(str::to_string))
        .find(|m| m != FIELD_MANAGER)
}

/// Who owns which field (`managedFields` without times and without status writers), to tell a
/// write of ours that only moved ownership (e.g. `--force` over an equal value) from none.
fn owners_of_spec(object: &Value) -> Vec<(Value, Value, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["subresource"] != "status")
        .map(|e| {
            (
                e["manager"].clone(),
                e["operation"].clone(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

/// A DaemonSet's `spec.selector` cannot change once created (kubernetes.io "DaemonSet": "the
/// .spec.selector ... cannot be mutated"), so an adopted DaemonSet keeps its own, and our pod
/// template also carries the labels it selects on, so it still selects our pods.
fn keep_live_selector(object: &mut Value, live: &Value) -> Result<(), String> {
    let selector = &live["spec"]["selector"];
    if selector.is_null() || *selector == object["spec"]["selector"] {
        return Ok(());
    }
    if selector["matchExpressions"]
        .as_array()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(format!(
            "its selector {selector} uses matchExpressions, which our pods cannot be made to match, and a DaemonSet's selector cannot change: delete it first (kubectl delete daemonset) or install into another namespace"
        ));
    }
    let Some(wanted) = selector["matchLabels"].as_object() else {
        return Err(format!("its selector {selector} has no matchLabels"));
    };
    if let Some(labels) = object
        .pointer_mut("/spec/template/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        for (k, v) in wanted {
            labels.insert(k.clone(), v.clone());
        }
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("selector".to_string(), selector.clone());
    }
    Ok(())
}

fn described(m: &Manifest) -> String {
    describe(&m.kind, m.namespace.as_deref(), &m.name)
}

fn adopt_error(what: &str, e: ownership::OwnershipError) -> ClusterError {
    ClusterError::Foreign {
        objects: vec![format!("{what} ({e})")],
    }
}

/// The other manager and the field from a 409 apply conflict. The API server's Status carries
/// one cause per field: `{reason: FieldManagerConflict, message: "conflict with \"kubectl\" ...",
/// field: ".spec..."}` (k8s.io/apiserver `internal.NewConflictError`).
pub(crate) fn conflict(object: &str, status: &kube::core::Status) -> ClusterError {
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
    strip_value(serde_json::to_value(object).unwrap_or(Value::Null))
}

/// [`strip`] of an object already in JSON.
pub fn strip_value(mut value: Value) -> Value {
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

    #[test]
    fn ownership_without_times_and_status_writers_tells_a_status_only_write_apart() {
        let entry = |manager: &str, sub: Option<&str>, time: &str, field: &str| {
            let mut e = serde_json::json!({"manager": manager, "operation": "Update", "time": time,
                "fieldsV1": {field: {}}});
            if let Some(sub) = sub {
                e["subresource"] = sub.into();
            }
            e
        };
        let object =
            |entries: Vec<Value>| serde_json::json!({"metadata": {"managedFields": entries}});
        let before = object(vec![
            entry("cadvisor-setup", None, "t1", "f:spec"),
            entry("kube-controller-manager", Some("status"), "t1", "f:status"),
        ]);
        // The controller wrote the status again (new time, new fields): no ownership change.
        let status_only = object(vec![
            entry("cadvisor-setup", None, "t1", "f:spec"),
            entry("kube-controller-manager", Some("status"), "t2", "f:other"),
        ]);
        assert_eq!(owners_of_spec(&before), owners_of_spec(&status_only));
        // Our apply at another time is still the same ownership.
        let retimed = object(vec![entry("cadvisor-setup", None, "t9", "f:spec")]);
        assert_eq!(owners_of_spec(&before), owners_of_spec(&retimed));
        // A field taken over (--force) is a change.
        let taken = object(vec![
            entry("cadvisor-setup", None, "t1", "f:spec"),
            entry("cadvisor-setup", None, "t1", "f:metadata"),
        ]);
        assert_ne!(owners_of_spec(&before), owners_of_spec(&taken));
    }

    #[test]
    fn an_adopted_daemonset_keeps_its_immutable_selector_and_our_pods_match_it() {
        let mut ours = serde_json::json!({"spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "cadvisor"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "cadvisor"}}}
        }});
        let live = serde_json::json!({"spec": {"selector": {"matchLabels": {"name": "cadvisor"}}}});
        keep_live_selector(&mut ours, &live).unwrap();
        assert_eq!(ours["spec"]["selector"], live["spec"]["selector"]);
        let labels = &ours["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["name"], "cadvisor");
        assert_eq!(labels["app.kubernetes.io/name"], "cadvisor");

        let expressions = serde_json::json!({"spec": {"selector": {"matchExpressions": [
            {"key": "name", "operator": "In", "values": ["a", "b"]}]}}});
        assert!(keep_live_selector(&mut ours, &expressions).is_err());
    }
}
