//! Cgroup mode (v1, hybrid, v2) and the kubelet's cgroup driver.
//!
//! The mode is decided as runc decides it: opencontainers/runc libcontainer/cgroups/utils.go
//! (now opencontainers/cgroups: utils.go) `IsCgroup2UnifiedMode` is `statfs("/sys/fs/cgroup")`
//! being `CGROUP2_SUPER_MAGIC`; `IsCgroup2HybridMode` is the same test on
//! `/sys/fs/cgroup/unified`. One difference: where runc assumes v1 when the statfs fails, we say
//! `unknown` (like containerd/cgroups' `Unavailable`), and we also want a v1 root to be a tmpfs or
//! a cgroup v1 mount, so a host root without a mounted `/sys` does not read as v1.

use std::path::Path;

use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};

use super::kubelet::KubeletScan;
use super::{Cgroup, CgroupDriver, CgroupMode, DistroKind, HostRoot, fs};

const UNIFIED_MOUNTPOINT: &str = "/sys/fs/cgroup";
const HYBRID_MOUNTPOINT: &str = "/sys/fs/cgroup/unified";

/// The cgroup mode of this host root, and a note when it could not be told.
pub fn mode(root: &HostRoot) -> (CgroupMode, Option<String>) {
    let top = match fs::resolve(root, Path::new(UNIFIED_MOUNTPOINT)) {
        Ok(top) => top,
        Err(e) => return (CgroupMode::Unknown, Some(e.to_string())),
    };
    let st = match statfs(&top) {
        Ok(st) => st,
        Err(e) => {
            return (
                CgroupMode::Unknown,
                Some(format!("cannot statfs {UNIFIED_MOUNTPOINT}: {e}")),
            );
        }
    };
    let fs_type = st.filesystem_type();
    if fs_type == CGROUP2_SUPER_MAGIC {
        return (CgroupMode::V2, None);
    }
    if fs_type != TMPFS_MAGIC && fs_type != CGROUP_SUPER_MAGIC {
        return (
            CgroupMode::Unknown,
            Some(format!(
                "{UNIFIED_MOUNTPOINT} is neither a cgroup2 mount nor a tmpfs of v1 hierarchies (filesystem magic {:#x}); is /sys mounted under the host root?",
                fs_type.0
            )),
        );
    }
    let Ok(unified) = fs::resolve(root, Path::new(HYBRID_MOUNTPOINT)) else {
        return (CgroupMode::V1, None);
    };
    match statfs(&unified) {
        Ok(st) if st.filesystem_type() == CGROUP2_SUPER_MAGIC => (CgroupMode::Hybrid, None),
        _ => (CgroupMode::V1, None),
    }
}

/// Mode and driver. The driver comes from the kubelet's own configuration, then the API server's
/// configz, then the pod cgroups that exist (`kubepods.slice` is the systemd driver's,
/// `kubepods` cgroupfs': rancher/rke2#11274, k3s-io/k3s#2831), then MicroK8s' default (no
/// `--cgroup-driver` in canonical/microk8s: microk8s-resources/default-args/kubelet, so the
/// kubelet default `cgroupfs`).
pub fn detect(
    root: &HostRoot,
    distro: DistroKind,
    kubelet: &KubeletScan,
    configz: Option<CgroupDriver>,
    warnings: &mut Vec<String>,
) -> Cgroup {
    let (mode, note) = mode(root);
    if let Some(note) = note {
        warnings.push(note);
    }
    let (driver, source) = if let Some(d) = kubelet.kubelet.cgroup_driver {
        (Some(d), kubelet.driver_origin.clone())
    } else if let Some(d) = configz {
        (
            Some(d),
            Some("API server: nodes/NAME/proxy/configz cgroupDriver".into()),
        )
    } else if let Some((d, path)) = from_pod_cgroups(root, mode) {
        (Some(d), Some(format!("{path} exists")))
    } else if distro == DistroKind::Microk8s && kubelet.driver_defaulted {
        (
            Some(CgroupDriver::Cgroupfs),
            Some("kubelet default: MicroK8s sets no --cgroup-driver".into()),
        )
    } else {
        (None, None)
    };
    Cgroup {
        mode,
        driver,
        driver_source: source,
    }
}

fn from_pod_cgroups(root: &HostRoot, mode: CgroupMode) -> Option<(CgroupDriver, String)> {
    let bases: &[&str] = match mode {
        CgroupMode::V2 => &["/sys/fs/cgroup"],
        _ => &[
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ],
    };
    for base in bases {
        for (name, driver) in [
            ("kubepods.slice", CgroupDriver::Systemd),
            ("kubepods", CgroupDriver::Cgroupfs),
        ] {
            let path = format!("{base}/{name}");
            if fs::is_dir(root, Path::new(&path)) {
                return Some((driver, path));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_directory_is_unknown_not_v1() {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        std::fs::create_dir_all(dir.path().join("sys/fs/cgroup")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        // /tmp is not a tmpfs on every machine; when it is, the answer is v1 like runc's.
        let (m, _) = mode(&root);
        assert!(matches!(m, CgroupMode::Unknown | CgroupMode::V1), "{m:?}");
    }

    #[test]
    fn missing_sys_is_unknown_with_a_note() {
        let (_dir, root) = HostRoot::temp();
        let (m, note) = mode(&root);
        assert_eq!(m, CgroupMode::Unknown);
        assert!(note.unwrap().contains("/sys/fs/cgroup"));
    }

    #[test]
    fn kubepods_slice_means_systemd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/fs/cgroup/memory/kubepods.slice")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let c = detect(
            &root,
            DistroKind::Unknown,
            &KubeletScan::default(),
            None,
            &mut Vec::new(),
        );
        assert_eq!(c.driver, Some(CgroupDriver::Systemd));
    }
}
