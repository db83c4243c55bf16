//! The resources the fake serves and their discovery documents (`/api`, `/api/v1`, `/apis`,
//! `/apis/<group>/<version>`), shaped as the real API server's (kubernetes/kubernetes:
//! staging/src/k8s.io/apiserver/pkg/endpoints/discovery).

use serde_json::{Value, json};

#[derive(Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub subresources: &'static [&'static str],
    /// Whether the object has a spec whose changes bump `metadata.generation`.
    pub has_generation: bool,
    /// Present only while the Prometheus operator's CRDs are "installed".
    pub optional_crd: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `daemonsets.apps`, `pods`: the name used in error messages and store keys.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status", "finalize"],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        subresources: &["status", "proxy"],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &["status", "log", "proxy"],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        subresources: &["status", "proxy"],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        subresources: &[],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
        has_generation: false,
        optional_crd: false,
    },
    // What `uninstall` closes a namespace with while it checks that it is empty.
    Resource {
        group: "",
        version: "v1",
        plural: "resourcequotas",
        singular: "resourcequota",
        kind: "ResourceQuota",
        namespaced: true,
        short_names: &["quota"],
        subresources: &["status"],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
        has_generation: false,
        optional_crd: false,
    },
    // Kinds a user may put in any namespace (and that `uninstall` must notice there): a
    // PersistentVolumeClaim, a Role, a Job and a custom resource of a CRD "installed" for good.
    Resource {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        namespaced: true,
        short_names: &["pvc"],
        subresources: &["status"],
        has_generation: false,
        optional_crd: false,
    },
    // What a `--templates` override may render instead of a built-in object.
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        namespaced: false,
        short_names: &[],
        subresources: &[],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        singular: "role",
        kind: "Role",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        has_generation: false,
        optional_crd: false,
    },
    Resource {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        short_names: &[],
        subresources: &["status"],
        has_generation: true,
        optional_crd: false,
    },
    Resource {
        group: "example.com",
        version: "v1",
        plural: "widgets",
        singular: "widget",
        kind: "Widget",
        namespaced: true,
        short_names: &["wdg"],
        subresources: &[],
        has_generation: true,
        optional_crd: false,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        subresources: &["status"],
        has_generation: true,
        optional_crd: false,
    },
    Resource {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        singular: "customresourcedefinition",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        subresources: &["status"],
        has_generation: true,
        optional_crd: false,
    },
    Resource {
        group: "monitoring.coreos.com",
        version: "v1",
        plural: "servicemonitors",
        singular: "servicemonitor",
        kind: "ServiceMonitor",
        namespaced: true,
        short_names: &["smon"],
        subresources: &[],
        has_generation: true,
        optional_crd: true,
    },
    Resource {
        group: "monitoring.coreos.com",
        version: "v1",
        plural: "prometheuses",
        singular: "prometheus",
        kind: "Prometheus",
        namespaced: true,
        short_names: &["prom"],
        subresources: &["status"],
        has_generation: true,
        optional_crd: true,
    },
    Resource {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        singular: "networkpolicy",
        kind: "NetworkPolicy",
        namespaced: true,
        short_names: &["netpol"],
        subresources: &[],
        has_generation: true,
        optional_crd: false,
    },
    Resource {
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        namespaced: true,
        short_names: &["sts"],
        subresources: &["status"],
        has_generation: true,
        optional_crd: false,
    },
];

pub fn find(group: &str, version: &str, plural: &str, crds: bool) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| {
        r.group == group && r.version == version && r.plural == plural && (crds || !r.optional_crd)
    })
}

pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

pub fn by_qualified(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.qualified() == name)
}

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.4",
        "gitCommit": "74cdb426ef4f8d3a9a0d3cc8d6e4e1a5b3a4ed4f",
        "gitTreeState": "clean",
        "buildDate": "2025-08-12T18:19:41Z",
        "goVersion": "go1.24.5",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]
    })
}

fn groups(crds: bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && (crds || !r.optional_crd) && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

pub fn group_exists(group: &str, version: &str, crds: bool) -> bool {
    version == "v1" && (group.is_empty() || groups(crds).contains(&group))
}

pub fn api_group_list(crds: bool) -> Value {
    let groups: Vec<Value> = groups(crds)
        .into_iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn resource_list(group: &str, version: &str, crds: bool) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version && (crds || !r.optional_crd))
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "storageVersionHash": format!("{:x}", fnv(r.kind)),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if matches!(r.kind, "Pod" | "Service" | "DaemonSet") {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        for sub in r.subresources {
            let verbs: &[&str] = match *sub {
                "status" => &["get", "patch", "update"],
                "log" => &["get"],
                "finalize" => &["update"],
                _ => &["create", "delete", "get", "patch", "update"],
            };
            resources.push(json!({
                "name": format!("{}/{}", r.plural, sub),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if *sub == "proxy" { "NodeProxyOptions" } else { r.kind },
                "verbs": verbs,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The Prometheus operator's ServiceMonitor CRD (prometheus-operator/prometheus-operator:
/// example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml, abridged).
pub fn servicemonitor_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com",
                     "annotations": {"operator.prometheus.io/version": "0.86.0"}},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"categories": ["prometheus-operator"], "kind": "ServiceMonitor",
                      "listKind": "ServiceMonitorList", "plural": "servicemonitors",
                      "shortNames": ["smon"], "singular": "servicemonitor"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        },
        "status": {"acceptedNames": {"kind": "ServiceMonitor", "plural": "servicemonitors"},
                   "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}],
                   "storedVersions": ["v1"]}
    })
}
