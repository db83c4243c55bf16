//! A faithful fake Kubernetes API server for the cluster tier of the tests (design.md §6.3).
//!
//! In-process, HTTPS with a fresh test CA and client-certificate auth like MicroK8s'
//! `client.config`; real Kubernetes JSON; server-side apply with managedFields, conflicts and
//! force; watch; a DaemonSet controller over simulated nodes; pods/log; pod and node proxies whose
//! simulated cAdvisor and kubelet talk to the REAL containerd of each node's host root; a service
//! proxy to servers the test routes a Service to (a real Prometheus); switchable failures. It
//! runs on its own tokio runtime, so tests may call blocking tools (kubectl) while it serves.
//!
//! ```ignore
//! let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s("node-1", root)]));
//! Command::new("kubectl").arg("--kubeconfig").arg(cluster.kubeconfig_path()).args(["get", "nodes"]);
//! cluster.failures().forbid("patch", "daemonsets");
//! ```
//!
//! Checked against kubectl 1.32 (tests/fake_api.rs): get (Tables, `-o wide`, `-w`), apply
//! `--server-side` (create, no-op, conflict, `--force-conflicts`, `--dry-run=server`), client-side
//! apply, rollout status/restart, logs, describe, delete with cascade, `get --raw` proxies, create
//! (protobuf bodies of Namespace/ConfigMap/ServiceAccount); and kube-rs (apply, watcher).
//!
//! Simplified on purpose: field ownership knows the associative lists of the types served here
//! (containers, volumes, volumeMounts, env, ports, ...), every other list is atomic; no
//! pagination (`limit` is ignored), no compaction (a watch from any resourceVersion works), no
//! ControllerRevisions (`rollout history/undo`), no OpenAPI schemas (kubectl leaves validation to
//! the server, which does none), other protobuf bodies get 415; namespaces vanish 100 ms after
//! they go Terminating; the containerd factory also accepts test containers whose IDs are not
//! 64 hex characters (see `cadvisor::factory_id`).

pub mod apply;
pub mod cadvisor;
pub mod containerd;
pub mod controller;
pub mod defaults;
pub mod openapi;
pub mod pod_security;
pub mod protobuf;
pub mod resources;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use self::resources::Resource;
use self::store::Store;

/// One simulated node: a Node object, a kubelet (configz, /metrics/cadvisor) and a host root
/// holding (perhaps) a real containerd.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    /// The node's `/`: host paths of hostPath volumes resolve under it.
    pub host_root: PathBuf,
    /// Host path (inside `host_root`) of the containerd socket the kubelet uses.
    pub containerd_socket: PathBuf,
    /// `containerRuntimeEndpoint` as configz reports it.
    pub runtime_endpoint: String,
    pub kubelet_version: String,
    /// `status.nodeInfo.containerRuntimeVersion`.
    pub container_runtime_version: String,
    pub internal_ip: String,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// `cgroupDriver` as configz reports it.
    pub cgroup_driver: String,
    /// `status.nodeInfo.operatingSystem` and `.architecture`.
    pub os: String,
    pub arch: String,
}

impl SimNode {
    /// A MicroK8s node: socket `/var/snap/microk8s/common/run/containerd.sock`, endpoint written
    /// without `unix://` (canonical/microk8s: microk8s-resources/default-args/kubelet).
    pub fn microk8s(name: &str, host_root: &Path) -> SimNode {
        SimNode {
            name: name.to_string(),
            host_root: host_root.to_path_buf(),
            containerd_socket: PathBuf::from("/var/snap/microk8s/common/run/containerd.sock"),
            runtime_endpoint: "/var/snap/microk8s/common/run/containerd.sock".to_string(),
            kubelet_version: "v1.33.4".to_string(),
            container_runtime_version: "containerd://1.6.20".to_string(),
            internal_ip: "10.0.0.10".to_string(),
            labels: vec![
                ("microk8s.io/cluster".into(), "true".into()),
                (
                    "node.kubernetes.io/microk8s-controlplane".into(),
                    "microk8s-controlplane".into(),
                ),
            ],
            annotations: Vec::new(),
            // canonical/microk8s: default-args/kubelet sets no --cgroup-driver (kubelet default).
            cgroup_driver: "cgroupfs".to_string(),
            os: "linux".to_string(),
            arch: "amd64".to_string(),
        }
    }

    /// A kubeadm node with containerd: socket `/run/containerd/containerd.sock`, endpoint
    /// `unix:///run/containerd/containerd.sock` (kubernetes/kubernetes:
    /// cmd/kubeadm/app/constants/constants_unix.go `DefaultCRISocket`), cgroup driver systemd
    /// (kubeadm's default since v1.22, kubernetes/kubeadm#3004), kubeadm's CRI socket annotation
    /// (cmd/kubeadm/app/constants `AnnotationKubeadmCRISocket`).
    pub fn kubeadm(name: &str, host_root: &Path) -> SimNode {
        SimNode {
            name: name.to_string(),
            host_root: host_root.to_path_buf(),
            containerd_socket: PathBuf::from("/run/containerd/containerd.sock"),
            runtime_endpoint: "unix:///run/containerd/containerd.sock".to_string(),
            kubelet_version: "v1.33.4".to_string(),
            container_runtime_version: "containerd://1.7.24".to_string(),
            internal_ip: "10.0.0.20".to_string(),
            labels: Vec::new(),
            annotations: vec![(
                "kubeadm.alpha.kubernetes.io/cri-socket".into(),
                "unix:///var/run/containerd/containerd.sock".into(),
            )],
            cgroup_driver: "systemd".to_string(),
            os: "linux".to_string(),
            arch: "amd64".to_string(),
        }
    }

    /// A k3s agent: socket `/run/k3s/containerd/containerd.sock` with `unix://` in configz, cgroup
    /// driver systemd, kubelet version `+k3s1` and containerd `-k3s1` (k3s-io/k3s:
    /// pkg/agent/config/config_linux.go, pkg/daemons/agent/agent_linux.go; rancher/rke2#11274
    /// shows the configz), instance type `k3s` (k3s-io/k3s: pkg/cloudprovider).
    pub fn k3s(name: &str, host_root: &Path) -> SimNode {
        SimNode {
            name: name.to_string(),
            host_root: host_root.to_path_buf(),
            containerd_socket: PathBuf::from("/run/k3s/containerd/containerd.sock"),
            runtime_endpoint: "unix:///run/k3s/containerd/containerd.sock".to_string(),
            kubelet_version: "v1.33.4+k3s1".to_string(),
            container_runtime_version: "containerd://2.0.5-k3s1".to_string(),
            internal_ip: "10.0.0.30".to_string(),
            labels: vec![("node.kubernetes.io/instance-type".into(), "k3s".into())],
            annotations: Vec::new(),
            cgroup_driver: "systemd".to_string(),
            os: "linux".to_string(),
            arch: "arm64".to_string(),
        }
    }

    /// The labels the kubelet sets on its Node (kubernetes.io: "Well-Known Labels") and ours.
    pub fn node_labels(&self) -> Vec<(String, String)> {
        let mut labels: Vec<(String, String)> = vec![
            ("beta.kubernetes.io/arch".into(), self.arch.clone()),
            ("beta.kubernetes.io/os".into(), self.os.clone()),
            ("kubernetes.io/arch".into(), self.arch.clone()),
            ("kubernetes.io/hostname".into(), self.name.clone()),
            ("kubernetes.io/os".into(), self.os.clone()),
        ];
        labels.extend(self.labels.iter().cloned());
        labels
    }

    /// The real path of the kubelet's containerd socket on this machine.
    pub fn real_socket(&self) -> PathBuf {
        cadvisor::resolve_in_root(&self.host_root, &self.containerd_socket)
    }
}

pub struct FakeClusterConfig {
    pub nodes: Vec<SimNode>,
    /// Serve `monitoring.coreos.com/v1` (ServiceMonitor), as when the Prometheus operator's
    /// CRDs are installed. Switchable later with [`FakeCluster::set_prometheus_operator`].
    pub prometheus_operator: bool,
    /// The user the client certificate names (for Forbidden messages).
    pub user: String,
    /// Time from a pod's creation to its container running (the kubelet's work).
    pub pod_start_delay: Duration,
    /// Pod Security level enforced in namespaces without an `enforce` label (the API server's
    /// AdmissionConfiguration default; upstream `privileged`, the real 1.36 cluster `baseline`).
    pub pod_security_default: &'static str,
}

impl Default for FakeClusterConfig {
    fn default() -> Self {
        FakeClusterConfig {
            nodes: Vec::new(),
            prometheus_operator: false,
            user: "admin".to_string(),
            pod_start_delay: Duration::from_millis(150),
            pod_security_default: "privileged",
        }
    }
}

impl FakeClusterConfig {
    pub fn with_nodes(nodes: Vec<SimNode>) -> Self {
        FakeClusterConfig {
            nodes,
            ..Default::default()
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub user_agent: String,
    pub content_type: String,
}

impl RequestRecord {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }
}

#[derive(Debug, Clone, Default)]
pub struct FailureState {
    /// `(verb, resource)` pairs answered with 403; `*` matches any; resource is the RBAC
    /// resource (`daemonsets`, `pods/log`, `nodes/proxy`).
    pub forbid: Vec<(String, String)>,
    /// New pods never pull their image (ImagePullBackOff).
    pub image_pull: bool,
    /// New pods crash after starting (CrashLoopBackOff, rising restartCount).
    pub crash_loop: bool,
    pub pod_start_delay: Duration,
    /// Time a deleted pod stays Terminating before it is gone.
    pub pod_stop_delay: Duration,
    /// Added to every pod and node proxy request before it is answered (a slow kubelet or a
    /// far node), so concurrent requests overlap measurably.
    pub proxy_latency: Duration,
    /// Added to every PATCH (server-side apply, merge patch) after the write is stored and
    /// before it is answered: a slow etcd or admission webhook.
    pub patch_latency: Duration,
    /// An aggregated API (`metrics.k8s.io/v1beta1`, metrics-server's) whose backend is down:
    /// listed under `/apis`, but its discovery and everything under it answer 503, as
    /// kube-aggregator does for an unavailable APIService.
    pub aggregated_api_down: bool,
    /// Node name → how many more `/metrics` scrapes of cAdvisor pods on that node answer as a
    /// cAdvisor that has not yet housekept the node's containers (the root cgroup only, no
    /// pod labels). (A 503 would not do: kube's client retries 503 itself.)
    pub unhousekept_scrapes: Vec<(String, u32)>,
    /// Nodes whose `proxy/configz` is forbidden (RBAC `nodes/proxy` granted with
    /// `resourceNames` that leave them out).
    pub configz_forbidden: Vec<String>,
    /// `(plural, namespace, name)` → the object that replaces it (deleted, then created by
    /// `kubectl-create`) just before the next server-side apply to it is answered: someone
    /// replacing an object between a reader's GET and its write.
    pub replace_before_apply: Vec<((String, String, String), Value)>,
    /// `(plural, namespace)` → how many more lists of that kind there pass first, and the object
    /// `kubectl-create` creates right after the next one is answered: someone adding to a
    /// namespace just after a reader listed it.
    pub create_after_list: Vec<((String, String), u32, Value)>,
    /// What became of each [`FailureState::create_after_list`] create: the name, or the error.
    pub created_after_list: Vec<Result<String, String>>,
    /// The quota controller is stopped: a new ResourceQuota's status is never written, so
    /// quota admission does not enforce it.
    pub quota_controller_stopped: bool,
}

/// Failure switches, settable at any time from the test.
pub struct Failures {
    state: Mutex<FailureState>,
    down: tokio::sync::watch::Sender<bool>,
    /// What the server task last did: `true` listening, `false` closed (see [`Failures::set_api_down`]).
    listening: tokio::sync::watch::Sender<bool>,
}

impl Failures {
    fn new(pod_start_delay: Duration) -> Failures {
        Failures {
            state: Mutex::new(FailureState {
                pod_start_delay,
                pod_stop_delay: Duration::from_millis(100),
                ..Default::default()
            }),
            down: tokio::sync::watch::channel(false).0,
            // FakeCluster::start binds the listener before the server task runs.
            listening: tokio::sync::watch::channel(true).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FailureState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> FailureState {
        self.lock().clone()
    }

    /// Answer `verb` on `resource` with RBAC's 403 (e.g. `("patch", "daemonsets")`).
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.lock().forbid.push((verb.into(), resource.into()));
    }

    pub fn allow_all(&self) {
        self.lock().forbid.clear();
    }

    /// Just before the next server-side apply to `plural` `namespace/name`, that object is
    /// deleted and `replacement` created in its place by `kubectl-create`.
    pub fn replace_before_apply(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        replacement: Value,
    ) {
        self.lock()
            .replace_before_apply
            .push(((plural.into(), namespace.into(), name.into()), replacement));
    }

    /// Right after the list of every `plural` in `namespace` (no selector: a check of what is
    /// there) that comes after `skip` others is answered, `kubectl-create` creates `object` (through admission, as any create).
    pub fn create_after_list(&self, plural: &str, namespace: &str, skip: u32, object: Value) {
        self.lock()
            .create_after_list
            .push(((plural.into(), namespace.into()), skip, object));
    }

    /// The object to create now that a list of `plural` in `namespace` was answered, if due.
    pub fn due_after_list(&self, plural: &str, namespace: &str) -> Option<Value> {
        let mut state = self.lock();
        let at = state
            .create_after_list
            .iter()
            .position(|((p, ns), _, _)| p == plural && ns == namespace)?;
        let (_, skip, _) = &mut state.create_after_list[at];
        if *skip > 0 {
            *skip -= 1;
            return None;
        }
        Some(state.create_after_list.remove(at).2)
    }

    pub fn record_created_after_list(&self, outcome: Result<String, String>) {
        self.lock().created_after_list.push(outcome);
    }

    /// The replacement [`Failures::replace_before_apply`] set for this object, taken.
    pub fn take_replacement(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let mut state = self.lock();
        let at = state
            .replace_before_apply
            .iter()
            .position(|((p, ns, n), _)| p == plural && ns == namespace && n == name)?;
        Some(state.replace_before_apply.remove(at).1)
    }

    pub fn is_forbidden(&self, verb: &str, resource: &str) -> bool {
        self.lock()
            .forbid
            .iter()
            .any(|(v, r)| (v == "*" || v == verb) && (r == "*" || r == resource))
    }

    /// Close the listener and every open connection (connection refused), or reopen it on the
    /// same port. Returns once the server has done it (at most 10 s), so the next request
    /// already sees the new state; works before the server task has first run too.
    pub fn set_api_down(&self, down: bool) {
        self.down.send_replace(down);
        let deadline = Instant::now() + Duration::from_secs(10);
        while *self.listening.borrow() == down {
            assert!(
                Instant::now() < deadline,
                "the fake API server did not {} within 10 s",
                if down {
                    "close its listener"
                } else {
                    "listen again"
                }
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Called by the server task when it has opened (`true`) or closed (`false`) its listener.
    pub(crate) fn acknowledge(&self, listening: bool) {
        self.listening.send_replace(listening);
    }

    pub fn api_down(&self) -> bool {
        *self.down.borrow()
    }

    pub fn set_image_pull_failure(&self, on: bool) {
        self.lock().image_pull = on;
    }

    /// Stop (or restart) the quota controller (see [`FailureState::quota_controller_stopped`]).
    pub fn stop_quota_controller(&self, stopped: bool) {
        self.lock().quota_controller_stopped = stopped;
    }

    pub fn quota_controller_stopped(&self) -> bool {
        self.lock().quota_controller_stopped
    }

    pub fn set_crash_loop(&self, on: bool) {
        self.lock().crash_loop = on;
    }

    /// Slow rollout: each new pod takes this long to start.
    pub fn set_pod_start_delay(&self, delay: Duration) {
        self.lock().pod_start_delay = delay;
    }

    /// How long a deleted pod stays Terminating, counted from its deletion; applies to pods
    /// already Terminating too (a long delay holds them, a short one then releases them).
    pub fn set_pod_stop_delay(&self, delay: Duration) {
        self.lock().pod_stop_delay = delay;
    }

    /// `nodes/NODE/proxy/configz` answers 403 (as RBAC does for a node not in `resourceNames`).
    pub fn forbid_configz(&self, node: &str) {
        self.lock().configz_forbidden.push(node.to_string());
    }

    pub fn configz_forbidden(&self, node: &str) -> bool {
        self.lock().configz_forbidden.iter().any(|n| n == node)
    }

    /// Every pod and node proxy request waits `latency` before it is answered.
    pub fn set_proxy_latency(&self, latency: Duration) {
        self.lock().proxy_latency = latency;
    }

    /// metrics.k8s.io/v1beta1 is registered but its backend is down (503).
    pub fn set_aggregated_api_down(&self, down: bool) {
        self.lock().aggregated_api_down = down;
    }

    /// Every PATCH is answered `latency` after its write is stored.
    pub fn set_patch_latency(&self, latency: Duration) {
        self.lock().patch_latency = latency;
    }

    /// The next `times` scrapes of cAdvisor on `node` find no containers yet.
    pub fn unhousekept_scrapes(&self, node: &str, times: u32) {
        self.lock()
            .unhousekept_scrapes
            .push((node.to_string(), times));
    }

    /// Whether this scrape of cAdvisor on `node` is to find no containers (and counts it).
    pub(crate) fn take_unhousekept_scrape(&self, node: &str) -> bool {
        let mut state = self.lock();
        match state
            .unhousekept_scrapes
            .iter_mut()
            .find(|(n, left)| n == node && *left > 0)
        {
            Some((_, left)) => {
                *left -= 1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn down_receiver(&self) -> tokio::sync::watch::Receiver<bool> {
        self.down.subscribe()
    }
}

/// What the simulated kubelet knows about one pod (kept outside the API objects).
#[derive(Debug, Clone)]
pub struct PodRuntime {
    pub created: Instant,
    pub started: Option<Instant>,
    pub registration: Option<cadvisor::Registration>,
    pub restarts: u32,
    pub last_restart: Option<Instant>,
    pub failed_pull: bool,
    pub crashing: bool,
}

pub struct State {
    pub store: Mutex<Store>,
    pub failures: Arc<Failures>,
    /// The simulated nodes; more join with [`FakeCluster::add_node`]. Changed only through
    /// [`State::change_nodes`], which counts the changes in `nodes_version`.
    pub nodes: std::sync::RwLock<Vec<SimNode>>,
    pub nodes_version: AtomicU64,
    pub user: String,
    pub crds: AtomicBool,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    pub port: AtomicU16,
    pub pods: Mutex<HashMap<String, PodRuntime>>,
    pub started: Instant,
    pub pod_security_default: Mutex<String>,
    /// Pod and node proxy requests being answered now, and the most at once so far.
    pub proxy_in_flight: AtomicUsize,
    pub proxy_peak: AtomicUsize,
    /// `namespace/service` → `127.0.0.1:PORT`: the one ready endpoint behind a Service, for
    /// `services/[scheme:]NAME[:PORT]/proxy/...` (e.g. a real Prometheus the test started).
    pub service_backends: Mutex<HashMap<String, String>>,
}

impl State {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pods(&self) -> MutexGuard<'_, HashMap<String, PodRuntime>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn crds(&self) -> bool {
        self.crds.load(Ordering::SeqCst)
    }

    pub fn pod_security_default(&self) -> String {
        self.pod_security_default
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The simulated node `name`: only that one copied (each pod and node proxy request asks,
    /// and the kubelets' pass asks for every pod).
    pub fn node(&self, name: &str) -> Option<SimNode> {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|n| n.name == name)
            .cloned()
    }

    /// Whether a simulated node is called `name`.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|n| n.name == name)
    }

    /// The simulated nodes now.
    pub fn nodes(&self) -> Vec<SimNode> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts changes of the simulated nodes ([`State::change_nodes`]).
    pub fn nodes_version(&self) -> u64 {
        self.nodes_version.load(Ordering::SeqCst)
    }

    /// Changes the simulated nodes; the controller sees the change on its next pass.
    pub fn change_nodes(&self, change: impl FnOnce(&mut Vec<SimNode>)) {
        let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
        change(&mut nodes);
        self.nodes_version.fetch_add(1, Ordering::SeqCst);
    }
}

/// The running fake cluster. Dropping it stops the server.
pub struct FakeCluster {
    runtime: Option<tokio::runtime::Runtime>,
    state: Arc<State>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    pki: tls::Pki,
    port: u16,
}

/// Finds a resource by kind (`DaemonSet`), plural (`daemonsets`), qualified plural
/// (`daemonsets.apps`) or short name (`ds`).
pub fn resource(kind: &str) -> &'static Resource {
    resources::RESOURCES
        .iter()
        .find(|r| {
            r.kind.eq_ignore_ascii_case(kind)
                || r.plural == kind
                || r.qualified() == kind
                || r.short_names.contains(&kind)
        })
        .unwrap_or_else(|| panic!("the fake API server does not serve {kind:?}"))
}

impl FakeCluster {
    /// Starts the server on 127.0.0.1 (a free port), registers the nodes and the `default`,
    /// `kube-system` and `kube-public` namespaces, and starts the DaemonSet controller.
    pub fn start(config: FakeClusterConfig) -> FakeCluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-api")
            .enable_all()
            .build()
            .expect("build the fake API server's runtime");
        let pki = tls::Pki::generate();
        let dir = tempfile::Builder::new()
            .prefix("fake-api")
            .tempdir()
            .expect("temp dir for the kubeconfig");
        let state = Arc::new(State {
            store: Mutex::new(Store::new()),
            failures: Arc::new(Failures::new(config.pod_start_delay)),
            nodes: std::sync::RwLock::new(config.nodes),
            nodes_version: AtomicU64::new(0),
            user: config.user,
            crds: AtomicBool::new(config.prometheus_operator),
            requests: Mutex::new(Vec::new()),
            verifier: pki.client_verifier(),
            port: AtomicU16::new(0),
            pods: Mutex::new(HashMap::new()),
            started: Instant::now(),
            pod_security_default: Mutex::new(config.pod_security_default.to_string()),
            proxy_in_flight: AtomicUsize::new(0),
            proxy_peak: AtomicUsize::new(0),
            service_backends: Mutex::new(HashMap::new()),
        });
        controller::seed(&state);
        // Bound without block_on, so a #[tokio::test] may start a cluster too.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).expect("tokio listener")
        };
        let port = listener.local_addr().expect("local addr").port();
        state.port.store(port, Ordering::SeqCst);
        runtime.spawn(server::serve(state.clone(), listener, pki.server_config()));
        runtime.spawn(controller::run(state.clone()));
        let server = format!("https://127.0.0.1:{port}");
        let kubeconfig =
            pki.write_kubeconfig(dir.path(), "client.config", &server, Some(&pki.admin));
        FakeCluster {
            runtime: Some(runtime),
            state,
            dir,
            kubeconfig,
            pki,
            port,
        }
    }

    /// A MicroK8s-style kubeconfig (`client.config`) with the admin client certificate.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig with the right CA but no client certificate (requests get 401).
    pub fn kubeconfig_without_client_cert(&self) -> PathBuf {
        self.pki.write_kubeconfig(
            self.dir.path(),
            "anonymous.config",
            &self.server_url(),
            None,
        )
    }

    /// A kubeconfig whose client certificate comes from another CA (requests get 401).
    pub fn kubeconfig_with_untrusted_cert(&self) -> PathBuf {
        self.pki.write_kubeconfig(
            self.dir.path(),
            "stranger.config",
            &self.server_url(),
            Some(&self.pki.stranger),
        )
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// Writes the CA and the admin client certificate and key of the kubeconfig as PEM files
    /// into `dir` (`ca.crt`, `client.crt`, `client.key`), for clients that take files (a real
    /// Prometheus's `tls_config`).
    pub fn write_client_tls_files(&self, dir: &Path) -> [PathBuf; 3] {
        let files = [
            (dir.join("ca.crt"), &self.pki.ca_pem),
            (dir.join("client.crt"), &self.pki.admin.cert),
            (dir.join("client.key"), &self.pki.admin.key),
        ];
        for (path, pem) in &files {
            std::fs::write(path, pem).expect("write a PEM file");
        }
        files.map(|(path, _)| path)
    }

    pub fn failures(&self) -> &Failures {
        &self.state.failures
    }

    /// The Pod Security level enforced where a namespace has no `enforce` label.
    pub fn set_pod_security_default(&self, level: &str) {
        *self
            .state
            .pod_security_default
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = level.to_string();
    }

    /// Serve (or stop serving) `monitoring.coreos.com/v1`.
    pub fn set_prometheus_operator(&self, installed: bool) {
        controller::set_crds(&self.state, installed);
    }

    /// The stored object, as a GET would return it. `kind` as in [`resource`]; `namespace` is
    /// ignored for cluster-scoped kinds.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(kind);
        let ns = if res.namespaced { namespace } else { "" };
        self.state.store().get(res, ns, name).cloned()
    }

    pub fn list(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let res = resource(kind);
        self.state.store().list(res, namespace)
    }

    /// The name of the first pod in `namespace` (e.g. our one cAdvisor pod).
    pub fn first_pod_name(&self, namespace: &str) -> Option<String> {
        self.list("Pod", Some(namespace))
            .iter()
            .find_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
    }

    /// Events whose `involvedObject.name` is `name`.
    pub fn events_for(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.list("events", Some(namespace))
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .collect()
    }

    pub fn resource_version(&self) -> u64 {
        self.state.store().rv()
    }

    /// Makes `base` (`127.0.0.1:PORT`) the ready endpoint of Service `namespace/name`, which the
    /// API server's service proxy then forwards to (`None`: no endpoints, 503 as the real one).
    /// Only the address counts (a leading `http://` or `https://` is dropped): as with the real
    /// API server, the scheme is the request's `services/[scheme:]NAME[:PORT]` prefix.
    pub fn set_service_backend(&self, namespace: &str, name: &str, base: Option<&str>) {
        let mut backends = self
            .state
            .service_backends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = format!("{namespace}/{name}");
        match base {
            Some(b) => {
                let address = b
                    .trim_start_matches("http://")
                    .trim_start_matches("https://");
                backends.insert(key, address.trim_end_matches('/').to_string())
            }
            None => backends.remove(&key),
        };
    }

    /// The most pod and node proxy requests that were being answered at the same time.
    pub fn proxy_peak(&self) -> usize {
        self.state.proxy_peak.load(Ordering::SeqCst)
    }

    pub fn reset_proxy_peak(&self) {
        self.state.proxy_peak.store(0, Ordering::SeqCst);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear_requests(&self) {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Stores `obj` as if `manager` had created it with a plain create (operation Update),
    /// creating its namespace if needed. Returns the stored object.
    pub fn create(&self, manager: &str, obj: Value) -> Value {
        server::create_as(&self.state, manager, obj).expect("seed object")
    }

    /// Deletes an object as `kubectl delete` would (background propagation, graceful pods).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let res = resource(kind);
        let ns = if res.namespaced { namespace } else { "" };
        let Some(rt) = self.runtime.as_ref() else {
            return;
        };
        let _guard = rt.enter();
        server::delete(&self.state, res, ns, name, None, None).expect("delete object");
    }

    /// A DaemonSet `namespace/name` created by `kubectl apply` without `--server-side`
    /// (manager `kubectl-client-side-apply`, operation Update) with container `cadvisor` running
    /// `image`: applying another image is a conflict.
    pub fn seed_foreign_daemonset(&self, namespace: &str, name: &str, image: &str) -> Value {
        self.create(
            "kubectl-client-side-apply",
            json!({
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "cadvisor", "image": image}]}
                    }
                }
            }),
        )
    }

    /// Polls the store (test side) until `pred` holds or `timeout` passes.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&FakeCluster) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the simulated cAdvisor of `pod` logged at start, if it started.
    pub fn cadvisor_registration(&self, pod_uid: &str) -> Option<cadvisor::Registration> {
        self.state
            .pods()
            .get(pod_uid)
            .and_then(|p| p.registration.clone())
    }

    /// Creates a Pod object, Running on its node, for every pod whose containers the nodes'
    /// containerds run in `k8s.io` (grouped by the kubelet's `io.kubernetes.pod.*` labels), as
    /// `kubectl get pods -A` would list them. Returns how many pods it created.
    pub fn mirror_workload_pods(&self) -> usize {
        let (tx, rx) = std::sync::mpsc::channel();
        let state = self.state.clone();
        let Some(rt) = self.runtime.as_ref() else {
            return 0;
        };
        rt.spawn(async move {
            let _ = tx.send(controller::mirror_workload_pods(&state).await);
        });
        rx.recv().unwrap_or(0)
    }

    pub fn nodes(&self) -> Vec<SimNode> {
        self.state.nodes()
    }

    /// A node joins the running cluster: its kubelet registers the Node object and the
    /// DaemonSet controller schedules onto it (where the DaemonSets' node affinity allows).
    pub fn add_node(&self, node: SimNode) {
        controller::register_node(&self.state, &node);
        self.state.change_nodes(|nodes| nodes.push(node));
    }

    /// A node's kubelet is reconfigured and restarted (another runtime endpoint or cgroup
    /// driver): its configz answers with the new values from now on; its Node object (labels
    /// and all) stays as it is.
    pub fn update_node(&self, name: &str, change: impl FnOnce(&mut SimNode)) {
        self.state.change_nodes(|nodes| {
            if let Some(n) = nodes.iter_mut().find(|n| n.name == name) {
                change(n);
            }
        });
    }

    /// A node leaves (`kubectl delete node`): its Node object goes, and with it its daemon
    /// pods (the pod garbage collector deletes pods bound to a node that no longer exists).
    pub fn remove_node(&self, name: &str) {
        self.state
            .change_nodes(|nodes| nodes.retain(|n| n.name != name));
        self.delete("nodes", "", name);
    }

    /// Stops the server and the controller.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
