//! `--distro`: host facts of a distribution's defaults, for rendering manifests for a node you are
//! not on. Nothing is read from this host. Paths and drivers: reference/host-layouts.md §1 and §5.

use std::path::PathBuf;

use crate::host::{
    Cgroup, CgroupDriver, CgroupMode, Distribution, DistroKind, HostFacts, Kubelet, Runtime,
    RuntimeKind,
};

/// The default runtime socket and cgroup driver of a distribution.
struct Defaults {
    socket: &'static str,
    driver: Option<CgroupDriver>,
    /// Where the facts come from, for the report.
    source: &'static str,
}

fn defaults(kind: DistroKind) -> Defaults {
    match kind {
        // canonical/microk8s:microk8s-resources/default-args/containerd `--address
        // ${SNAP_COMMON}/run/containerd.sock`; no --cgroup-driver and no SystemdCgroup, so cgroupfs
        // (host-layouts.md §1.1, §2.2, §5.3).
        DistroKind::Microk8s => Defaults {
            socket: "/var/snap/microk8s/common/run/containerd.sock",
            driver: Some(CgroupDriver::Cgroupfs),
            source: "host-layouts.md §1.1, §5.3 (canonical/microk8s default-args/containerd)",
        },
        // k3s-io/k3s:pkg/agent/config/config_linux.go `Containerd.Address`; systemd driver when
        // started by systemd (pkg/daemons/agent/agent_linux.go; host-layouts.md §3.1).
        DistroKind::K3s => Defaults {
            socket: "/run/k3s/containerd/containerd.sock",
            driver: Some(CgroupDriver::Systemd),
            source: "host-layouts.md §1.1, §3.1 (k3s-io/k3s agent config)",
        },
        // RKE2 reuses the k3s agent (rancher/rke2:pkg/executor/staticpod/spw.go `ContainerdSock`).
        DistroKind::Rke2 => Defaults {
            socket: "/run/k3s/containerd/containerd.sock",
            driver: Some(CgroupDriver::Systemd),
            source: "host-layouts.md §1.1, §3.1 (rancher/rke2 staticpod ContainerdSock)",
        },
        // k0sproject/k0s:pkg/config/cfgvars.go RunDir=/run/k0s as root; k0s sets no cgroup driver
        // (host-layouts.md §3.2), so it is left unknown.
        DistroKind::K0s => Defaults {
            socket: "/run/k0s/containerd.sock",
            driver: None,
            source: "host-layouts.md §1.1, §3.2 (k0sproject/k0s cfgvars RunDir)",
        },
        // canonical/k8s-snap uses containerd's default socket unless containerd-base-dir is set
        // (host-layouts.md §1.1, §3.3); its cgroup driver is not recorded.
        DistroKind::K8sSnap => Defaults {
            socket: "/run/containerd/containerd.sock",
            driver: None,
            source: "host-layouts.md §1.1, §3.3 (canonical/k8s-snap default socket)",
        },
        // kubeadm's DefaultCRISocket (cmd/kubeadm/app/constants/constants_unix.go) and its default
        // cgroupDriver: systemd (kubernetes/kubeadm#3004; host-layouts.md §5.3).
        DistroKind::Kubeadm | DistroKind::Unknown => Defaults {
            socket: "/run/containerd/containerd.sock",
            driver: Some(CgroupDriver::Systemd),
            source: "host-layouts.md §1.1, §5.3 (kubeadm DefaultCRISocket, cgroupDriver systemd)",
        },
    }
}

/// Host facts for a distribution's defaults, as if detected on one of its nodes.
pub fn preset(kind: DistroKind) -> HostFacts {
    let d = defaults(kind);
    HostFacts {
        distribution: Distribution {
            kind,
            version: None,
            revision: None,
            confinement: None,
            worker_only: false,
            evidence: vec![format!("--distro {kind}: {}", d.source)],
        },
        runtime: Runtime {
            kind: RuntimeKind::Containerd,
            socket: Some(PathBuf::from(d.socket)),
            namespace: "k8s.io".to_string(),
            version: None,
            verified: false,
            ambiguous: false,
            candidates: Vec::new(),
        },
        cgroup: Cgroup {
            mode: CgroupMode::Unknown,
            driver: d.driver,
            driver_source: d.driver.map(|_| format!("--distro {kind}: {}", d.source)),
        },
        kubelet: Kubelet {
            runtime_endpoint: Some(format!("unix://{}", d.socket)),
            cgroup_driver: d.driver,
            ..Kubelet::default()
        },
        kubeconfig: None,
        warnings: Vec::new(),
    }
}
