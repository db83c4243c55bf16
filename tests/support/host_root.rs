//! Temporary host roots with each distribution's files (host-layouts §1-3), short enough for a
//! containerd socket inside (at most 53 characters, test-recipes §6).

use std::path::{Path, PathBuf};

pub const MICROK8S_SOCKET: &str = "/var/snap/microk8s/common/run/containerd.sock";
pub const K3S_SOCKET: &str = "/run/k3s/containerd/containerd.sock";
pub const K0S_SOCKET: &str = "/run/k0s/containerd.sock";
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// canonical/microk8s: microk8s-resources/default-args/kubelet (cipher suites left out).
pub const MICROK8S_KUBELET_ARGS: &str = "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config
--cert-dir=${SNAP_DATA}/certs
--client-ca-file=${SNAP_DATA}/certs/ca.crt
--anonymous-auth=false
--root-dir=${SNAP_COMMON}/var/lib/kubelet
--fail-swap-on=false
--eviction-hard=\"memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi\"
--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock
--containerd=${SNAP_COMMON}/run/containerd.sock
--node-labels=\"microk8s.io/cluster=true,node.kubernetes.io/microk8s-controlplane=microk8s-controlplane\"
--authentication-token-webhook=true
--read-only-port=0
--serialize-image-pulls=false
";

/// canonical/microk8s: microk8s-resources/default-args/containerd.
pub const MICROK8S_CONTAINERD_ARGS: &str = "--config ${SNAP_DATA}/args/containerd.toml
--root ${SNAP_COMMON}/var/lib/containerd
--state ${SNAP_COMMON}/run/containerd
--address ${SNAP_COMMON}/run/containerd.sock
";

/// A temporary host root under /tmp (`/tmp/csXXXXXX`, 13 characters).
pub struct HostRootDir {
    dir: tempfile::TempDir,
}

impl Default for HostRootDir {
    fn default() -> Self {
        Self::new()
    }
}

impl HostRootDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cs")
            .tempdir_in("/tmp")
            .expect("temporary host root");
        assert!(dir.path().as_os_str().len() <= 53);
        HostRootDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `/etc/x` → `<root>/etc/x`.
    pub fn local(&self, host_path: &str) -> PathBuf {
        self.dir.path().join(host_path.trim_start_matches('/'))
    }

    pub fn mkdir(&self, host_path: &str) -> &Self {
        std::fs::create_dir_all(self.local(host_path)).expect("mkdir in host root");
        self
    }

    pub fn write(&self, host_path: &str, text: &str) -> &Self {
        let p = self.local(host_path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir in host root");
        std::fs::write(&p, text).expect("write in host root");
        self
    }

    /// A symlink at `host_path` pointing to `target` (written as given).
    pub fn symlink(&self, target: &str, host_path: &str) -> &Self {
        let p = self.local(host_path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir in host root");
        std::os::unix::fs::symlink(target, &p).expect("symlink in host root");
        self
    }

    /// A FIFO (named pipe) at `host_path`, replacing what was there: nothing ever writes to it,
    /// so opening it for reading blocks and reading it never ends.
    pub fn fifo(&self, host_path: &str) -> &Self {
        let p = self.local(host_path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir in host root");
        let _ = std::fs::remove_file(&p);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644))
            .expect("mkfifo in host root");
        self
    }

    /// A sparse file of `len` bytes (zeros) at `host_path`, replacing what was there: costs no
    /// disk, but reads as `len` bytes.
    pub fn sparse(&self, host_path: &str, len: u64) -> &Self {
        let p = self.local(host_path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir in host root");
        let _ = std::fs::remove_file(&p);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(len))
            .expect("sparse file in host root");
        self
    }

    /// MicroK8s as the snap lays it out: `/snap/microk8s/<rev>/meta/snap.yaml`, `current` symlinks,
    /// the default args files and the admin kubeconfig.
    pub fn microk8s(&self, version: &str, confinement: &str, revision: &str) -> &Self {
        self.write(
            &format!("/snap/microk8s/{revision}/meta/snap.yaml"),
            &format!(
                "name: microk8s\nversion: {version}\nsummary: Kubernetes for workstations and appliances\nconfinement: {confinement}\nbase: core22\napps:\n  daemon-kubelite:\n    command: run-kubelite-with-args\n"
            ),
        );
        self.symlink(revision, "/snap/microk8s/current");
        self.mkdir(&format!("/var/snap/microk8s/{revision}/args"));
        self.symlink(revision, "/var/snap/microk8s/current");
        self.mkdir("/var/snap/microk8s/common/run");
        self.write(
            "/var/snap/microk8s/current/args/kubelet",
            MICROK8S_KUBELET_ARGS,
        );
        self.write(
            "/var/snap/microk8s/current/args/containerd",
            MICROK8S_CONTAINERD_ARGS,
        );
        self.write(
            "/var/snap/microk8s/current/credentials/client.config",
            "apiVersion: v1\nkind: Config\nclusters: []\n",
        );
        self
    }

    /// k3s: data dir, config dir and admin kubeconfig.
    pub fn k3s(&self) -> &Self {
        self.mkdir("/var/lib/rancher/k3s/agent");
        self.write(
            "/etc/rancher/k3s/k3s.yaml",
            "apiVersion: v1\nkind: Config\n",
        );
        self.mkdir("/run/k3s/containerd")
    }

    /// RKE2: data dir, config dir and admin kubeconfig (its containerd socket is k3s').
    pub fn rke2(&self) -> &Self {
        self.mkdir("/var/lib/rancher/rke2/agent");
        self.write(
            "/etc/rancher/rke2/rke2.yaml",
            "apiVersion: v1\nkind: Config\n",
        );
        self.mkdir("/run/k3s/containerd")
    }

    /// Canonical Kubernetes (k8s-snap): snap.yaml, `current` symlink and its kubelet args file
    /// with `endpoint` (older releases: /var/snap/k8s/common/run/containerd.sock).
    pub fn k8s_snap(&self, version: &str, endpoint: &str) -> &Self {
        self.write(
            "/snap/k8s/3000/meta/snap.yaml",
            &format!("name: k8s\nversion: {version}\nconfinement: classic\n"),
        );
        self.symlink("3000", "/snap/k8s/current");
        self.write(
            "/var/snap/k8s/common/args/kubelet",
            &format!("--container-runtime-endpoint={endpoint}\n--root-dir=/var/lib/kubelet\n"),
        );
        self.write(
            "/etc/kubernetes/admin.conf",
            "apiVersion: v1\nkind: Config\n",
        )
    }

    /// k0s: data dir and admin kubeconfig.
    pub fn k0s(&self) -> &Self {
        self.write(
            "/var/lib/k0s/pki/admin.conf",
            "apiVersion: v1\nkind: Config\n",
        );
        self.mkdir("/run/k0s")
    }

    /// kubeadm: kubeadm-flags.env with the endpoint, config.yaml with the driver.
    pub fn kubeadm(&self, endpoint: &str, driver: &str) -> &Self {
        self.write(
            "/var/lib/kubelet/kubeadm-flags.env",
            &format!("KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint={endpoint} --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n"),
        );
        self.write(
            "/var/lib/kubelet/config.yaml",
            &format!("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: {driver}\n"),
        );
        self.write(
            "/etc/kubernetes/admin.conf",
            "apiVersion: v1\nkind: Config\n",
        )
    }
}
