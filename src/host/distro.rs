//! Which Kubernetes distribution runs here, from the files each one leaves (`host::layout` lists
//! them with their public sources).

use std::path::Path;

use serde::Deserialize;

use super::fs;
use super::{Confinement, Distribution, DistroKind, HostRoot, layout};

/// The subset of a snap's `meta/snap.yaml` we read.
#[derive(Debug, Deserialize)]
struct SnapYaml {
    version: Option<String>,
    confinement: Option<String>,
}

/// Detects the distribution. Problems (an unreadable or malformed file) become warnings: the
/// socket probe still decides the runtime.
pub fn detect(root: &HostRoot, warnings: &mut Vec<String>) -> Distribution {
    let mut found: Vec<Distribution> = Vec::new();
    if let Some(d) = snap(root, DistroKind::Microk8s, "microk8s", warnings) {
        found.push(d);
    }
    if let Some(d) = snap(root, DistroKind::K8sSnap, "k8s", warnings) {
        found.push(d);
    }
    // Config and data directories ([`layout`]); RKE2 before k3s, whose files it shares.
    for kind in [DistroKind::Rke2, DistroKind::K3s, DistroKind::K0s] {
        let evidence: Vec<String> = layout::of(kind)
            .markers
            .iter()
            .filter(|m| present(root, m, warnings))
            .map(|m| m.to_string())
            .collect();
        if !evidence.is_empty() {
            found.push(plain(kind, evidence));
        }
    }
    let kubeadm: Vec<String> = layout::of(DistroKind::Kubeadm)
        .markers
        .iter()
        .filter(|m| present(root, m, warnings))
        .map(|m| m.to_string())
        .collect();
    // k8s-snap also writes /etc/kubernetes/kubelet.conf: kubeadm only when nothing else matched.
    if found.is_empty() && !kubeadm.is_empty() {
        found.push(plain(DistroKind::Kubeadm, kubeadm));
    }
    let mut found = found.into_iter();
    let Some(first) = found.next() else {
        return plain(DistroKind::Unknown, Vec::new());
    };
    let others: Vec<String> = found.map(|d| d.kind.to_string()).collect();
    if !others.is_empty() {
        warnings.push(format!(
            "files of several distributions are present: {} (chosen) and {}; the socket probe decides which runtime runs the pods",
            first.kind,
            others.join(", ")
        ));
    }
    first
}

/// Does this marker exist? A path that cannot be resolved inside the root (a link loop) is a
/// warning naming it, and counts as absent.
fn present(root: &HostRoot, host_path: &str, warnings: &mut Vec<String>) -> bool {
    match fs::exists(root, Path::new(host_path)) {
        Ok(found) => found,
        Err(e) => {
            let text = e.to_string();
            if !warnings.contains(&text) {
                warnings.push(text);
            }
            false
        }
    }
}

/// A distribution known only by its kind and the evidence for it.
pub fn plain(kind: DistroKind, evidence: Vec<String>) -> Distribution {
    Distribution {
        kind,
        version: None,
        revision: None,
        confinement: None,
        worker_only: false,
        evidence,
    }
}

/// A snap-packaged distribution: version and confinement from `meta/snap.yaml`, revision from the
/// `current` symlink.
fn snap(
    root: &HostRoot,
    kind: DistroKind,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<Distribution> {
    let snap_dir = format!("/snap/{name}/current");
    let data_dir = format!("/var/snap/{name}/current");
    let common_dir = format!("/var/snap/{name}/common");
    let evidence: Vec<String> = [&snap_dir, &data_dir, &common_dir]
        .into_iter()
        .filter(|p| present(root, p, warnings))
        .cloned()
        .collect();
    if evidence.is_empty() {
        return None;
    }
    let mut d = plain(kind, evidence);
    d.revision = fs::link_name(root, Path::new(&snap_dir))
        .or_else(|| fs::link_name(root, Path::new(&data_dir)));
    let yaml_path = format!("{snap_dir}/meta/snap.yaml");
    match fs::read_optional(root, Path::new(&yaml_path)) {
        Ok(Some(text)) => match serde_saphyr::from_str::<SnapYaml>(&text) {
            Ok(meta) => {
                d.version = meta.version;
                d.confinement = Some(confinement(meta.confinement.as_deref()));
                d.evidence.push(yaml_path);
            }
            Err(e) => warnings.push(format!(
                "{yaml_path} is not valid snap metadata ({}); {kind} version and confinement are unknown (a snap's files are read-only: check that --host-root points at the host)",
                crate::error::first_line(&e)
            )),
        },
        Ok(None) => {}
        Err(e) => warnings.push(format!(
            "{e}; {kind} version and confinement are unknown (run with sudo?)"
        )),
    }
    if kind == DistroKind::Microk8s {
        // canonical/microk8s: run-kubelite-with-args: `clustered.lock` marks a worker-only node.
        let lock = format!("{data_dir}/var/lock/clustered.lock");
        if present(root, &lock, warnings) {
            d.worker_only = true;
            d.evidence.push(lock);
        }
    }
    Some(d)
}

/// snapd's default confinement is strict when `snap.yaml` says nothing.
fn confinement(text: Option<&str>) -> Confinement {
    match text.map(str::trim) {
        Some("classic") => Confinement::Classic,
        Some("devmode") => Confinement::Devmode,
        _ => Confinement::Strict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microk8s_strict_with_revision() {
        let (_d, root) = HostRoot::temp();
        std::fs::create_dir_all(root.resolve("/snap/microk8s/8148/meta")).unwrap();
        std::os::unix::fs::symlink("8148", root.resolve("/snap/microk8s/current")).unwrap();
        root.write(
            "/snap/microk8s/8148/meta/snap.yaml",
            "name: microk8s\nversion: v1.35.2\nconfinement: strict\n",
        );
        let mut w = Vec::new();
        let d = detect(&root, &mut w);
        assert_eq!(d.kind, DistroKind::Microk8s);
        assert_eq!(d.version.as_deref(), Some("v1.35.2"));
        assert_eq!(d.revision.as_deref(), Some("8148"));
        assert_eq!(d.confinement, Some(Confinement::Strict));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn clustered_lock_marks_a_worker_only_node() {
        let (_d, root) = HostRoot::temp();
        root.write("/var/snap/microk8s/current/var/lock/clustered.lock", "");
        let d = detect(&root, &mut Vec::new());
        assert_eq!(d.kind, DistroKind::Microk8s);
        assert!(d.worker_only);
    }

    #[test]
    fn malformed_snap_yaml_is_a_warning_naming_the_file() {
        let (_d, root) = HostRoot::temp();
        root.write(
            "/snap/microk8s/current/meta/snap.yaml",
            "name: [microk8s\nversion: :\n",
        );
        let mut w = Vec::new();
        let d = detect(&root, &mut w);
        assert_eq!(d.kind, DistroKind::Microk8s);
        assert_eq!(d.version, None);
        assert!(
            w.iter()
                .any(|x| x.contains("/snap/microk8s/current/meta/snap.yaml")),
            "{w:?}"
        );
    }

    #[test]
    fn k3s_rke2_k0s_kubeadm_unknown() {
        for (marker, kind) in [
            ("/etc/rancher/k3s/k3s.yaml", DistroKind::K3s),
            ("/etc/rancher/rke2/rke2.yaml", DistroKind::Rke2),
            ("/var/lib/k0s/pki/admin.conf", DistroKind::K0s),
            ("/var/lib/kubelet/kubeadm-flags.env", DistroKind::Kubeadm),
            ("/etc/hostname", DistroKind::Unknown),
        ] {
            let (_d, root) = HostRoot::temp();
            root.write(marker, "x");
            assert_eq!(detect(&root, &mut Vec::new()).kind, kind, "{marker}");
        }
    }
}
