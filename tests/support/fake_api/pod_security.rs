//! Pod Security admission, as the built-in `PodSecurity` admission plugin enforces it on pod
//! creation (kubernetes/kubernetes: staging/src/k8s.io/pod-security-admission/policy/check_*.go).
//!
//! The level comes from the namespace's `pod-security.kubernetes.io/enforce` label, else from the
//! cluster default (the API server's `AdmissionConfiguration`; upstream's default is
//! `privileged`, the real 1.36 cluster in shared/reference/real-cluster.md ran with `baseline`).
//! Only the checks a cAdvisor pod can trip are modelled: hostPath volumes, host namespaces,
//! privileged containers and added capabilities (baseline); runAsNonRoot, allowPrivilegeEscalation
//! and dropping ALL capabilities (restricted). Dry-run creates are admitted like real ones.

use serde_json::Value;

use super::State;
use super::status::{self, ApiError};

pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Capabilities the baseline level allows containers to add (check_capabilities_baseline.go).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The level enforced in `namespace`: its label, else the cluster default.
pub fn level(state: &State, namespace: &Value) -> String {
    namespace["metadata"]["labels"][ENFORCE_LABEL]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| state.pod_security_default())
}

/// Refuses `pod` with the API server's 403 when it violates the level of its namespace.
pub fn admit(state: &State, namespace: &Value, pod: &Value) -> Result<(), ApiError> {
    let level = level(state, namespace);
    let violations = match level.as_str() {
        "baseline" => baseline(pod),
        "restricted" => {
            let mut v = baseline(pod);
            v.extend(restricted(pod));
            v
        }
        _ => Vec::new(),
    };
    if violations.is_empty() {
        return Ok(());
    }
    let name = pod["metadata"]["name"]
        .as_str()
        .or(pod["metadata"]["generateName"].as_str())
        .unwrap_or_default();
    Err(status::pod_security_forbidden(
        name,
        &format!(
            "violates PodSecurity \"{level}:latest\": {}",
            violations.join(", ")
        ),
    ))
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    let spec = &pod["spec"];
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn baseline(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let spec = &pod["spec"];
    let host: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| spec[*k] == true)
        .map(|k| format!("{k}=true"))
        .collect();
    if !host.is_empty() {
        out.push(format!("host namespaces ({})", host.join(", ")));
    }
    let privileged: Vec<String> = containers(pod)
        .filter(|c| c["securityContext"]["privileged"] == true)
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    if !privileged.is_empty() {
        let noun = if privileged.len() == 1 {
            "container"
        } else {
            "containers"
        };
        out.push(format!(
            "privileged ({noun} {} must not set securityContext.privileged=true)",
            quoted(&privileged)
        ));
    }
    let host_paths: Vec<String> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.get("hostPath").is_some())
        .map(|v| v["name"].as_str().unwrap_or_default().to_string())
        .collect();
    if !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push(format!("hostPath volumes ({noun} {})", quoted(&host_paths)));
    }
    for c in containers(pod) {
        let added: Vec<String> = c["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|cap| !BASELINE_CAPABILITIES.contains(cap))
            .map(str::to_string)
            .collect();
        if !added.is_empty() {
            out.push(format!(
                "non-default capabilities (container \"{}\" must not include {} in securityContext.capabilities.add)",
                c["name"].as_str().unwrap_or_default(),
                quoted(&added)
            ));
        }
    }
    out
}

fn restricted(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod_non_root = pod["spec"]["securityContext"]["runAsNonRoot"] == true;
    let names = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        containers(pod)
            .filter(|c| pred(c))
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let escalating = names(&|c| c["securityContext"]["allowPrivilegeEscalation"] != false);
    if !escalating.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false (container {} must set securityContext.allowPrivilegeEscalation=false)",
            quoted(&escalating)
        ));
    }
    let keeping = names(&|c| {
        !c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"))
    });
    if !keeping.is_empty() {
        out.push(format!(
            "unrestricted capabilities (container {} must set securityContext.capabilities.drop=[\"ALL\"])",
            quoted(&keeping)
        ));
    }
    let root = names(&|c| !pod_non_root && c["securityContext"]["runAsNonRoot"] != true);
    if !root.is_empty() {
        out.push(format!(
            "runAsNonRoot != true (pod or container {} must set securityContext.runAsNonRoot=true)",
            quoted(&root)
        ));
    }
    out
}
