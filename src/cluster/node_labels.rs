//! `install --label-nodes`: our node label `cadvisor-setup/group=<layout hash>` on every node of
//! a cluster with several node groups, so each group's DaemonSet selects its nodes by label
//! (a node labelled later lands without a manifest change).
//!
//! Nodes are never ours, so only the label is. It is written with a JSON merge patch under our
//! field manager that holds nothing but that label, which makes it the one field we own on the
//! Node; every other label and field stays with its owner. Not server-side apply: apply creates
//! an object that does not exist (kubernetes/kubernetes:
//! staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go, `forceAllowCreate` for apply
//! patches), so a node deleted between our list and our write would come back as a bare Node
//! that no kubelet serves; a merge patch of a missing Node is 404 (pkg/registry/core/node/
//! strategy.go: `AllowCreateOnUpdate` is false).
//!
//! Ownership follows `metadata.managedFields`: a node whose label was set by someone else (any
//! other manager, e.g. `kubectl-label`) is not ours to change unless `--force`, which writes it
//! anyway (the other manager loses the field), and `uninstall` then removes it like any label of
//! ours. A label we own together with another manager is left where it is. Everything is decided
//! before anything is written (see [`plan`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::DaemonSet;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Cluster, ClusterError, FIELD_MANAGER, classify};
pub use crate::plan::groups::GROUP_LABEL;

/// A node that carries [`GROUP_LABEL`], and who owns the label (`status` reports it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Carrier {
    pub node: String,
    pub value: String,
    /// Our field manager owns the label.
    pub ours: bool,
    /// The other field managers that own it.
    #[serde(skip)]
    pub others: Vec<String>,
}

impl Carrier {
    fn set_by(&self) -> String {
        if self.others.is_empty() {
            "its writer is not recorded (no managedFields)".to_string()
        } else {
            format!("set by {}", self.others.join(", "))
        }
    }
}

/// What happens to one node's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelAction {
    /// The node had no such label: set.
    Label,
    /// Ours, with another group's value (the node changed group): set to its group's.
    Relabel,
    /// Set by someone else, taken over with `--force`.
    TakeOver,
    /// Already right (ours, or someone else's with the very value: theirs to keep, e.g. a
    /// node that joined labelled by its provisioning): nothing written.
    Keep,
    /// Ours, on a node no group's DaemonSet selects by label any more: removed.
    Remove,
}

/// One node's label, as planned and then as done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLabelChange {
    pub node: String,
    /// The value after (`null` when removed).
    pub value: Option<String>,
    /// The value before (`null` when there was none).
    pub previous: Option<String>,
    pub action: LabelAction,
    pub changed: bool,
    /// Our field manager owns the label afterwards (so `uninstall` removes it).
    pub ours: bool,
}

impl NodeLabelChange {
    /// "label node node-3 cadvisor-setup/group=3dd09fc8", for people.
    pub fn describe(&self) -> String {
        match (self.action, &self.value) {
            (LabelAction::Remove, _) | (_, None) => format!(
                "remove label {GROUP_LABEL} from node {}{}",
                self.node,
                self.previous
                    .as_deref()
                    .map(|p| format!(" (was {p})"))
                    .unwrap_or_default()
            ),
            (action, Some(value)) => {
                let verb = match action {
                    LabelAction::Relabel => "relabel",
                    LabelAction::TakeOver => "take over label (--force) on",
                    LabelAction::Keep => "keep label on",
                    _ => "label",
                };
                let was = match (action, &self.previous) {
                    (LabelAction::Relabel | LabelAction::TakeOver, Some(p)) => {
                        format!(" (was {p})")
                    }
                    _ => String::new(),
                };
                format!("{verb} node {} {GROUP_LABEL}={value}{was}", self.node)
            }
        }
    }
}

/// The managers that own `metadata.labels[GROUP_LABEL]` in `managed_fields` (JSON), in order.
fn owners(managed_fields: &Value) -> Vec<String> {
    let field = format!("f:{GROUP_LABEL}");
    super::ownership::managers_where(managed_fields, |entry| {
        entry["fieldsV1"]["f:metadata"]["f:labels"]
            .get(&field)
            .is_some()
    })
}

/// The node's [`GROUP_LABEL`] and its owners, `None` when it has none. Pure.
pub fn carrier_of(node: &Value) -> Option<Carrier> {
    let meta = &node["metadata"];
    let value = meta["labels"][GROUP_LABEL].as_str()?;
    let mut others = owners(&meta["managedFields"]);
    let ours = others.iter().any(|m| m == FIELD_MANAGER);
    others.retain(|m| m != FIELD_MANAGER);
    Some(Carrier {
        node: meta["name"].as_str().unwrap_or_default().to_string(),
        value: value.to_string(),
        ours,
        others,
    })
}

/// Every node that carries [`GROUP_LABEL`] (a list with a label selector, a page at a time), by
/// name.
pub async fn carriers(cluster: &Cluster) -> Result<Vec<Carrier>, ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let listed = super::pages::list_reduced(
        &api,
        &ListParams::default().labels(GROUP_LABEL),
        super::pages::PAGE,
        |n| carrier_of(&serde_json::to_value(n).unwrap_or(Value::Null)),
    )
    .await
    .map_err(|e| classify(&cluster.server, e))?;
    let mut out: Vec<Carrier> = listed.into_iter().flatten().collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(out)
}

/// What to do on every node, given the value each node should carry (`wanted`, by node name)
/// and the nodes that carry the label now. Pure. A label someone else set to another value is
/// refused (the returned `Err` names each node, for exit 7) unless `force`; one they set to
/// the very value is kept as theirs (nothing to write, and `uninstall` leaves it). Ours on a node `wanted` does not
/// name is removed, unless a DaemonSet of ours in another namespace selects its value
/// (`elsewhere`; `None`: not known, so nothing is removed); someone else's there is left alone.
pub fn plan(
    wanted: &BTreeMap<String, String>,
    carriers: &[Carrier],
    elsewhere: Option<&BTreeSet<String>>,
    force: bool,
) -> Result<Vec<NodeLabelChange>, Vec<String>> {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for (node, value) in wanted {
        let now = carriers.iter().find(|c| &c.node == node);
        let (action, changed) = match now {
            None => (LabelAction::Label, true),
            Some(c) if c.value == *value => (LabelAction::Keep, false),
            Some(c) if c.ours => (LabelAction::Relabel, true),
            Some(_) if force => (LabelAction::TakeOver, true),
            Some(c) => {
                refused.push(format!(
                    "node {node} has {GROUP_LABEL}={} ({})",
                    c.value,
                    c.set_by()
                ));
                continue;
            }
        };
        out.push(NodeLabelChange {
            node: node.clone(),
            value: Some(value.clone()),
            previous: now.map(|c| c.value.clone()),
            ours: action != LabelAction::Keep || now.is_some_and(|c| c.ours),
            action,
            changed,
        });
    }
    // One we own together with another manager is theirs too: left where it is. One another
    // install of ours selects stays for it.
    let removable = |c: &&Carrier| elsewhere.is_some_and(|values| !values.contains(&c.value));
    for c in carriers
        .iter()
        .filter(|c| c.ours && c.others.is_empty() && !wanted.contains_key(&c.node))
        .filter(removable)
    {
        out.push(NodeLabelChange {
            node: c.node.clone(),
            value: None,
            previous: Some(c.value.clone()),
            action: LabelAction::Remove,
            changed: true,
            ours: false,
        });
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(out)
}

/// The merge patch that sets our label to `value`, or removes it (`None`).
fn label_patch(value: Option<&str>) -> Value {
    json!({ "metadata": { "labels": { GROUP_LABEL: value } } })
}

/// Writes `value` (or removes the label) on `node` under our field manager; `false` when the
/// node is gone (404: a merge patch never creates it).
async fn write(api: &Api<Node>, node: &str, value: Option<&str>) -> Result<bool, kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    match api
        .patch(node, &params, &Patch::Merge(&label_patch(value)))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes the changes of [`plan`] (nothing for `Keep`), in order; a node deleted since the
/// plan is skipped. On a failure, the error says which nodes were labelled before it.
pub async fn apply(cluster: &Cluster, changes: &[NodeLabelChange]) -> Result<(), ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let mut done: Vec<String> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if !c.changed {
            continue;
        }
        match write(&api, &c.node, c.value.as_deref()).await {
            Ok(true) => done.push(c.describe()),
            Ok(false) => {}
            Err(e) => {
                let left: Vec<String> = changes[i..]
                    .iter()
                    .filter(|c| c.changed)
                    .map(NodeLabelChange::describe)
                    .collect();
                return Err(ClusterError::Partial {
                    applied: list_or_nothing(&done),
                    not_applied: list_or_nothing(&left),
                    source: Box::new(classify(&cluster.server, e)),
                });
            }
        }
    }
    Ok(())
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

/// The values of [`GROUP_LABEL`] that our DaemonSets outside `namespace` select (another
/// install of cadvisor-setup in the same cluster), each with one DaemonSet that selects it
/// (`NAMESPACE/NAME`). Their labels are not ours to remove when this install's are: the other
/// DaemonSet would lose its nodes.
pub async fn selected_elsewhere(
    cluster: &Cluster,
    namespace: &str,
) -> Result<BTreeMap<String, String>, ClusterError> {
    let api: Api<DaemonSet> = Api::all(cluster.client.clone());
    let selector = format!("{}={FIELD_MANAGER}", super::MANAGED_BY_LABEL);
    let per_daemonset = super::pages::list_reduced(
        &api,
        &ListParams::default().labels(&selector),
        super::pages::PAGE,
        |ds| {
            let ns = ds.metadata.namespace.clone().unwrap_or_default();
            let name = format!("{ns}/{}", ds.metadata.name.clone().unwrap_or_default());
            (ns != namespace).then(|| (name, group_values(&ds)))
        },
    )
    .await
    .map_err(|e| classify(&cluster.server, e))?;
    let mut out = BTreeMap::new();
    for (daemonset, values) in per_daemonset.into_iter().flatten() {
        for value in values {
            out.entry(value).or_insert_with(|| daemonset.clone());
        }
    }
    Ok(out)
}

/// The values of [`GROUP_LABEL`] a DaemonSet's required node affinity selects (`In`).
fn group_values(ds: &DaemonSet) -> Vec<String> {
    let terms = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    terms
        .iter()
        .flat_map(|t| t.match_expressions.iter().flatten())
        .filter(|e| e.key == GROUP_LABEL && e.operator == "In")
        .flat_map(|e| e.values.iter().flatten().cloned())
        .collect()
}

/// `uninstall`: our label off every node where our manager alone owns it. Returns the nodes it
/// came off and the nodes where it stays because another manager owns it too (with the reason).
pub async fn remove_ours(
    cluster: &Cluster,
    ours: &[Carrier],
) -> Result<(Vec<String>, Vec<(String, String)>), ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let mut removed = Vec::new();
    let mut stays = Vec::new();
    for c in ours.iter().filter(|c| c.ours) {
        if !c.others.is_empty() {
            stays.push((
                format!("Node {}", c.node),
                format!(
                    "its label {GROUP_LABEL} is also set by {}: left to them",
                    c.others.join(", ")
                ),
            ));
            continue;
        }
        // Gone since the list: nothing left to undo.
        if write(&api, &c.node, None)
            .await
            .map_err(|e| classify(&cluster.server, e))?
        {
            removed.push(c.node.clone());
        }
    }
    Ok((removed, stays))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, value: Option<&str>, managers: &[&str]) -> Value {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}});
        if let Some(v) = value {
            n["metadata"]["labels"][GROUP_LABEL] = json!(v);
        }
        let entries: Vec<Value> = managers
            .iter()
            .map(|m| {
                json!({"manager": m, "operation": "Apply", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:metadata": {"f:labels": {format!("f:{GROUP_LABEL}"): {}}}}})
            })
            .chain(std::iter::once(json!({
                "manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:kubernetes.io/hostname": {}}}}
            })))
            .collect();
        n["metadata"]["managedFields"] = Value::Array(entries);
        n
    }

    fn wanted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ownership_comes_from_managed_fields() {
        assert_eq!(carrier_of(&node("a", None, &[])), None);
        let ours = carrier_of(&node("a", Some("x"), &[FIELD_MANAGER])).unwrap();
        assert!(ours.ours && ours.others.is_empty());
        let theirs = carrier_of(&node("b", Some("x"), &["kubectl-label"])).unwrap();
        assert!(!theirs.ours);
        assert_eq!(theirs.others, ["kubectl-label"]);
        // The kubelet owns other labels, not ours.
        let unrecorded = carrier_of(&node("c", Some("x"), &[])).unwrap();
        assert!(!unrecorded.ours && unrecorded.others.is_empty());
    }

    #[test]
    fn the_plan_labels_relabels_keeps_removes_and_refuses_foreign_values() {
        let carriers: Vec<Carrier> = [
            node("kept", Some("aaaa0000"), &[FIELD_MANAGER]),
            node("moved", Some("aaaa0000"), &[FIELD_MANAGER]),
            node("left-group", Some("aaaa0000"), &[FIELD_MANAGER]),
            node("someone-elses", Some("ffff0000"), &["kubectl-label"]),
            node("pre-labelled", Some("bbbb0000"), &["kubelet"]),
        ]
        .iter()
        .filter_map(carrier_of)
        .collect();
        let want = wanted(&[
            ("kept", "aaaa0000"),
            ("moved", "bbbb0000"),
            ("new", "bbbb0000"),
            ("pre-labelled", "bbbb0000"),
        ]);
        let plan = plan(&want, &carriers, Some(&BTreeSet::new()), false).unwrap();
        let actions: Vec<(&str, LabelAction, bool, bool)> = plan
            .iter()
            .map(|c| (c.node.as_str(), c.action, c.changed, c.ours))
            .collect();
        assert_eq!(
            actions,
            [
                ("kept", LabelAction::Keep, false, true),
                ("left-group", LabelAction::Remove, true, false),
                ("moved", LabelAction::Relabel, true, true),
                ("new", LabelAction::Label, true, true),
                // Labelled by its kubelet with the right value: left as theirs.
                ("pre-labelled", LabelAction::Keep, false, false),
            ]
        );
        // Someone else's label where we want ours: refused, unless --force.
        let mut want = want;
        want.insert("someone-elses".into(), "bbbb0000".into());
        let refused = super::plan(&want, &carriers, Some(&BTreeSet::new()), false).unwrap_err();
        assert_eq!(
            refused,
            ["node someone-elses has cadvisor-setup/group=ffff0000 (set by kubectl-label)"]
        );
        let forced = super::plan(&want, &carriers, Some(&BTreeSet::new()), true).unwrap();
        let taken = forced.iter().find(|c| c.node == "someone-elses").unwrap();
        assert_eq!(taken.action, LabelAction::TakeOver);
        assert_eq!(taken.previous.as_deref(), Some("ffff0000"));
        assert!(
            taken.describe().contains("was ffff0000"),
            "{}",
            taken.describe()
        );
    }

    #[test]
    fn nothing_wanted_removes_only_ours() {
        let carriers: Vec<Carrier> = [
            node("a", Some("x"), &[FIELD_MANAGER]),
            node("b", Some("y"), &["kubectl-label"]),
        ]
        .iter()
        .filter_map(carrier_of)
        .collect();
        let plan = plan(&BTreeMap::new(), &carriers, Some(&BTreeSet::new()), false).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(
            (plan[0].node.as_str(), plan[0].action),
            ("a", LabelAction::Remove)
        );
    }

    #[test]
    fn a_value_another_install_selects_is_never_removed() {
        let carriers: Vec<Carrier> = [
            node("a", Some("x"), &[FIELD_MANAGER]),
            node("b", Some("y"), &[FIELD_MANAGER]),
        ]
        .iter()
        .filter_map(carrier_of)
        .collect();
        let elsewhere = BTreeSet::from(["x".to_string()]);
        let plan_with = |e| plan(&BTreeMap::new(), &carriers, e, false).unwrap();
        let removed: Vec<String> = plan_with(Some(&elsewhere))
            .into_iter()
            .map(|c| c.node)
            .collect();
        assert_eq!(removed, ["b"]);
        // Not known who else selects what: nothing is removed.
        assert_eq!(plan_with(None), []);
    }

    #[test]
    fn the_values_a_daemonset_selects_by_our_label() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "cadvisor-3dd09fc8", "namespace": "other"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": GROUP_LABEL, "operator": "In", "values": ["3dd09fc8"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                    ]},
                    {"matchExpressions": [{"key": GROUP_LABEL, "operator": "NotIn", "values": ["zzz"]}]}
                ]}
            }}}}}
        }))
        .unwrap();
        assert_eq!(group_values(&ds), ["3dd09fc8"]);
        assert!(group_values(&DaemonSet::default()).is_empty());
    }

    #[test]
    fn the_patch_holds_only_our_label_and_null_removes_it() {
        assert_eq!(
            label_patch(Some("abcd0123")),
            json!({"metadata": {"labels": {GROUP_LABEL: "abcd0123"}}})
        );
        assert_eq!(
            label_patch(None),
            json!({"metadata": {"labels": {GROUP_LABEL: null}}})
        );
    }

    #[test]
    fn a_label_we_share_with_another_manager_is_never_removed() {
        let carriers: Vec<Carrier> = [node("a", Some("x"), &[FIELD_MANAGER, "kubectl-label"])]
            .iter()
            .filter_map(carrier_of)
            .collect();
        assert!(carriers[0].ours);
        assert_eq!(
            plan(&BTreeMap::new(), &carriers, Some(&BTreeSet::new()), false).unwrap(),
            []
        );
    }
}
