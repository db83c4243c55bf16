//! Would cAdvisor's pods be admitted in a namespace we do not own? Asked of the API server, not
//! guessed: a server-side dry-run create of a pod from the DaemonSet's template runs the
//! `PodSecurity` admission plugin exactly as the DaemonSet controller's creates will
//! (kubernetes.io "Pod Security Admission"; dry-run requests run admission:
//! kubernetes.io "Dry-run"). This also sees the cluster-wide default level, which no label shows.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};

use super::{Cluster, ClusterError, FIELD_MANAGER, classify};
use crate::render::Manifest;

/// The namespace label that sets the enforced level (kubernetes.io "Pod Security Admission").
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// `Ok(None)` when the pod would be admitted, `Ok(Some(warning))` when it could not be checked
/// (the dry run itself was forbidden by RBAC) and the labels do not forbid it, and
/// [`ClusterError::PodSecurity`] when the namespace would refuse cAdvisor's pods.
pub async fn check(
    cluster: &Cluster,
    namespace: &Value,
    daemonset: &Manifest,
) -> Result<Option<String>, ClusterError> {
    let ns = namespace["metadata"]["name"].as_str().unwrap_or_default();
    let template = &daemonset.object["spec"]["template"];
    let probe = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-pod-security-check-", daemonset.name),
            "namespace": ns,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    });
    let probe: DynamicObject = serde_json::from_value(probe)
        .map_err(|e| ClusterError::Api(format!("building the Pod Security probe: {e}")))?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), ns, &ApiResource::erase::<Pod>(&()));
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    let labelled = namespace["metadata"]["labels"][ENFORCE_LABEL]
        .as_str()
        .map(str::to_string);
    match api.create(&params, &probe).await {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("violates PodSecurity") =>
        {
            Err(ClusterError::PodSecurity {
                namespace: ns.to_string(),
                level: level_shown(labelled.as_deref(), &status.message),
                reason: status.message,
            })
        }
        Err(kube::Error::Api(status)) if status.code == 403 => match labelled.as_deref() {
            Some(level @ ("baseline" | "restricted")) => Err(ClusterError::PodSecurity {
                namespace: ns.to_string(),
                level: format!("\"{level}\" (label {ENFORCE_LABEL})"),
                reason: format!("the label enforces \"{level}\", which forbids hostPath volumes"),
            }),
            _ => Ok(Some(format!(
                "could not check whether namespace {ns} admits cAdvisor's pods (a dry-run pod create was forbidden: {}); if the rollout stalls, look for FailedCreate events on the DaemonSet",
                status.message
            ))),
        },
        Err(e) => Err(classify(&cluster.server, e)),
    }
}

/// `"baseline" (label ...)` or `"baseline" (the cluster default: the namespace has no ... label)`.
fn level_shown(label: Option<&str>, message: &str) -> String {
    // The denial names the level: `violates PodSecurity "baseline:latest": ...`
    // (k8s.io/pod-security-admission/admission: the forbidden message).
    let from_message = message
        .split_once("violates PodSecurity \"")
        .and_then(|(_, rest)| rest.split(['"', ':']).next())
        .filter(|l| !l.is_empty());
    match (label, from_message) {
        (Some(l), _) => format!("\"{l}\" (label {ENFORCE_LABEL})"),
        (None, Some(l)) => {
            format!("\"{l}\" (the cluster's default: the namespace has no {ENFORCE_LABEL} label)")
        }
        (None, None) => format!("the cluster's default (no {ENFORCE_LABEL} label)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_comes_from_the_label_or_the_denial() {
        let denial = "pods \"x\" is forbidden: violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"sys\")";
        assert!(level_shown(Some("restricted"), denial).starts_with("\"restricted\" (label"));
        assert!(level_shown(None, denial).starts_with("\"baseline\" (the cluster's default"));
        assert!(level_shown(None, "forbidden").starts_with("the cluster's default"));
    }
}
