//! HostFacts + options → Plan: the cAdvisor image, flags, mounts, security and resources.
//!
//! Pure: no I/O. Every value that came from input (options or host facts) is validated here
//! (`crate::validate`) before it is put into the plan, so the templates only ever see safe text.
//! Facts cite their public sources; `google/cadvisor:` paths are at commit 6a0c4f25 (2026-07-20).

pub mod dashboard;
pub mod groups;
mod preset;
pub mod scrape;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::host::{HostFacts, RuntimeKind};
use crate::validate::{self, QuantityKind};
use crate::values::{
    ContainerLabel, ContainerdNamespace, CpuQuantity, Image, MemoryQuantity, MetricGroup, Namespace,
};
pub use preset::preset;

/// The newest cAdvisor release, pinned (google/cadvisor tag v0.60.5, 2026-07-11, published by
/// google/cadvisor: .github/workflows/publish-container.yml).
pub const DEFAULT_IMAGE: &str = "ghcr.io/google/cadvisor:0.60.5";
pub const DEFAULT_NAMESPACE: &str = "cadvisor";
/// Name of every object (DaemonSet, ServiceAccount, Service, ServiceMonitor).
pub const NAME: &str = "cadvisor";
/// cAdvisor's default `--port`, named `http` like upstream's DaemonSet
/// (google/cadvisor: deploy/kubernetes/base/daemonset.yaml).
pub const PORT: u16 = 8080;
/// Where the runtime socket's parent directory is mounted inside the pod. A fixed path of our own,
/// so the pod never depends on what the image has under /run.
pub const RUNTIME_DIR_IN_POD: &str = "/run/cadvisor-setup/runtime";
/// CRI-O has no socket flag: cAdvisor dials `CrioSocket = "/var/run/crio/crio.sock"`
/// (google/cadvisor: lib/container/crio/client.go).
pub const CRIO_DIR_IN_POD: &str = "/var/run/crio";
pub const CRIO_SOCKET_FILE: &str = "crio.sock";
/// The kubelet's containerd labels that carry pod, namespace and container
/// (kubernetes/kubernetes: pkg/kubelet/kuberuntime/labels.go `newContainerLabels`).
pub const KUBERNETES_LABELS: [&str; 3] = [
    "io.kubernetes.container.name",
    "io.kubernetes.pod.name",
    "io.kubernetes.pod.namespace",
];
/// Default `--enable_metrics`: the kubelet's own set (cpu, memory, diskIO, network, app, process,
/// oom_event; kubernetes/kubernetes: pkg/kubelet/cadvisor/cadvisor_linux.go) minus cpuLoad, and
/// never percpu, disk, tcp, udp, advtcp or sched, the expensive kinds (google/cadvisor#2523,
/// #2459, #2144: `disk` "walks writable layers").
pub const DEFAULT_METRICS: [&str; 7] = [
    "app",
    "cpu",
    "diskIO",
    "memory",
    "network",
    "oom_event",
    "process",
];
/// Requests and limits. With 10s housekeeping, no `disk` metrics and a label whitelist cAdvisor
/// settles around 40 MB (kontena/kontena#1629, vonrobak/fedora-homelab-containers#131) and well under
/// a tenth of a core (google/cadvisor#1498, #2523); Checkmk requests 150m/200Mi
/// (Checkmk/checkmk_kube_agent: deploy/charts/checkmk) and upstream 400m/400Mi
/// (google/cadvisor: deploy/kubernetes/base/daemonset.yaml). 100m/200Mi requests leave room for
/// busy nodes; the limits (500m, 500Mi) stop a runaway scrape (google/cadvisor#2608, #1644: big
/// nodes cost seconds per scrape) from starving the node, at 4x Checkmk's memory limit headroom
/// over the request.
pub const DEFAULT_CPU_REQUEST: &str = "100m";
pub const DEFAULT_CPU_LIMIT: &str = "500m";
pub const DEFAULT_MEMORY_REQUEST: &str = "200Mi";
pub const DEFAULT_MEMORY_LIMIT: &str = "500Mi";

/// Options after precedence (flag > env > file > default) was applied, see `crate::options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanOptions {
    pub namespace: Namespace,
    pub image: Image,
    pub metrics: Option<Vec<MetricGroup>>,
    pub extra_labels: Vec<ContainerLabel>,
    pub containerd_namespace: Option<ContainerdNamespace>,
    pub cpu_request: Option<CpuQuantity>,
    pub cpu_limit: Option<CpuQuantity>,
    pub memory_request: Option<MemoryQuantity>,
    pub memory_limit: Option<MemoryQuantity>,
    pub privileged: bool,
    pub service_monitor: bool,
    /// Render the Grafana dashboard ConfigMap ([`dashboard`]).
    pub grafana_dashboard: bool,
    /// Labels the chosen Prometheus' `serviceMonitorSelector` needs on our ServiceMonitor
    /// (`cluster::prometheus::target`).
    pub service_monitor_labels: BTreeMap<String, String>,
    /// Labels its `serviceMonitorNamespaceSelector` needs on our namespace (one we create).
    pub namespace_labels: BTreeMap<String, String>,
    /// Render a NetworkPolicy admitting only these peers to cAdvisor's port.
    pub network_policy: Option<NetworkPolicyPlan>,
}

/// What will be deployed. Plain, validated data: the templates' only input (as `plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Name of every object (`cadvisor`) but group DaemonSets (see [`DaemonSetPlan`]).
    pub name: String,
    /// The DaemonSet: its name and the nodes it is pinned to.
    pub daemonset: DaemonSetPlan,
    pub namespace: String,
    pub image: String,
    /// Labels on every object and on the pod template.
    pub labels: BTreeMap<String, String>,
    /// The DaemonSet selector and Service selector (a subset of `labels`; immutable once applied).
    pub selector: BTreeMap<String, String>,
    /// Extra labels of the Namespace: Pod Security Admission levels.
    pub namespace_labels: BTreeMap<String, String>,
    /// Annotations on the DaemonSet recording what the plan was made from.
    pub annotations: BTreeMap<String, String>,
    /// cAdvisor's command-line flags (the image's entrypoint adds `-logtostderr`).
    pub args: Vec<String>,
    pub port: u16,
    pub runtime: RuntimePlan,
    /// hostPath volumes and their mounts, all read-only.
    pub mounts: Vec<Mount>,
    pub security: Security,
    pub resources: Resources,
    /// HTTP path of the startup, liveness and readiness probes (cAdvisor answers `ok`; the
    /// image's own HEALTHCHECK probes it too, google/cadvisor: deploy/healthcheck.sh).
    pub health_path: String,
    pub probes: Probes,
    /// The DaemonSet's `updateStrategy.rollingUpdate`.
    pub rolling_update: RollingUpdate,
    pub tolerations: Vec<Toleration>,
    pub service: ServicePlan,
    pub service_monitor: Option<ServiceMonitorPlan>,
    /// The Grafana dashboard ConfigMap, when asked for.
    pub grafana_dashboard: Option<dashboard::DashboardPlan>,
    pub network_policy: Option<NetworkPolicyPlan>,
    /// Things a person should know (e.g. a guessed cgroup driver); not errors.
    pub warnings: Vec<String>,
}

/// The DaemonSet of one node group (`plan::groups`). One group: `cadvisor` on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonSetPlan {
    pub name: String,
    /// `kubernetes.io/hostname` values of the nodes it runs on (required node affinity); empty
    /// for every node.
    pub hostnames: Vec<String>,
    /// With `--label-nodes`: the node label (`cadvisor-setup/group`) and value its nodes carry;
    /// the node affinity then matches it instead of the hostnames, so a node labelled later
    /// lands without a manifest change.
    pub node_label: Option<NodeLabel>,
}

/// A node label `key=value` (both validated label syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLabel {
    pub key: String,
    pub value: String,
}

/// How cAdvisor reaches the container runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimePlan {
    pub kind: RuntimeKind,
    /// The socket on the host (a host path).
    pub host_socket: String,
    /// The same socket as cAdvisor sees it inside the pod.
    pub pod_socket: String,
    /// containerd namespace holding the kubelet's containers (containerd variant only).
    pub containerd_namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Volume name (DNS-1123 label).
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    /// hostPath `type` (`Directory`, `CharDevice`), or empty for no check.
    pub host_path_type: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Security {
    pub privileged: bool,
    pub allow_privilege_escalation: bool,
    pub read_only_root_filesystem: bool,
    pub capabilities_drop: Vec<String>,
    pub capabilities_add: Vec<String>,
    /// seccompProfile type.
    pub seccomp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
}

/// The container's probes, all `httpGet` on [`Plan::health_path`]. The kubelet runs neither
/// readiness nor liveness until the startup probe has succeeded (kubernetes.io: "Configure
/// Liveness, Readiness and Startup Probes"), and then runs the readiness probe at once, so a pod
/// is Ready about a second after cAdvisor serves `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probes {
    pub startup: Probe,
    pub readiness: Probe,
    pub liveness: Probe,
}

/// One probe's timing (`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`,
/// `failureThreshold`), all rendered explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollingUpdate {
    /// An absolute number or a percentage of the desired pods (`10%`).
    pub max_unavailable: String,
}

/// The probes of cAdvisor's container.
pub fn probes() -> Probes {
    Probes {
        // Every second, so the pod is Ready about a second after cAdvisor listens, instead of
        // after a fixed initial delay. cAdvisor serves HTTP only once its manager has started,
        // which registers the runtime factories and walks every existing cgroup
        // (google/cadvisor: cmd/cadvisor.go, manager/manager.go Start): about a second on a small
        // node, much longer on a busy node with hundreds of containers or a slow runtime socket.
        // A startup probe that runs out of failures gets the container killed and restarted
        // (kubernetes.io: "Configure Liveness, Readiness and Startup Probes"), so its budget is
        // generous: 90 s, more than the ~75 s the liveness probe alone used to allow a slow
        // start (15 s delay, then three failures 30 s apart). A slow start is waited for, not
        // turned into a restart loop; a quick one is seen within a second.
        startup: Probe {
            initial_delay_seconds: 0,
            period_seconds: 1,
            timeout_seconds: 1,
            failure_threshold: 90,
        },
        // No initial delay: it only runs once the startup probe succeeded.
        readiness: Probe {
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 5,
            failure_threshold: 3,
        },
        // Relaxed: a scrape of a big node can keep cAdvisor busy for seconds
        // (google/cadvisor#2608, #1644); three misses 30 s apart before a restart.
        liveness: Probe {
            initial_delay_seconds: 15,
            period_seconds: 30,
            timeout_seconds: 5,
            failure_threshold: 3,
        },
    }
}

/// A rolling update replaces up to a tenth of the pods at once, so 300 nodes take ~10 waves
/// instead of 300. The DaemonSet controller scales a percentage of the desired pods rounding *up*
/// (kubernetes/kubernetes: pkg/controller/daemon/util/daemonset_util.go `UnavailableCount` calls
/// `intstrutil.GetScaledValueFromIntOrPercent(r.MaxUnavailable, numberToSchedule, true)`; the
/// apps/v1 `RollingUpdateDaemonSet` reference: "calculated from percentage by rounding up"), so
/// any cluster with a pod to schedule gets at least 1.
pub const MAX_UNAVAILABLE: &str = "10%";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toleration {
    pub operator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    /// `clusterIP: None`: Prometheus scrapes every pod through the endpoints, no virtual IP needed.
    pub headless: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceMonitorPlan {
    /// The plan's labels plus those the chosen Prometheus selects by.
    pub labels: BTreeMap<String, String>,
    pub interval: String,
    /// Target relabelings: `__meta_kubernetes_pod_node_name` → `node`.
    pub relabelings: Vec<Relabel>,
    /// Metric relabelings: cAdvisor's container labels → the kubelet's `pod`/`namespace`/`container`.
    pub metric_relabelings: Vec<Relabel>,
}

/// Ingress to cAdvisor's port from the chosen Prometheus' pods and from the nodes, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkPolicyPlan {
    pub prometheus: Option<PodPeer>,
    /// The nodes' addresses (`/32`, `/128`): the API server's proxy and the kubelet reach the
    /// pods from them.
    pub node_cidrs: Vec<String>,
}

/// Pods of one namespace with these labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodPeer {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relabel {
    pub source_label: String,
    pub target_label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid {field} `{value}`: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    NoRuntime(String),
}

/// Every check of the options alone (no host facts): what `crate::settings` runs before any I/O,
/// so a bad value is exit 2 before anything is probed. [`make`] runs the same checks again.
pub fn check_options(opts: &PlanOptions) -> Result<(), PlanError> {
    // Each value was checked when it was parsed into its type (`crate::values`); what is left
    // are the checks across values.
    resources(opts)?;
    metrics(opts.metrics.as_deref())?;
    Ok(())
}

/// Builds the plan for one node's facts. Validates every option and fact first.
pub fn make(facts: &HostFacts, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let resources = resources(opts)?;
    let whitelist = whitelist(&opts.extra_labels);
    let metrics = metrics(opts.metrics.as_deref())?;

    let mut warnings = Vec::new();
    let runtime = runtime_plan(facts, opts, &mut warnings)?;

    // Resource-saving flags (the kubelet's own values, kubernetes/kubernetes:
    // pkg/kubelet/cadvisor/cadvisor_linux.go, and google/cadvisor:
    // deploy/kubernetes/overlays/examples/cadvisor-args.yaml): housekeeping 10s/15s instead of
    // 1s/60s ("roughly cuts CPU usage by 90%", google/cadvisor#1498), no event storage, a 1m stats
    // cache (default 2m).
    let mut args = vec![
        "--housekeeping_interval=10s".to_string(),
        "--max_housekeeping_interval=15s".to_string(),
        "--storage_duration=1m".to_string(),
        "--event_storage_event_limit=default=0".to_string(),
        "--event_storage_age_limit=default=0".to_string(),
        format!("--enable_metrics={}", metrics.join(",")),
        // Only the whitelisted labels, not every container label (memory spikes otherwise,
        // google/cadvisor#2856); the list never contains spaces (google/cadvisor#3235). The
        // whitelist is ignored unless store_container_labels=false (google/cadvisor:
        // lib/metrics/prometheus.go, cmd/cadvisor.go).
        "--store_container_labels=false".to_string(),
        format!("--whitelisted_container_labels={}", whitelist.join(",")),
    ];
    // A non-empty raw prefix whitelist makes the raw factory reject every other cgroup except `/`,
    // with or without --docker_only (google/cadvisor:lib/container/raw/factory.go
    // CanHandleAndAccept), so --docker_only is not needed. Runtime containers are claimed by
    // their own factory before raw (google/cadvisor: lib/container/factory.go
    // GetReorderedFactoryList). The kubelet sets the same whitelist to its cgroup roots, without a
    // trailing slash (kubernetes/kubernetes: pkg/kubelet/cadvisor/cadvisor_linux.go), which keeps
    // the pods' aggregate cgroup too. Path shapes: k3s-io/k3s#2831 (cgroupfs), rancher/rke2#11274
    // (systemd).
    if facts.cgroup.driver.is_none() {
        warnings.push(
            "the cgroup driver is unknown: keeping raw cgroups under /kubepods, which matches both /kubepods/ (cgroupfs) and /kubepods.slice/ (systemd)".to_string(),
        );
    }
    let prefix = groups::raw_cgroup_prefix(facts.cgroup.driver);
    args.push(format!("--raw_cgroup_prefix_whitelist={prefix}"));
    match runtime.kind {
        RuntimeKind::Containerd | RuntimeKind::Unknown => {
            // Plain path, no unix:// (google/cadvisor: lib/container/containerd/client.go dials
            // "unix" itself).
            args.push(format!("--containerd={}", runtime.pod_socket));
            if let Some(ns) = &runtime.containerd_namespace {
                args.push(format!("--containerd-namespace={ns}"));
            }
        }
        // `--docker` takes an endpoint URL (default unix:///var/run/docker.sock;
        // google/cadvisor: container/docker/factory.go).
        RuntimeKind::Docker => args.push(format!("--docker=unix://{}", runtime.pod_socket)),
        // No flag: the socket is mounted where cAdvisor's CRI-O client looks for it.
        RuntimeKind::CriO => {}
    }

    let runtime_dir_host = parent_dir(&runtime.host_socket);
    let runtime_dir_pod = parent_dir(&runtime.pod_socket);
    let mut mounts = vec![
        // cgroup files (google/cadvisor: lib/container/libcontainer/handler.go) and, on cgroup v2,
        // the cgroup2 root (opencontainers/cgroups: utils.go statfs's /sys/fs/cgroup).
        mount("sys", "/sys", "/sys", "Directory"),
        // With /rootfs/proc present cAdvisor reads host processes, network and machine info there
        // (google/cadvisor: lib/manager/manager.go:196-200).
        mount("rootfs", "/", "/rootfs", "Directory"),
        // Filesystem labels via /dev/disk/by-uuid (lib/fs/fs.go:129); "nice to have", so no type check.
        mount("dev-disk", "/dev/disk", "/dev/disk", ""),
        // The socket's parent directory, not the socket file: containerd recreates the socket on
        // restart and a file bind mount keeps the old inode, so it goes stale. Mounted even when
        // it is under /run, since upstream's /var/run mount is exactly what misses MicroK8s and
        // k0s (google/cadvisor: deploy/kubernetes/base/daemonset.yaml; google/cadvisor#3687).
        mount("runtime", &runtime_dir_host, &runtime_dir_pod, "Directory"),
    ];
    if opts.privileged {
        // The OOM parser reads /dev/kmsg (google/cadvisor: utils/oomparser); reading it needs a
        // privileged container.
        mounts.push(mount("dev-kmsg", "/dev/kmsg", "/dev/kmsg", "CharDevice"));
    }

    let security = if opts.privileged {
        Security {
            privileged: true,
            allow_privilege_escalation: true,
            read_only_root_filesystem: true,
            capabilities_drop: Vec::new(),
            capabilities_add: Vec::new(),
            seccomp: "RuntimeDefault".to_string(),
        }
    } else {
        // Least privilege: all capabilities dropped but SYS_PTRACE, which reading other processes'
        // /proc/<pid> entries needs (Checkmk's non-privileged cAdvisor, Checkmk/checkmk_kube_agent:
        // deploy/charts/checkmk), seccomp RuntimeDefault instead of upstream's ignored annotation
        // (google/cadvisor: deploy/kubernetes/base/daemonset.yaml). The image runs as root, which
        // the root-owned runtime socket (mode 0660) requires.
        Security {
            privileged: false,
            allow_privilege_escalation: false,
            read_only_root_filesystem: true,
            capabilities_drop: vec!["ALL".to_string()],
            capabilities_add: vec!["SYS_PTRACE".to_string()],
            seccomp: "RuntimeDefault".to_string(),
        }
    };

    let labels = object_labels();
    let selector = selector();
    // hostPath volumes are refused by the `baseline` and `restricted` Pod Security Standards, so the
    // namespace needs the `privileged` level (kubernetes.io/docs/concepts/security/pod-security-standards).
    // A Prometheus' labels only add to ours (ours are put in last, so they win).
    let pod_security = ["enforce", "audit", "warn"].map(|mode| {
        let key = format!("pod-security.kubernetes.io/{mode}");
        (key, "privileged".to_string())
    });
    cluster_labels("namespace label", &opts.namespace_labels)?;
    let mut namespace_labels = opts.namespace_labels.clone();
    namespace_labels.extend(pod_security);
    cluster_labels("ServiceMonitor label", &opts.service_monitor_labels)?;
    let network_policy = opts
        .network_policy
        .as_ref()
        .map(network_policy)
        .transpose()?;
    let annotations = BTreeMap::from([
        (
            "cadvisor-setup/distribution".to_string(),
            facts.distribution.kind.as_str().to_string(),
        ),
        (
            "cadvisor-setup/runtime-socket".to_string(),
            runtime.host_socket.clone(),
        ),
    ]);

    let mut service_monitor_labels = opts.service_monitor_labels.clone();
    service_monitor_labels.extend(labels.clone());
    let service_monitor = opts.service_monitor.then(|| ServiceMonitorPlan {
        labels: service_monitor_labels,
        interval: SCRAPE_INTERVAL.to_string(),
        relabelings: target_relabelings(),
        metric_relabelings: metric_relabelings(),
    });

    Ok(Plan {
        name: NAME.to_string(),
        daemonset: DaemonSetPlan {
            name: NAME.to_string(),
            hostnames: Vec::new(),
            node_label: None,
        },
        namespace: opts.namespace.to_string(),
        image: opts.image.to_string(),
        labels,
        selector,
        namespace_labels,
        annotations,
        args,
        port: PORT,
        runtime,
        mounts,
        security,
        resources,
        health_path: "/healthz".to_string(),
        probes: probes(),
        rolling_update: RollingUpdate {
            max_unavailable: MAX_UNAVAILABLE.to_string(),
        },
        // Run on every node, control planes and tainted nodes included (upstream's DaemonSet has
        // no tolerations, google/cadvisor: deploy/kubernetes/base/daemonset.yaml).
        tolerations: vec![Toleration {
            operator: "Exists".to_string(),
        }],
        // No priorityClassName: upstream sets system-node-critical only in an example overlay
        // (google/cadvisor: deploy/kubernetes/overlays/examples/critical-priority.yaml), and a
        // monitoring agent should not preempt workloads.
        service: ServicePlan { headless: true },
        service_monitor,
        grafana_dashboard: opts.grafana_dashboard.then(dashboard::plan),
        network_policy,
        warnings,
    })
}

/// The labels on every object we render (the ServiceMonitor's before a Prometheus adds to them).
pub fn object_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), NAME.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "cadvisor-setup".to_string(),
        ),
    ])
}

/// The DaemonSet's and the Service's selector: the labels that find cAdvisor's pods (the
/// Prometheus scrape job selects the pods by it too).
pub fn selector() -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_string(), NAME.to_string())])
}

/// How often Prometheus scrapes cAdvisor (ServiceMonitor and plain scrape job alike): twice
/// the longest housekeeping interval (`--max_housekeeping_interval=15s`), so every scrape sees
/// fresh numbers.
pub const SCRAPE_INTERVAL: &str = "30s";

/// Target relabelings: `__meta_kubernetes_pod_node_name` → `node`.
pub fn target_relabelings() -> Vec<Relabel> {
    vec![Relabel {
        source_label: "__meta_kubernetes_pod_node_name".to_string(),
        target_label: "node".to_string(),
    }]
}

/// Metric relabelings, the same for the ServiceMonitor and the plain scrape job: cAdvisor's
/// container labels → the kubelet's `pod`/`namespace`/`container`. Dashboards written for the
/// kubelet's /metrics/cadvisor use those names (kubernetes/kubernetes:
/// pkg/kubelet/server/server.go containerPrometheusLabelsFunc). They must be *metric*
/// relabelings: `container_label_*` exist only on the scraped series, not on the target.
/// Series without the container label (raw cgroups) get the label removed instead of the
/// cAdvisor pod's own (a `replace` with an empty result deletes the label).
pub fn metric_relabelings() -> Vec<Relabel> {
    [
        ("io_kubernetes_pod_name", "pod"),
        ("io_kubernetes_pod_namespace", "namespace"),
        ("io_kubernetes_container_name", "container"),
    ]
    .into_iter()
    .map(|(label, target)| Relabel {
        source_label: format!("container_label_{label}"),
        target_label: target.to_string(),
    })
    .collect()
}

/// Labels that came from the cluster (a Prometheus' selectors): checked as the API server would.
fn cluster_labels(field: &'static str, labels: &BTreeMap<String, String>) -> Result<(), PlanError> {
    for (key, value) in labels {
        crate::selector::check_label(key, value).map_err(|reason| PlanError::Invalid {
            field,
            value: format!("{key}={value}"),
            reason,
        })?;
    }
    Ok(())
}

/// The NetworkPolicy's peers, checked: label syntax, a DNS-1123 namespace, CIDRs that parse.
fn network_policy(opts: &NetworkPolicyPlan) -> Result<NetworkPolicyPlan, PlanError> {
    if let Some(peer) = &opts.prometheus {
        validate::dns1123_label("Prometheus namespace", &peer.namespace)?;
        cluster_labels("Prometheus pod label", &peer.pod_labels)?;
    }
    for cidr in &opts.node_cidrs {
        let ok = cidr.split_once('/').is_some_and(|(ip, bits)| {
            match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
                (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
                _ => false,
            }
        });
        if !ok {
            return Err(PlanError::Invalid {
                field: "node address",
                value: cidr.clone(),
                reason: "is not a CIDR (e.g. 10.0.0.10/32)".to_string(),
            });
        }
    }
    Ok(opts.clone())
}

fn mount(name: &str, host_path: &str, mount_path: &str, host_path_type: &str) -> Mount {
    Mount {
        name: name.to_string(),
        host_path: host_path.to_string(),
        mount_path: mount_path.to_string(),
        host_path_type: host_path_type.to_string(),
        read_only: true,
    }
}

/// The parent directory of an already validated absolute file path (`/a/b.sock` → `/a`, `/b` → `/`).
fn parent_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn runtime_plan(
    facts: &HostFacts,
    opts: &PlanOptions,
    warnings: &mut Vec<String>,
) -> Result<RuntimePlan, PlanError> {
    let Some(socket) = facts.runtime.socket.as_deref() else {
        let candidates: Vec<String> = facts
            .runtime
            .candidates
            .iter()
            .map(|c| c.path.display().to_string())
            .collect();
        let tried = if candidates.is_empty() {
            String::new()
        } else {
            format!(" (candidates: {})", candidates.join(", "))
        };
        let why = if facts.runtime.ambiguous {
            "several live runtime sockets were found and nothing decides between them"
        } else {
            "no usable container runtime socket was found on this host"
        };
        return Err(PlanError::NoRuntime(format!(
            "{why}{tried}; give the socket the kubelet uses with --containerd-socket PATH (e.g. /var/snap/microk8s/common/run/containerd.sock), or, without a node at hand, `render --distro NAME` for a distribution's defaults"
        )));
    };
    let socket = path_text(socket)?;
    validate::absolute_file_path("--containerd-socket", &socket)?;

    match facts.runtime.kind {
        RuntimeKind::Containerd | RuntimeKind::Unknown => {
            if facts.runtime.kind == RuntimeKind::Unknown {
                warnings.push(format!(
                    "the runtime behind {socket} is unknown; treating it as containerd"
                ));
            }
            let namespace = match &opts.containerd_namespace {
                Some(ns) => ns.to_string(),
                None if !facts.runtime.namespace.is_empty() => facts.runtime.namespace.clone(),
                // cAdvisor's default (google/cadvisor: lib/container/containerd/factory.go) and
                // the kubelet's CRI namespace (canonical/microk8s:
                // microk8s-resources/default-args/ctr).
                None => "k8s.io".to_string(),
            };
            // The runtime's own namespace came from a host file: checked like the flag.
            validate::containerd_namespace("--containerd-namespace", &namespace)?;
            Ok(RuntimePlan {
                kind: facts.runtime.kind,
                pod_socket: pod_socket(&socket)?,
                host_socket: socket,
                containerd_namespace: Some(namespace),
            })
        }
        RuntimeKind::CriO => {
            if file_name(&socket) != CRIO_SOCKET_FILE {
                return Err(PlanError::NoRuntime(format!(
                    "cAdvisor's CRI-O client only dials /var/run/crio/{CRIO_SOCKET_FILE} (no flag changes it; google/cadvisor:lib/container/crio/client.go), but the CRI-O socket is {socket}; configure CRI-O to listen on a socket named {CRIO_SOCKET_FILE}, or give a containerd socket with --containerd-socket"
                )));
            }
            Ok(RuntimePlan {
                kind: RuntimeKind::CriO,
                host_socket: socket,
                pod_socket: format!("{CRIO_DIR_IN_POD}/{CRIO_SOCKET_FILE}"),
                containerd_namespace: None,
            })
        }
        RuntimeKind::Docker => {
            // cAdvisor talks to Docker's API socket, not to cri-dockerd's CRI socket
            // (Docker API unix:///var/run/docker.sock; google/cadvisor:
            // container/docker/factory.go).
            let docker = if file_name(&socket) == "docker.sock" {
                socket
            } else {
                warnings.push(format!(
                    "{socket} is a CRI socket; cAdvisor needs Docker's API socket, assuming /var/run/docker.sock"
                ));
                "/var/run/docker.sock".to_string()
            };
            Ok(RuntimePlan {
                kind: RuntimeKind::Docker,
                pod_socket: pod_socket(&docker)?,
                host_socket: docker,
                containerd_namespace: None,
            })
        }
    }
}

/// The socket inside the pod. A unix socket path has at most 107 bytes (`sun_path` is 108 with
/// the NUL), so a very long socket file name cannot be dialled at all.
fn pod_socket(host_socket: &str) -> Result<String, PlanError> {
    let in_pod = format!("{RUNTIME_DIR_IN_POD}/{}", file_name(host_socket));
    if in_pod.len() > 107 {
        return Err(PlanError::Invalid {
            field: "--containerd-socket",
            value: host_socket.to_string(),
            reason: format!(
                "its file name is too long for a unix socket path inside the pod ({in_pod} has {} bytes, at most 107)",
                in_pod.len()
            ),
        });
    }
    Ok(in_pod)
}

fn path_text(path: &Path) -> Result<String, PlanError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| PlanError::Invalid {
            field: "--containerd-socket",
            value: path.display().to_string(),
            reason: "is not valid UTF-8".to_string(),
        })
}

impl Resources {
    /// The requests and limits asked for, the defaults where none was (not checked yet).
    pub fn of(opts: &PlanOptions) -> Resources {
        let pick = |v: Option<&str>, d: &str| v.unwrap_or(d).to_string();
        Resources {
            cpu_request: pick(opts.cpu_request.as_deref(), DEFAULT_CPU_REQUEST),
            cpu_limit: pick(opts.cpu_limit.as_deref(), DEFAULT_CPU_LIMIT),
            memory_request: pick(opts.memory_request.as_deref(), DEFAULT_MEMORY_REQUEST),
            memory_limit: pick(opts.memory_limit.as_deref(), DEFAULT_MEMORY_LIMIT),
        }
    }
}

fn resources(opts: &PlanOptions) -> Result<Resources, PlanError> {
    let r = Resources::of(opts);
    let cpu_req = validate::quantity("--cpu-request", &r.cpu_request, QuantityKind::Cpu)?;
    let cpu_lim = validate::quantity("--cpu-limit", &r.cpu_limit, QuantityKind::Cpu)?;
    let mem_req = validate::quantity("--memory-request", &r.memory_request, QuantityKind::Memory)?;
    let mem_lim = validate::quantity("--memory-limit", &r.memory_limit, QuantityKind::Memory)?;
    // The API server refuses a request above its limit; say so before it does.
    if cpu_req > cpu_lim {
        return Err(PlanError::Invalid {
            field: "--cpu-request",
            value: r.cpu_request,
            reason: format!("is above the CPU limit {}; raise --cpu-limit", r.cpu_limit),
        });
    }
    if mem_req > mem_lim {
        return Err(PlanError::Invalid {
            field: "--memory-request",
            value: r.memory_request,
            reason: format!(
                "is above the memory limit {}; raise --memory-limit",
                r.memory_limit
            ),
        });
    }
    Ok(r)
}

/// The three io.kubernetes.* labels plus the extra ones, deduplicated, in order.
/// The Kubernetes labels, then each extra label once, in order. Deduplicated through a set: the
/// answers file may list a couple of hundred thousand labels within its 4 MiB, and a scan of the
/// list for each one took 74 s for 200 000 (release build).
fn whitelist(extra: &[ContainerLabel]) -> Vec<String> {
    let mut out: Vec<String> = KUBERNETES_LABELS.iter().map(|s| s.to_string()).collect();
    let mut seen: std::collections::HashSet<&str> = KUBERNETES_LABELS.iter().copied().collect();
    for label in extra {
        if seen.insert(label.as_str()) {
            out.push(label.to_string());
        }
    }
    out
}

fn metrics(requested: Option<&[MetricGroup]>) -> Result<Vec<String>, PlanError> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_METRICS.iter().map(|s| s.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for name in requested {
        if !out.iter().any(|m| m == name.as_str()) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err(PlanError::Invalid {
            field: "--metrics",
            value: String::new(),
            reason: format!(
                "names no metric kind; the default is {}",
                DEFAULT_METRICS.join(",")
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DistroKind;

    fn microk8s() -> HostFacts {
        preset(DistroKind::Microk8s)
    }

    #[test]
    fn microk8s_mounts_the_socket_directory_and_points_containerd_into_it() {
        let plan = make(&microk8s(), &PlanOptions::default()).expect("plan");
        let runtime = plan
            .mounts
            .iter()
            .find(|m| m.name == "runtime")
            .expect("runtime mount");
        assert_eq!(runtime.host_path, "/var/snap/microk8s/common/run");
        assert_eq!(runtime.mount_path, RUNTIME_DIR_IN_POD);
        assert!(runtime.read_only);
        assert!(plan.args.contains(&format!(
            "--containerd={RUNTIME_DIR_IN_POD}/containerd.sock"
        )));
        assert!(
            plan.args
                .contains(&"--containerd-namespace=k8s.io".to_string())
        );
        assert!(
            plan.args
                .contains(&"--raw_cgroup_prefix_whitelist=/kubepods".to_string())
        );
        assert!(!plan.args.iter().any(|a| a.contains("unix://")));
    }

    #[test]
    fn whitelist_has_no_spaces_and_keeps_extras_once() {
        let opts = PlanOptions {
            extra_labels: vec![
                "io.kubernetes.pod.uid".parse().unwrap(),
                "io.kubernetes.pod.name".parse().unwrap(),
            ],
            ..PlanOptions::default()
        };
        let plan = make(&microk8s(), &opts).expect("plan");
        let wl = plan
            .args
            .iter()
            .find_map(|a| a.strip_prefix("--whitelisted_container_labels="))
            .expect("whitelist");
        assert_eq!(
            wl,
            "io.kubernetes.container.name,io.kubernetes.pod.name,io.kubernetes.pod.namespace,io.kubernetes.pod.uid"
        );
    }

    #[test]
    fn a_huge_extra_label_list_is_deduplicated_in_order() {
        let labels: Vec<ContainerLabel> = (0..200_000)
            .map(|i| format!("l{}", i % 100_000).parse().unwrap())
            .chain(["io.kubernetes.pod.name".parse().unwrap()])
            .collect();
        let wl = whitelist(&labels);
        assert_eq!(wl.len(), KUBERNETES_LABELS.len() + 100_000);
        assert_eq!(wl[KUBERNETES_LABELS.len()], "l0");
        assert_eq!(wl.last().map(String::as_str), Some("l99999"));
    }

    #[test]
    fn no_socket_is_no_runtime_naming_the_flag() {
        let mut facts = microk8s();
        facts.runtime.socket = None;
        let err = make(&facts, &PlanOptions::default()).unwrap_err();
        assert!(matches!(err, PlanError::NoRuntime(_)), "{err:?}");
        assert!(err.to_string().contains("--containerd-socket"), "{err}");
    }

    #[test]
    fn privileged_adds_kmsg_and_drops_nothing() {
        let opts = PlanOptions {
            privileged: true,
            ..PlanOptions::default()
        };
        let plan = make(&microk8s(), &opts).expect("plan");
        assert!(plan.security.privileged);
        assert!(plan.mounts.iter().any(|m| m.host_path == "/dev/kmsg"));
        let plain = make(&microk8s(), &PlanOptions::default()).expect("plan");
        assert!(!plain.mounts.iter().any(|m| m.host_path == "/dev/kmsg"));
        assert_eq!(plain.security.capabilities_drop, vec!["ALL".to_string()]);
    }

    #[test]
    fn crio_and_docker_variants() {
        let mut facts = preset(DistroKind::Kubeadm);
        facts.runtime.kind = RuntimeKind::CriO;
        facts.runtime.socket = Some("/run/crio/crio.sock".parse().unwrap());
        let plan = make(&facts, &PlanOptions::default()).expect("plan");
        assert!(!plan.args.iter().any(|a| a.starts_with("--containerd")));
        let m = plan.mounts.iter().find(|m| m.name == "runtime").expect("m");
        assert_eq!(
            (m.host_path.as_str(), m.mount_path.as_str()),
            ("/run/crio", "/var/run/crio")
        );

        facts.runtime.socket = Some("/run/crio/other.sock".parse().unwrap());
        assert!(make(&facts, &PlanOptions::default()).is_err());

        facts.runtime.kind = RuntimeKind::Docker;
        facts.runtime.socket = Some("/var/run/cri-dockerd.sock".parse().unwrap());
        let plan = make(&facts, &PlanOptions::default()).expect("plan");
        assert!(
            plan.args
                .contains(&format!("--docker=unix://{RUNTIME_DIR_IN_POD}/docker.sock"))
        );
        assert_eq!(plan.warnings.len(), 1);
    }

    #[test]
    fn request_above_limit_is_refused() {
        let opts = PlanOptions {
            cpu_request: Some("2".parse().unwrap()),
            ..PlanOptions::default()
        };
        let err = make(&microk8s(), &opts).unwrap_err();
        assert!(matches!(err, PlanError::Invalid { .. }), "{err:?}");
    }

    /// When the kubelet gives up at the latest: the `failureThreshold`-th failure after the
    /// initial delay.
    fn budget(p: &Probe) -> u32 {
        p.initial_delay_seconds + p.period_seconds * p.failure_threshold
    }

    #[test]
    fn a_startup_probe_gates_the_others_and_allows_a_generous_start() {
        let plan = make(&microk8s(), &PlanOptions::default()).expect("plan");
        let p = plan.probes;
        // Checked every second from the start, and no less patient with a slow start than the
        // liveness probe alone was (about 75 s: a 15 s delay, then three failures 30 s apart).
        assert_eq!(p.startup.period_seconds, 1);
        assert_eq!(p.startup.initial_delay_seconds, 0);
        assert!(budget(&p.startup) >= 75, "{:?}", p.startup);
        // Readiness runs as soon as the startup probe succeeded; no fixed wait of its own.
        assert_eq!(p.readiness.initial_delay_seconds, 0);
        // Liveness stays relaxed: slower than readiness, and more patient than one period.
        assert!(p.liveness.period_seconds >= p.readiness.period_seconds);
        assert!(budget(&p.liveness) >= 60, "{:?}", p.liveness);
        for probe in [p.startup, p.readiness, p.liveness] {
            assert!(
                probe.timeout_seconds <= probe.period_seconds.max(5),
                "{probe:?}"
            );
            assert!(probe.failure_threshold >= 1, "{probe:?}");
        }
    }

    #[test]
    fn rolling_updates_replace_a_tenth_of_the_pods_at_once() {
        let plan = make(&microk8s(), &PlanOptions::default()).expect("plan");
        assert_eq!(plan.rolling_update.max_unavailable, "10%");
    }

    #[test]
    fn metrics_are_validated_and_deduplicated() {
        let opts = PlanOptions {
            metrics: Some(vec![
                "cpu".parse().unwrap(),
                "memory".parse().unwrap(),
                "cpu".parse().unwrap(),
            ]),
            ..PlanOptions::default()
        };
        let plan = make(&microk8s(), &opts).expect("plan");
        assert!(
            plan.args
                .contains(&"--enable_metrics=cpu,memory".to_string())
        );
        // An unknown group cannot even be held.
        assert!("gpu".parse::<MetricGroup>().is_err());
        let opts = PlanOptions {
            metrics: Some(Vec::new()),
            ..PlanOptions::default()
        };
        assert!(make(&microk8s(), &opts).is_err(), "no metric group at all");
    }
}
