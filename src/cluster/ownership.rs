//! The ownership model: which objects cadvisor-setup may change and delete (README "Safety").
//!
//! - Every object `install` creates carries our `app.kubernetes.io/managed-by` label and the
//!   annotation `cadvisor-setup/ownership: created`. `uninstall` deletes those (a namespace only
//!   when it holds nothing else).
//! - An object that exists and is not ours is a conflict unless `--force`. With `--force` it is
//!   *adopted*: `cadvisor-setup/ownership: adopted`, and `cadvisor-setup/previous` records, for
//!   every label, annotation and top-level field our manifest sets, what it was before (or that it
//!   was absent). `uninstall` never deletes an adopted object: it puts those values back and
//!   removes our marks, leaving every field we did not set as it is.
//! - Objects 0.1.0 created carry our label and were written by our field manager but have no
//!   ownership annotation; they count as created (0.1.0 did not record adoption, so nothing
//!   better is known).
//!
//! Everything here is pure: the cluster calls are in `apply` and `uninstall`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FIELD_MANAGER, MANAGED_BY_LABEL};

/// `created` or `adopted`.
pub const OWNERSHIP_ANNOTATION: &str = "cadvisor-setup/ownership";
/// JSON [`Previous`]: what an adopted object looked like before `install --force`.
pub const PREVIOUS_ANNOTATION: &str = "cadvisor-setup/previous";
/// An adoption record larger than this is refused (annotations share a 256 KiB budget per
/// object: kubernetes.io "Annotations", apimachinery `TotalAnnotationSizeLimitB`).
pub const MAX_PREVIOUS_BYTES: usize = 64 * 1024;

/// Top-level keys that are not "fields we set": identity, metadata and what the server writes.
const NOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "status"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// `install` created it: ours to update and delete.
    Created,
    /// Taken over with `--force`: ours to update; `uninstall` restores it.
    Adopted,
    /// Someone else's: never changed without `--force`, never deleted.
    Foreign,
}

impl Ownership {
    pub fn is_ours(self) -> bool {
        self != Ownership::Foreign
    }
}

/// The ownership of a live object (as JSON: `metadata.labels`, `annotations`, `managedFields`).
///
/// Our marks count only where our field manager wrote: labels and annotations copy along with an
/// object (`kubectl get -o yaml` from a cluster where we installed, applied elsewhere), but
/// `managedFields` are the API server's record of who wrote it. An object whose managedFields
/// name writers but never cadvisor-setup carries copied marks and is someone else's. (An object
/// without managedFields at all is judged by its marks: nothing better is known.)
pub fn of(object: &Value) -> Ownership {
    let meta = &object["metadata"];
    let labelled = meta["labels"][MANAGED_BY_LABEL] == FIELD_MANAGER;
    let managers = managers(object);
    let ours_written = managers.iter().any(|m| m == FIELD_MANAGER);
    let maybe_ours_written = ours_written || managers.is_empty();
    match meta["annotations"][OWNERSHIP_ANNOTATION].as_str() {
        Some("created") if labelled && maybe_ours_written => Ownership::Created,
        Some("adopted") if maybe_ours_written => Ownership::Adopted,
        Some(_) => Ownership::Foreign,
        // 0.1.0: our label, written by our field manager, no annotation.
        None if labelled && ours_written => Ownership::Created,
        None => Ownership::Foreign,
    }
}

/// Field managers of `metadata.managedFields`, in order, without repeats.
pub fn managers(object: &Value) -> Vec<String> {
    managers_where(&object["metadata"]["managedFields"], |_| true)
}

/// The managers of the `managed_fields` entries (JSON) that `owns` accepts, in order, without
/// repeats.
pub fn managers_where(managed_fields: &Value, owns: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in managed_fields.as_array().into_iter().flatten() {
        if owns(entry)
            && let Some(m) = entry["manager"].as_str()
            && !out.iter().any(|o| o == m)
        {
            out.push(m.to_string());
        }
    }
    out
}

/// "made by kubectl-client-side-apply" (the managers), for conflict messages.
pub fn made_by(object: &Value) -> String {
    let managers = managers(object);
    if managers.is_empty() {
        "its creator is not recorded (no managedFields)".to_string()
    } else {
        format!("written by {}", managers.join(", "))
    }
}

/// What an adopted object's labels, annotations and top-level fields were before we set them:
/// `None` = absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Option<Value>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnershipError {
    #[error(
        "the record of what --force would change is {size} bytes, over the {MAX_PREVIOUS_BYTES}-byte limit for an annotation; remove or rename the object yourself instead"
    )]
    RecordTooLarge { size: usize },
}

/// The values in `live` of everything `manifest` sets (labels, annotations, top-level fields).
pub fn previous_of(manifest: &Value, live: &Value) -> Previous {
    let strings = |key: &str| -> BTreeMap<String, Option<String>> {
        manifest["metadata"][key]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !is_our_annotation(k))
            .map(|(k, _)| {
                let was = live["metadata"][key][k.as_str()]
                    .as_str()
                    .map(str::to_string);
                (k.clone(), was)
            })
            .collect()
    };
    let fields = manifest
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !NOT_FIELDS.contains(&k.as_str()))
        .map(|(k, _)| (k.clone(), live.get(k).cloned()))
        .collect();
    Previous {
        labels: strings("labels"),
        annotations: strings("annotations"),
        fields,
    }
}

fn is_our_annotation(key: &str) -> bool {
    key == OWNERSHIP_ANNOTATION || key == PREVIOUS_ANNOTATION
}

fn meta_map<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let meta = object
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let map = meta
        .as_object_mut()?
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    map.as_object_mut()
}

fn set_label(object: &mut Value, key: &str, value: &str) {
    if let Some(labels) = meta_map(object, "labels") {
        labels.insert(key.to_string(), Value::String(value.to_string()));
    }
}

fn set_annotation(object: &mut Value, key: &str, value: String) {
    if let Some(annotations) = meta_map(object, "annotations") {
        annotations.insert(key.to_string(), Value::String(value));
    }
}

/// On a cluster-scoped object of ours (a ClusterRole from `--templates`): the namespace of the
/// install that wrote it, so another install's `uninstall` (of another namespace) leaves it.
pub const INSTALL_NAMESPACE_ANNOTATION: &str = "cadvisor-setup/namespace";

/// Marks a cluster-scoped manifest with the namespace of the install applying it.
pub fn mark_install_namespace(manifest: &mut Value, namespace: &str) {
    set_annotation(
        manifest,
        INSTALL_NAMESPACE_ANNOTATION,
        namespace.to_string(),
    );
}

/// The install namespace a live cluster-scoped object of ours was written by, if recorded
/// (objects from before the mark have none).
pub fn install_namespace(live: &Value) -> Option<&str> {
    live["metadata"]["annotations"][INSTALL_NAMESPACE_ANNOTATION].as_str()
}

/// Marks a manifest about to be applied as created by `install`.
pub fn mark_created(manifest: &mut Value) {
    set_label(manifest, MANAGED_BY_LABEL, FIELD_MANAGER);
    set_annotation(manifest, OWNERSHIP_ANNOTATION, "created".to_string());
}

/// Marks a manifest as adopted with `--force`, recording `previous`.
pub fn mark_adopted(manifest: &mut Value, previous: &Previous) -> Result<(), OwnershipError> {
    let record = serde_json::to_string(previous).unwrap_or_default();
    if record.len() > MAX_PREVIOUS_BYTES {
        return Err(OwnershipError::RecordTooLarge { size: record.len() });
    }
    set_label(manifest, MANAGED_BY_LABEL, FIELD_MANAGER);
    set_annotation(manifest, OWNERSHIP_ANNOTATION, "adopted".to_string());
    set_annotation(manifest, PREVIOUS_ANNOTATION, record);
    Ok(())
}

/// The adoption record on a live object, `None` when absent or unreadable.
pub fn recorded(live: &Value) -> Option<Previous> {
    let text = live["metadata"]["annotations"][PREVIOUS_ANNOTATION].as_str()?;
    if text.len() > MAX_PREVIOUS_BYTES {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// `live` as it was before adoption: the recorded labels, annotations and fields put back, our
/// marks removed, our field manager's entries dropped from `managedFields`, everything else
/// (what we never set, what others changed since) untouched.
pub fn restored(live: &Value, previous: &Previous) -> Value {
    let mut out = live.clone();
    for (key, was) in [
        ("labels", &previous.labels),
        ("annotations", &previous.annotations),
    ] {
        if let Some(map) = meta_map(&mut out, key) {
            for (k, v) in was {
                match v {
                    Some(v) => map.insert(k.clone(), Value::String(v.clone())),
                    None => map.remove(k),
                };
            }
        }
    }
    if let Some(annotations) = meta_map(&mut out, "annotations") {
        annotations.remove(OWNERSHIP_ANNOTATION);
        annotations.remove(PREVIOUS_ANNOTATION);
    }
    if let Some(map) = out.as_object_mut() {
        // Only what `previous_of` can record: a record edited to name identity, metadata or
        // status would otherwise have us rewrite those wholesale.
        for (k, v) in previous
            .fields
            .iter()
            .filter(|(k, _)| !NOT_FIELDS.contains(&k.as_str()))
        {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(entries) = meta.get_mut("managedFields").and_then(Value::as_array_mut) {
                entries.retain(|e| e["manager"] != FIELD_MANAGER);
            }
            for key in ["labels", "annotations"] {
                if meta
                    .get(key)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    meta.remove(key);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user_namespace() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": "monitoring",
                "labels": {"team": "obs", "pod-security.kubernetes.io/enforce": "baseline"},
                "managedFields": [{"manager": "kubectl-create", "operation": "Update"}]
            }
        })
    }

    fn our_namespace_manifest() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "monitoring", "labels": {
                MANAGED_BY_LABEL: FIELD_MANAGER,
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged"
            }}
        })
    }

    #[test]
    fn ownership_follows_label_annotation_and_manager() {
        assert_eq!(of(&user_namespace()), Ownership::Foreign);
        let mut created = our_namespace_manifest();
        mark_created(&mut created);
        assert_eq!(of(&created), Ownership::Created);
        // Our label copied by someone else, without our manager: not ours.
        assert_eq!(of(&our_namespace_manifest()), Ownership::Foreign);
        // 0.1.0: label + our manager, no annotation.
        let mut legacy = our_namespace_manifest();
        legacy["metadata"]["managedFields"] = json!([{"manager": FIELD_MANAGER}]);
        assert_eq!(of(&legacy), Ownership::Created);
        // Our marks copied onto an object only others wrote: not ours.
        let mut copied = created.clone();
        copied["metadata"]["managedFields"] = json!([{"manager": "kubectl-client-side-apply"}]);
        assert_eq!(of(&copied), Ownership::Foreign);
        copied["metadata"]["annotations"][OWNERSHIP_ANNOTATION] = json!("adopted");
        assert_eq!(of(&copied), Ownership::Foreign);
        // ... and ours again once our manager wrote it too (install --force adopting it).
        copied["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": FIELD_MANAGER}));
        assert_eq!(of(&copied), Ownership::Adopted);
        // "created" without our label (someone removed it): not ours to delete.
        let mut unlabelled = created.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert_eq!(of(&unlabelled), Ownership::Foreign);
    }

    #[test]
    fn adoption_records_and_restore_puts_back_exactly() {
        let live = user_namespace();
        let manifest = our_namespace_manifest();
        let previous = previous_of(&manifest, &live);
        assert_eq!(
            previous.labels.get("pod-security.kubernetes.io/enforce"),
            Some(&Some("baseline".to_string()))
        );
        assert_eq!(previous.labels.get(MANAGED_BY_LABEL), Some(&None));
        let mut applied = manifest.clone();
        mark_adopted(&mut applied, &previous).unwrap();
        assert_eq!(of(&applied), Ownership::Adopted);
        assert_eq!(recorded(&applied), Some(previous.clone()));

        // What the server holds after our apply: the user's label kept, ours added, our manager.
        let mut after = live.clone();
        for (k, v) in applied["metadata"]["labels"].as_object().unwrap() {
            after["metadata"]["labels"][k] = v.clone();
        }
        after["metadata"]["annotations"] = applied["metadata"]["annotations"].clone();
        after["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": FIELD_MANAGER, "operation": "Apply"}));
        // Someone adds a label meanwhile: it stays.
        after["metadata"]["labels"]["later"] = json!("yes");

        let back = restored(&after, &recorded(&after).unwrap());
        let mut expected = live.clone();
        expected["metadata"]["labels"]["later"] = json!("yes");
        assert_eq!(back, expected);
    }

    #[test]
    fn restore_reverts_fields_we_set_and_only_those() {
        let live = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "cadvisor", "namespace": "x"},
            "secrets": [{"name": "s"}]
        });
        let manifest = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "cadvisor", "namespace": "x", "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
            "automountServiceAccountToken": false
        });
        let previous = previous_of(&manifest, &live);
        assert_eq!(
            previous.fields.get("automountServiceAccountToken"),
            Some(&None)
        );
        let mut after = live.clone();
        after["automountServiceAccountToken"] = json!(false);
        after["metadata"]["labels"] = json!({MANAGED_BY_LABEL: FIELD_MANAGER});
        assert_eq!(restored(&after, &previous), live);
    }

    #[test]
    fn a_record_naming_identity_metadata_or_status_restores_none_of_them() {
        let live = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "cadvisor", "namespace": "x", "finalizers": ["keep"]},
            "automountServiceAccountToken": false
        });
        let mut previous = Previous::default();
        for key in NOT_FIELDS {
            previous
                .fields
                .insert((*key).to_string(), Some(json!({"forged": true})));
        }
        previous
            .fields
            .insert("automountServiceAccountToken".into(), None);
        let back = restored(&live, &previous);
        let mut expected = live.clone();
        expected
            .as_object_mut()
            .unwrap()
            .remove("automountServiceAccountToken");
        assert_eq!(back, expected);
    }

    #[test]
    fn oversized_records_are_refused() {
        let mut previous = Previous::default();
        previous
            .fields
            .insert("spec".into(), Some(json!("x".repeat(MAX_PREVIOUS_BYTES))));
        let mut m = json!({"metadata": {"name": "a"}});
        assert!(matches!(
            mark_adopted(&mut m, &previous),
            Err(OwnershipError::RecordTooLarge { .. })
        ));
        assert_eq!(of(&m), Ownership::Foreign, "nothing marked on refusal");
    }

    #[test]
    fn unreadable_records_are_none() {
        let mut m = json!({"metadata": {"annotations": {PREVIOUS_ANNOTATION: "{not json"}}});
        assert_eq!(recorded(&m), None);
        m["metadata"]["annotations"][PREVIOUS_ANNOTATION] = json!("{}");
        assert_eq!(recorded(&m), Some(Previous::default()));
    }
}
