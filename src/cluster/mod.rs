//! Everything that talks to the API server (kube-rs): client, apply, rollout, proxy, uninstall.
//! Never reads host files itself: the kubeconfig path comes in from `host::kubeconfig`.
//!
//! What these functions return is plain data (kdash style); only `commands` decides the order.

pub mod apply;
pub mod bounded;
pub mod client;
pub mod diagnose;
pub mod exec_shim;
pub mod grafana;
pub mod namespace_lock;
pub mod node;
pub mod node_labels;
pub mod nodes;
pub mod ownership;
pub mod pages;
pub mod pod_security;
pub mod prometheus;
pub mod proxy;
pub mod resources;
pub mod rollout;
pub mod status;
pub mod uninstall;

pub use client::{Cluster, classify};

/// The field manager of every write, and the value of our `app.kubernetes.io/managed-by` label.
pub const FIELD_MANAGER: &str = "cadvisor-setup";
/// `app.kubernetes.io/managed-by` (kubernetes.io: "Recommended Labels").
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation holding the last verification result on the DaemonSet (set by `install`/`verify`).
pub const LAST_VERIFICATION_ANNOTATION: &str = "cadvisor-setup/last-verification";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kubeconfig {path} is not usable: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error(
        "cannot reach the API server at {server}: {reason}\n  check that the cluster is running (`microk8s status --wait-ready`) and that the kubeconfig points at it"
    )]
    Unreachable { server: String, reason: String },
    #[error(
        "the API server at {server} answered as no real one does: {reason}\n  check that the kubeconfig's server is the cluster's API server (not a proxy or another service in front of it)"
    )]
    Misbehaving { server: String, reason: String },
    #[error(
        "the API server at {server} rejected our credentials (401): {reason}\n  use an admin kubeconfig (MicroK8s: /var/snap/microk8s/current/credentials/client.config)"
    )]
    Unauthorized { server: String, reason: String },
    #[error(
        "forbidden (403): {reason}\n  the kubeconfig's user lacks this permission; use an admin kubeconfig or grant it with RBAC"
    )]
    Forbidden { reason: String },
    /// The namespace is being deleted: NamespaceLifecycle admission refuses new objects in it
    /// with a 403 that is not about permissions.
    #[error(
        "namespace {namespace} is being deleted (Terminating): the API server accepts no new objects in it until it is gone\n  wait until `kubectl get namespace {namespace}` finds nothing (its pods stop first), then rerun; or install into another --namespace"
    )]
    NamespaceTerminating { namespace: String },
    #[error(
        "conflict (409): field {field} of {object} is owned by field manager \"{manager}\"\n  another tool manages this object; rerun with --force to take those fields over"
    )]
    Conflict {
        object: String,
        manager: String,
        field: String,
    },
    #[error(
        "not created by cadvisor-setup: {}; nothing was applied\n  remove or rename what is listed, choose another --namespace, or rerun with --force to take it over (uninstall then restores what --force changed instead of deleting it)",
        objects.join("; ")
    )]
    Foreign { objects: Vec<String> },
    #[error(
        "node label {label} was set by someone else: {}; nothing was applied and no node was labelled\n  --label-nodes changes only a label cadvisor-setup owns: remove theirs (kubectl label node NODE {label}-), or rerun with --force to take it over (uninstall then removes it)",
        nodes.join("; ")
    )]
    ForeignNodeLabel { label: String, nodes: Vec<String> },
    #[error(
        "namespace {namespace} would refuse cAdvisor's pods: it enforces Pod Security level {level}; nothing was applied\n  the API server says: {reason}\n  cAdvisor needs the \"privileged\" level (hostPath volumes for /, /sys, /dev/disk and the runtime socket's directory; the SYS_PTRACE capability)\n  either install into a namespace of its own (the default, --namespace cadvisor, created with the privileged level), or rerun with --force to set {namespace}'s pod-security labels to privileged (uninstall restores their previous values)"
    )]
    PodSecurity {
        namespace: String,
        level: String,
        reason: String,
    },
    #[error("{object} not found: {hint}")]
    NotFound { object: String, hint: String },
    #[error("{0}")]
    Rollout(Box<rollout::RolloutFailure>),
    /// The object went away while we waited for it (deleted by someone else): the rollout
    /// cannot finish, so it is a rollout failure, not a verification one.
    #[error(
        "{object} was deleted while {doing}\n  something else deletes it (another tool, a GitOps controller); rerun `cadvisor-setup install` once it stops"
    )]
    Gone { object: String, doing: String },
    /// Judged ours when read, replaced by someone else's of the same name before our write
    /// reached it (its uid changed): left as it is.
    #[error(
        "{object} was replaced since it was read (its uid changed): it is someone else's now, so nothing was written to it\n  rerun `cadvisor-setup install` to see whose it is (it then stops with exit 7 unless --force)"
    )]
    Replaced { object: String },
    /// Absent when read, created by someone else before our create reached it.
    #[error(
        "{object} was created by {writer} at the same moment as ours: it is theirs, {}\n  rerun `cadvisor-setup install` to see it (it then stops with exit 7 unless --force)",
        if *withdrawn { "and what our write added to it was withdrawn" } else { "and withdrawing what our write added failed: check it (kubectl get -o yaml --show-managed-fields) and remove the cadvisor-setup marks" }
    )]
    CreatedMeanwhile {
        object: String,
        writer: String,
        withdrawn: bool,
    },
    /// Stopped by `by` (Ctrl-C, or SIGTERM/SIGHUP while writing).
    #[error("interrupted ({by}) while {doing}")]
    Interrupted { by: &'static str, doing: String },
    #[error("timed out after {seconds}s while {doing}")]
    Timeout { seconds: u64, doing: String },
    #[error("{source}\n  applied before the failure: {applied}; not applied: {not_applied}")]
    Partial {
        applied: String,
        not_applied: String,
        #[source]
        source: Box<ClusterError>,
    },
    #[error("API request failed: {0}")]
    Api(String),
}

/// `Kind namespace/name` or `Kind name`, for messages.
pub fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}
