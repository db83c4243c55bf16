//! How the kubelet on this node is configured, from its files: the runtime endpoint, the cgroup
//! driver and the node name (MicroK8s: canonical/microk8s: microk8s-resources/default-args/kubelet;
//! the other distributions' files with their public sources in `host::layout`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::args_file::{Args, SnapVars};
use super::fs;
use super::{CgroupDriver, DistroKind, HostRoot, Kubelet, layout};

/// The kubelet's configuration and where each value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct KubeletScan {
    pub kubelet: Kubelet,
    /// e.g. `/var/snap/microk8s/current/args/kubelet: --container-runtime-endpoint`.
    pub endpoint_origin: Option<String>,
    pub driver_origin: Option<String>,
    /// The kubelet's args file exists but sets no `--cgroup-driver` and no config file: the
    /// kubelet default (`cgroupfs`) applies.
    pub driver_defaulted: bool,
}

/// The fields of a `KubeletConfiguration` file we read (kubelet.config.k8s.io/v1beta1).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfigFile {
    container_runtime_endpoint: Option<String>,
    cgroup_driver: Option<String>,
}

/// k3s/RKE2 `config.yaml` keys (the CLI flags without dashes).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RancherConfig {
    container_runtime_endpoint: Option<String>,
    node_name: Option<String>,
    #[serde(default)]
    docker: bool,
}

/// Reads the kubelet's configuration for `distro`.
pub fn scan(root: &HostRoot, distro: DistroKind, warnings: &mut Vec<String>) -> KubeletScan {
    let mut out = KubeletScan::default();
    match distro {
        DistroKind::Microk8s | DistroKind::K8sSnap => {
            let snap = if distro == DistroKind::Microk8s {
                "microk8s"
            } else {
                "k8s"
            };
            if let Some(file) = layout::of(distro).kubelet_args {
                args_file(
                    root,
                    file.value,
                    &SnapVars::for_snap(snap),
                    &mut out,
                    warnings,
                );
            }
        }
        DistroKind::K3s | DistroKind::Rke2 => rancher(root, distro, &mut out, warnings),
        DistroKind::K0s => {
            if let Some(socket) = layout::of(distro).sockets.first() {
                out.kubelet.runtime_endpoint = Some(format!("unix://{}", socket.value));
                out.endpoint_origin = Some(format!("k0s default ({})", socket.source));
            }
        }
        DistroKind::Kubeadm | DistroKind::Unknown => kubeadm(root, &mut out, warnings),
    }
    if out.kubelet.node_name.is_none() {
        out.kubelet.node_name = hostname(root);
    }
    out
}

fn args_file(
    root: &HostRoot,
    host_path: &str,
    vars: &SnapVars,
    out: &mut KubeletScan,
    warnings: &mut Vec<String>,
) {
    let text = match fs::read_optional(root, Path::new(host_path)) {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(e) => {
            warnings.push(format!(
                "{e}; the kubelet's runtime endpoint is unknown, so only well-known socket paths are probed (run with sudo if this is a permission problem)"
            ));
            return;
        }
    };
    let args = Args::parse(&text, vars);
    kubelet_flags(&args, host_path, out, warnings);
    if let Some(config) = args.get("config").filter(|v| !v.is_empty()) {
        // Flags win over the config file (kubelet semantics), so fill only what is missing.
        config_file(root, config, out, warnings);
    } else if out.kubelet.cgroup_driver.is_none() {
        out.driver_defaulted = true;
    }
}

/// What the kubelet's flags in `host_path` say: its runtime endpoint, node name and cgroup driver.
fn kubelet_flags(args: &Args, host_path: &str, out: &mut KubeletScan, warnings: &mut Vec<String>) {
    out.kubelet.args_file = Some(PathBuf::from(host_path));
    if let Some(v) = args
        .get("container-runtime-endpoint")
        .filter(|v| !v.is_empty())
    {
        out.kubelet.runtime_endpoint = Some(v.to_string());
        out.endpoint_origin = Some(format!("{host_path}: --container-runtime-endpoint"));
    }
    if let Some(v) = args.get("hostname-override").filter(|v| !v.is_empty()) {
        out.kubelet.node_name = Some(v.to_lowercase());
    }
    if let Some(v) = args.get("cgroup-driver") {
        set_driver(out, v, format!("{host_path}: --cgroup-driver"), warnings);
    }
}

fn set_driver(out: &mut KubeletScan, value: &str, origin: String, warnings: &mut Vec<String>) {
    match parse_driver(value) {
        Some(d) => {
            out.kubelet.cgroup_driver = Some(d);
            out.driver_origin = Some(origin);
        }
        None => warnings.push(format!(
            "{origin} is `{value}`, neither cgroupfs nor systemd; ignored"
        )),
    }
}

pub fn parse_driver(value: &str) -> Option<CgroupDriver> {
    match value.trim() {
        "cgroupfs" => Some(CgroupDriver::Cgroupfs),
        "systemd" => Some(CgroupDriver::Systemd),
        _ => None,
    }
}

fn config_file(
    root: &HostRoot,
    host_path: &str,
    out: &mut KubeletScan,
    warnings: &mut Vec<String>,
) {
    let text = match fs::read_optional(root, Path::new(host_path)) {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(e) => {
            warnings.push(e.to_string());
            return;
        }
    };
    let cfg: KubeletConfigFile = match serde_saphyr::from_str(&text) {
        Ok(cfg) => cfg,
        Err(e) => {
            warnings.push(format!(
                "{host_path} is not a valid KubeletConfiguration: {}",
                e.to_string().lines().next().unwrap_or_default()
            ));
            return;
        }
    };
    if out.kubelet.runtime_endpoint.is_none()
        && let Some(v) = cfg.container_runtime_endpoint.filter(|v| !v.is_empty())
    {
        out.kubelet.runtime_endpoint = Some(v);
        out.endpoint_origin = Some(format!("{host_path}: containerRuntimeEndpoint"));
    }
    if out.kubelet.cgroup_driver.is_none()
        && let Some(v) = cfg.cgroup_driver
    {
        set_driver(out, &v, format!("{host_path}: cgroupDriver"), warnings);
    }
}

/// kubeadm: `/var/lib/kubelet/kubeadm-flags.env` (flags, they win) then `/var/lib/kubelet/config.yaml`.
fn kubeadm(root: &HostRoot, out: &mut KubeletScan, warnings: &mut Vec<String>) {
    const FLAGS_ENV: &str = "/var/lib/kubelet/kubeadm-flags.env";
    match fs::read_optional(root, Path::new(FLAGS_ENV)) {
        Ok(Some(text)) => {
            // KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///... --pod-infra-container-image=..."
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("KUBELET_KUBEADM_ARGS="))
                .unwrap_or_default();
            let args = Args::parse(line, &SnapVars::empty());
            kubelet_flags(&args, FLAGS_ENV, out, warnings);
        }
        Ok(None) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    config_file(root, "/var/lib/kubelet/config.yaml", out, warnings);
}

/// k3s and RKE2 configure the kubelet in-process; their socket is fixed unless the user passed
/// `container-runtime-endpoint` (k3s-io/k3s: pkg/agent/config/config_linux.go).
fn rancher(root: &HostRoot, distro: DistroKind, out: &mut KubeletScan, warnings: &mut Vec<String>) {
    let Some(config) = layout::of(distro).rancher_config else {
        return;
    };
    let config_path = config.value;
    let cfg: RancherConfig = match fs::read_optional(root, Path::new(config_path)) {
        Ok(Some(text)) => serde_saphyr::from_str(&text).unwrap_or_else(|e| {
            warnings.push(format!(
                "{config_path} is not valid YAML: {}",
                e.to_string().lines().next().unwrap_or_default()
            ));
            RancherConfig::default()
        }),
        Ok(None) => RancherConfig::default(),
        Err(e) => {
            warnings.push(e.to_string());
            RancherConfig::default()
        }
    };
    if let Some(v) = cfg.container_runtime_endpoint.filter(|v| !v.is_empty()) {
        out.kubelet.runtime_endpoint = Some(v);
        out.endpoint_origin = Some(format!("{config_path}: container-runtime-endpoint"));
    } else if cfg.docker {
        // `--docker` runs cri-dockerd (k3s-io/k3s: applyCRIDockerdAddress).
        out.kubelet.runtime_endpoint = Some("unix:///run/k3s/cri-dockerd/cri-dockerd.sock".into());
        out.endpoint_origin = Some(format!("{config_path}: docker: true"));
    } else if let Some(socket) = layout::of(distro).sockets.first() {
        out.kubelet.runtime_endpoint = Some(format!("unix://{}", socket.value));
        out.endpoint_origin = Some(format!("{distro} default ({})", socket.source));
    }
    out.kubelet.node_name = cfg.node_name.map(|n| n.to_lowercase());
}

/// The kubelet's default node name is the lower-cased kernel hostname (os.Hostname). Under a
/// host root the root's `/etc/hostname` is preferred, since a test tree is not this kernel.
fn hostname(root: &HostRoot) -> Option<String> {
    let from_root = || {
        fs::read_optional(root, Path::new("/etc/hostname"))
            .ok()
            .flatten()
    };
    // This process's kernel, not a host file: read as procfs shows it, bounded all the same.
    let kernel = || {
        crate::input::read_bounded(Path::new("/proc/sys/kernel/hostname"), fs::MAX_HOST_FILE).ok()
    };
    let text = if root.is_system() {
        kernel().or_else(from_root)
    } else {
        from_root().or_else(kernel)
    }?;
    let name = text.trim().to_lowercase();
    (!name.is_empty()).then_some(name)
}

/// A runtime endpoint as a host path: `unix://` stripped (k3s/RKE2/kubeadm write it,
/// rancher/rke2#11274 and kubernetes/kubernetes: cmd/kubeadm/app/constants/constants_unix.go;
/// MicroK8s does not, canonical/microk8s: microk8s-resources/default-args/kubelet). `None` for
/// another scheme (`tcp://`, `npipe://`).
pub fn endpoint_path(endpoint: &str) -> Option<PathBuf> {
    let endpoint = endpoint.trim();
    let path = match endpoint.strip_prefix("unix://") {
        Some(p) => p,
        None if endpoint.contains("://") => return None,
        None => endpoint,
    };
    let path = Path::new(path);
    path.is_absolute().then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &HostRoot, path: &str, text: &str) {
        let p = root.resolve(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn endpoints_strip_unix_scheme() {
        assert_eq!(
            endpoint_path("unix:///run/k3s/containerd/containerd.sock"),
            Some(PathBuf::from("/run/k3s/containerd/containerd.sock"))
        );
        assert_eq!(
            endpoint_path("/var/snap/microk8s/common/run/containerd.sock"),
            Some(PathBuf::from(
                "/var/snap/microk8s/common/run/containerd.sock"
            ))
        );
        assert_eq!(endpoint_path("tcp://10.0.0.1:1234"), None);
        assert_eq!(endpoint_path("relative.sock"), None);
    }

    #[test]
    fn kubeadm_flags_win_over_config_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        write(
            &root,
            "/var/lib/kubelet/kubeadm-flags.env",
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/crio/crio.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n",
        );
        write(
            &root,
            "/var/lib/kubelet/config.yaml",
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\ncontainerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n",
        );
        let s = scan(&root, DistroKind::Kubeadm, &mut Vec::new());
        assert_eq!(
            s.kubelet.runtime_endpoint.as_deref(),
            Some("unix:///var/run/crio/crio.sock")
        );
        assert_eq!(s.kubelet.cgroup_driver, Some(CgroupDriver::Systemd));
        assert_eq!(
            s.driver_origin.as_deref(),
            Some("/var/lib/kubelet/config.yaml: cgroupDriver")
        );
    }

    #[test]
    fn microk8s_args_without_driver_default_to_cgroupfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        write(
            &root,
            "/var/snap/microk8s/current/args/kubelet",
            "--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n--hostname-override=Node-1\n",
        );
        let s = scan(&root, DistroKind::Microk8s, &mut Vec::new());
        assert!(s.driver_defaulted);
        assert_eq!(s.kubelet.node_name.as_deref(), Some("node-1"));
        assert_eq!(
            s.kubelet.runtime_endpoint.as_deref(),
            Some("/var/snap/microk8s/common/run/containerd.sock")
        );
    }
}
