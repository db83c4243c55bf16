//! Where each distribution keeps what detection reads: one table, one row per distribution, each
//! fact next to the public source it comes from. Detection (`distro`, `kubelet`, `runtime`,
//! `kubeconfig`) and the `--distro` presets (`plan::preset`) all read this table, so a path is
//! written once.

use super::{CgroupDriver, DistroKind};

/// A value and where it comes from (a public repository path or document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cited {
    pub value: &'static str,
    pub source: &'static str,
}

const fn cited(value: &'static str, source: &'static str) -> Cited {
    Cited { value, source }
}

/// One distribution's layout on a node.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub kind: DistroKind,
    /// Files or directories whose presence marks the distribution (snaps are recognised by their
    /// `meta/snap.yaml` instead, in `distro`).
    pub markers: &'static [&'static str],
    /// The containerd socket of a default installation, most likely first.
    pub sockets: &'static [Cited],
    /// The kubelet's args file (snaps), parsed as kubelite parses it.
    pub kubelet_args: Option<Cited>,
    /// containerd's args file (MicroK8s `--address`).
    pub containerd_args: Option<Cited>,
    /// Rancher's `config.yaml` (`container-runtime-endpoint`, `docker`).
    pub rancher_config: Option<Cited>,
    /// The admin kubeconfig a root user on the node may read.
    pub admin_kubeconfig: Cited,
    /// The kubelet's cgroup driver when the distribution sets it.
    pub cgroup_driver: Option<(CgroupDriver, &'static str)>,
}

/// containerd's own default socket (containerd/containerd: defaults/defaults_unix.go
/// `DefaultAddress`), also kubeadm's `DefaultCRISocket`.
pub const CONTAINERD_DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

const MICROK8S: Layout = Layout {
    kind: DistroKind::Microk8s,
    markers: &[],
    sockets: &[cited(
        "/var/snap/microk8s/common/run/containerd.sock",
        "canonical/microk8s: microk8s-resources/default-args/containerd (--address ${SNAP_COMMON}/run/containerd.sock)",
    )],
    kubelet_args: Some(cited(
        "/var/snap/microk8s/current/args/kubelet",
        "canonical/microk8s: microk8s-resources/default-args/kubelet",
    )),
    containerd_args: Some(cited(
        "/var/snap/microk8s/current/args/containerd",
        "canonical/microk8s: microk8s-resources/default-args/containerd",
    )),
    rancher_config: None,
    admin_kubeconfig: cited(
        "/var/snap/microk8s/current/credentials/client.config",
        "canonical/microk8s: microk8s-resources/actions/common/utils.sh (kubectl-env: KUBECONFIG=$SNAP_DATA/credentials/client.config)",
    ),
    // No --cgroup-driver in the kubelet args and no SystemdCgroup in containerd's template.
    cgroup_driver: Some((
        CgroupDriver::Cgroupfs,
        "canonical/microk8s: default-args/kubelet sets no --cgroup-driver (kubelet default cgroupfs)",
    )),
};

const K3S: Layout = Layout {
    kind: DistroKind::K3s,
    markers: &["/etc/rancher/k3s", "/var/lib/rancher/k3s"],
    sockets: &[cited(
        "/run/k3s/containerd/containerd.sock",
        "k3s-io/k3s: pkg/agent/config/config_linux.go (Containerd.Address)",
    )],
    kubelet_args: None,
    containerd_args: None,
    rancher_config: Some(cited(
        "/etc/rancher/k3s/config.yaml",
        "docs.k3s.io: Configuration File",
    )),
    admin_kubeconfig: cited(
        "/etc/rancher/k3s/k3s.yaml",
        "docs.k3s.io: Cluster Access (/etc/rancher/k3s/k3s.yaml)",
    ),
    cgroup_driver: Some((
        CgroupDriver::Systemd,
        "k3s-io/k3s: pkg/daemons/agent/agent_linux.go (systemd driver under systemd)",
    )),
};

const RKE2: Layout = Layout {
    kind: DistroKind::Rke2,
    markers: &["/etc/rancher/rke2", "/var/lib/rancher/rke2"],
    sockets: &[cited(
        "/run/k3s/containerd/containerd.sock",
        "rancher/rke2: pkg/executor/staticpod/spw.go (ContainerdSock, the k3s agent's)",
    )],
    kubelet_args: None,
    containerd_args: None,
    rancher_config: Some(cited(
        "/etc/rancher/rke2/config.yaml",
        "docs.rke2.io: Configuration Options",
    )),
    admin_kubeconfig: cited(
        "/etc/rancher/rke2/rke2.yaml",
        "docs.rke2.io: Cluster Access (/etc/rancher/rke2/rke2.yaml)",
    ),
    cgroup_driver: Some((
        CgroupDriver::Systemd,
        "rancher/rke2 runs the k3s agent (pkg/daemons/agent/agent_linux.go)",
    )),
};

const K0S: Layout = Layout {
    kind: DistroKind::K0s,
    // k0sproject/k0s: pkg/constant/constant_unix.go (DataDirDefault), /etc/k0s.
    markers: &["/var/lib/k0s", "/etc/k0s"],
    sockets: &[cited(
        "/run/k0s/containerd.sock",
        "k0sproject/k0s: pkg/config/cfgvars.go (RunDir=/run/k0s as root)",
    )],
    kubelet_args: None,
    containerd_args: None,
    rancher_config: None,
    admin_kubeconfig: cited(
        "/var/lib/k0s/pki/admin.conf",
        "docs.k0sproject.io: k0s kubeconfig admin (pki/admin.conf)",
    ),
    cgroup_driver: None,
};

const K8S_SNAP: Layout = Layout {
    kind: DistroKind::K8sSnap,
    markers: &[],
    sockets: &[
        cited(
            CONTAINERD_DEFAULT_SOCKET,
            "canonical/k8s-snap: containerd's default socket unless containerd-base-dir is set",
        ),
        cited(
            "/var/snap/k8s/common/run/containerd.sock",
            "canonical/k8s-snap: k8s/lib.sh (older releases)",
        ),
    ],
    kubelet_args: Some(cited(
        "/var/snap/k8s/common/args/kubelet",
        "canonical/k8s-snap: k8s/lib.sh (args in $SNAP_COMMON/args)",
    )),
    containerd_args: None,
    rancher_config: None,
    admin_kubeconfig: cited(
        "/etc/kubernetes/admin.conf",
        "canonical/k8s-snap: src/k8s/pkg/snap/snap.go (KubernetesConfigDir /etc/kubernetes)",
    ),
    cgroup_driver: None,
};

const KUBEADM: Layout = Layout {
    kind: DistroKind::Kubeadm,
    // kubernetes/kubernetes: cmd/kubeadm/app/constants (KubeletEnvFileName, manifests, kubelet.conf).
    markers: &[
        "/var/lib/kubelet/kubeadm-flags.env",
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        "/etc/kubernetes/kubelet.conf",
    ],
    sockets: &[cited(
        CONTAINERD_DEFAULT_SOCKET,
        "kubernetes/kubernetes: cmd/kubeadm/app/constants/constants_unix.go (DefaultCRISocket)",
    )],
    kubelet_args: None,
    containerd_args: None,
    rancher_config: None,
    admin_kubeconfig: cited(
        "/etc/kubernetes/admin.conf",
        "kubernetes/kubernetes: cmd/kubeadm/app/constants (AdminKubeConfigFileName)",
    ),
    cgroup_driver: Some((
        CgroupDriver::Systemd,
        "kubernetes/kubeadm#3004 (kubeadm defaults cgroupDriver to systemd since v1.22)",
    )),
};

/// Every layout, most specific first: the order detection tries sockets and kubeconfigs in.
pub const ALL: &[Layout] = &[MICROK8S, K3S, RKE2, K0S, K8S_SNAP, KUBEADM];

/// The layout of `kind`; an unknown distribution is treated as kubeadm (plain containerd).
pub fn of(kind: DistroKind) -> &'static Layout {
    ALL.iter().find(|l| l.kind == kind).unwrap_or(&KUBEADM)
}

/// Every distribution's default sockets, most specific first, without repeats (containerd's
/// default comes last: kubeadm, k8s-snap and Docker's containerd all use it).
pub fn well_known_sockets() -> Vec<Cited> {
    let mut out: Vec<Cited> = Vec::new();
    let mut default = None;
    for socket in ALL.iter().flat_map(|l| l.sockets.iter()) {
        if socket.value == CONTAINERD_DEFAULT_SOCKET {
            default.get_or_insert(*socket);
        } else if !out.iter().any(|s| s.value == socket.value) {
            out.push(*socket);
        }
    }
    out.extend(default);
    out
}

/// The admin kubeconfigs to try for `kind`: its own, or every distribution's when unknown.
pub fn admin_kubeconfigs(kind: DistroKind) -> Vec<&'static str> {
    if kind != DistroKind::Unknown {
        return vec![of(kind).admin_kubeconfig.value];
    }
    let mut out: Vec<&'static str> = Vec::new();
    // kubeadm's first: a node of unknown kind most likely follows kubeadm's conventions.
    for l in std::iter::once(of(DistroKind::Kubeadm)).chain(ALL.iter()) {
        if !out.contains(&l.admin_kubeconfig.value) {
            out.push(l.admin_kubeconfig.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_row_of_its_own_kind() {
        for kind in [
            DistroKind::Microk8s,
            DistroKind::K3s,
            DistroKind::Rke2,
            DistroKind::K0s,
            DistroKind::K8sSnap,
            DistroKind::Kubeadm,
        ] {
            assert_eq!(of(kind).kind, kind);
            assert!(!of(kind).sockets.is_empty());
            assert!(of(kind).sockets.iter().all(|s| s.value.starts_with('/')));
        }
        assert_eq!(of(DistroKind::Unknown).kind, DistroKind::Kubeadm);
    }

    #[test]
    fn well_known_sockets_are_unique_with_containerds_default_last() {
        let sockets = well_known_sockets();
        let values: Vec<&str> = sockets.iter().map(|s| s.value).collect();
        assert_eq!(
            values,
            [
                "/var/snap/microk8s/common/run/containerd.sock",
                "/run/k3s/containerd/containerd.sock",
                "/run/k0s/containerd.sock",
                "/var/snap/k8s/common/run/containerd.sock",
                CONTAINERD_DEFAULT_SOCKET,
            ]
        );
    }

    #[test]
    fn an_unknown_node_tries_every_admin_kubeconfig_kubeadms_first() {
        let paths = admin_kubeconfigs(DistroKind::Unknown);
        assert_eq!(paths[0], "/etc/kubernetes/admin.conf");
        assert_eq!(paths.len(), 5);
        assert_eq!(
            admin_kubeconfigs(DistroKind::K3s),
            ["/etc/rancher/k3s/k3s.yaml"]
        );
    }
}
