//! Read-only facts about this machine. Every path is read through [`HostRoot`], so tests run on
//! a temporary tree and the strictly confined snap reads `/var/lib/snapd/hostfs`.
//!
//! This module never touches the network or the terminal (the containerd probe talks to a unix
//! socket on this host, which is a host fact).

pub mod args_file;
pub mod cgroup;
pub mod containerd;
pub mod distro;
pub mod fs;
pub mod isolated;
pub mod kubeconfig;
pub mod kubelet;
pub mod layout;
pub mod root;
pub mod runtime;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use root::HostRoot;

/// Which Kubernetes distribution runs on this node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum DistroKind {
    Microk8s,
    K3s,
    Rke2,
    K0s,
    K8sSnap,
    Kubeadm,
    Unknown,
}

impl DistroKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DistroKind::Microk8s => "microk8s",
            DistroKind::K3s => "k3s",
            DistroKind::Rke2 => "rke2",
            DistroKind::K0s => "k0s",
            DistroKind::K8sSnap => "k8s-snap",
            DistroKind::Kubeadm => "kubeadm",
            DistroKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for DistroKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Snap confinement of a snap-packaged distribution (MicroK8s, k8s-snap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confinement {
    Classic,
    Strict,
    Devmode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub kind: DistroKind,
    /// e.g. `v1.35.2` for MicroK8s (the snap version is the Kubernetes version).
    pub version: Option<String>,
    /// Snap revision, from the `current` symlink.
    pub revision: Option<String>,
    pub confinement: Option<Confinement>,
    /// MicroK8s worker-only node (`var/lock/clustered.lock`): no control plane runs here.
    pub worker_only: bool,
    /// Files that told us, for the human report.
    pub evidence: Vec<String>,
}

/// The container runtime that runs the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    Containerd,
    CriO,
    Docker,
    Unknown,
}

/// Where a socket candidate came from, in order of authority: the user's flag, the kubelet's
/// configuration, the runtime's configuration, well-known paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateSource {
    /// `--containerd-socket`.
    UserFlag,
    /// The kubelet's own configuration (args file, config.yaml, kubeadm-flags.env).
    KubeletConfig,
    /// The API server's `nodes/NAME/proxy/configz`.
    Configz,
    /// The runtime's own configuration (MicroK8s `args/containerd --address`).
    RuntimeConfig,
    /// A well-known path of some distribution.
    WellKnown,
}

/// What probing one socket candidate found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub exists: bool,
    pub is_socket: bool,
    pub connects: bool,
    /// containerd's `Version` RPC answer.
    pub version: Option<String>,
    /// Containers in the probed namespace labelled `io.kubernetes.pod.name`.
    pub kubernetes_containers: Option<usize>,
    /// containerd namespaces that exist (e.g. `["moby"]` on Docker's containerd).
    pub namespaces: Option<Vec<String>>,
    /// Why the probe stopped, if it did.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketCandidate {
    /// Host path (without the host-root prefix).
    pub path: PathBuf,
    pub source: CandidateSource,
    /// Human-readable origin, e.g. `/var/snap/microk8s/current/args/kubelet: --container-runtime-endpoint`.
    pub origin: String,
    pub runtime: RuntimeKind,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub kind: RuntimeKind,
    /// The chosen socket, as a host path; `None` when nothing verified or the choice is ambiguous.
    pub socket: Option<PathBuf>,
    /// containerd namespace holding the kubelet's containers (`k8s.io`).
    pub namespace: String,
    pub version: Option<String>,
    /// The chosen socket answered `Version` and (unless told otherwise) holds kubelet containers.
    pub verified: bool,
    /// Several live sockets and nothing decides between them.
    pub ambiguous: bool,
    pub candidates: Vec<SocketCandidate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    V1,
    Hybrid,
    V2,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub mode: CgroupMode,
    pub driver: Option<CgroupDriver>,
    /// What decided the driver (kubelet args, configz, kubepods.slice present, ...).
    pub driver_source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubelet {
    pub node_name: Option<String>,
    pub args_file: Option<PathBuf>,
    /// As configured (may carry `unix://`).
    pub runtime_endpoint: Option<String>,
    pub cgroup_driver: Option<CgroupDriver>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeconfigSource {
    /// `--kubeconfig`.
    Flag,
    /// `KUBECONFIG`.
    Env,
    /// `~/.kube/config`.
    Home,
    /// The distribution's admin kubeconfig (e.g. MicroK8s `credentials/client.config`).
    Distribution,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeconfigFacts {
    /// Host path as given/found (not prefixed with the host root).
    pub path: PathBuf,
    /// The path actually opened (host root applied where it should be).
    #[serde(skip)]
    pub resolved: PathBuf,
    pub source: KubeconfigSource,
    /// Readable by us? (`false` with a hint when permission is denied.)
    pub readable: bool,
    pub hint: Option<String>,
    /// The other existing files of a `KUBECONFIG` list, merged after `path` as kubectl merges
    /// them (the first file to set a value wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<PathBuf>,
}

/// Everything `detect` learns from the host. Plain data: `plan` consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub distribution: Distribution,
    pub runtime: Runtime,
    pub cgroup: Cgroup,
    pub kubelet: Kubelet,
    pub kubeconfig: Option<KubeconfigFacts>,
    pub warnings: Vec<String>,
}

/// What the API server said about this node's kubelet (`nodes/NAME/proxy/configz`), used as
/// hints by detection. `runtime_endpoint` is as reported (may carry `unix://`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigzHints {
    pub runtime_endpoint: Option<String>,
    pub cgroup_driver: Option<CgroupDriver>,
}

/// Inputs of [`detect`] besides the host root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectOptions {
    /// `--containerd-socket` (a host path).
    pub containerd_socket: Option<PathBuf>,
    /// `--kubeconfig`.
    pub kubeconfig_flag: Option<PathBuf>,
    /// The configz facts, when the API server answered.
    pub configz: Option<ConfigzHints>,
    /// Per-call timeout of each socket probe (2 s, as cAdvisor's own containerd dial).
    pub probe_timeout: Duration,
    /// `KUBECONFIG` and `HOME`; `None` here means "take them from the process environment".
    pub kubeconfig_env: Option<kubeconfig::KubeconfigEnv>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            containerd_socket: None,
            kubeconfig_flag: None,
            configz: None,
            probe_timeout: Duration::from_secs(2),
            kubeconfig_env: None,
        }
    }
}

/// What the host's files say, before anything is probed: the cheap first phase of detection
/// (no socket is touched, no network), enough to find the kubeconfig and this node's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostFiles {
    pub distribution: Distribution,
    pub kubelet_scan: kubelet::KubeletScan,
    pub kubeconfig: Option<KubeconfigFacts>,
    pub warnings: Vec<String>,
}

impl HostFiles {
    /// The kubelet's node name, as the API server knows it (or this host's name).
    pub fn node_name(&self) -> Option<&str> {
        self.kubelet_scan.kubelet.node_name.as_deref()
    }
}

/// The file-only phase: distribution, kubelet configuration, kubeconfig.
pub fn read_files(root: &HostRoot, opts: &DetectOptions) -> HostFiles {
    let mut warnings = Vec::new();
    let distribution = distro::detect(root, &mut warnings);
    if distribution.worker_only {
        warnings.push(
            "this MicroK8s node is worker-only (var/lock/clustered.lock): its client.config is not the cluster's admin credential (`microk8s config` refuses here); run install from a control-plane node or pass --kubeconfig".into(),
        );
    }
    let kubelet_scan = kubelet::scan(root, distribution.kind, &mut warnings);
    let env = match &opts.kubeconfig_env {
        Some(env) => kubeconfig::KubeconfigEnv {
            flag: opts.kubeconfig_flag.clone().or_else(|| env.flag.clone()),
            ..env.clone()
        },
        None => kubeconfig::KubeconfigEnv::from_process(opts.kubeconfig_flag.clone()),
    };
    let kubeconfig = kubeconfig::discover(root, &distribution, &env);
    if let Some(hint) = kubeconfig.as_ref().and_then(|k| k.hint.clone()) {
        warnings.push(hint);
    }
    HostFiles {
        distribution,
        kubelet_scan,
        kubeconfig,
        warnings,
    }
}

/// `phase` bounded by `budget`: in a child process ([`isolated`]), or, when none can be started,
/// `here` on a thread ([`watch::within`]).
async fn bounded<T>(
    root: &HostRoot,
    opts: &DetectOptions,
    phase: isolated::Phase,
    budget: Duration,
    here: impl FnOnce(HostRoot, DetectOptions) -> Result<T, HostError> + Send + 'static,
) -> Result<T, HostError>
where
    T: isolated::CarriesKubeconfig + serde::de::DeserializeOwned + Send + 'static,
{
    if let Ok(done) = isolated::run(root, opts, phase, budget).await {
        return done;
    }
    let (root, opts) = (root.clone(), opts.clone());
    watch::within(budget, move || here(root, opts)).await?
}

/// [`read_files`] bounded by `budget` ([`bounded`]).
pub async fn read_files_within(
    root: &HostRoot,
    opts: &DetectOptions,
    budget: Duration,
) -> Result<HostFiles, HostError> {
    bounded(root, opts, isolated::Phase::Files, budget, |root, opts| {
        Ok(read_files(&root, &opts))
    })
    .await
}

/// [`probe`] bounded by `budget` ([`bounded`]); each socket call keeps its own `probe_timeout`
/// inside it.
pub async fn probe_within(
    root: &HostRoot,
    files: HostFiles,
    opts: &DetectOptions,
    budget: Duration,
) -> Result<HostFacts, HostError> {
    let phase = isolated::Phase::Probe(Box::new(isolated::Wire::new(files.clone())));
    let handle = tokio::runtime::Handle::current();
    bounded(root, opts, phase, budget, move |root, opts| {
        handle.block_on(probe(&root, files, &opts))
    })
    .await
}

/// [`detect`] bounded by `budget` ([`bounded`]).
pub async fn detect_within(
    root: &HostRoot,
    opts: &DetectOptions,
    budget: Duration,
) -> Result<HostFacts, HostError> {
    let handle = tokio::runtime::Handle::current();
    bounded(
        root,
        opts,
        isolated::Phase::Detect,
        budget,
        move |root, opts| handle.block_on(detect(&root, &opts)),
    )
    .await
}

/// The kubeconfig of a command that detects nothing else (the distribution's admin kubeconfig
/// needs the distribution), bounded by `budget` ([`bounded`]).
pub async fn kubeconfig_within(
    root: &HostRoot,
    env: &kubeconfig::KubeconfigEnv,
    budget: Duration,
) -> Result<Option<KubeconfigFacts>, HostError> {
    let opts = DetectOptions {
        kubeconfig_env: Some(env.clone()),
        ..DetectOptions::default()
    };
    let env = env.clone();
    bounded(
        root,
        &opts,
        isolated::Phase::Kubeconfig,
        budget,
        move |root, _| {
            let distro = distro::detect(&root, &mut Vec::new());
            Ok(kubeconfig::discover(&root, &distro, &env))
        },
    )
    .await
}

/// Everything about this host: distribution, kubelet, runtime socket (probed), cgroups, kubeconfig.
///
/// Unreadable or malformed files become `warnings`; only a bad `--containerd-socket` value is an
/// error.
pub async fn detect(root: &HostRoot, opts: &DetectOptions) -> Result<HostFacts, HostError> {
    probe(root, read_files(root, opts), opts).await
}

/// The probe phase, from the files already read: socket candidates (probed for real), cgroups.
/// `opts.configz` (the kubelet's own configuration, through the API server) outranks the files.
pub async fn probe(
    root: &HostRoot,
    files: HostFiles,
    opts: &DetectOptions,
) -> Result<HostFacts, HostError> {
    if let Some(p) = &opts.containerd_socket
        && !p.is_absolute()
    {
        return Err(HostError::Detection(format!(
            "--containerd-socket {} is not an absolute host path (e.g. /var/snap/microk8s/common/run/containerd.sock)",
            p.display()
        )));
    }
    let HostFiles {
        distribution,
        kubelet_scan,
        kubeconfig,
        mut warnings,
    } = files;
    let mut candidates = runtime::candidates(
        root,
        distribution.kind,
        opts.containerd_socket.as_deref(),
        &kubelet_scan,
        opts.configz.as_ref(),
        &mut warnings,
    );
    runtime::probe_all(root, &mut candidates, opts.probe_timeout).await;
    let (runtime, runtime_warnings) = runtime::choose(candidates);
    warnings.extend(runtime_warnings);
    let cgroup = cgroup::detect(
        root,
        distribution.kind,
        &kubelet_scan,
        opts.configz.as_ref().and_then(|c| c.cgroup_driver),
        &mut warnings,
    );
    // One warning per problem, however many lookups met it (a link loop at `/etc` is met by
    // every marker under it).
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok(HostFacts {
        distribution,
        runtime,
        cgroup,
        kubelet: kubelet_scan.kubelet,
        kubeconfig,
        warnings,
    })
}

/// Errors of host detection.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("host root {path} does not exist or is not a directory")]
    BadHostRoot { path: PathBuf },
    /// A host path that leads nowhere inside the root (a link loop).
    #[error(transparent)]
    Resolve(#[from] fs::ResolveError),
    /// A host file that is not a regular file of bounded size (named by its host path).
    #[error(transparent)]
    Input(#[from] crate::input::ReadError),
    #[error("{0}")]
    Detection(String),
    /// The host-facts phase did not finish within its budget ([`watch::within`]): a read that
    /// never returns (a hung NFS or FUSE mount).
    #[error(
        "no answer within {}s while reading {}: a file under the host root did not answer (a hung network or FUSE mount?); find it with `mount` (nfs, cifs, fuse.sshfs, ...), bring its server back or unmount it (`umount -l DIR`), then run again",
        after.as_secs(),
        path.as_ref().map_or_else(|| "this host's files".to_string(), |p| p.display().to_string())
    )]
    NoAnswer {
        path: Option<PathBuf>,
        after: Duration,
    },
}
