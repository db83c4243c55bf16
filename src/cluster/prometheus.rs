//! The Prometheus that is already there: the Prometheus Operator's `Prometheus` objects, which
//! ServiceMonitors each one selects, and what our ServiceMonitor and namespace need to carry so
//! that the chosen one selects ours.
//!
//! The operator's rules (prometheus-operator: Documentation/api-reference/api.md, PrometheusSpec):
//! `serviceMonitorSelector` "an empty label selector matches all objects; a null label selector
//! matches no objects"; `serviceMonitorNamespaceSelector` "an empty label selector matches all
//! namespaces; a null label selector (default value) matches the current namespace only".

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::ownership::{self, Ownership};
use super::{Cluster, ClusterError, classify};
use crate::selector::{self, Labels};

pub const API_VERSION: &str = "monitoring.coreos.com/v1";
const PLURAL: &str = "prometheuses";
/// The label every namespace carries with its own name (kubernetes.io: "Well-Known Labels,
/// Annotations and Taints", `kubernetes.io/metadata.name`, set by the API server since 1.21).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The operator's label naming the Prometheus a StatefulSet and its pods belong to
/// (prometheus-operator: pkg/prometheus/operator.go `PrometheusNameLabelName`).
const OPERATOR_NAME_LABEL: &str = "operator.prometheus.io/name";
/// At most this many Prometheus objects are read (one page); a cluster with more is told so.
const MAX_INSTANCES: u32 = 100;

/// Which Prometheus object: `--prometheus` of `install` and, without `none`, of `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PrometheusChoice {
    /// The only one in the cluster.
    Auto,
    None,
    Named {
        namespace: String,
        name: String,
    },
}

impl std::fmt::Display for PrometheusChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrometheusChoice::Auto => f.write_str("auto"),
            PrometheusChoice::None => f.write_str("none"),
            PrometheusChoice::Named { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// How the operator serves one Prometheus' web endpoint (prometheus-operator:
/// Documentation/api-reference/api.md, PrometheusSpec `routePrefix`, `web.tlsConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Web {
    /// `spec.web.tlsConfig` is set: the pods serve https.
    pub https: bool,
    /// `spec.routePrefix` (Prometheus' `--web.route-prefix`, default `/`) as an absolute path
    /// without a trailing slash (`""` for `/`); anything that is not a plain path is ignored.
    pub route_prefix: String,
}

impl Web {
    pub fn of(spec: &Value) -> Web {
        let prefix = spec["routePrefix"].as_str().unwrap_or("/").trim();
        let plain = prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        Web {
            https: !spec["web"]["tlsConfig"].is_null(),
            route_prefix: if !plain || prefix.contains("..") {
                String::new()
            } else {
                format!("/{}", prefix.trim_matches('/'))
                    .trim_end_matches('/')
                    .to_string()
            },
        }
    }
}

/// One `Prometheus` object, reduced to what decides whether it scrapes us.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub namespace: String,
    pub name: String,
    /// `spec.serviceMonitorSelector`; `None` selects no ServiceMonitor at all.
    #[serde(skip)]
    pub service_monitor_selector: Option<LabelSelector>,
    /// `spec.serviceMonitorNamespaceSelector`; `None` is the Prometheus' own namespace only.
    #[serde(skip)]
    pub namespace_selector: Option<LabelSelector>,
    /// Both selectors in kubectl's notation, for reports.
    pub selects_service_monitors: String,
    pub in_namespaces: String,
    #[serde(skip)]
    pub web: Web,
}

impl Instance {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn from_object(object: &DynamicObject) -> Result<Instance, String> {
        let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
        let selector = |field: &str| -> Result<Option<LabelSelector>, String> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v.clone())
                    .map(Some)
                    .map_err(|e| format!("spec.{field} is not a label selector: {e}")),
            }
        };
        let service_monitor_selector = selector("serviceMonitorSelector")?;
        let namespace_selector = selector("serviceMonitorNamespaceSelector")?;
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        Ok(Instance {
            selects_service_monitors: selector::describe(service_monitor_selector.as_ref()),
            in_namespaces: match &namespace_selector {
                None => format!("{namespace} (its own)"),
                Some(s) => selector::describe(Some(s)),
            },
            namespace,
            name: object.metadata.name.clone().unwrap_or_default(),
            service_monitor_selector,
            namespace_selector,
            web: Web::of(&spec),
        })
    }
}

/// What [`list`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Found {
    pub instances: Vec<Instance>,
    /// Objects that could not be read as a Prometheus, with the reason.
    pub unreadable: Vec<String>,
    /// More than [`MAX_INSTANCES`] exist; only the first page was read.
    pub truncated: bool,
}

/// The Prometheus objects of every namespace; `None` when the operator's API is not served.
pub async fn list(cluster: &Cluster) -> Result<Option<Found>, ClusterError> {
    list_among(
        cluster,
        &super::resources::served(cluster, API_VERSION).await?,
    )
    .await
}

/// [`list`] when what [`API_VERSION`] serves is known (`served`, from `resources::served`).
pub async fn list_among(
    cluster: &Cluster,
    served: &[String],
) -> Result<Option<Found>, ClusterError> {
    if !served.iter().any(|r| r == PLURAL) {
        return Ok(None);
    }
    let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource());
    let list = cluster
        .ask(api.list(&ListParams::default().limit(MAX_INSTANCES)))
        .await?;
    let mut found = Found {
        truncated: list
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty()),
        ..Found::default()
    };
    for object in &list.items {
        match Instance::from_object(object) {
            Ok(instance) => found.instances.push(instance),
            Err(reason) => found.unreadable.push(format!(
                "Prometheus {}/{}: {reason}",
                object.metadata.namespace.as_deref().unwrap_or(""),
                object.metadata.name.as_deref().unwrap_or("")
            )),
        }
    }
    found
        .instances
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Some(found))
}

/// How the operator serves Prometheus `namespace/name`; `None` when there is no such object.
pub async fn web(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Option<Web>, ClusterError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &resource());
    let object = cluster.ask(api.get_opt(name)).await?;
    Ok(object.map(|o| Web::of(o.data.get("spec").unwrap_or(&Value::Null))))
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "Prometheus"),
        PLURAL,
    )
}

/// Our namespace as the integration sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceState {
    /// Absent (install creates it) or created by cadvisor-setup: we may add labels to it.
    Ours(Labels),
    /// Someone else's: its labels are read, never changed.
    Foreign(Labels),
}

/// Reads our namespace's labels and whether we may add to them.
pub async fn namespace_state(
    cluster: &Cluster,
    name: &str,
) -> Result<NamespaceState, ClusterError> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let live = cluster.ask(api.get_opt(name)).await?;
    let with_name = |mut labels: Labels| {
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        labels
    };
    Ok(match live {
        None => NamespaceState::Ours(with_name(Labels::new())),
        Some(ns) => {
            let labels = with_name(ns.metadata.labels.clone().unwrap_or_default());
            let value = serde_json::to_value(&ns).unwrap_or(Value::Null);
            match ownership::of(&value) {
                Ownership::Created => NamespaceState::Ours(labels),
                Ownership::Adopted | Ownership::Foreign => NamespaceState::Foreign(labels),
            }
        }
    })
}

/// What our objects must carry for the chosen Prometheus to scrape us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Added to the ServiceMonitor's labels.
    pub service_monitor_labels: Labels,
    /// Added to our namespace's labels (only a namespace we create or created).
    pub namespace_labels: Labels,
}

/// Why the chosen Prometheus cannot select our ServiceMonitor, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Prometheus {prometheus} cannot select our ServiceMonitor: {reason}\n  {fix}")]
pub struct Unreachable {
    pub prometheus: String,
    pub reason: String,
    pub fix: String,
}

/// The labels that make `instance` select a ServiceMonitor labelled `service_monitor_labels` in
/// `namespace`. Pure.
pub fn target(
    instance: &Instance,
    service_monitor_labels: &Labels,
    namespace: &str,
    state: &NamespaceState,
) -> Result<Target, Unreachable> {
    let unreachable = |reason: String, fix: String| Unreachable {
        prometheus: instance.id(),
        reason,
        fix,
    };
    let Some(sm_selector) = &instance.service_monitor_selector else {
        return Err(unreachable(
            "its spec.serviceMonitorSelector is unset, which selects no ServiceMonitor at all"
                .into(),
            format!(
                "set serviceMonitorSelector on Prometheus {} (e.g. `{{}}` for all), or choose another with --prometheus NAMESPACE/NAME, or --prometheus none",
                instance.id()
            ),
        ));
    };
    let service_monitor = selector::satisfy(sm_selector, service_monitor_labels).map_err(|e| {
        unreachable(
            format!(
                "its serviceMonitorSelector ({}) cannot match our labels: {e}",
                selector::describe(Some(sm_selector))
            ),
            format!(
                "change serviceMonitorSelector on Prometheus {}, or choose another with --prometheus NAMESPACE/NAME, or --prometheus none",
                instance.id()
            ),
        )
    })?;
    let namespace_labels = match (&instance.namespace_selector, state) {
        (None, _) if instance.namespace == namespace => Labels::new(),
        (None, _) => {
            return Err(unreachable(
                format!(
                    "it looks for ServiceMonitors only in its own namespace {} (spec.serviceMonitorNamespaceSelector is unset), and ours is in {namespace}",
                    instance.namespace
                ),
                format!(
                    "set serviceMonitorNamespaceSelector: {{}} on Prometheus {}, or install with --namespace {}",
                    instance.id(),
                    instance.namespace
                ),
            ));
        }
        (Some(ns_selector), NamespaceState::Ours(labels)) => selector::satisfy(ns_selector, labels)
            .map_err(|e| {
                unreachable(
                    format!(
                        "its serviceMonitorNamespaceSelector ({}) cannot match namespace {namespace}: {e}",
                        selector::describe(Some(ns_selector))
                    ),
                    format!(
                        "change serviceMonitorNamespaceSelector on Prometheus {}, or install with --namespace NAME into a namespace it watches",
                        instance.id()
                    ),
                )
            })?,
        (Some(ns_selector), NamespaceState::Foreign(labels)) => {
            let ok = selector::matches(ns_selector, labels).unwrap_or(false);
            if !ok {
                let hint = selector::satisfy(ns_selector, labels)
                    .ok()
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let pairs: Vec<String> =
                            l.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("label it (`kubectl label namespace {namespace} {}`), ", pairs.join(" "))
                    })
                    .unwrap_or_default();
                return Err(unreachable(
                    format!(
                        "its serviceMonitorNamespaceSelector ({}) does not match namespace {namespace}, which cadvisor-setup did not create and does not relabel",
                        selector::describe(Some(ns_selector))
                    ),
                    format!(
                        "{hint}install with --namespace NAME into a namespace it watches, or choose another with --prometheus"
                    ),
                ));
            }
            Labels::new()
        }
    };
    Ok(Target {
        service_monitor_labels: service_monitor,
        namespace_labels,
    })
}

/// Whether `instance` selects a ServiceMonitor labelled `labels` in a namespace labelled
/// `namespace_labels` (named `namespace`): for `detect` and `status`.
pub fn selects(
    instance: &Instance,
    labels: &Labels,
    namespace: &str,
    namespace_labels: &Labels,
) -> bool {
    let Some(sm) = &instance.service_monitor_selector else {
        return false;
    };
    let namespace_ok = match &instance.namespace_selector {
        None => instance.namespace == namespace,
        Some(s) => selector::matches(s, namespace_labels).unwrap_or(false),
    };
    namespace_ok && selector::matches(sm, labels).unwrap_or(false)
}

/// One Prometheus as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    #[serde(flatten)]
    pub instance: Instance,
    /// Whether it selects our ServiceMonitor; `None` when we have none.
    pub selects_ours: Option<bool>,
}

/// Every Prometheus, and whether each selects our ServiceMonitor `namespace/name` as it is now;
/// `None` when the operator's API is not served.
pub async fn seen(
    cluster: &Cluster,
    namespace: &str,
    service_monitor: &str,
) -> Result<Option<Vec<Seen>>, ClusterError> {
    let Some(found) = list(cluster).await? else {
        return Ok(None);
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &resource);
    let ours = match api.get_opt(service_monitor).await {
        Ok(sm) => sm.map(|sm| sm.metadata.labels.unwrap_or_default()),
        // The operator's CRDs serve Prometheus but not ServiceMonitor: none of ours.
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => return Err(classify(&cluster.server, e)),
    };
    let namespace_labels = match namespace_state(cluster, namespace).await? {
        NamespaceState::Ours(l) | NamespaceState::Foreign(l) => l,
    };
    Ok(Some(
        found
            .instances
            .into_iter()
            .map(|instance| Seen {
                selects_ours: ours
                    .as_ref()
                    .map(|labels| selects(&instance, labels, namespace, &namespace_labels)),
                instance,
            })
            .collect(),
    ))
}

/// One Prometheus as `detect --cluster` shows it: whether `install` could make it select our
/// ServiceMonitor, with the labels that takes, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    #[serde(flatten)]
    pub instance: Instance,
    pub selectable: bool,
    /// What install would add (`Target`), when selectable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_add: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every Prometheus and what it would take to be scraped by it from `namespace`; `None` when the
/// operator's API is not served.
pub async fn candidates(
    cluster: &Cluster,
    namespace: &str,
) -> Result<Option<Vec<Candidate>>, ClusterError> {
    let Some(found) = list(cluster).await? else {
        return Ok(None);
    };
    let state = namespace_state(cluster, namespace).await?;
    let ours = crate::plan::object_labels();
    Ok(Some(
        found
            .instances
            .into_iter()
            .map(
                |instance| match target(&instance, &ours, namespace, &state) {
                    Ok(t) => Candidate {
                        instance,
                        selectable: true,
                        would_add: Some(t),
                        reason: None,
                    },
                    Err(e) => Candidate {
                        instance,
                        selectable: false,
                        would_add: None,
                        reason: Some(format!("{}; {}", e.reason, e.fix)),
                    },
                },
            )
            .collect(),
    ))
}

/// The labels of `instance`'s pods, for the NetworkPolicy: its StatefulSet's selector (the
/// operator names it with [`OPERATOR_NAME_LABEL`]), or that label alone when no StatefulSet is
/// readable (the operator sets it on the pods too: prometheus-operator pkg/prometheus/server/statefulset.go).
pub async fn pod_labels(cluster: &Cluster, instance: &Instance) -> Result<Labels, ClusterError> {
    let api: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(cluster.client.clone(), &instance.namespace);
    let params = ListParams::default()
        .labels(&format!("{OPERATOR_NAME_LABEL}={}", instance.name))
        .limit(10);
    let from_statefulset = match api.list(&params).await {
        Ok(list) => list.items.into_iter().find_map(|s| {
            s.spec
                .and_then(|spec| spec.selector.match_labels)
                .filter(|l| !l.is_empty())
        }),
        // Not allowed to list StatefulSets, or not served: the operator's label is enough.
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => None,
        Err(e) => return Err(classify(&cluster.server, e)),
    };
    Ok(from_statefulset.unwrap_or_else(|| {
        BTreeMap::from([(OPERATOR_NAME_LABEL.to_string(), instance.name.clone())])
    }))
}

/// Addresses the nodes send from, as `/32` or `/128` CIDRs: [`source_cidrs`] of every node.
pub async fn node_cidrs(cluster: &Cluster) -> Result<Vec<String>, ClusterError> {
    let api: Api<Node> = Api::all(cluster.client.clone());
    let per_node = cluster
        .ask(super::pages::list_reduced(
            &api,
            &ListParams::default(),
            super::pages::PAGE,
            |node| source_cidrs(&node),
        ))
        .await?;
    let cidrs: std::collections::BTreeSet<String> = per_node.into_iter().flatten().collect();
    Ok(cidrs.into_iter().collect())
}

/// Addresses `node` sends from, as `/32` or `/128` CIDRs: every InternalIP, and Calico's tunnel
/// addresses, which traffic from a node to another node's pods carries when Calico encapsulates it
/// (docs.tigera.io: "Configure IP-in-IP / VXLAN encapsulation"; Calico annotates the Node with
/// `projectcalico.org/IPv4VXLANTunnelAddr`, `IPv4IPIPTunnelAddr`, `IPv4WireguardInterfaceAddr`).
pub fn source_cidrs(node: &Node) -> Vec<String> {
    let internal = node
        .status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone());
    let tunnels = node
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "projectcalico.org/IPv4VXLANTunnelAddr"
                    | "projectcalico.org/IPv4IPIPTunnelAddr"
                    | "projectcalico.org/IPv4WireguardInterfaceAddr"
                    | "projectcalico.org/IPv6VXLANTunnelAddr"
            )
        })
        .map(|(_, v)| v.clone());
    internal
        .chain(tunnels)
        .filter_map(|address| match address.trim().parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => Some(format!("{v4}/32")),
            Ok(std::net::IpAddr::V6(v6)) => Some(format!("{v6}/128")),
            Err(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(ns: &str, sm: Option<LabelSelector>, nss: Option<LabelSelector>) -> Instance {
        Instance {
            namespace: ns.into(),
            name: "p".into(),
            selects_service_monitors: selector::describe(sm.as_ref()),
            in_namespaces: selector::describe(nss.as_ref()),
            service_monitor_selector: sm,
            namespace_selector: nss,
            web: Web::default(),
        }
    }

    #[test]
    fn the_route_prefix_is_a_plain_path_or_nothing() {
        let of = |v: Value| Web::of(&serde_json::json!({ "routePrefix": v })).route_prefix;
        assert_eq!(Web::of(&Value::Null), Web::default());
        assert_eq!(of("/".into()), "");
        assert_eq!(of("/prometheus/".into()), "/prometheus");
        assert_eq!(of("prometheus".into()), "/prometheus");
        assert_eq!(of("/a?b#c".into()), "");
        assert_eq!(of("/../x".into()), "");
        assert!(Web::of(&serde_json::json!({ "web": { "tlsConfig": {} } })).https);
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        }
    }

    fn ours() -> Labels {
        labels(&[("app.kubernetes.io/name", "cadvisor")])
    }

    fn ns(name: &str) -> Labels {
        labels(&[(NAMESPACE_NAME_LABEL, name)])
    }

    /// `target` for our labels in namespace `cadvisor`, ours to label or someone else's.
    fn target_in_cadvisor(p: &Instance, namespace_is_ours: bool) -> Result<Target, Unreachable> {
        let state = if namespace_is_ours {
            NamespaceState::Ours(ns("cadvisor"))
        } else {
            NamespaceState::Foreign(ns("cadvisor"))
        };
        target(p, &ours(), "cadvisor", &state)
    }

    #[test]
    fn kube_prometheus_stack_gets_the_release_label() {
        // MicroK8s' observability addon: release kube-prom-stack, all namespaces.
        let p = instance(
            "observability",
            Some(match_labels(&[("release", "kube-prom-stack")])),
            Some(LabelSelector::default()),
        );
        let t = target_in_cadvisor(&p, true).unwrap();
        assert_eq!(
            t.service_monitor_labels,
            labels(&[("release", "kube-prom-stack")])
        );
        assert!(t.namespace_labels.is_empty());
        let mut all = ours();
        all.extend(t.service_monitor_labels);
        assert!(selects(&p, &all, "cadvisor", &ns("cadvisor")));
        assert!(!selects(&p, &ours(), "cadvisor", &ns("cadvisor")));
    }

    #[test]
    fn kube_prometheus_selects_everything_as_is() {
        let p = instance(
            "monitoring",
            Some(LabelSelector::default()),
            Some(LabelSelector::default()),
        );
        let t = target_in_cadvisor(&p, false).unwrap();
        assert_eq!(t, Target::default());
        assert!(selects(&p, &ours(), "cadvisor", &ns("cadvisor")));
    }

    #[test]
    fn a_nil_service_monitor_selector_selects_nothing() {
        let p = instance("monitoring", None, Some(LabelSelector::default()));
        let err = target_in_cadvisor(&p, true).unwrap_err();
        assert!(err.reason.contains("selects no ServiceMonitor"), "{err}");
        assert!(!selects(&p, &ours(), "cadvisor", &ns("cadvisor")));
    }

    #[test]
    fn a_nil_namespace_selector_is_the_prometheus_namespace_only() {
        let p = instance("monitoring", Some(LabelSelector::default()), None);
        let err = target_in_cadvisor(&p, true).unwrap_err();
        assert!(
            err.reason.contains("only in its own namespace monitoring"),
            "{err}"
        );
        assert!(err.fix.contains("--namespace monitoring"), "{err}");
        let t = target(
            &p,
            &ours(),
            "monitoring",
            &NamespaceState::Foreign(ns("monitoring")),
        )
        .unwrap();
        assert_eq!(t, Target::default());
        assert!(selects(&p, &ours(), "monitoring", &ns("monitoring")));
        assert!(!selects(&p, &ours(), "cadvisor", &ns("cadvisor")));
    }

    #[test]
    fn our_own_namespace_is_labelled_a_foreign_one_is_not() {
        let p = instance(
            "monitoring",
            Some(LabelSelector::default()),
            Some(match_labels(&[("monitoring", "enabled")])),
        );
        let t = target_in_cadvisor(&p, true).unwrap();
        assert_eq!(t.namespace_labels, labels(&[("monitoring", "enabled")]));
        let err = target_in_cadvisor(&p, false).unwrap_err();
        assert!(
            err.fix
                .contains("kubectl label namespace cadvisor monitoring=enabled"),
            "{err}"
        );
        let mut labelled = ns("cadvisor");
        labelled.insert("monitoring".into(), "enabled".into());
        let t = target(&p, &ours(), "cadvisor", &NamespaceState::Foreign(labelled)).unwrap();
        assert!(t.namespace_labels.is_empty());
    }

    #[test]
    fn an_unsatisfiable_selector_says_why() {
        let p = instance(
            "monitoring",
            Some(LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                        key: "app.kubernetes.io/name".into(),
                        operator: "NotIn".into(),
                        values: Some(vec!["cadvisor".into()]),
                    },
                ]),
            }),
            Some(LabelSelector::default()),
        );
        let err = target_in_cadvisor(&p, true).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("Prometheus monitoring/p cannot select our ServiceMonitor"),
            "{text}"
        );
        assert!(
            text.contains("app.kubernetes.io/name notin (cadvisor)"),
            "{text}"
        );
        assert!(text.contains("--prometheus none"), "{text}");
    }

    #[test]
    fn objects_are_read_with_null_and_malformed_selectors() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": API_VERSION, "kind": "Prometheus",
            "metadata": {"name": "k8s", "namespace": "monitoring"},
            "spec": {"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": null}
        }))
        .unwrap();
        let i = Instance::from_object(&object).unwrap();
        assert_eq!(i.service_monitor_selector, Some(LabelSelector::default()));
        assert_eq!(i.namespace_selector, None);
        assert_eq!(i.in_namespaces, "monitoring (its own)");
        let bad: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": API_VERSION, "kind": "Prometheus",
            "metadata": {"name": "x", "namespace": "m"},
            "spec": {"serviceMonitorSelector": {"matchLabels": "release"}}
        }))
        .unwrap();
        assert!(Instance::from_object(&bad).is_err());
    }
}
