//! Why a node's cAdvisor has no pod labels, from what the API server shows: the pod log's
//! containerd factory registration line and the DaemonSet's flags and mounts. Pure functions.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Container;
use serde::Serialize;

/// cAdvisor's `--containerd` default (google/cadvisor `container/containerd/factory.go`,
/// `ArgContainerdEndpoint`).
pub const CADVISOR_DEFAULT_CONTAINERD: &str = "/run/containerd/containerd.sock";
/// The log line's start (google/cadvisor: `lib/container/factory.go`, "Registration of the %s
/// container factory failed").
const REGISTRATION: &str = "Registration of the containerd container factory";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "line", rename_all = "lowercase")]
pub enum Registration {
    Succeeded(String),
    Failed(String),
    /// No registration line in the log (yet).
    Absent,
}

/// Finds the containerd factory registration line in a cAdvisor log.
pub fn registration(log: &str) -> Registration {
    let mut found = Registration::Absent;
    for line in log.lines().filter(|l| l.contains(REGISTRATION)) {
        let line = line.trim().to_string();
        found = if line.contains("failed") {
            Registration::Failed(line)
        } else {
            Registration::Succeeded(line)
        };
    }
    found
}

/// What the DaemonSet's cAdvisor container is told about containerd, and what is wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManifestCheck {
    pub container: Option<String>,
    /// The `--containerd` value, `None` when the flag is absent (cAdvisor then uses its default).
    pub containerd_flag: Option<String>,
    /// The host path the in-pod socket path resolves to through volumeMounts and hostPath volumes.
    pub host_socket: Option<PathBuf>,
    pub problems: Vec<String>,
}

/// Resolves `--containerd` through the pod template's mounts, as the kubelet would, and compares
/// it with the socket the kubelet really uses (`expected`, a host path, when known).
pub fn check_manifest(ds: &DaemonSet, expected: Option<&Path>) -> ManifestCheck {
    let mut check = ManifestCheck::default();
    let Some(pod) = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        check
            .problems
            .push("the DaemonSet has no pod template".to_string());
        return check;
    };
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "cadvisor")
        .or_else(|| pod.containers.first());
    let Some(container) = container else {
        check
            .problems
            .push("the pod template has no container".to_string());
        return check;
    };
    check.container = Some(container.name.clone());
    check.containerd_flag = flag(container, "containerd");
    let in_pod = match &check.containerd_flag {
        Some(value) => value.trim_start_matches("unix://").to_string(),
        None => {
            check.problems.push(format!(
                "cAdvisor is not given --containerd, so it dials its default {CADVISOR_DEFAULT_CONTAINERD}"
            ));
            CADVISOR_DEFAULT_CONTAINERD.to_string()
        }
    };
    let in_pod = Path::new(&in_pod);
    // The deepest mount containing the path wins, as in the container's mount table.
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| in_pod.starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len());
    let Some(mount) = mount else {
        check.problems.push(format!(
            "no volumeMount covers {}: the socket is not mounted into the pod (mount the host directory holding containerd's socket)",
            in_pod.display()
        ));
        return check;
    };
    let host_dir = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .and_then(|v| v.host_path.as_ref())
        .map(|h| PathBuf::from(&h.path));
    let Some(host_dir) = host_dir else {
        check.problems.push(format!(
            "volumeMount {} at {} is not a hostPath volume, so it cannot hold the host's containerd socket",
            mount.name, mount.mount_path
        ));
        return check;
    };
    let rest = in_pod
        .strip_prefix(&mount.mount_path)
        .unwrap_or(Path::new(""));
    let host_socket = if rest.as_os_str().is_empty() {
        host_dir
    } else {
        host_dir.join(rest)
    };
    if let Some(expected) = expected
        && host_socket != expected
    {
        check.problems.push(format!(
            "cAdvisor reaches host path {} but the kubelet's containerd listens at {}",
            host_socket.display(),
            expected.display()
        ));
    }
    check.host_socket = Some(host_socket);
    check
}

/// The value of `--name=value` / `-name=value` / `--name value` in the container's command+args.
fn flag(container: &Container, name: &str) -> Option<String> {
    let words: Vec<&String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .collect();
    for (i, word) in words.iter().enumerate() {
        let bare = word.trim_start_matches('-');
        if !word.starts_with('-') {
            continue;
        }
        if let Some(value) = bare.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(value.to_string());
        }
        if bare == name {
            return words.get(i + 1).map(|s| s.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(args: &[&str], mounts: serde_json::Value, volumes: serde_json::Value) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cadvisor"},
            "spec": {"selector": {}, "template": {"spec": {
                "containers": [{"name": "cadvisor", "image": "x", "args": args, "volumeMounts": mounts}],
                "volumes": volumes}}}
        }))
        .unwrap()
    }

    #[test]
    fn upstream_manifest_lacks_flag_and_mount() {
        let d = ds(
            &["--housekeeping_interval=10s"],
            serde_json::json!([{"name": "sys", "mountPath": "/sys"}]),
            serde_json::json!([{"name": "sys", "hostPath": {"path": "/sys"}}]),
        );
        let c = check_manifest(
            &d,
            Some(Path::new("/var/snap/microk8s/common/run/containerd.sock")),
        );
        assert_eq!(c.containerd_flag, None);
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(c.problems[1].contains("no volumeMount covers /run/containerd/containerd.sock"));
    }

    #[test]
    fn parent_directory_mount_resolves_to_the_host_socket() {
        let d = ds(
            &["--containerd=/var/snap-run/containerd.sock"],
            serde_json::json!([{"name": "run", "mountPath": "/var/snap-run", "readOnly": true}]),
            serde_json::json!([{"name": "run", "hostPath": {"path": "/var/snap/microk8s/common/run"}}]),
        );
        let expected = Path::new("/var/snap/microk8s/common/run/containerd.sock");
        let c = check_manifest(&d, Some(expected));
        assert_eq!(c.host_socket.as_deref(), Some(expected));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let wrong = check_manifest(&d, Some(Path::new("/run/containerd/containerd.sock")));
        assert_eq!(wrong.problems.len(), 1);
    }

    #[test]
    fn registration_line() {
        let log = "I1 manager.go] x\nI1127 factory.go:220] Registration of the containerd container factory failed: unable to create containerd client: dial unix /run/containerd/containerd.sock: connect: no such file or directory\n";
        assert!(matches!(registration(log), Registration::Failed(l) if l.contains("no such file")));
        let ok = "Registration of the containerd container factory successfully\n";
        assert!(matches!(registration(ok), Registration::Succeeded(_)));
        assert_eq!(registration("nothing"), Registration::Absent);
    }
}
