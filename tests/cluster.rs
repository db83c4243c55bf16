//! The cluster tier (design §6.3): the real binary against the simulated cluster of
//! `tests/support/fake_api`, whose nodes each have a host root with a real containerd running
//! labelled "pod" containers, and whose simulated cAdvisor labels series only when the manifest
//! really mounts containerd's socket.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::containerd::Containerd;
use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};
use support::host_root::{HostRootDir, MICROK8S_SOCKET};
use support::real;

/// The user's pod (the original bug report: Loki's gateway on MicroK8s).
const POD: &str = "loki-gateway-66c8f46897-2m445";
const POD_NS: &str = "loki";
const CONTAINER: &str = "nginx";

/// One simulated node: a MicroK8s host root with a real containerd at MicroK8s' socket path.
struct Node {
    root: HostRootDir,
    _containerd: Containerd,
}

fn node(pods: &[(&str, &str, &str)]) -> Node {
    let root = HostRootDir::new();
    root.microk8s("v1.33.4", "classic", "8000");
    let containerd = Containerd::start(root.path(), MICROK8S_SOCKET);
    for (i, (pod, ns, container)) in pods.iter().enumerate() {
        containerd.run_pod_container(&format!("c{i}"), pod, ns, container);
    }
    Node {
        root,
        _containerd: containerd,
    }
}

/// A fake cluster over `nodes` (named node-1, node-2, ...); the commands run on node-1.
struct World {
    nodes: Vec<Node>,
    cluster: FakeCluster,
}

/// `count` simulated nodes (node-1, ...) sharing one host root and its one containerd (one
/// containerd per node is expensive): every node runs the same labelled pod.
fn shared_world(count: usize, adjust: impl Fn(&mut SimNode)) -> Option<World> {
    if !real::require_containerd() {
        return None;
    }
    let shared = node(&[(POD, POD_NS, CONTAINER)]);
    let sims = (1..=count)
        .map(|i| {
            let mut sim = SimNode::microk8s(&format!("node-{i}"), shared.root.path());
            adjust(&mut sim);
            sim
        })
        .collect();
    let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(sims));
    Some(World {
        nodes: vec![shared],
        cluster,
    })
}

fn world(count: usize) -> Option<World> {
    if !real::require_containerd() {
        return None;
    }
    let mut nodes = vec![node(&[(POD, POD_NS, CONTAINER)])];
    for i in 1..count {
        nodes.push(node(&[(&format!("web-{i}"), "default", "web")]));
    }
    let sims = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| SimNode::microk8s(&format!("node-{}", i + 1), n.root.path()))
        .collect();
    let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(sims));
    Some(World { nodes, cluster })
}

impl World {
    /// Runs the binary with `args`; once `ready` holds for the cluster (and `settle` more has
    /// passed), sends it `signal` (`INT`, `TERM`, `HUP`) and returns what it did.
    fn signal_when(
        &self,
        args: &[&str],
        signal: &str,
        settle: Duration,
        ready: impl FnMut(&FakeCluster) -> bool,
    ) -> Output {
        let child = self
            .std_cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        assert!(self.cluster.wait_until(Duration::from_secs(30), ready));
        std::thread::sleep(settle);
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        child.wait_with_output().expect("wait")
    }

    /// The real binary, on node-1's host root, with the fake cluster's kubeconfig.
    fn std_cmd(&self, args: &[&str]) -> std::process::Command {
        self.std_cmd_with(self.cluster.kubeconfig_path(), args)
    }

    fn std_cmd_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .arg("--host-root")
            .arg(self.nodes[0].root.path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args);
        cmd
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.std_cmd(args));
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run cadvisor-setup")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.cluster.kubeconfig_path())
            .args(args)
            .output()
            .expect("run kubectl")
    }

    fn daemonset(&self) -> Option<Value> {
        self.cluster.get("DaemonSet", "cadvisor", "cadvisor")
    }

    fn pod_uids(&self) -> Vec<String> {
        let mut uids: Vec<String> = self
            .cluster
            .list("Pod", Some("cadvisor"))
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                p["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        uids.sort();
        uids
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The command ended with `expected` and its stderr says `needle`.
fn assert_exit_saying(out: &Output, expected: i32, needle: &str) {
    assert_eq!(code(out), expected, "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "stderr lacks {needle:?}:\n{}",
        text(out)
    );
}

fn text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        code(out),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(out)))
}

fn install_ok(w: &World, extra: &[&str]) -> Value {
    let mut args = vec!["install", "--yes", "-o", "json"];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "60s"]);
    }
    args.extend_from_slice(extra);
    let out = w.run(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    json(&out)
}

/// `uninstall --yes -o json`: exit 0, and its report.
fn uninstall_ok(w: &World) -> Value {
    let out = w.run(&["uninstall", "--yes", "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    json(&out)
}

/// Takes the API server down and waits until its port refuses connections (`set_api_down`
/// returns once the listener is closed; this checks it from the outside too).
fn take_api_down(w: &World) {
    w.cluster.failures().set_api_down(true);
    let port = w.cluster.port();
    assert!(w.cluster.wait_until(Duration::from_secs(10), |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    }));
}

/// An answers file (`--config FILE`) holding `yaml`, removed when dropped.
struct Answers {
    _dir: tempfile::TempDir,
    path: String,
}

impl Answers {
    fn new(yaml: &str) -> Answers {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("answers.yaml");
        std::fs::write(&path, yaml).expect("write answers");
        Answers {
            path: path.to_str().expect("utf-8").to_string(),
            _dir: dir,
        }
    }

    fn path(&self) -> &str {
        &self.path
    }
}

/// Another tool (field manager `helm`) takes the DaemonSet's image over with server-side apply
/// and `--force-conflicts`, as `kubectl apply --server-side` would.
fn helm_takes_the_image(w: &World) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("helm.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: cadvisor\n  namespace: cadvisor\nspec:\n  template:\n    spec:\n      containers:\n      - name: cadvisor\n        image: example.org/cadvisor:helm\n",
    )
    .expect("write");
    let taken = w.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=helm",
        "-f",
        file.to_str().expect("utf-8"),
    ]);
    assert!(taken.status.success(), "{}", text(&taken));
}

/// The upstream kustomize base of google/cadvisor (deploy/kubernetes/base), reduced: no
/// `--containerd` flag and no mount of containerd's socket directory.
const UPSTREAM: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: cadvisor
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: cadvisor
  namespace: cadvisor
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cadvisor
  namespace: cadvisor
spec:
  selector:
    matchLabels:
      name: cadvisor
  template:
    metadata:
      labels:
        name: cadvisor
    spec:
      serviceAccountName: cadvisor
      containers:
      - name: cadvisor
        image: gcr.io/cadvisor/cadvisor:v0.49.1
        args:
        - --housekeeping_interval=10s
        - --docker_only=false
        ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        volumeMounts:
        - name: rootfs
          mountPath: /rootfs
          readOnly: true
        - name: var-run
          mountPath: /var/run
          readOnly: true
        - name: sys
          mountPath: /sys
          readOnly: true
        - name: docker
          mountPath: /var/lib/docker
          readOnly: true
        - name: disk
          mountPath: /dev/disk
          readOnly: true
      volumes:
      - name: rootfs
        hostPath:
          path: /
      - name: var-run
        hostPath:
          path: /var/run
      - name: sys
        hostPath:
          path: /sys
      - name: docker
        hostPath:
          path: /var/lib/docker
      - name: disk
        hostPath:
          path: /dev/disk
"#;

mod story {
    use super::*;

    /// The user's story: the upstream manifest runs but its metrics carry only `id`; install
    /// (taking over the hand-made DaemonSet with --force) makes them carry the pod labels.
    #[test]
    fn upstream_manifest_fails_verify_and_install_labels_the_loki_gateway() {
        let Some(w) = world(1) else { return };
        if !real::require("kubectl", real::have_tool("kubectl")) {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("upstream.yaml");
        std::fs::write(&file, UPSTREAM).expect("write manifest");
        let applied = w.kubectl(&["apply", "-f", file.to_str().expect("utf-8")]);
        assert!(applied.status.success(), "{}", text(&applied));
        assert!(
            w.kubectl(&[
                "-n",
                "cadvisor",
                "rollout",
                "status",
                "ds/cadvisor",
                "--timeout=60s"
            ])
            .status
            .success()
        );

        let out = w.run(&["verify", "--timeout", "3s"]);
        assert_eq!(code(&out), 6, "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("carry only `id`"), "{}", text(&out));
        assert!(
            stdout.contains("Registration of the containerd container factory failed"),
            "{}",
            text(&out)
        );
        assert!(stdout.contains("not given --containerd"), "{}", text(&out));
        let out = w.run(&["verify", "--timeout", "1s", "-o", "json"]);
        let report = json(&out);
        assert_eq!(report["exit_code"], 6);
        assert_eq!(report["verification"]["nodes"][0]["verdict"], "id-only");
        assert_eq!(
            report["verification"]["nodes"][0]["missing"][0],
            format!("{POD_NS}/{POD}")
        );

        // The hand-made DaemonSet is not ours: install refuses to take it over silently.
        let out = w.run(&["install", "--yes"]);
        assert_exit_saying(&out, 7, "--force");

        let report = install_ok(&w, &["--force"]);
        assert_eq!(report["ok"], true);
        assert_eq!(report["changed"], true);
        let node = &report["verification"]["nodes"][0];
        assert_eq!(node["passed"], true, "{report:#}");
        assert!(
            node["labelled_pods"]
                .as_array()
                .expect("array")
                .contains(&Value::from(format!("{POD_NS}/{POD}")))
        );

        // What a user would check: the live metrics through the API server's pod proxy.
        let pod = node["pod"].as_str().expect("pod name");
        let raw = w.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/cadvisor/pods/{pod}:8080/proxy/metrics"),
        ]);
        let metrics = String::from_utf8_lossy(&raw.stdout);
        assert!(
            metrics.contains(&format!(
                "container_label_io_kubernetes_container_name=\"{CONTAINER}\""
            )),
            "{metrics}"
        );
        assert!(
            metrics.contains(&format!("container_label_io_kubernetes_pod_name=\"{POD}\"")),
            "{metrics}"
        );

        // And verify agrees now.
        let out = w.run(&["verify", "--timeout", "10s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));

        // --force is undone by uninstall: the user's own DaemonSet comes back as it was (its
        // image, its selector), not deleted.
        let report = uninstall_ok(&w);
        assert!(
            report["restored"]
                .to_string()
                .contains("DaemonSet cadvisor/cadvisor"),
            "{report:#}"
        );
        let ds = w.daemonset().expect("the user's DaemonSet was deleted");
        assert_eq!(
            ds["spec"]["template"]["spec"]["containers"][0]["image"],
            "gcr.io/cadvisor/cadvisor:v0.49.1"
        );
        assert_eq!(
            ds["spec"]["selector"],
            serde_json::json!({"matchLabels": {"name": "cadvisor"}})
        );
        assert!(ds["metadata"]["annotations"]["cadvisor-setup/ownership"].is_null());
    }
}

mod verification {
    //! The verification stage against many nodes: concurrent but bounded, retrying only the
    //! nodes that fail, and honest about a kubelet baseline it could not read.
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Instant;

    /// Installs without verifying, so the test sees the requests of one `verify` only.
    fn installed(w: &World) {
        install_ok(w, &["--no-verify"]);
        w.cluster.clear_requests();
        w.cluster.reset_proxy_peak();
    }

    /// `(pod proxy arrivals, node proxy arrivals)` per name (pod or node), oldest first.
    fn proxy_requests(
        w: &World,
    ) -> (
        BTreeMap<String, Vec<Instant>>,
        BTreeMap<String, Vec<Instant>>,
    ) {
        let (mut pods, mut nodes) = (BTreeMap::new(), BTreeMap::new());
        for r in w.cluster.requests() {
            let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["api", "v1", "namespaces", _, "pods", target, "proxy", ..] => {
                    let pod = target.split(':').next().unwrap_or_default().to_string();
                    pods.entry(pod).or_insert_with(Vec::new).push(r.at);
                }
                ["api", "v1", "nodes", node, "proxy", "metrics", "cadvisor"] => {
                    nodes
                        .entry(node.to_string())
                        .or_insert_with(Vec::new)
                        .push(r.at);
                }
                _ => {}
            }
        }
        (pods, nodes)
    }

    /// Runs `verify` (with `extra` flags) over every node of `w` with 300 ms per proxy answer,
    /// and checks what `bound` promises: every node passes in one attempt, never more than
    /// `bound` proxy requests are in flight (and more than one, so it was concurrent), and the
    /// node after the first `bound` starts only once one of those is done (pod proxy, then node
    /// proxy: two latencies).
    fn verify_concurrently(w: &World, nodes: usize, extra: &[&str], bound: usize) {
        installed(w);
        let latency = Duration::from_millis(300);
        w.cluster.failures().set_proxy_latency(latency);
        let mut args = vec!["verify", "--timeout", "60s", "-o", "json"];
        args.extend_from_slice(extra);
        let out = w.run(&args);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        let checked = report["verification"]["nodes"].as_array().expect("nodes");
        assert_eq!(checked.len(), nodes);
        assert!(checked.iter().all(|n| n["passed"] == true), "{report:#}");
        assert_eq!(report["verification"]["attempts"], 1);

        let peak = w.cluster.proxy_peak();
        assert!(
            peak <= bound,
            "{peak} proxy requests at once: the bound is {bound}"
        );
        assert!(peak > 1, "the nodes were checked one after another");
        let (pods, kubelets) = proxy_requests(w);
        assert_eq!((pods.len(), kubelets.len()), (nodes, nodes));
        let mut first: Vec<Instant> = pods.values().map(|at| at[0]).collect();
        first.sort();
        assert!(
            first[bound] - first[0] >= 2 * latency,
            "node {} started {:?} after the first, before any of the first {bound} was done",
            bound + 1,
            first[bound] - first[0]
        );
    }

    /// 20 nodes: one after another that is 12 s; the default bound of 16 makes it two waves.
    #[test]
    fn twenty_nodes_are_checked_concurrently_never_more_than_sixteen_at_once() {
        let Some(w) = shared_world(20, |_| {}) else {
            return;
        };
        verify_concurrently(&w, 20, &[], 16);
    }

    /// `--parallel 2`: six nodes, never more than two proxy requests in flight at once.
    #[test]
    fn parallel_two_checks_at_most_two_nodes_at_once() {
        let Some(w) = shared_world(6, |_| {}) else {
            return;
        };
        verify_concurrently(&w, 6, &["--parallel", "2"], 2);
    }

    #[test]
    fn a_node_failing_once_is_retried_alone() {
        let Some(w) = shared_world(3, |_| {}) else {
            return;
        };
        installed(&w);
        w.cluster.failures().unhousekept_scrapes("node-2", 1);
        let out = w.run(&["verify", "--timeout", "30s", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert_eq!(report["verification"]["attempts"], 2, "{report:#}");
        let (pods, kubelets) = proxy_requests(&w);
        for n in report["verification"]["nodes"].as_array().expect("nodes") {
            let (node, pod) = (
                n["node"].as_str().expect("node"),
                n["pod"].as_str().expect("pod"),
            );
            let retried = node == "node-2";
            assert_eq!(n["passed"], true);
            assert_eq!(n["attempt"], if retried { 2 } else { 1 }, "{n:#}");
            assert_eq!(
                pods[pod].len(),
                if retried { 2 } else { 1 },
                "{node}: pod proxy"
            );
            // Only node-2 is asked again, its kubelet too.
            assert_eq!(
                kubelets[node].len(),
                if retried { 2 } else { 1 },
                "{node}: node proxy"
            );
        }
    }

    /// A real API server refuses the node proxy for a loopback node address
    /// (`400 BadRequest: address not allowed`): verify passes on the labels and says the
    /// baseline was unavailable and why, not that the kubelet reports 0 pods.
    /// A cAdvisor not listening on the port its pod declares: the API server's pod proxy
    /// answers 503 "connection refused" at once. verify names that, rather than "no complete
    /// answer before the timeout" (kube's client used to retry the 503 for over a minute) and
    /// a fix about containerd's socket.
    #[test]
    fn a_pod_proxy_refused_is_named_as_such_not_as_a_timeout() {
        let Some(w) = world(1) else { return };
        if !real::require("kubectl", real::tool_path("kubectl").is_some()) {
            return;
        }
        installed(&w);
        let patched = w.kubectl(&[
            "-n",
            "cadvisor",
            "patch",
            "daemonset",
            "cadvisor",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/template/spec/containers/0/ports/0/containerPort","value":9999}]"#,
        ]);
        assert!(patched.status.success(), "{}", text(&patched));
        // The DaemonSet controller replaces the pod with one declaring the new port.
        assert!(w.cluster.wait_until(Duration::from_secs(30), |c| {
            let pods = c.list("Pod", Some("cadvisor"));
            !pods.is_empty()
                && pods.iter().all(|p| {
                    p["spec"]["containers"][0]["ports"][0]["containerPort"] == 9999
                        && p["status"]["phase"] == "Running"
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
        }));
        let out = w.run(&["verify", "--timeout", "10s"]);
        assert_eq!(code(&out), 6, "{}", text(&out));
        let all = text(&out);
        assert!(all.contains("connection refused"), "{all}");
        assert!(!all.contains("no complete answer"), "{all}");
        assert!(!all.contains("mounts containerd's socket"), "{all}");
    }

    #[test]
    fn a_refused_node_proxy_is_an_unavailable_baseline_not_zero_pods() {
        let Some(w) = shared_world(1, |n| n.internal_ip = "127.0.0.1".into()) else {
            return;
        };
        installed(&w);
        let out = w.run(&["verify", "--timeout", "30s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("the kubelet baseline was unavailable"),
            "{}",
            text(&out)
        );
        assert!(stdout.contains("address not allowed"), "{}", text(&out));
        assert!(!stdout.contains("reports 0 pods"), "{}", text(&out));
        let report = json(&w.run(&["verify", "--timeout", "30s", "-o", "json"]));
        let node = &report["verification"]["nodes"][0];
        assert_eq!(node["passed"], true);
        assert!(
            node["kubelet_error"]
                .as_str()
                .is_some_and(|e| e.contains("address not allowed")),
            "{node:#}"
        );
    }
}

mod flows {
    use super::*;

    #[test]
    fn two_nodes_rerun_is_a_no_op_and_a_new_image_rolls_out() {
        let Some(w) = world(2) else { return };
        let first = install_ok(&w, &[]);
        assert_eq!(first["changed"], true);
        let nodes = first["verification"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2, "{first:#}");
        assert!(nodes.iter().all(|n| n["passed"] == true), "{first:#}");
        assert_eq!(first["rollout"]["desired"], 2);
        assert!(
            nodes[1]["labelled_pods"]
                .as_array()
                .expect("array")
                .contains(&Value::from("default/web-1"))
        );
        let uids = w.pod_uids();
        assert_eq!(uids.len(), 2);
        let ds_version = w.daemonset().expect("ds")["metadata"]["generation"].clone();

        // Rerun: nothing changes, no pod restarts.
        let second = install_ok(&w, &[]);
        assert_eq!(second["changed"], false, "{second:#}");
        for object in second["objects"].as_array().expect("objects") {
            assert_eq!(object["changed"], false, "{object}");
            assert_eq!(object["action"], "unchanged");
        }
        assert_eq!(w.pod_uids(), uids, "pods were restarted by a no-op rerun");
        assert_eq!(
            w.daemonset().expect("ds")["metadata"]["generation"],
            ds_version
        );
        // A third run sees the same resourceVersions as the second, and so does the server.
        let live_rv = w.daemonset().expect("ds")["metadata"]["resourceVersion"].clone();
        let third = install_ok(&w, &[]);
        let versions = |v: &Value| -> Vec<Value> {
            v["objects"]
                .as_array()
                .expect("objects")
                .iter()
                .map(|o| o["resource_version"].clone())
                .collect()
        };
        assert_eq!(third["changed"], false);
        assert_eq!(versions(&second), versions(&third));
        assert_eq!(
            w.daemonset().expect("ds")["metadata"]["resourceVersion"],
            live_rv
        );

        // A new image rolls the DaemonSet and waits for it.
        let upgraded = install_ok(&w, &["--image", "ghcr.io/google/cadvisor:0.60.4"]);
        assert_eq!(upgraded["changed"], true);
        let ds = upgraded["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .find(|o| o["kind"] == "DaemonSet")
            .expect("ds")
            .clone();
        assert_eq!(ds["action"], "configured");
        assert_eq!(upgraded["rollout"]["updated"], 2);
        let new_uids = w.pod_uids();
        assert_eq!(new_uids.len(), 2);
        assert!(
            new_uids.iter().all(|u| !uids.contains(u)),
            "pods were not replaced"
        );
        let live = w.daemonset().expect("ds");
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/google/cadvisor:0.60.4"
        );

        let status = w.run(&["status", "-o", "json"]);
        assert_eq!(code(&status), 0, "{}", text(&status));
        let status = json(&status);
        assert_eq!(status["daemonset"]["version"], "0.60.4");
        assert_eq!(status["daemonset"]["ready"], 2);
        assert_eq!(status["daemonset"]["last_verification"]["ok"], true);
        let objects = status["objects"].as_array().expect("objects");
        assert!(objects.iter().all(|o| {
            o["managers"]
                .as_array()
                .expect("managers")
                .contains(&Value::from("cadvisor-setup"))
        }));
    }

    #[test]
    fn without_a_terminal_install_needs_yes_and_changes_nothing() {
        let Some(w) = world(1) else { return };
        let before = w.cluster.resource_version();
        let out = w.run(&["install"]);
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
        assert_eq!(w.cluster.resource_version(), before);
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());
    }

    #[test]
    fn dry_run_shows_a_diff_and_changes_nothing() {
        let Some(w) = world(1) else { return };
        let out = w.run(&["install", "--dry-run", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert_eq!(report["changed"], true);
        assert!(
            report["diff"]
                .as_str()
                .expect("diff")
                .contains("+kind: DaemonSet"),
            "{report:#}"
        );
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());
        assert!(w.daemonset().is_none());

        install_ok(&w, &[]);
        let rv = w.daemonset().expect("ds")["metadata"]["resourceVersion"].clone();
        let out = w.run(&[
            "install",
            "--dry-run",
            "--image",
            "ghcr.io/google/cadvisor:0.60.4",
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let diff = String::from_utf8_lossy(&out.stdout);
        assert!(
            diff.contains("-        image: ghcr.io/google/cadvisor:0.60.5")
                || diff.contains("-      image: ghcr.io/google/cadvisor:0.60.5")
                || diff
                    .lines()
                    .any(|l| l.starts_with('-') && l.contains("cadvisor:0.60.5")),
            "{diff}"
        );
        assert!(
            diff.lines()
                .any(|l| l.starts_with('+') && l.contains("cadvisor:0.60.4")),
            "{diff}"
        );
        let live = w.daemonset().expect("ds");
        assert_eq!(live["metadata"]["resourceVersion"], rv);
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/google/cadvisor:0.60.5"
        );
        let out = w.run(&["install", "--dry-run", "-o", "json"]);
        assert_eq!(json(&out)["changed"], false, "{}", text(&out));
    }

    #[test]
    fn uninstall_removes_what_install_created_and_nothing_else() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.create(
            "kubectl-create",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "unrelated", "namespace": "cadvisor"}, "data": {"k": "v"}}),
        );
        let out = w.run(&["uninstall"]);
        assert_eq!(code(&out), 2, "no --yes without a terminal: {}", text(&out));
        assert!(w.daemonset().is_some());

        let report = uninstall_ok(&w);
        assert_eq!(report["changed"], true);
        let deleted: Vec<String> = report["deleted"]
            .as_array()
            .expect("deleted")
            .iter()
            .map(|d| d.as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            deleted.contains(&"DaemonSet cadvisor/cadvisor".to_string()),
            "{deleted:?}"
        );
        assert!(w.daemonset().is_none());
        assert!(
            w.cluster
                .get("ServiceAccount", "cadvisor", "cadvisor")
                .is_none()
        );
        assert!(
            w.cluster
                .get("ConfigMap", "cadvisor", "unrelated")
                .is_some(),
            "the unrelated ConfigMap was deleted"
        );
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "the namespace still holding it was deleted"
        );
        assert!(
            report["kept"].to_string().contains("ConfigMap unrelated"),
            "{report:#}"
        );

        // Idempotent.
        assert_eq!(uninstall_ok(&w)["changed"], false);
    }

    #[test]
    fn uninstall_of_a_clean_install_removes_the_namespace_and_then_has_nothing_to_do() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        let out = w.run(&["uninstall", "--yes"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_none(),
            "{}",
            text(&out)
        );
        let out = w.run(&["uninstall", "--yes"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("nothing to delete"),
            "{}",
            text(&out)
        );
    }

    /// uninstall's lock on the namespace (its ResourceQuota) is gone again.
    fn assert_namespace_open(w: &World, report: &Value) {
        assert!(
            w.cluster
                .get("ResourceQuota", "cadvisor", "cadvisor-setup-uninstall")
                .is_none(),
            "{report:#}"
        );
    }

    /// A cluster-scoped object from `--templates` (here a ClusterRole in place of the Service)
    /// belongs to the install that wrote it: another install (another namespace) that would
    /// write the same one is refused (exit 7) unless `--force`, which takes it over; and each
    /// uninstall deletes only its own (before, uninstall of any namespace deleted every
    /// ClusterRole carrying our label).
    #[test]
    fn a_cluster_scoped_object_belongs_to_the_install_that_wrote_it() {
        let Some(w) = world(1) else { return };
        let templates = tempfile::tempdir().expect("templates");
        std::fs::write(
            templates.path().join("service.yaml.j2"),
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: cadvisor-reader\nrules: []\n",
        )
        .expect("template");
        let dir = templates.path().to_str().expect("utf-8");
        let install = |ns: &str, extra: &[&str]| {
            let mut args = vec![
                "install",
                "--yes",
                "--no-verify",
                "--templates",
                dir,
                "-n",
                ns,
                "-o",
                "json",
            ];
            args.extend_from_slice(extra);
            w.run(&args)
        };
        let role = || w.cluster.get("ClusterRole", "", "cadvisor-reader");
        let out = install("team-a", &[]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(
            role().expect("created")["metadata"]["annotations"]["cadvisor-setup/namespace"],
            "team-a"
        );

        let out = install("team-b", &[]);
        assert_eq!(code(&out), 7, "{}", text(&out));
        assert!(
            text(&out).contains(
                "ClusterRole cadvisor-reader (written by the cadvisor-setup install in namespace team-a"
            ),
            "{}",
            text(&out)
        );
        assert!(
            w.cluster.get("Namespace", "", "team-b").is_none(),
            "nothing was written"
        );

        let out = install("team-b", &["--force"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(
            role().expect("taken over")["metadata"]["annotations"]["cadvisor-setup/namespace"],
            "team-b"
        );
        let out = w.run(&["uninstall", "--yes", "-n", "team-a", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(
            role().is_some(),
            "team-a's uninstall deleted team-b's ClusterRole"
        );
        let out = w.run(&["uninstall", "--yes", "-n", "team-b", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(role().is_none(), "{}", text(&out));
    }

    /// Someone's ConfigMap, for the namespace races below.
    fn their_config_map() -> Value {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "theirs", "namespace": "cadvisor"}, "data": {"k": "v"}})
    }

    /// Someone creates a ConfigMap in our namespace just after uninstall's check listed the
    /// ConfigMaps there (and found none of theirs). Kubernetes has no "delete if empty", so the
    /// namespace is closed to new objects and checked again: the second check sees theirs, the
    /// namespace stays, and so does their ConfigMap. (With one check it went with the namespace.)
    #[test]
    fn a_namespace_someone_adds_to_while_uninstall_checks_it_is_kept() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster
            .failures()
            .create_after_list("configmaps", "cadvisor", 0, their_config_map());
        let report = uninstall_ok(&w);
        assert_eq!(
            w.cluster.failures().snapshot().created_after_list,
            [Ok("theirs".to_string())]
        );
        assert!(
            w.cluster.get("ConfigMap", "cadvisor", "theirs").is_some(),
            "their ConfigMap went with the namespace: {report:#}"
        );
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "{report:#}"
        );
        assert!(
            report["kept"].to_string().contains("ConfigMap theirs"),
            "{report:#}"
        );
        // Open again: nothing of ours is left in it, the lock included.
        assert_namespace_open(&w, &report);
    }

    /// A create into our namespace after uninstall closed it (during the second check) is
    /// refused by quota admission, so its maker knows; it is not accepted and then deleted with
    /// the namespace.
    #[test]
    fn a_create_into_the_namespace_uninstall_is_deleting_is_refused_not_lost() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster
            .failures()
            .create_after_list("configmaps", "cadvisor", 1, their_config_map());
        let report = uninstall_ok(&w);
        let outcome = w.cluster.failures().snapshot().created_after_list;
        assert!(
            matches!(outcome.as_slice(), [Err(e)] if e.contains("exceeded quota: cadvisor-setup-uninstall")),
            "{outcome:?}"
        );
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_none(),
            "{report:#}"
        );
    }

    /// A lock left by an interrupted uninstall names the kinds served then; one served since (here
    /// Widgets) must be closed too: the quota is made again for the kinds served now, so a
    /// Widget created during the second check is refused, not deleted with the namespace.
    #[test]
    fn a_leftover_lock_is_made_again_for_the_kinds_served_now() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.create(
            "cadvisor-setup",
            serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": "cadvisor-setup-uninstall", "namespace": "cadvisor",
                    "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup"},
                    "annotations": {"cadvisor-setup/ownership": "created"}},
                "spec": {"hard": {"count/configmaps": "0"}}}),
        );
        w.cluster.failures().create_after_list(
            "widgets",
            "cadvisor",
            1,
            serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "late", "namespace": "cadvisor"}}),
        );
        let report = uninstall_ok(&w);
        let outcome = w.cluster.failures().snapshot().created_after_list;
        assert!(
            matches!(outcome.as_slice(), [Err(e)] if e.contains("exceeded quota: cadvisor-setup-uninstall")),
            "accepted, then deleted with the namespace: {outcome:?}\n{report:#}"
        );
    }

    /// Without the right to create a ResourceQuota, uninstall cannot close the namespace while it
    /// checks it, so it keeps the namespace and says how to delete it.
    #[test]
    fn uninstall_keeps_a_namespace_it_cannot_close() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.failures().forbid("create", "resourcequotas");
        let report = uninstall_ok(&w);
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "{report:#}"
        );
        assert!(
            w.daemonset().is_none(),
            "the rest is still uninstalled: {report:#}"
        );
        let kept = report["kept"].to_string();
        assert!(
            kept.contains("could not be closed to new objects")
                && kept.contains("kubectl delete namespace cadvisor"),
            "{report:#}"
        );
    }

    /// A quota is enforced only once the quota controller has written its status: when that
    /// does not happen, the namespace was never closed, so uninstall keeps it (and removes the
    /// quota) rather than trust it.
    #[test]
    fn uninstall_keeps_a_namespace_whose_lock_is_not_enforced() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.failures().stop_quota_controller(true);
        let out = w.run(&["uninstall", "--yes", "-o", "json", "--timeout", "3s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "{report:#}"
        );
        assert!(
            report["kept"]
                .to_string()
                .contains("that closes it to new objects was not enforced within "),
            "{report:#}"
        );
        assert_namespace_open(&w, &report);
    }

    /// When the lock cannot be removed again (here: deleting ResourceQuotas is forbidden), the
    /// failure says what was deleted before it and that the namespace is left closed, with the
    /// command that opens it (before: the bare 403, as if nothing had been done).
    #[test]
    fn a_lock_that_cannot_be_removed_is_reported_with_what_was_deleted() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.failures().stop_quota_controller(true);
        w.cluster.failures().forbid("delete", "resourcequotas");
        let out = w.run(&["uninstall", "--yes", "--timeout", "3s"]);
        assert_ne!(code(&out), 0, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("applied before the failure: deleted DaemonSet cadvisor/cadvisor"),
            "{err}"
        );
        assert!(
            err.contains(
                "kubectl delete resourcequota --namespace cadvisor cadvisor-setup-uninstall"
            ),
            "{err}"
        );
        assert!(
            w.cluster
                .get("ResourceQuota", "cadvisor", "cadvisor-setup-uninstall")
                .is_some()
        );
    }

    /// An uninstall interrupted while it held the namespace closed leaves its ResourceQuota;
    /// the next install opens the namespace again (and says so) instead of having every create
    /// refused.
    #[test]
    fn install_opens_a_namespace_an_interrupted_uninstall_left_closed() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.create(
            "cadvisor-setup",
            serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": "cadvisor-setup-uninstall", "namespace": "cadvisor",
                    "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup"},
                    "annotations": {"cadvisor-setup/ownership": "created"}},
                "spec": {"hard": {"count/configmaps": "0", "count/serviceaccounts": "0"}}}),
        );
        w.cluster.delete("ServiceAccount", "cadvisor", "cadvisor");
        let out = w.run(&["install", "--yes", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(
            text(&out).contains("left closed to new objects by an interrupted uninstall"),
            "{}",
            text(&out)
        );
        assert!(
            w.cluster
                .get("ResourceQuota", "cadvisor", "cadvisor-setup-uninstall")
                .is_none()
        );
        assert!(
            w.cluster
                .get("ServiceAccount", "cadvisor", "cadvisor")
                .is_some()
        );
    }

    #[test]
    fn a_huge_timeout_neither_overflows_install_verify_nor_uninstall() {
        // Larger than any Instant can hold; `Instant::now() + timeout` used to panic (exit 101).
        const HUGE: &str = "18446744073709551615";
        let Some(w) = world(1) else { return };
        let report = install_ok(&w, &["--timeout", HUGE]);
        assert_eq!(report["ok"], true, "{report:#}");
        let out = w.run(&["verify", "--timeout", HUGE]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let out = w.run(&["uninstall", "--yes", "--timeout", HUGE]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(w.daemonset().is_none(), "{}", text(&out));
    }
}

mod failures {
    use super::*;

    /// The binary on node-1's host root, finding the kubeconfig itself (no --kubeconfig, no
    /// HOME): MicroK8s' `client.config` under the host root.
    fn run_with_host_kubeconfig(w: &World, args: &[&str]) -> Output {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .arg("--host-root")
            .arg(w.nodes[0].root.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run cadvisor-setup")
    }

    /// MicroK8s' admin kubeconfig under the host root, naming `ca`, `cert` and `key` as it
    /// names them (host paths), and this `user` block's extra lines.
    fn host_kubeconfig(w: &World, ca: &str, cert: &str, key: &str, extra: &str) {
        let config = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: microk8s\nclusters:\n- name: microk8s-cluster\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\ncontexts:\n- name: microk8s\n  context: {{cluster: microk8s-cluster, user: admin}}\nusers:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n{extra}",
            server = w.cluster.server_url()
        );
        std::fs::write(
            w.nodes[0]
                .root
                .local("/var/snap/microk8s/current/credentials/client.config"),
            config,
        )
        .expect("write client.config");
    }

    /// A kubeconfig whose user is the exec credential plugin `command args`, trusting the fake
    /// cluster's CA (files written to `dir`).
    fn exec_kubeconfig(
        w: &World,
        dir: &std::path::Path,
        command: &str,
        args: &[&str],
    ) -> std::path::PathBuf {
        let [ca, _, _] = w.cluster.write_client_tls_files(dir);
        let path = dir.join("exec.config");
        let config = serde_json::json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": w.cluster.server_url(),
                "certificate-authority": ca}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "users": [{"name": "u", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1", "command": command,
                "args": args, "interactiveMode": "Never"}}}],
        });
        std::fs::write(&path, config.to_string()).expect("write kubeconfig");
        path
    }

    /// kube runs an exec credential plugin through the binary itself, which bounds it: the
    /// credential it prints reaches kube (a client certificate here: status connects), and one
    /// that prints without end is stopped past 1 MiB (exit 4, saying so) instead of growing the
    /// process until the kernel kills it.
    #[test]
    fn an_exec_credential_plugin_is_run_within_bounds() {
        let Some(w) = world(1) else { return };
        let dir = tempfile::tempdir().expect("dir");
        let [_, cert, key] = w.cluster.write_client_tls_files(dir.path());
        let credential = serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": {
                "clientCertificateData": std::fs::read_to_string(cert).expect("cert"),
                "clientKeyData": std::fs::read_to_string(key).expect("key"),
            }
        });
        let credential_file = dir.path().join("credential.json");
        std::fs::write(&credential_file, credential.to_string()).expect("credential");
        let kubeconfig = exec_kubeconfig(
            &w,
            dir.path(),
            "cat",
            &[credential_file.to_str().expect("utf-8")],
        );
        let out = w
            .std_cmd_with(&kubeconfig, &["status", "-o", "json"])
            .output()
            .expect("run");
        assert_eq!(code(&out), 0, "{}", text(&out));

        let kubeconfig = exec_kubeconfig(&w, dir.path(), "yes", &[]);
        let out = w
            .std_cmd_with(&kubeconfig, &["status", "-o", "json"])
            .output()
            .expect("run");
        assert_eq!(code(&out), 4, "{}", text(&out));
        assert!(
            text(&out).contains("its exec credential plugin failed")
                && text(&out).contains("`yes` printed more than 1048576 bytes; stopped"),
            "{}",
            text(&out)
        );
    }

    /// A distribution's admin kubeconfig is a host file: under a host root, the files it
    /// names are host paths, read inside the root (which is what makes it work from the
    /// strict snap's hostfs), and no name can lead a read outside the root.
    #[test]
    fn a_host_kubeconfig_reads_the_files_it_names_inside_the_host_root_only() {
        let Some(w) = world(1) else { return };
        let pki = w.nodes[0].root.local("/etc/kubernetes/pki");
        std::fs::create_dir_all(&pki).expect("pki dir");
        w.cluster.write_client_tls_files(&pki);
        host_kubeconfig(
            &w,
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/pki/client.crt",
            "../../../../../../etc/kubernetes/pki/client.key",
            "",
        );
        let out = run_with_host_kubeconfig(&w, &["status", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));

        // /etc/hostname exists on this machine, not under the host root.
        assert!(std::path::Path::new("/etc/hostname").exists());
        for escape in [
            "/etc/hostname",
            "../../../../../../../../../../../etc/hostname",
        ] {
            host_kubeconfig(
                &w,
                escape,
                "/etc/kubernetes/pki/client.crt",
                "/etc/kubernetes/pki/client.key",
                "",
            );
            let out = run_with_host_kubeconfig(&w, &["status", "-o", "json"]);
            assert_eq!(code(&out), 4, "{}", text(&out));
            let inside = w.nodes[0].root.local("/etc/hostname");
            assert!(
                text(&out).contains(&format!("{} does not exist", inside.display())),
                "{escape}: {}",
                text(&out)
            );
        }
    }

    /// Nor does a host file get a program run: an exec credential plugin in the host's admin
    /// kubeconfig under a host root is refused (exit 4, saying to pass --kubeconfig), by every
    /// command that connects; the program never runs.
    #[test]
    fn a_host_kubeconfigs_exec_plugin_is_not_run() {
        let Some(w) = world(1) else { return };
        let marker = w.nodes[0].root.path().join("plugin-ran");
        host_kubeconfig(
            &w,
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/pki/client.crt",
            "/etc/kubernetes/pki/client.key",
            &format!(
                "    exec: {{apiVersion: client.authentication.k8s.io/v1, command: /usr/bin/touch, args: [{}], interactiveMode: Never}}\n",
                marker.display()
            ),
        );
        let pki = w.nodes[0].root.local("/etc/kubernetes/pki");
        std::fs::create_dir_all(&pki).expect("pki dir");
        w.cluster.write_client_tls_files(&pki);
        let out = run_with_host_kubeconfig(&w, &["status", "-o", "json"]);
        assert_eq!(code(&out), 4, "{}", text(&out));
        assert!(
            text(&out).contains("does not run programs named by files under --host-root")
                && text(&out).contains("--kubeconfig"),
            "{}",
            text(&out)
        );
        let out = run_with_host_kubeconfig(&w, &["detect", "-o", "json"]);
        assert!(
            text(&out).contains("does not run programs named by files under --host-root"),
            "{}",
            text(&out)
        );
        assert!(!marker.exists(), "the exec plugin ran");
    }

    /// Someone deletes the DaemonSet while install waits for its rollout: the rollout cannot
    /// finish, so it is exit 5 (rollout failed), not 6 (verification failed).
    #[test]
    fn a_daemonset_deleted_during_the_rollout_is_exit_5() {
        let Some(w) = world(1) else { return };
        w.cluster
            .failures()
            .set_pod_start_delay(Duration::from_secs(60));
        let child = w
            .std_cmd(&["install", "--yes", "--timeout", "60s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn install");
        let started = std::time::Instant::now();
        while w.daemonset().is_none() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            w.daemonset().is_some(),
            "install never applied the DaemonSet"
        );
        std::thread::sleep(Duration::from_millis(500));
        w.cluster.delete("DaemonSet", "cadvisor", "cadvisor");
        let out = child.wait_with_output().expect("wait for install");
        assert_eq!(code(&out), 5, "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("was deleted while waiting for its rollout"),
            "{}",
            text(&out)
        );
    }

    #[test]
    fn forbidden_is_exit_4_naming_the_permission_and_what_was_applied() {
        let Some(w) = world(1) else { return };
        w.cluster.failures().forbid("patch", "daemonsets");
        let out = w.run(&["install", "--yes"]);
        assert_eq!(code(&out), 4, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("forbidden") && err.contains("daemonsets"),
            "{err}"
        );
        assert!(
            err.contains("applied before the failure: Namespace cadvisor"),
            "{err}"
        );
        assert!(
            err.contains("not applied: DaemonSet cadvisor/cadvisor"),
            "{err}"
        );
    }
    #[test]
    fn bad_credentials_are_exit_4() {
        let Some(w) = world(1) else { return };
        let anonymous = w.cluster.kubeconfig_without_client_cert();
        let out = w
            .std_cmd_with(&anonymous, &["status"])
            .output()
            .expect("run");
        assert_exit_saying(&out, 4, "rejected our credentials (401)");
    }

    #[test]
    fn conflict_is_exit_7_naming_the_manager_and_force_takes_over() {
        let Some(w) = world(1) else { return };
        if !real::require("kubectl", real::have_tool("kubectl")) {
            return;
        }
        install_ok(&w, &[]);
        helm_takes_the_image(&w);

        let out = w.run(&["install", "--yes"]);
        assert_eq!(code(&out), 7, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("\"helm\"") && err.contains("image") && err.contains("--force"),
            "{err}"
        );

        install_ok(&w, &["--force"]);
        let live = w.daemonset().expect("ds");
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/google/cadvisor:0.60.5"
        );
    }

    #[test]
    fn api_down_is_exit_4_naming_the_server() {
        let Some(w) = world(1) else { return };
        // The same server answers before the switch, so the failure below is the switch's doing.
        assert_eq!(code(&w.run(&["status"])), 0);
        take_api_down(&w);
        let out = w.run(&["install", "--yes"]);
        assert_eq!(code(&out), 4, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("127.0.0.1:{}", w.cluster.port())),
            "{err}"
        );
        let out = w.run(&["status"]);
        assert_eq!(code(&out), 4, "{}", text(&out));
    }

    #[test]
    fn image_pull_failure_is_exit_5_naming_image_pull_back_off() {
        let Some(w) = world(1) else { return };
        w.cluster.failures().set_image_pull_failure(true);
        let out = w.run(&["install", "--yes", "--timeout", "4s"]);
        assert_eq!(code(&out), 5, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("ImagePullBackOff") || err.contains("ErrImagePull"),
            "{err}"
        );
        assert!(err.contains("applied (still in place)"), "{err}");
    }

    #[test]
    fn crash_loop_is_exit_5_naming_crash_loop_back_off() {
        let Some(w) = world(1) else { return };
        w.cluster.failures().set_crash_loop(true);
        let out = w.run(&["install", "--yes", "--timeout", "6s", "-o", "json"]);
        assert_eq!(code(&out), 5, "{}", text(&out));
        let report = json(&out);
        assert_eq!(report["exit_code"], 5);
        assert!(
            report["rollout_failure"]
                .to_string()
                .contains("CrashLoopBackOff"),
            "{report:#}"
        );
        // The failing pod's own events, read with a field selector and one bounded page, not
        // every event of the namespace.
        let events = &report["rollout_failure"]["pods"][0]["events"];
        assert!(
            events.as_array().is_some_and(|e| !e.is_empty()),
            "{report:#}"
        );
        let reads: Vec<_> = w
            .cluster
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/events"))
            .collect();
        assert!(!reads.is_empty());
        for r in &reads {
            let q = |k: &str| r.query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(q("limit").as_deref(), Some("100"), "{:?}", r.query);
            assert!(
                q("fieldSelector").is_some_and(
                    |f| f.starts_with("involvedObject.kind=Pod,involvedObject.name=cadvisor-")
                ),
                "{:?}",
                r.query
            );
        }
    }

    #[test]
    fn slow_rollout_passes_within_the_timeout_and_fails_past_it() {
        let Some(w) = world(1) else { return };
        w.cluster
            .failures()
            .set_pod_start_delay(Duration::from_secs(2));
        install_ok(&w, &["--timeout", "30s"]);

        let Some(w) = world(1) else { return };
        w.cluster
            .failures()
            .set_pod_start_delay(Duration::from_secs(30));
        let out = w.run(&["install", "--yes", "--timeout", "2s"]);
        assert_exit_saying(&out, 5, "did not finish rolling out within 2s");
    }

    /// Ctrl-C while objects are being written does not kill the binary between two writes
    /// without a word: the write under way is finished, and the report names what was applied
    /// (exit 1, as for Ctrl-C while waiting). A second Ctrl-C kills as usual.
    /// Our namespace being deleted (someone's `kubectl delete namespace`, an uninstall whose
    /// pods are still stopping): the API server refuses new objects in it with a 403 that is
    /// not about permissions. install says so before writing anything, and what to do.
    #[test]
    fn a_terminating_namespace_is_named_as_such_not_as_missing_permissions() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster
            .failures()
            .set_pod_stop_delay(Duration::from_secs(60));
        w.cluster.delete("ServiceAccount", "cadvisor", "cadvisor");
        w.cluster.delete("Namespace", "", "cadvisor");
        assert!(w.cluster.wait_until(Duration::from_secs(10), |c| {
            c.get("Namespace", "", "cadvisor")
                .is_some_and(|n| n["status"]["phase"] == "Terminating")
                && c.get("ServiceAccount", "cadvisor", "cadvisor").is_none()
        }));
        w.cluster.clear_requests();
        let out = w.run(&["install", "--yes", "--timeout", "20s"]);
        assert_exit_saying(&out, 4, "namespace cadvisor is being deleted");
        let err = text(&out);
        assert!(!err.contains("RBAC"), "{err}");
        assert!(err.contains("applied before the failure: nothing"), "{err}");
        // Only reads reached the API server (its own controllers go on writing meanwhile).
        let writes: Vec<String> = w
            .cluster
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(writes.is_empty(), "written: {writes:?}\n{err}");
    }

    /// Ctrl-C (or a supervisor's SIGHUP/SIGTERM) while uninstall deletes and waits: not a
    /// silent death between two deletes, but exit 1 naming the signal, the plan and how to see
    /// and finish what is left.
    fn interrupted_uninstall_says_what_may_be_done(signal: &str, shown: &str) {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster
            .failures()
            .set_pod_stop_delay(Duration::from_secs(60));
        let out = w.signal_when(&["uninstall", "--yes"], signal, Duration::ZERO, |c| {
            c.get("DaemonSet", "cadvisor", "cadvisor").is_none()
        });
        assert_eq!(code(&out), 1, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("interrupted ({shown}) while uninstalling")),
            "{err}"
        );
        assert!(err.contains("delete DaemonSet cadvisor/cadvisor"), "{err}");
        assert!(err.contains("cadvisor-setup status"), "{err}");
    }

    /// Ctrl-C while uninstall holds the namespace closed (here while it waits for the quota
    /// controller, which is stopped) opens it again before stopping: left closed, every create
    /// in the namespace (a ReplicaSet's next pod, anyone's ConfigMap) would be refused.
    #[test]
    fn ctrl_c_while_uninstall_holds_the_namespace_closed_opens_it_again() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.failures().stop_quota_controller(true);
        let out = w.signal_when(
            &["uninstall", "--yes", "--timeout", "60s"],
            "INT",
            Duration::ZERO,
            |c| {
                c.get("ResourceQuota", "cadvisor", "cadvisor-setup-uninstall")
                    .is_some()
            },
        );
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "{}",
            text(&out)
        );
        assert!(
            w.cluster
                .get("ResourceQuota", "cadvisor", "cadvisor-setup-uninstall")
                .is_none(),
            "left closed: {}",
            text(&out)
        );
    }

    #[test]
    fn ctrl_c_during_uninstall_says_what_may_be_done_and_how_to_finish() {
        interrupted_uninstall_says_what_may_be_done("INT", "Ctrl-C");
    }

    #[test]
    fn sighup_during_uninstall_says_what_may_be_done_and_how_to_finish() {
        interrupted_uninstall_says_what_may_be_done("HUP", "SIGHUP");
    }

    fn interrupted_apply_says_what_was_applied(signal: &str, shown: &str) {
        let Some(w) = world(1) else { return };
        w.cluster
            .failures()
            .set_patch_latency(Duration::from_millis(1500));
        let out = w.signal_when(&["install", "--yes"], signal, Duration::ZERO, |c| {
            c.get("Namespace", "", "cadvisor").is_some()
        });
        assert_eq!(code(&out), 1, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("interrupted ({shown}) while applying")),
            "{err}"
        );
        assert!(err.contains("Namespace cadvisor"), "{err}");
        let ds = w.daemonset().is_some();
        assert_eq!(
            err.contains("DaemonSet cadvisor/cadvisor"),
            ds,
            "the report and the cluster disagree on the DaemonSet: {err}"
        );
    }

    #[test]
    fn ctrl_c_while_applying_says_what_was_applied() {
        interrupted_apply_says_what_was_applied("INT", "Ctrl-C");
    }

    /// Ansible's or systemd's SIGTERM, as Ctrl-C.
    #[test]
    fn sigterm_while_applying_says_what_was_applied() {
        interrupted_apply_says_what_was_applied("TERM", "SIGTERM");
    }

    #[test]
    fn ctrl_c_while_waiting_exits_cleanly_saying_what_was_applied() {
        let Some(w) = world(1) else { return };
        w.cluster
            .failures()
            .set_pod_start_delay(Duration::from_secs(60));
        let out = w.signal_when(
            &["install", "--yes"],
            "INT",
            Duration::from_millis(500),
            |c| c.get("DaemonSet", "cadvisor", "cadvisor").is_some(),
        );
        assert_eq!(code(&out), 1, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("interrupted"), "{err}");
        assert!(
            err.contains("DaemonSet cadvisor/cadvisor") && err.contains("applied"),
            "{err}"
        );
    }
}

mod bench {
    use super::*;
    use std::time::Instant;

    /// Reported by scripts/bench/rollout.sh: from the watch event that completes the rollout to
    /// the verification stage starting (goal < 100 ms). Printed, not asserted.
    #[test]
    fn ready_to_verify() {
        let Some(w) = world(1) else { return };
        let report = install_ok(&w, &[]);
        let ms = report["rollout"]["ready_to_verify_ms"]
            .as_f64()
            .expect("ready_to_verify_ms");
        println!("bench: rollout ready → verify start: {ms:.2} ms (goal < 100 ms)");
    }

    /// The binary on node-1's host root, as [`World::std_cmd`], but the one in
    /// `CADVISOR_SETUP_BIN` when set (scripts/bench.sh builds a release binary), run under
    /// `wrapper` when given.
    fn bench_cmd(
        w: &World,
        args: &[&str],
        wrapper: Option<&std::path::Path>,
    ) -> std::process::Command {
        let inner = w.std_cmd(args);
        let bin = std::env::var_os("CADVISOR_SETUP_BIN")
            .unwrap_or_else(|| inner.get_program().to_os_string());
        let mut cmd = match wrapper {
            Some(wrapper) => {
                let mut cmd = std::process::Command::new(wrapper);
                cmd.arg("-v").arg(bin);
                cmd
            }
            None => std::process::Command::new(bin),
        };
        cmd.env_clear()
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .args(inner.get_args());
        cmd
    }

    /// Reported by scripts/bench/scale.sh (ignored otherwise: it takes minutes): for each node
    /// count in `CADVISOR_SETUP_BENCH_NODES` (default `200,500`), simulated nodes sharing one
    /// real containerd host root, and `CADVISOR_SETUP_BENCH_LATENCY_MS` (default 20) added to
    /// every pod and node proxy request, as an API server's hop to a kubelet would: `install`
    /// (from the last pod Ready to the process exiting), then `verify` alone under
    /// `/usr/bin/time -v` (wall time, peak RSS). Printed, not asserted.
    #[test]
    #[ignore = "benchmark: run by scripts/bench/scale.sh"]
    fn verify_at_scale() {
        let counts: Vec<usize> = std::env::var("CADVISOR_SETUP_BENCH_NODES")
            .unwrap_or_else(|_| "200,500".into())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("CADVISOR_SETUP_BENCH_NODES: counts")
            })
            .collect();
        let latency = Duration::from_millis(
            std::env::var("CADVISOR_SETUP_BENCH_LATENCY_MS").map_or(20, |ms| {
                ms.parse().expect("CADVISOR_SETUP_BENCH_LATENCY_MS")
            }),
        );
        let time = std::path::Path::new("/usr/bin/time");
        assert!(
            time.is_file(),
            "/usr/bin/time is missing (apt-get install time)"
        );
        for count in counts {
            let Some(w) = shared_world(count, |_| {}) else {
                return;
            };
            w.cluster.failures().set_proxy_latency(latency);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;

            // install: the moment the last pod is Ready, seen from the store, to the exit.
            // Output to files: the report of hundreds of nodes outgrows a pipe nobody reads yet.
            let dir = tempfile::tempdir().expect("tempdir");
            let file = |name: &str| std::fs::File::create(dir.path().join(name)).expect("create");
            let started = Instant::now();
            let mut child = bench_cmd(
                &w,
                &["install", "--yes", "-o", "json", "--timeout", "300s"],
                None,
            )
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .expect("spawn install");
            let mut all_ready = None;
            while child.try_wait().expect("try_wait").is_none() {
                if all_ready.is_none()
                    && w.daemonset().is_some_and(|ds| {
                        ds["status"]["numberReady"].as_u64() == Some(count as u64)
                    })
                {
                    all_ready = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let exited = Instant::now();
            let status = child.wait().expect("install status");
            let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read");
            let out = Output {
                status,
                stdout: read("stdout"),
                stderr: read("stderr"),
            };
            assert_eq!(code(&out), 0, "{}", text(&out));
            let report = json(&out);
            let all_ready = all_ready.expect("the DaemonSet was seen ready");
            let v = &report["verification"];
            println!(
                "bench: {count} nodes, {latency:?} proxy latency: install {:.0} ms; last pod ready → install exit {:.0} ms (rollout ready → verify start {:.1} ms, verification {:.0} ms, {} attempt(s))",
                ms(exited - started),
                ms(exited - all_ready),
                report["rollout"]["ready_to_verify_ms"]
                    .as_f64()
                    .unwrap_or(-1.0),
                v["elapsed_seconds"].as_f64().unwrap_or(-1.0) * 1000.0,
                v["attempts"],
            );

            // verify alone, every node scraped again (nothing is remembered between runs).
            w.cluster.reset_proxy_peak();
            let mut cmd = bench_cmd(
                &w,
                &["verify", "-o", "json", "--timeout", "300s"],
                Some(time),
            );
            let cpu_before = own_cpu();
            let started = Instant::now();
            let out = cmd.output().expect("run verify under /usr/bin/time");
            let wall = started.elapsed();
            let own = own_cpu()
                .zip(cpu_before)
                .map(|((u, s), (u0, s0))| (u - u0, s - s0));
            assert_eq!(code(&out), 0, "{}", text(&out));
            let report = json(&out);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let field = |name: &str| {
                stderr
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let rss_kb: f64 = field("Maximum resident set size (kbytes):")
                .parse()
                .unwrap_or(-1.0);
            let nodes = report["verification"]["nodes"]
                .as_array()
                .map_or(0, Vec::len);
            println!(
                "bench: {count} nodes, {latency:?} proxy latency: verify {:.0} ms wall (goal < 5000 ms), peak RSS {:.1} MB (goal < 64 MB), CPU user {} s sys {} s, {nodes} nodes verified, proxy requests in flight at most {}",
                ms(wall),
                rss_kb / 1024.0,
                field("User time (seconds):"),
                field("System time (seconds):"),
                w.cluster.proxy_peak(),
            );
            // The simulated cluster shares the machine's cores with the product: what it spent
            // while verify ran.
            if let Some((user, sys)) = own {
                println!(
                    "bench: {count} nodes, {latency:?} proxy latency: fake API server (test process) CPU during verify: user {user:.2} s sys {sys:.2} s"
                );
            }
        }
    }

    /// This process's CPU time so far (user, system) in seconds, from `/proc/self/stat`
    /// (fields 14 and 15, in clock ticks: proc(5)); `None` where there is no procfs.
    fn own_cpu() -> Option<(f64, f64)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // proc(5) numbers fields from 1 with state third; `rest` starts at state.
        let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
        // USER_HZ is 100 on Linux (proc(5): "clock ticks (divide by sysconf(_SC_CLK_TCK))").
        Some((ticks(14)? / 100.0, ticks(15)? / 100.0))
    }
}

/// Issue 5's conversation, driven through a real pseudo-terminal (tests/support/pty_drive.py):
/// dialoguer needs a terminal on stdin and stderr, which the pty gives it.
mod interactive {
    use super::*;
    use std::path::{Path, PathBuf};
    use support::fake_api::FakeCluster;
    use support::host_root::DEFAULT_SOCKET;

    fn python() -> Option<PathBuf> {
        let system = PathBuf::from("/usr/bin/python3");
        if system.is_file() {
            return Some(system);
        }
        real::tool_path("python3")
    }

    /// Runs the binary on node-1 through the pty, answering `steps` ([regex, keys] pairs).
    /// `env` are `NAME=value` settings for the binary. Returns the exit code and the transcript.
    fn drive(w: &World, env: &[&str], steps: &[(&str, &str)], args: &[&str]) -> (i32, String) {
        drive_raw(w, env, steps, args, false)
    }

    fn drive_raw(
        w: &World,
        env: &[&str],
        steps: &[(&str, &str)],
        args: &[&str],
        raw: bool,
    ) -> (i32, String) {
        drive_with(w, w.cluster.kubeconfig_path(), env, steps, args, raw)
    }

    /// [`drive_raw`] with another kubeconfig.
    fn drive_with(
        w: &World,
        kubeconfig: &Path,
        env: &[&str],
        steps: &[(&str, &str)],
        args: &[&str],
        raw: bool,
    ) -> (i32, String) {
        let python = python().expect("python3");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pty_drive.py");
        let steps: Vec<[&str; 2]> = steps.iter().map(|(a, b)| [*a, *b]).collect();
        let out = std::process::Command::new(python)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PTY_DRIVE_RAW", if raw { "1" } else { "0" })
            .arg(script)
            .arg(serde_json::to_string(&steps).expect("steps"))
            .arg("--")
            .arg("env")
            .args(env)
            .arg(assert_cmd::cargo::cargo_bin("cadvisor-setup"))
            .arg("--host-root")
            .arg(w.nodes[0].root.path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .expect("run pty_drive.py");
        (code(&out), String::from_utf8_lossy(&out.stderr).to_string())
    }

    fn have_python() -> bool {
        real::require("python3", python().is_some())
    }

    /// One node ([`world`]), and python3 to drive the pty.
    fn pty_world() -> Option<World> {
        let w = world(1)?;
        have_python().then_some(w)
    }

    /// The conversation's five questions, the namespace answered with `namespace` and the rest
    /// with their defaults, then `then`.
    fn questions<'a>(namespace: &'a str, then: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut steps = vec![
            ("Namespace for cAdvisor", namespace),
            ("cAdvisor image", "\r"),
            ("Metric groups", "\r"),
            ("Run cAdvisor privileged", "\r"),
            ("Prometheus Operator ServiceMonitor", "\r"),
        ];
        steps.extend_from_slice(then);
        steps
    }

    /// `install` with every value the conversation asks for given as a flag, then `extra`: the
    /// confirmation (and a socket choice, if any) is all that is left to ask.
    fn install_with_every_value(extra: &[&'static str]) -> Vec<&'static str> {
        let mut args = vec![
            "install",
            "--namespace",
            "cadvisor",
            "--image",
            "ghcr.io/google/cadvisor:0.60.5",
            "--metrics",
            "cpu,memory",
            "--privileged",
            "false",
            "--service-monitor",
            "never",
        ];
        args.extend_from_slice(extra);
        args
    }

    #[test]
    fn answers_reach_the_cluster_namespace_monitoring() {
        let Some(w) = pty_world() else { return };
        let (code, out) = drive(
            &w,
            &[],
            &questions("monitoring\r", &[("Apply this to the cluster", "\r")]),
            &["install", "--timeout", "60s"],
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("this node: microk8s v1.33.4"), "{out}");
        assert!(out.contains("namespace:  monitoring"), "{out}");
        assert!(out.contains("cAdvisor is installed"), "{out}");
        // Progress on a terminal (and only there: see output::every_command_...).
        assert!(
            out.contains("rolling out DaemonSet monitoring/cadvisor"),
            "{out}"
        );
        let ds = w
            .cluster
            .get("DaemonSet", "monitoring", "cadvisor")
            .unwrap_or_else(|| panic!("no DaemonSet in namespace monitoring:\n{out}"));
        let container = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "ghcr.io/google/cadvisor:0.60.5");
        assert_ne!(container["securityContext"]["privileged"], true);
        assert!(w.cluster.get("Namespace", "", "monitoring").is_some());
        assert!(
            w.daemonset().is_none(),
            "the default namespace was used too"
        );
    }

    #[test]
    fn with_two_prometheus_the_person_picks_one() {
        let Some(w) = pty_world() else { return };
        w.cluster.set_prometheus_operator(true);
        for (ns, name, spec) in [
            (
                "monitoring",
                "k8s",
                serde_json::json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}),
            ),
            (
                "observability",
                "stack",
                serde_json::json!({
                "serviceMonitorSelector": {"matchLabels": {"release": "kube-prom-stack"}},
                "serviceMonitorNamespaceSelector": {}}),
            ),
        ] {
            w.cluster.create(
                "helm",
                serde_json::json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                    "metadata": {"name": name, "namespace": ns}, "spec": spec}),
            );
        }
        let (code, out) = drive(
            &w,
            &[],
            &questions(
                "\r",
                &[
                    ("Which one should scrape cAdvisor", "\x1b[B\r"),
                    ("Apply this to the cluster", "\r"),
                ],
            ),
            &["install", "--timeout", "60s"],
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("Prometheus observability/stack will scrape cAdvisor (ServiceMonitor labelled release=kube-prom-stack)"),
            "{out}"
        );
        let sm = w
            .cluster
            .get("ServiceMonitor", "cadvisor", "cadvisor")
            .expect("ServiceMonitor");
        assert_eq!(sm["metadata"]["labels"]["release"], "kube-prom-stack");
        assert!(out.contains("NetworkPolicy cadvisor/cadvisor"), "{out}");
    }

    #[test]
    fn show_yaml_then_cancel_applies_nothing() {
        let Some(w) = pty_world() else { return };
        let before = w.cluster.resource_version();
        let (code, out) = drive(
            &w,
            &[],
            &questions(
                "\r",
                &[
                    ("Apply this to the cluster", "\x1b[B\r"),
                    (
                        "kind: DaemonSet[\\s\\S]*Apply this to the cluster",
                        "\x1b[B\x1b[B\r",
                    ),
                ],
            ),
            &["install"],
        );
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("--containerd="),
            "the YAML was not shown:\n{out}"
        );
        assert!(out.contains("nothing was applied"), "{out}");
        assert_eq!(w.cluster.resource_version(), before, "{out}");
        assert!(w.daemonset().is_none());
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());
    }

    /// node-1 with MicroK8s' containerd (the Loki gateway) and a decoy containerd at the default
    /// path, both holding kubelet containers; no MicroK8s files say which one the kubelet uses.
    /// `hide_configz`: the kubelet's configz is forbidden, so nothing decides.
    fn two_sockets(hide_configz: bool) -> (World, Containerd) {
        let root = support::host_root::HostRootDir::new();
        root.write("/etc/hostname", "node-1\n");
        let microk8s = Containerd::start(root.path(), MICROK8S_SOCKET);
        microk8s.run_pod_container("c0", POD, POD_NS, CONTAINER);
        let decoy = Containerd::start(root.path(), DEFAULT_SOCKET);
        decoy.run_pod_container("d0", "decoy-0", "default", "decoy");
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
            "node-1",
            root.path(),
        )]));
        if hide_configz {
            cluster.failures().forbid("get", "nodes/proxy");
        }
        let w = World {
            nodes: vec![Node {
                root,
                _containerd: microk8s,
            }],
            cluster,
        };
        (w, decoy)
    }

    /// Values an answers file (or flag, or environment variable) gave are shown with their
    /// source, not asked: only the confirmation remains.
    #[test]
    fn given_values_are_not_asked_again() {
        let Some(w) = pty_world() else { return };
        let answers = Answers::new(
            "namespace: monitoring\nmetrics: [cpu, memory]\nprivileged: false\nservice-monitor: never\n",
        );
        let (code, out) = drive(
            &w,
            &["CADVISOR_SETUP_IMAGE=registry.local/cadvisor:0.60.5"],
            &[("Apply this to the cluster", "\x1b[B\x1b[B\r")],
            &["install", "--config", answers.path()],
        );
        assert_eq!(code, 2, "{out}");
        for needle in [
            "namespace: monitoring (from config file)",
            "image: registry.local/cadvisor:0.60.5 (from environment)",
            "privileged: false (from config file)",
        ] {
            assert!(out.contains(needle), "missing `{needle}`:\n{out}");
        }
        assert!(!out.contains("Namespace for cAdvisor"), "{out}");
        assert!(!out.contains("Metric groups"), "{out}");
        assert!(w.cluster.get("Namespace", "", "monitoring").is_none());
    }

    /// At a terminal, a mixed cluster's plan shows each node group's DaemonSet, socket and
    /// nodes before the confirmation.
    #[test]
    fn the_plan_shows_the_node_groups_before_the_confirmation() {
        let Some(w) = super::mixed::mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")])
        else {
            return;
        };
        if !have_python() {
            return;
        }
        let answers = Answers::new(
            "metrics: [cpu, memory]\nprivileged: false\nservice-monitor: never\nnamespace: cadvisor\nimage: ghcr.io/google/cadvisor:0.60.5\nlabel-nodes: true\n",
        );
        let (code, out) = drive(
            &w,
            &[],
            &[("Apply this to the cluster", "\r")],
            &["install", "--timeout", "60s", "--config", answers.path()],
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("node groups (one DaemonSet each):"), "{out}");
        assert!(
            out.contains(
                "  cadvisor: socket /var/snap/microk8s/common/run/containerd.sock, nodes node-1"
            ),
            "{out}"
        );
        assert!(
            out.contains(": socket /run/containerd/containerd.sock, nodes node-2"),
            "{out}"
        );
        // The answers file's `label-nodes: true`: the labels are shown before the question.
        assert!(out.contains("node labels (--label-nodes;"), "{out}");
        assert!(
            out.contains("  label node node-2 cadvisor-setup/group="),
            "{out}"
        );
        assert!(out.contains("cAdvisor is installed"), "{out}");
        assert_eq!(w.cluster.list("DaemonSet", Some("cadvisor")).len(), 2);
        let node2 = w.cluster.get("Node", "", "node-2").expect("node");
        assert!(
            node2["metadata"]["labels"]["cadvisor-setup/group"].is_string(),
            "{node2:#}"
        );
    }

    /// The same two sockets, but the API server serves the kubelet's configz: its runtime
    /// endpoint decides, unattended, and the labels verify.
    #[test]
    fn the_kubelets_configz_settles_the_socket_for_an_unattended_install() {
        if !real::require_containerd() {
            return;
        }
        let (w, _decoy) = two_sockets(false);
        let report = install_ok(&w, &[]);
        assert_eq!(
            report["verification"]["nodes"][0]["passed"], true,
            "{report:#}"
        );
        let ds = w.daemonset().expect("DaemonSet");
        assert_eq!(
            ds["metadata"]["annotations"]["cadvisor-setup/runtime-socket"],
            MICROK8S_SOCKET
        );
    }

    /// MicroK8s' containerd and another live containerd with pods, and the kubelet's configz not
    /// readable: unattended it is exit 3 naming the flag; at a terminal the person picks.
    #[test]
    fn ambiguous_detection_asks_and_the_chosen_socket_is_mounted() {
        if !real::require_containerd() || !have_python() {
            return;
        }
        let (w, decoy) = two_sockets(true);

        let out = w.run(&["install", "--yes", "--no-verify"]);
        assert_exit_saying(&out, 3, "--containerd-socket");
        assert!(w.daemonset().is_none());
        // --yes on a terminal: still never asks.
        let (code, out) = drive(&w, &[], &[], &["install", "--yes", "--no-verify"]);
        assert_eq!(code, 3, "{out}");
        assert!(!out.contains("Which one"), "{out}");
        assert!(out.contains("--containerd-socket"), "{out}");
        assert!(w.daemonset().is_none());

        // Where MicroK8s' socket is in the list: the live candidates, in detection's order.
        let detected = json(&w.run(&["detect", "--no-cluster", "-o", "json"]));
        let live: Vec<String> = detected["runtime"]["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .filter(|c| !c["probe"]["version"].is_null())
            .map(|c| c["path"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(live.len(), 2, "{detected:#}");
        let index = live
            .iter()
            .position(|p| p == MICROK8S_SOCKET)
            .expect("MicroK8s' socket is a candidate");
        let keys = "\x1b[B".repeat(index) + "\r";
        let (code, out) = drive(
            &w,
            &[],
            &[
                ("Which one runs this node's pods", &keys),
                ("Apply this to the cluster", "\r"),
            ],
            &install_with_every_value(&["--no-verify", "--timeout", "60s"]),
        );
        assert_eq!(code, 0, "{out}");
        let ds = w
            .daemonset()
            .unwrap_or_else(|| panic!("no DaemonSet:\n{out}"));
        // --containerd=<dir>/<file>, <dir> a mount of a hostPath volume: back to the host path.
        let spec = &ds["spec"]["template"]["spec"];
        let container = &spec["containers"][0];
        let flag = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str())
            .find_map(|a| a.strip_prefix("--containerd="))
            .expect("--containerd flag")
            .to_string();
        let (dir, file) = flag.rsplit_once('/').expect("a path");
        let mount = container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["mountPath"] == dir)
            .expect("a mount at the socket's directory");
        let volume = spec["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the mount's volume");
        let host = format!(
            "{}/{file}",
            volume["hostPath"]["path"].as_str().expect("hostPath")
        );
        assert_eq!(host, MICROK8S_SOCKET, "{out}");
        drop(decoy);
    }

    #[test]
    fn declining_uninstall_deletes_nothing_and_accepting_deletes() {
        let Some(w) = pty_world() else { return };
        install_ok(&w, &[]);
        let before = w.cluster.resource_version();
        let (code, out) = drive(
            &w,
            &[],
            &[("Carry out these \\d+ step", "n")],
            &["uninstall"],
        );
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("nothing was deleted"), "{out}");
        assert_eq!(w.cluster.resource_version(), before);
        assert!(w.daemonset().is_some());

        let (code, out) = drive(
            &w,
            &[],
            &[("Carry out these \\d+ step", "y")],
            &["uninstall"],
        );
        assert_eq!(code, 0, "{out}");
        assert!(w.daemonset().is_none(), "{out}");
    }

    /// Every question the conversation can ask (their prompts), for "nothing was asked".
    const QUESTIONS: &[&str] = &[
        "Which one runs",
        "Namespace for cAdvisor",
        "cAdvisor image",
        "Metric groups",
        "Run cAdvisor privileged",
        "Prometheus Operator ServiceMonitor",
        "Apply this to the cluster",
    ];

    fn assert_nothing_asked(out: &str) {
        for q in QUESTIONS {
            assert!(!out.contains(q), "asked `{q}`:\n{out}");
        }
        assert!(
            !out.contains("this node:"),
            "the conversation started:\n{out}"
        );
    }

    /// The API server is down: the conversation says where it connects, then exit 4 before any
    /// question (it used to ask five questions and the confirmation first).
    #[test]
    fn an_unreachable_api_server_is_exit_4_before_any_question() {
        let Some(w) = pty_world() else { return };
        w.cluster.failures().set_api_down(true);
        let started = std::time::Instant::now();
        let (code, out) = drive(
            &w,
            &[],
            &[("cannot reach the API server", "")],
            &["install"],
        );
        let elapsed = started.elapsed();
        assert_eq!(code, 4, "{out}");
        let server = w.cluster.server_url();
        let connecting = out
            .find(&format!("connecting to {server}"))
            .unwrap_or_else(|| panic!("no `connecting to {server}` line:\n{out}"));
        let error = out.find("error:").unwrap_or_else(|| panic!("{out}"));
        assert!(connecting < error, "{out}");
        assert!(out.contains("microk8s status --wait-ready"), "{out}");
        assert_nothing_asked(&out);
        assert!(
            elapsed < Duration::from_secs(15),
            "took {elapsed:?}:\n{out}"
        );
        assert!(w.daemonset().is_none());
    }

    /// A server that accepts the connection but never answers (a hung API server, a firewall
    /// that swallows TLS): exit 4 within the probe's 5 s, before any question.
    #[test]
    fn a_silent_api_server_is_exit_4_within_seconds_before_any_question() {
        let Some(w) = pty_world() else { return };
        // Bound but never accepted: the kernel completes the TCP handshake, nothing answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let config = std::fs::read_to_string(w.cluster.kubeconfig_path()).expect("kubeconfig");
        let server = w.cluster.server_url();
        assert!(config.contains(&server), "{config}");
        let silent_url = format!("https://127.0.0.1:{port}");
        let kubeconfig = w
            .cluster
            .kubeconfig_path()
            .parent()
            .expect("dir")
            .join("silent.config");
        std::fs::write(&kubeconfig, config.replace(&server, &silent_url)).expect("write");
        let started = std::time::Instant::now();
        let (code, out) = drive_with(
            &w,
            &kubeconfig,
            &[],
            // The probe's own timeout or the client's connect timeout (TLS included), whichever
            // fires first: both are 5 s.
            &[("no answer within 5s|cannot reach the API server", "")],
            &["install"],
            false,
        );
        let elapsed = started.elapsed();
        assert_eq!(code, 4, "{out}");
        assert!(
            out.contains(&format!("connecting to {silent_url}")),
            "{out}"
        );
        assert_nothing_asked(&out);
        // Bounded, not hung (the driver's own limit is far longer).
        assert!(
            elapsed < Duration::from_secs(30),
            "took {elapsed:?}:\n{out}"
        );
        drop(silent);
    }

    /// The terminal is left with the cursor shown: a show (`ESC[?25h`) after the last hide
    /// (`ESC[?25l`, which dialoguer's choice lists and confirmations write).
    fn assert_cursor_restored(raw: &str) {
        let hide = raw
            .rfind("\x1b[?25l")
            .unwrap_or_else(|| panic!("the cursor was never hidden (test premise):\n{raw:?}"));
        let show = raw.rfind("\x1b[?25h");
        assert!(
            show.is_some_and(|show| show > hide),
            "the cursor stays hidden after Ctrl-C (last hide at {hide}, last show at {show:?}):\n{raw:?}"
        );
    }

    /// Ctrl-C at the socket choice list (a dialoguer Select, which hides the cursor): the cursor
    /// is shown again, nothing is applied, exit 2 like every other "no" at a prompt. It used to
    /// die of SIGINT with the cursor hidden.
    #[test]
    fn ctrl_c_at_the_socket_choice_restores_the_cursor_and_is_exit_2() {
        if !real::require_containerd() || !have_python() {
            return;
        }
        let (w, decoy) = two_sockets(true);
        let before = w.cluster.resource_version();
        let (code, raw) = drive_raw(
            &w,
            &[],
            &[("Which one runs this node's pods", "\x03")],
            &["install"],
            true,
        );
        assert_eq!(code, 2, "{raw:?}");
        assert_cursor_restored(&raw);
        assert!(raw.contains("nothing was applied"), "{raw}");
        assert_eq!(w.cluster.resource_version(), before, "{raw}");
        assert!(w.daemonset().is_none());
        drop(decoy);
    }

    /// Ctrl-C at a text question and at the final confirmation: the same (exit 2, nothing
    /// applied, the cursor shown).
    #[test]
    fn ctrl_c_at_a_text_question_or_the_confirmation_is_exit_2_with_the_cursor_shown() {
        let Some(w) = pty_world() else { return };
        let before = w.cluster.resource_version();
        let (code, raw) = drive_raw(
            &w,
            &[],
            &[("Namespace for cAdvisor", "mon\x03")],
            &["install"],
            true,
        );
        assert_eq!(code, 2, "{raw:?}");
        assert!(raw.contains("nothing was applied"), "{raw}");
        assert!(
            !raw.contains("cAdvisor image"),
            "asked on after Ctrl-C:\n{raw}"
        );
        // Every value given: the confirmation (a choice list) is the only question.
        let (code, raw) = drive_raw(
            &w,
            &[],
            &[("Apply this to the cluster", "\x03")],
            &install_with_every_value(&[]),
            true,
        );
        assert_eq!(code, 2, "{raw:?}");
        assert_cursor_restored(&raw);
        assert!(raw.contains("nothing was applied"), "{raw}");
        assert_eq!(w.cluster.resource_version(), before);
        assert!(w.daemonset().is_none());
    }

    /// Colour on a terminal, none under NO_COLOR (https://no-color.org).
    #[test]
    fn no_color_removes_every_escape_sequence() {
        let Some(w) = pty_world() else { return };
        let (code, coloured) = drive_raw(&w, &[], &[], &["detect"], true);
        assert_eq!(code, 0, "{coloured}");
        assert!(
            coloured.contains("\x1b["),
            "no colour on a terminal:\n{coloured}"
        );
        assert!(
            !coloured.contains('\u{E000}'),
            "a styling marker reached the terminal unconverted:\n{coloured:?}"
        );
        let (code, plain) = drive_raw(&w, &["NO_COLOR=1"], &[], &["detect"], true);
        assert_eq!(code, 0, "{plain}");
        assert!(
            !plain.contains("\x1b["),
            "escape sequences under NO_COLOR:\n{plain:?}"
        );
        assert!(plain.contains(MICROK8S_SOCKET), "{plain}");
    }
}

/// Output contracts: one JSON document on stdout for every command, and where values come from.
mod output {
    use super::*;

    /// Exactly one JSON value on stdout (and only whitespace around it).
    fn one_document(out: &Output) -> Value {
        let mut docs = serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>();
        let first = docs
            .next()
            .unwrap_or_else(|| panic!("no JSON document on stdout:\n{}", text(out)))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(out)));
        assert!(
            docs.next().is_none(),
            "more than one document on stdout:\n{}",
            text(out)
        );
        assert!(first.is_object(), "{}", text(out));
        assert!(first["changed"].is_boolean(), "{}", text(out));
        if let Some(c) = first["exit_code"].as_i64() {
            assert_eq!(c, i64::from(code(out)), "{}", text(out));
        }
        first
    }

    #[test]
    fn every_command_prints_exactly_one_json_document_also_on_failure() {
        let Some(w) = world(1) else { return };
        let cases: &[(&[&str], i32)] = &[
            (&["detect"], 0),
            (&["detect", "--no-cluster"], 0),
            (&["completions", "bash"], 0),
            (&["completions", "tcsh"], 2),
            (&["render"], 0),
            (&["render", "--distro", "k3s"], 0),
            (&["render", "--namespace", "Not_A_Name"], 2),
            (&["status"], 0),
            (&["install"], 2),
            (&["install", "--dry-run"], 0),
            (&["install", "--timeout", "soon"], 2),
            (&["install", "--bogus-flag"], 2),
            (&["install", "--yes", "--timeout", "60s"], 0),
            (&["install", "--yes", "--timeout", "60s"], 0),
            (&["status"], 0),
            (&["verify", "--timeout", "20s"], 0),
            (&["uninstall"], 2),
            (&["uninstall", "--yes"], 0),
            (&["uninstall", "--yes"], 0),
            (&["verify", "--timeout", "1s"], 6),
        ];
        for (args, expected) in cases {
            let mut all = args.to_vec();
            all.extend_from_slice(&["-o", "json"]);
            let out = w.run(&all);
            let doc = one_document(&out);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr
                    .chars()
                    .any(|c| ('\u{2800}'..='\u{28ff}').contains(&c)),
                "a spinner without a terminal: {args:?}: {stderr}"
            );
            assert_eq!(code(&out), *expected, "{args:?}: {}", text(&out));
            assert_eq!(doc["ok"], *expected == 0, "{args:?}: {}", text(&out));
        }
        // Down: still one document, exit 4.
        take_api_down(&w);
        for args in [
            &["status"][..],
            &["install", "--yes"],
            &["uninstall", "--yes"],
        ] {
            let mut all = args.to_vec();
            all.extend_from_slice(&["-o", "json"]);
            let out = w.run(&all);
            one_document(&out);
            assert_eq!(code(&out), 4, "{args:?}: {}", text(&out));
        }
    }

    /// Namespace from the environment, image from the answers file but beaten by the flag,
    /// cpu-request from the file: in the rendered manifest and in `-v`'s list of sources.
    #[test]
    fn flag_beats_env_beats_answers_file_in_render_and_install() {
        let Some(w) = world(1) else { return };
        let file = Answers::new(
            "namespace: from-file\nimage: registry.local/cadvisor:file\ncpu-request: 150m\n",
        );
        let answers = file.path();
        let mut cmd = w.cmd(&[
            "render",
            "-v",
            "-o",
            "json",
            "--config",
            answers,
            "--image",
            "registry.local/cadvisor:flag",
        ]);
        cmd.env("CADVISOR_SETUP_NAMESPACE", "from-env")
            .env("CADVISOR_SETUP_IMAGE", "registry.local/cadvisor:env");
        let out = cmd.output().expect("render");
        assert_eq!(code(&out), 0, "{}", text(&out));
        let doc = json(&out);
        let ds = doc["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["kind"] == "DaemonSet")
            .expect("DaemonSet")
            .clone();
        assert_eq!(ds["metadata"]["namespace"], "from-env");
        let container = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "registry.local/cadvisor:flag");
        assert_eq!(container["resources"]["requests"]["cpu"], "150m");
        let err = String::from_utf8_lossy(&out.stderr);
        for line in [
            "namespace = from-env (environment)",
            "image = registry.local/cadvisor:flag (flag)",
            "cpu-request = 150m (config file)",
        ] {
            assert!(err.contains(line), "missing `{line}`:\n{err}");
        }

        // install takes the same values (a dry run against the cluster).
        let mut cmd = w.cmd(&[
            "install",
            "--dry-run",
            "-v",
            "-o",
            "json",
            "--config",
            answers,
        ]);
        cmd.env("CADVISOR_SETUP_NAMESPACE", "from-env");
        let out = cmd.output().expect("install --dry-run");
        assert_eq!(code(&out), 0, "{}", text(&out));
        let diff = json(&out)["diff"].as_str().unwrap_or_default().to_string();
        assert!(diff.contains("namespace: from-env"), "{diff}");
        assert!(
            diff.contains("image: registry.local/cadvisor:file"),
            "{diff}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("image = registry.local/cadvisor:file (config file)"),
            "{err}"
        );
        assert!(w.cluster.get("Namespace", "", "from-env").is_none());
    }

    /// kube logs its own `ERROR ... client error (Connect)`; below -vv only our message shows.
    #[test]
    fn api_down_stderr_holds_our_message_once_and_no_kube_log() {
        let Some(w) = world(1) else { return };
        assert_eq!(code(&w.run(&["status"])), 0);
        take_api_down(&w);
        for args in [&["status"][..], &["install", "--yes"]] {
            let out = w.run(args);
            assert_eq!(code(&out), 4, "{}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.matches("error:").count(), 1, "{args:?}: {err}");
            assert!(
                !err.contains("ERROR"),
                "{args:?}: kube's own log line:\n{err}"
            );
            let port = w.cluster.port();
            assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        }
    }
}

/// `status` and `uninstall` against the issue's lifecycle text.
mod lifecycle {
    use super::*;
    use support::managed_fields::managers;

    #[test]
    fn status_before_and_after_install() {
        let Some(w) = world(1) else { return };
        let out = w.run(&["status", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let before = json(&out);
        assert_eq!(before["installed"], false, "{before:#}");
        assert!(before["daemonset"].is_null());
        let out = w.run(&["status"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("not installed"),
            "{}",
            text(&out)
        );

        install_ok(&w, &[]);
        let out = w.run(&["status", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let after = json(&out);
        assert_eq!(after["installed"], true);
        assert_eq!(after["changed"], false);
        let ds = &after["daemonset"];
        assert_eq!(ds["image"], "ghcr.io/google/cadvisor:0.60.5", "{after:#}");
        assert_eq!(ds["version"], "0.60.5");
        assert_eq!(ds["desired"], 1);
        assert_eq!(ds["ready"], 1);
        assert_eq!(ds["ours"], true);
        assert_eq!(ds["last_verification"]["ok"], true, "{after:#}");
        let kinds: Vec<&str> = after["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .filter_map(|o| o["kind"].as_str())
            .collect();
        for kind in ["Namespace", "ServiceAccount", "DaemonSet", "Service"] {
            assert!(kinds.contains(&kind), "{kind} missing: {after:#}");
        }

        let out = w.run(&["status"]);
        let human = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "image:    ghcr.io/google/cadvisor:0.60.5 (version 0.60.5)",
            "1/1 nodes ready",
            "verified: ok",
            "managers: cadvisor-setup",
        ] {
            assert!(human.contains(needle), "missing `{needle}`:\n{human}");
        }
    }

    /// The answers file is read by every command: after an install into `monitoring` from
    /// `--config`, `status` and `uninstall` with the same file find and remove it (they used to
    /// look in `cadvisor`, say "nothing to delete" and exit 0).
    #[test]
    fn uninstall_with_the_answers_file_removes_what_install_with_it_created() {
        let Some(w) = world(1) else { return };
        let answers = Answers::new("namespace: monitoring\ntimeout: 90s\nforce: false\n");
        let config = answers.path();
        let out = w.run(&["install", "--yes", "--config", config, "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(
            w.cluster
                .get("DaemonSet", "monitoring", "cadvisor")
                .is_some()
        );

        let out = w.run(&["status", "--config", config, "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(json(&out)["installed"], true, "{}", text(&out));
        let out = w.run(&["verify", "--config", config, "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));

        let out = w.run(&["uninstall", "--yes", "--config", config, "-v", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert!(
            report["deleted"]
                .to_string()
                .contains("DaemonSet monitoring/cadvisor"),
            "{report:#}"
        );
        assert!(
            w.cluster
                .get("DaemonSet", "monitoring", "cadvisor")
                .is_none()
        );
        assert!(
            w.cluster.get("Namespace", "", "monitoring").is_none(),
            "{report:#}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("namespace = monitoring (config file)"),
            "-v shows where the namespace came from:\n{stderr}"
        );
    }

    /// Their ServiceAccount's labels in the install-race stories.
    fn their_labels() -> Value {
        serde_json::json!({"team": "theirs"})
    }

    /// Just before install's next apply to the ServiceAccount `cadvisor/cadvisor`, someone
    /// deletes it (if there is one) and creates their own, with `labels`.
    fn their_service_account_before_the_next_apply(w: &World, labels: &Value) {
        w.cluster.failures().replace_before_apply(
            "serviceaccounts",
            "cadvisor",
            "cadvisor",
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "cadvisor", "namespace": "cadvisor", "labels": labels}}),
        );
    }

    /// Their ServiceAccount holds only what they wrote: their `labels`, no marks of ours, and
    /// only their manager.
    fn assert_their_service_account_as_they_made_it(w: &World, labels: &Value) {
        let theirs = w
            .cluster
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("their ServiceAccount");
        assert_eq!(&theirs["metadata"]["labels"], labels, "{theirs:#}");
        assert!(theirs["metadata"]["annotations"].is_null(), "{theirs:#}");
        assert_eq!(managers(&theirs), ["kubectl-create"], "{theirs:#}");
    }

    /// An object of ours replaced by someone else's of the same name between install's read
    /// and its write (the fake replaces it just before the apply): the apply names the uid
    /// install read, the API server refuses it (uid is immutable), and theirs is left exactly
    /// as they made it: exit 7, saying so and what was applied before.
    #[test]
    fn an_object_replaced_before_installs_write_is_left_as_it_is() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        // Between install's read of our ServiceAccount and its apply, someone deletes it and
        // creates their own of the same name.
        their_service_account_before_the_next_apply(&w, &their_labels());
        let out = w.run(&["install", "--yes", "-o", "json", "--timeout", "60s"]);
        assert_eq!(code(&out), 7, "{}", text(&out));
        let report = json(&out);
        assert!(
            report["message"].as_str().is_some_and(|m| m
                .contains("ServiceAccount cadvisor/cadvisor was replaced since it was read")
                && m.contains("applied before the failure: ")),
            "{report:#}"
        );
        assert_their_service_account_as_they_made_it(&w, &their_labels());
    }

    /// The other side of the same race: a name free when install read it, taken by someone
    /// else's object before install's create reached it. Install's apply merged into theirs;
    /// it sees another writer in the answer, withdraws what it added (our marks too), and
    /// stops with exit 7, so theirs is left as they made it and `uninstall` would not take it.
    #[test]
    fn an_object_created_by_someone_else_during_installs_create_is_left_to_them() {
        let Some(w) = world(1) else { return };
        their_service_account_before_the_next_apply(&w, &their_labels());
        let out = w.run(&["install", "--yes", "-o", "json", "--timeout", "60s"]);
        assert_eq!(code(&out), 7, "{}", text(&out));
        let report = json(&out);
        assert!(
            report["message"].as_str().is_some_and(|m| m.contains(
                "ServiceAccount cadvisor/cadvisor was created by kubectl-create at the same moment as ours"
            ) && m.contains("was withdrawn")),
            "{report:#}"
        );
        assert_their_service_account_as_they_made_it(&w, &their_labels());
        // Nothing of theirs is ours to delete.
        let undone = uninstall_ok(&w);
        assert!(
            w.cluster
                .get("ServiceAccount", "cadvisor", "cadvisor")
                .is_some(),
            "{undone:#}"
        );
    }

    /// The same race under `--force`, where theirs sets a label of ours to their own value:
    /// `--force` adopts only what install found (on the record, for `uninstall` to restore), so
    /// the create is not forced; the clash is a conflict (exit 7) and their value stays theirs.
    /// (A forced create took their value, and withdrawing it then removed the label.)
    #[test]
    fn force_does_not_take_an_object_created_during_installs_create() {
        let Some(w) = world(1) else { return };
        let labels = serde_json::json!({"team": "theirs", "app.kubernetes.io/name": "their-sa"});
        their_service_account_before_the_next_apply(&w, &labels);
        let out = w.run(&[
            "install",
            "--yes",
            "--force",
            "-o",
            "json",
            "--timeout",
            "60s",
        ]);
        assert_eq!(code(&out), 7, "{}", text(&out));
        assert_their_service_account_as_they_made_it(&w, &labels);
    }

    /// Our label alone is not enough: an object another manager wrote stays, and says why.
    #[test]
    fn uninstall_keeps_a_labelled_object_that_another_manager_wrote() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.create(
            "helm",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "lookalike", "namespace": "cadvisor",
                    "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup"}},
                "data": {"k": "v"}}),
        );
        let report = uninstall_ok(&w);
        assert!(w.daemonset().is_none());
        assert!(
            w.cluster
                .get("ConfigMap", "cadvisor", "lookalike")
                .is_some(),
            "{report:#}"
        );
        assert!(
            report["kept"].to_string().contains("lookalike"),
            "{report:#}"
        );
        assert!(
            w.cluster.get("Namespace", "", "cadvisor").is_some(),
            "the namespace holding it was deleted: {report:#}"
        );
    }
}

/// The ownership model (README "Safety"): what install did not create, uninstall neither deletes
/// nor leaves changed; Pod Security labels of namespaces we do not own are never touched without
/// --force, and --force is undone.
mod safety {
    use super::*;
    use serde_json::json;

    fn user_object(w: &World, manager: &str, obj: Value) {
        w.cluster.create(manager, obj);
    }

    fn kept_text(report: &Value) -> String {
        report["kept"].to_string()
    }

    #[test]
    fn a_users_pod_role_and_custom_resource_survive_uninstall_with_their_namespace() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        user_object(
            &w,
            "kubectl-run",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "debug-shell", "namespace": "cadvisor"},
                "spec": {"containers": [{"name": "sh", "image": "busybox"}]}}),
        );
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "reader", "namespace": "cadvisor"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "gizmo", "namespace": "cadvisor"}, "spec": {"size": 3}}),
        );
        let report = uninstall_ok(&w);
        assert!(w.daemonset().is_none(), "{report:#}");
        assert!(
            w.cluster
                .get("ServiceAccount", "cadvisor", "cadvisor")
                .is_none()
        );
        for (kind, name) in [
            ("Pod", "debug-shell"),
            ("Role", "reader"),
            ("Widget", "gizmo"),
        ] {
            assert!(
                w.cluster.get(kind, "cadvisor", name).is_some(),
                "{kind} {name} was deleted: {report:#}"
            );
            assert!(
                kept_text(&report).contains(&format!("{kind} {name}")),
                "{kind} {name} not named: {report:#}"
            );
        }
        let ns = w.cluster.get("Namespace", "", "cadvisor").expect("kept");
        assert!(ns["metadata"]["deletionTimestamp"].is_null(), "{ns:#}");
    }

    #[test]
    fn a_kind_we_may_not_list_keeps_the_namespace_until_we_may() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "hidden", "namespace": "cadvisor"}}),
        );
        w.cluster.failures().forbid("list", "widgets");
        let report = uninstall_ok(&w);
        assert!(kept_text(&report).contains("widgets"), "{report:#}");
        assert!(kept_text(&report).contains("403"), "{report:#}");
        assert!(w.cluster.get("Widget", "cadvisor", "hidden").is_some());
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_some());

        // Allowed to look, it sees the widget and still keeps the namespace; once the user
        // removed it, the namespace goes.
        w.cluster.failures().allow_all();
        w.cluster.delete("Widget", "cadvisor", "hidden");
        let report = uninstall_ok(&w);
        assert!(
            w.cluster.wait_until(Duration::from_secs(10), |c| c
                .get("Namespace", "", "cadvisor")
                .is_none()),
            "{report:#}"
        );
    }

    #[test]
    fn a_service_account_the_user_made_is_not_adopted_without_force_and_is_restored_after() {
        let Some(w) = world(1) else { return };
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "cadvisor", "namespace": "cadvisor",
                             "labels": {"team": "obs"}}}),
        );
        let sa_before = w
            .cluster
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("seeded");
        let ns_before = w.cluster.get("Namespace", "", "cadvisor").expect("seeded");

        let out = w.run(&["install", "--yes"]);
        assert_exit_saying(&out, 7, "ServiceAccount cadvisor/cadvisor");
        assert_exit_saying(&out, 7, "kubectl-create");
        assert_exit_saying(&out, 7, "nothing was applied");
        assert_eq!(
            w.cluster.get("ServiceAccount", "cadvisor", "cadvisor"),
            Some(sa_before.clone()),
            "refused, yet the ServiceAccount changed"
        );
        assert_eq!(
            w.cluster.get("Namespace", "", "cadvisor"),
            Some(ns_before.clone())
        );
        assert!(
            w.daemonset().is_none(),
            "refused, yet something was applied"
        );

        let report = install_ok(&w, &["--force"]);
        let sa = w
            .cluster
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("sa");
        assert_eq!(
            sa["metadata"]["annotations"]["cadvisor-setup/ownership"], "adopted",
            "{report:#}"
        );
        assert_eq!(sa["automountServiceAccountToken"], false);

        let report = uninstall_ok(&w);
        assert!(
            report["restored"]
                .to_string()
                .contains("ServiceAccount cadvisor/cadvisor"),
            "{report:#}"
        );
        assert!(w.daemonset().is_none());
        let sa = w
            .cluster
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("the user's ServiceAccount was deleted");
        assert_eq!(sa["metadata"]["labels"], sa_before["metadata"]["labels"]);
        assert!(sa["metadata"]["annotations"].is_null(), "{sa:#}");
        assert!(sa["automountServiceAccountToken"].is_null(), "{sa:#}");
        assert_eq!(sa["metadata"]["uid"], sa_before["metadata"]["uid"]);
        let ns = w
            .cluster
            .get("Namespace", "", "cadvisor")
            .expect("the user's namespace was deleted");
        assert_eq!(ns["metadata"]["labels"], ns_before["metadata"]["labels"]);
    }

    /// Our marks copied onto someone else's objects (`kubectl get -o yaml` from a cluster where
    /// we installed, applied here with kubectl) do not make them ours: their managedFields name
    /// other writers and never cadvisor-setup. install refuses the DaemonSet without --force,
    /// and uninstall neither deletes the "created" copy nor "restores" the "adopted" one.
    #[test]
    fn our_marks_copied_onto_objects_we_never_wrote_do_not_make_them_ours() {
        let Some(w) = world(1) else { return };
        let ours = json!({"app.kubernetes.io/managed-by": "cadvisor-setup"});
        user_object(
            &w,
            "kubectl-client-side-apply",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "cadvisor", "namespace": "cadvisor", "labels": ours,
                             "annotations": {"cadvisor-setup/ownership": "created"}}}),
        );
        let sa_before = w
            .cluster
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("seeded");
        let out = w.run(&["install", "--yes", "--timeout", "60s"]);
        assert_exit_saying(&out, 7, "ServiceAccount cadvisor/cadvisor");
        assert_exit_saying(&out, 7, "kubectl-client-side-apply");
        assert_eq!(
            w.cluster.get("ServiceAccount", "cadvisor", "cadvisor"),
            Some(sa_before.clone()),
            "refused, yet the ServiceAccount changed"
        );
        assert!(
            w.daemonset().is_none(),
            "refused, yet something was applied"
        );

        // Copies next to a real install: uninstall deletes what install created, and only that.
        w.cluster.delete("ServiceAccount", "cadvisor", "cadvisor");
        install_ok(&w, &[]);
        user_object(
            &w,
            "kubectl-client-side-apply",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "copied", "namespace": "cadvisor", "labels": ours,
                             "annotations": {"cadvisor-setup/ownership": "created"}},
                "data": {"k": "v"}}),
        );
        user_object(
            &w,
            "kubectl-client-side-apply",
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "copied", "namespace": "cadvisor",
                             "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup", "team": "obs"},
                             "annotations": {"cadvisor-setup/ownership": "adopted",
                                             "cadvisor-setup/previous": "{\"labels\":{\"team\":null}}"}},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "theirs"}}}),
        );
        let config_map = w
            .cluster
            .get("ConfigMap", "cadvisor", "copied")
            .expect("seeded");
        let service = w
            .cluster
            .get("Service", "cadvisor", "copied")
            .expect("seeded");
        let report = uninstall_ok(&w);
        assert!(w.daemonset().is_none(), "{report:#}");
        assert_eq!(
            w.cluster.get("ConfigMap", "cadvisor", "copied"),
            Some(config_map),
            "a ConfigMap install never wrote was deleted: {report:#}"
        );
        assert_eq!(
            w.cluster.get("Service", "cadvisor", "copied"),
            Some(service),
            "a Service install never wrote was \"restored\": {report:#}"
        );
        let kept = kept_text(&report);
        assert!(
            kept.contains("ConfigMap cadvisor/copied") && kept.contains("Service cadvisor/copied"),
            "{report:#}"
        );
    }

    /// An aggregated API whose backend is down (metrics-server, very common) fails its
    /// discovery with 503. uninstall deletes what install created, and keeps the namespace,
    /// since what that API serves in it cannot be known, saying so; not an error after the
    /// deletes that does not say what was deleted.
    #[test]
    fn an_aggregated_api_that_is_down_keeps_the_namespace_and_says_why() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.failures().set_aggregated_api_down(true);
        let report = uninstall_ok(&w);
        assert!(w.daemonset().is_none(), "{report:#}");
        assert!(
            report["deleted"]
                .to_string()
                .contains("DaemonSet cadvisor/cadvisor"),
            "{report:#}"
        );
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_some());
        let kept = kept_text(&report);
        assert!(
            kept.contains("Namespace cadvisor") && kept.contains("metrics.k8s.io/v1beta1"),
            "{report:#}"
        );

        // Back up: the next uninstall finds the namespace empty and deletes it.
        w.cluster.failures().set_aggregated_api_down(false);
        let report = uninstall_ok(&w);
        assert!(
            report["deleted"].to_string().contains("Namespace cadvisor"),
            "{report:#}"
        );
    }

    fn labels(w: &World, namespace: &str) -> Value {
        w.cluster
            .get("Namespace", "", namespace)
            .expect("namespace")["metadata"]["labels"]
            .clone()
    }

    /// A real API server with the default level `baseline` refuses cAdvisor's pods in an
    /// unlabelled namespace (shared/reference/real-cluster.md); install finds out before it
    /// applies anything and never relabels kube-system without --force.
    #[test]
    fn kube_system_under_a_baseline_default_is_refused_then_forced_then_restored_exactly() {
        let Some(w) = world(1) else { return };
        w.cluster.set_pod_security_default("baseline");
        let before = labels(&w, "kube-system");
        let out = w.run(&["install", "--yes", "-n", "kube-system"]);
        assert_exit_saying(
            &out,
            7,
            "namespace kube-system would refuse cAdvisor's pods",
        );
        assert_exit_saying(&out, 7, "\"baseline\" (the cluster's default");
        assert_exit_saying(&out, 7, "hostPath volumes");
        assert_exit_saying(&out, 7, "--force");
        assert_eq!(labels(&w, "kube-system"), before);
        assert!(
            w.cluster
                .get("DaemonSet", "kube-system", "cadvisor")
                .is_none(),
            "refused, yet the DaemonSet was applied"
        );

        install_ok(&w, &["-n", "kube-system", "--force"]);
        assert_eq!(
            labels(&w, "kube-system")["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let out = w.run(&["uninstall", "--yes", "-n", "kube-system", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(labels(&w, "kube-system"), before, "{}", text(&out));
        let ns = w.cluster.get("Namespace", "", "kube-system").expect("kept");
        assert!(ns["metadata"]["deletionTimestamp"].is_null());
        assert!(ns["metadata"]["annotations"].is_null(), "{ns:#}");
    }

    #[test]
    fn a_baseline_labelled_namespace_keeps_its_labels_and_force_is_undone_exactly() {
        let Some(w) = world(1) else { return };
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "monitoring", "labels": {
                    "team": "obs",
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted"}}}),
        );
        let before = labels(&w, "monitoring");
        let out = w.run(&["install", "--yes", "-n", "monitoring"]);
        assert_exit_saying(
            &out,
            7,
            "\"baseline\" (label pod-security.kubernetes.io/enforce)",
        );
        assert_eq!(labels(&w, "monitoring"), before);

        install_ok(&w, &["-n", "monitoring", "--force"]);
        let during = labels(&w, "monitoring");
        assert_eq!(during["pod-security.kubernetes.io/warn"], "privileged");
        assert_eq!(during["team"], "obs");
        let out = w.run(&["uninstall", "--yes", "-n", "monitoring"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(labels(&w, "monitoring"), before, "{}", text(&out));
    }

    #[test]
    fn our_own_namespace_under_a_baseline_default_is_admitted_and_the_fake_refuses_others() {
        let Some(w) = world(1) else { return };
        w.cluster.set_pod_security_default("baseline");
        install_ok(&w, &[]);
        // What a hand-made DaemonSet meets in an unlabelled namespace: FailedCreate, no pods.
        w.cluster.create(
            "kubectl-create",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "probe", "namespace": "plain"},
                "spec": {"selector": {"matchLabels": {"app": "probe"}},
                         "template": {"metadata": {"labels": {"app": "probe"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                               "volumes": [{"name": "sys", "hostPath": {"path": "/sys"}}]}}}}),
        );
        assert!(
            w.cluster.wait_until(Duration::from_secs(10), |c| c
                .events_for("plain", "probe")
                .iter()
                .any(|e| e["reason"] == "FailedCreate"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("violates PodSecurity \"baseline:latest\": hostPath volumes (volume \"sys\")")))),
            "{:#?}",
            w.cluster.events_for("plain", "probe")
        );
        assert!(w.cluster.list("Pod", Some("plain")).is_empty());
    }

    #[test]
    fn uninstall_returns_only_when_our_pods_are_gone_and_says_which_are_left_on_timeout() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        // A user object keeps the namespace, so only the pod wait can hold uninstall.
        user_object(
            &w,
            "kubectl-create",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "mine", "namespace": "cadvisor"}}),
        );
        w.cluster
            .failures()
            .set_pod_stop_delay(Duration::from_secs(60));
        let out = w.run(&["uninstall", "--yes", "--timeout", "2s"]);
        assert_eq!(code(&out), 5, "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("still terminating: Pod cadvisor/cadvisor-"),
            "{err}"
        );
        assert!(err.contains("deleted DaemonSet cadvisor/cadvisor"), "{err}");

        w.cluster
            .failures()
            .set_pod_stop_delay(Duration::from_millis(1500));
        let out = w.run(&["uninstall", "--yes", "--timeout", "30s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let pods = w.cluster.list("Pod", Some("cadvisor"));
        assert!(
            pods.is_empty(),
            "uninstall returned with pods left: {pods:#?}"
        );
    }

    #[test]
    fn status_after_a_partial_uninstall_says_partially_installed_and_what_is_left() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &[]);
        w.cluster.delete("DaemonSet", "cadvisor", "cadvisor");
        let out = w.run(&["status", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert_eq!(report["installed"], false, "{report:#}");
        assert_eq!(report["state"], "partially installed", "{report:#}");
        assert!(
            report["left"]
                .to_string()
                .contains("ServiceAccount cadvisor/cadvisor"),
            "{report:#}"
        );
        let out = w.run(&["status"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("partially installed"),
            "{}",
            text(&out)
        );
    }
}

mod kubeconfig_list {
    use super::*;

    /// `KUBECONFIG=a:b` is merged as kubectl merges it: the context in one file, the cluster and
    /// credentials in the other.
    #[test]
    fn a_split_kubeconfig_list_is_merged_like_kubectl() {
        let Some(w) = world(1) else { return };
        let yaml = std::fs::read_to_string(w.cluster.kubeconfig_path()).expect("kubeconfig");
        let full: Value = serde_saphyr::from_str(&yaml).expect("kubeconfig YAML");
        let dir = tempfile::tempdir().expect("tempdir");
        let contexts = dir.path().join("contexts");
        let credentials = dir.path().join("credentials");
        let mut first = full.clone();
        for key in ["clusters", "users"] {
            first.as_object_mut().expect("map").remove(key);
        }
        let mut second = full.clone();
        for key in ["contexts", "current-context"] {
            second.as_object_mut().expect("map").remove(key);
        }
        std::fs::write(&contexts, first.to_string()).expect("write");
        std::fs::write(&credentials, second.to_string()).expect("write");
        let list = std::env::join_paths([&contexts, &credentials]).expect("join");

        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("KUBECONFIG", &list)
            .arg("--host-root")
            .arg(w.nodes[0].root.path())
            .args(["status", "-o", "json"]);
        let out = assert_cmd::Command::from_std(cmd)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run");
        assert_eq!(code(&out), 0, "{}", text(&out));
        let server = json(&out)["server"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            server.starts_with(&w.cluster.server_url()),
            "{}",
            text(&out)
        );
    }
}

/// Snapshots of `status` and `uninstall` reports, JSON and human, in their main outcomes
/// against the fake cluster. Volatile values go through `support::snapshot::normalise`.
mod report_snapshots {
    use super::*;
    use serde_json::json;
    use support::snapshot;

    /// `out` normalised (`support::snapshot`) with this world's volatile literals: the host
    /// root, the kubeconfig's directory and cAdvisor's pod names.
    pub(crate) fn normalised(w: &World, out: &Output, json: bool) -> String {
        let mut known = vec![
            (
                w.nodes[0].root.path().display().to_string(),
                "[HOST_ROOT]".to_string(),
            ),
            (
                w.cluster
                    .kubeconfig_path()
                    .parent()
                    .expect("kubeconfig dir")
                    .display()
                    .to_string(),
                "[KUBECONFIG_DIR]".to_string(),
            ),
        ];
        for pod in w.cluster.list("Pod", Some("cadvisor")) {
            if let Some(name) = pod["metadata"]["name"].as_str() {
                known.push((name.to_string(), "[CADVISOR_POD]".to_string()));
            }
        }
        let known: Vec<(&str, &str)> = known
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if json {
            snapshot::json(out, &known)
        } else {
            snapshot::human(out, &known)
        }
    }

    /// `args` with `-o json`, then without: (JSON snapshot text, human snapshot text).
    fn both(w: &World, args: &[&str], expected: i32) -> (String, String) {
        let mut with_json = args.to_vec();
        with_json.extend_from_slice(&["-o", "json"]);
        let out = w.run(&with_json);
        assert_eq!(code(&out), expected, "{}", text(&out));
        let json = normalised(w, &out, true);
        let out = w.run(args);
        assert_eq!(code(&out), expected, "{}", text(&out));
        (json, normalised(w, &out, false))
    }

    #[test]
    fn status_not_installed_installed_and_partially_installed() {
        let Some(w) = world(1) else { return };
        let (json, human) = both(&w, &["status"], 0);
        insta::assert_snapshot!("status_not_installed_json", json);
        insta::assert_snapshot!("status_not_installed_human", human);

        install_ok(&w, &[]);
        let (json, human) = both(&w, &["status"], 0);
        insta::assert_snapshot!("status_installed_json", json);
        insta::assert_snapshot!("status_installed_human", human);

        // An interrupted uninstall: our DaemonSet gone, the rest of our objects left.
        w.cluster.delete("DaemonSet", "cadvisor", "cadvisor");
        assert!(
            w.cluster
                .wait_until(Duration::from_secs(30), |_| w.daemonset().is_none())
        );
        let (json, human) = both(&w, &["status"], 0);
        insta::assert_snapshot!("status_partially_installed_json", json);
        insta::assert_snapshot!("status_partially_installed_human", human);
    }

    /// A world where uninstall deletes what install created, restores the ServiceAccount the
    /// user made (adopted with --force) and keeps a labelled ConfigMap another manager wrote.
    fn installed_over_the_users_objects() -> Option<World> {
        let w = world(1)?;
        w.cluster.create(
            "kubectl-create",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "cadvisor", "namespace": "cadvisor",
                             "labels": {"team": "obs"}}}),
        );
        install_ok(&w, &["--force"]);
        w.cluster.create(
            "helm",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "lookalike", "namespace": "cadvisor",
                    "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup"}},
                "data": {"k": "v"}}),
        );
        Some(w)
    }

    #[test]
    fn uninstall_deleted_restored_kept_then_nothing_to_delete() {
        let Some(w) = installed_over_the_users_objects() else {
            return;
        };
        let out = w.run(&["uninstall", "--yes", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("uninstall_json", normalised(&w, &out, true));
        // Again: nothing of ours is left; the ConfigMap (and its namespace) still are.
        let (json, human) = both(&w, &["uninstall", "--yes"], 0);
        insta::assert_snapshot!("uninstall_nothing_to_delete_json", json);
        insta::assert_snapshot!("uninstall_nothing_to_delete_human", human);

        // The same world again, for the human report of the first uninstall.
        let Some(w) = installed_over_the_users_objects() else {
            return;
        };
        let out = w.run(&["uninstall", "--yes"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("uninstall_human", normalised(&w, &out, false));
    }

    /// Install's reports in one world: the first run (JSON; the human first run is the next
    /// test, it needs a fresh world), the rerun that changes nothing, `verify` passing through
    /// the API server, a dry run that would change the image (the diff), and a conflict with
    /// another field manager (exit 7).
    #[test]
    fn install_applied_unchanged_verified_dry_run_and_conflict() {
        let Some(w) = world(1) else { return };
        if !real::require("kubectl", real::have_tool("kubectl")) {
            return;
        }
        let out = w.run(&["install", "--yes", "--timeout", "60s", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let first = json(&out);
        assert_eq!(first["changed"], true, "{first:#}");
        insta::assert_snapshot!("install_applied_json", normalised(&w, &out, true));

        let (json_doc, human) = both(&w, &["install", "--yes", "--timeout", "60s"], 0);
        insta::assert_snapshot!("install_unchanged_json", json_doc);
        insta::assert_snapshot!("install_unchanged_human", human);

        let (json_doc, human) = both(&w, &["verify", "--timeout", "20s"], 0);
        insta::assert_snapshot!("verify_cluster_pass_json", json_doc);
        insta::assert_snapshot!("verify_cluster_pass_human", human);

        let (json_doc, human) = both(
            &w,
            &[
                "install",
                "--dry-run",
                "--image",
                "ghcr.io/google/cadvisor:0.60.4",
            ],
            0,
        );
        insta::assert_snapshot!("install_dry_run_diff_json", json_doc);
        insta::assert_snapshot!("install_dry_run_diff_human", human);

        helm_takes_the_image(&w);
        let (json_doc, human) = both(&w, &["install", "--yes", "--timeout", "60s"], 7);
        insta::assert_snapshot!("install_conflict_json", json_doc);
        insta::assert_snapshot!("install_conflict_human", human);
    }

    /// The human report of a first install: what was applied and the rollout on stderr, the
    /// verification per node and `done:` on stdout.
    #[test]
    fn install_applied_human() {
        let Some(w) = world(1) else { return };
        let out = w.run(&["install", "--yes", "--timeout", "60s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("install_applied_human", normalised(&w, &out, false));
    }
}

/// Clusters whose nodes differ (issue 12): node facts through the API server, one DaemonSet per
/// node group, and installing from a machine that is not a node.
mod mixed {
    use super::*;
    use support::host_root::{DEFAULT_SOCKET, HostRootDir, K3S_SOCKET};

    /// A node of `kind` with its own host root and a real containerd at that layout's socket,
    /// running one labelled pod container named after the node.
    fn layout_node(kind: &str, name: &str) -> (Node, SimNode) {
        let root = HostRootDir::new();
        root.write("/etc/hostname", &format!("{name}\n"));
        let (socket, sim) = match kind {
            "microk8s" => {
                root.microk8s("v1.33.4", "classic", "8000");
                (MICROK8S_SOCKET, SimNode::microk8s(name, root.path()))
            }
            "kubeadm" => {
                root.kubeadm(&format!("unix://{DEFAULT_SOCKET}"), "systemd");
                (DEFAULT_SOCKET, SimNode::kubeadm(name, root.path()))
            }
            "k3s" => {
                root.k3s();
                (K3S_SOCKET, SimNode::k3s(name, root.path()))
            }
            other => panic!("no layout {other}"),
        };
        let containerd = Containerd::start(root.path(), socket);
        containerd.run_pod_container("c0", &format!("web-{name}"), "default", "web");
        (
            Node {
                root,
                _containerd: containerd,
            },
            sim,
        )
    }

    /// A cluster of `(kind, name)` nodes; the commands run on the first one.
    pub(crate) fn mixed_world(nodes: &[(&str, &str)]) -> Option<World> {
        if !real::require_containerd() {
            return None;
        }
        let (roots, sims): (Vec<Node>, Vec<SimNode>) =
            nodes.iter().map(|(k, n)| layout_node(k, n)).unzip();
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(sims));
        Some(World {
            nodes: roots,
            cluster,
        })
    }

    /// The binary on `root` (not one of the nodes' roots) with the fake cluster's kubeconfig.
    fn run_on(w: &World, root: &std::path::Path, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .arg("--host-root")
            .arg(root)
            .arg("--kubeconfig")
            .arg(w.cluster.kubeconfig_path())
            .args(args);
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.timeout(Duration::from_secs(120));
        cmd.output().expect("run cadvisor-setup")
    }

    fn daemonsets(w: &World) -> Vec<Value> {
        let mut all: Vec<Value> = w
            .cluster
            .list("DaemonSet", Some("cadvisor"))
            .into_iter()
            .filter(|d| d["metadata"]["deletionTimestamp"].is_null())
            .collect();
        all.sort_by_key(|d| {
            d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        all
    }

    fn pinned_to(ds: &Value) -> Vec<String> {
        let terms = &ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        let expr = &terms[0]["matchExpressions"][0];
        assert_eq!(expr["key"], "kubernetes.io/hostname", "{ds:#}");
        assert_eq!(expr["operator"], "In", "{ds:#}");
        expr["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn runtime_dir(ds: &Value) -> String {
        ds["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "runtime")
            .and_then(|v| v["hostPath"]["path"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    fn passed_nodes(report: &Value) -> Vec<String> {
        let nodes = report["verification"]["nodes"].as_array().expect("nodes");
        assert!(nodes.iter().all(|n| n["passed"] == true), "{report:#}");
        nodes
            .iter()
            .map(|n| n["node"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Two MicroK8s nodes and a kubeadm node: two DaemonSets, each pinned to its nodes and
    /// mounting its own socket's directory; the Service selects both; every node verified; a
    /// rerun changes nothing; status and verify see both; uninstall removes both.
    #[test]
    fn two_microk8s_nodes_and_a_kubeadm_node_get_two_daemonsets_every_node_verified() {
        let Some(w) = mixed_world(&[
            ("microk8s", "node-1"),
            ("microk8s", "node-2"),
            ("kubeadm", "node-3"),
        ]) else {
            return;
        };
        let report = install_ok(&w, &[]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2", "node-3"]);
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 2, "{dss:#?}");
        let main = &dss[0];
        let group = &dss[1];
        assert_eq!(main["metadata"]["name"], "cadvisor");
        assert_eq!(pinned_to(main), ["node-1", "node-2"]);
        assert_eq!(runtime_dir(main), "/var/snap/microk8s/common/run");
        let group_name = group["metadata"]["name"].as_str().expect("name");
        assert!(group_name.starts_with("cadvisor-"), "{group_name}");
        assert_eq!(pinned_to(group), ["node-3"]);
        assert_eq!(runtime_dir(group), "/run/containerd");
        assert!(
            group["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .expect("args")
                .contains(&Value::from(
                    "--raw_cgroup_prefix_whitelist=/kubepods.slice"
                )),
            "{group:#}"
        );
        // One pod per node, each from its own group's DaemonSet.
        let pods = w.cluster.list("Pod", Some("cadvisor"));
        let owner_of = |node: &str| {
            pods.iter()
                .find(|p| p["spec"]["nodeName"] == node)
                .map(|p| p["metadata"]["ownerReferences"][0]["name"].clone())
        };
        assert_eq!(owner_of("node-1"), Some(Value::from("cadvisor")));
        assert_eq!(owner_of("node-3"), Some(Value::from(group_name)));
        assert_eq!(pods.len(), 3);
        // The Service selects every group's pods.
        let svc = w
            .cluster
            .get("Service", "cadvisor", "cadvisor")
            .expect("svc");
        assert_eq!(
            svc["spec"]["selector"],
            serde_json::json!({"app.kubernetes.io/name": "cadvisor"})
        );
        assert_eq!(report["nodes"]["groups"].as_array().map(Vec::len), Some(2));
        assert_eq!(report["group_rollouts"][0]["name"], group_name);

        let again = install_ok(&w, &[]);
        assert_eq!(again["changed"], false, "{again:#}");
        // The same from the kubeadm node: `cadvisor` stays with the group it serves.
        let from_kubeadm = run_on(
            &w,
            w.nodes[2].root.path(),
            &["install", "--yes", "-o", "json", "--timeout", "60s"],
        );
        assert_eq!(code(&from_kubeadm), 0, "{}", text(&from_kubeadm));
        let from_kubeadm = json(&from_kubeadm);
        assert_eq!(from_kubeadm["changed"], false, "{from_kubeadm:#}");
        assert_eq!(from_kubeadm["nodes"]["nodes"][2]["this_host"], true);

        let verified = w.run(&["verify", "-o", "json", "--timeout", "60s"]);
        assert_eq!(code(&verified), 0, "{}", text(&verified));
        assert_eq!(
            passed_nodes(&json(&verified)),
            ["node-1", "node-2", "node-3"]
        );
        let status = w.run(&["status", "-o", "json"]);
        let status = json(&status);
        assert_eq!(status["daemonset"]["name"], "cadvisor");
        assert_eq!(status["group_daemonsets"][0]["name"], group_name);
        assert_eq!(status["group_daemonsets"][0]["ready"], 1);

        uninstall_ok(&w);
        assert!(daemonsets(&w).is_empty());
        assert!(w.cluster.list("Pod", Some("cadvisor")).is_empty());
    }

    /// An administrator's workstation: no runtime, no kubelet, only a kubeconfig. `detect
    /// --cluster` shows each node's facts and the groups, `render --cluster` prints both
    /// DaemonSets and applies nothing, `install --yes` installs and verifies every node.
    /// A node whose kubelet reports a runtime endpoint no socket check accepts (`..`, a control
    /// character): that node is left out with a warning naming it, and the other nodes are
    /// planned; not exit 2 "invalid --containerd-socket", a flag nobody typed.
    #[test]
    fn a_node_with_an_unusable_runtime_endpoint_is_left_out_not_the_whole_install() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("k3s", "node-2")]) else {
            return;
        };
        for endpoint in [
            "unix:///run/x/../../etc/evil.sock",
            "unix:///run/\u{1b}[31m.sock",
        ] {
            w.cluster
                .update_node("node-2", |n| n.runtime_endpoint = endpoint.to_string());
            let workstation = HostRootDir::new();
            let out = run_on(
                &w,
                workstation.path(),
                &["install", "--yes", "--dry-run", "--timeout", "30s"],
            );
            assert_eq!(code(&out), 0, "{endpoint:?}: {}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("node node-2: its runtime endpoint")
                    && err.contains("no DaemonSet serves it"),
                "{endpoint:?}: {err}"
            );
            assert!(!err.contains("--containerd-socket"), "{err}");
        }
    }

    #[test]
    fn from_a_workstation_with_only_a_kubeconfig_every_node_is_installed_and_verified() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("k3s", "node-2")]) else {
            return;
        };
        let workstation = HostRootDir::new();
        let detected = run_on(
            &w,
            workstation.path(),
            &["detect", "--cluster", "-o", "json"],
        );
        assert_eq!(code(&detected), 0, "{}", text(&detected));
        let detected = json(&detected);
        let nodes = detected["nodes"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2, "{detected:#}");
        assert_eq!(nodes[1]["distribution"], "k3s");
        assert_eq!(
            nodes[1]["distribution_source"],
            "kubelet version v1.33.4+k3s1"
        );
        assert_eq!(nodes[1]["socket"], K3S_SOCKET);
        assert_eq!(
            nodes[1]["socket_source"],
            "configz containerRuntimeEndpoint"
        );
        assert_eq!(nodes[1]["cgroup_driver"], "systemd");
        assert_eq!(nodes[1]["arch"], "arm64");
        assert_eq!(nodes[1]["runtime_version"], "2.0.5-k3s1");
        assert_eq!(nodes[0]["this_host"], false);
        assert_eq!(
            detected["nodes"]["groups"].as_array().map(Vec::len),
            Some(2)
        );
        let human = run_on(&w, workstation.path(), &["detect", "--cluster"]);
        let shown = String::from_utf8_lossy(&human.stdout);
        for needle in [
            "node-2: k3s (kubelet version v1.33.4+k3s1), containerd 2.0.5-k3s1, linux/arm64",
            "socket: /run/k3s/containerd/containerd.sock (configz containerRuntimeEndpoint)",
            "groups (2 DaemonSets):",
        ] {
            assert!(
                shown.contains(needle),
                "missing {needle:?}:\n{}",
                text(&human)
            );
        }

        let rendered = run_on(&w, workstation.path(), &["render", "--cluster"]);
        assert_eq!(code(&rendered), 0, "{}", text(&rendered));
        let yaml = String::from_utf8_lossy(&rendered.stdout);
        assert_eq!(yaml.matches("kind: DaemonSet").count(), 2, "{yaml}");
        assert!(yaml.contains("path: \"/run/k3s/containerd\""), "{yaml}");
        assert!(daemonsets(&w).is_empty(), "render applied something");

        let out = run_on(
            &w,
            workstation.path(),
            &["install", "--yes", "-o", "json", "--timeout", "60s"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(passed_nodes(&json(&out)), ["node-1", "node-2"]);
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 2);
        let dirs: Vec<String> = dss.iter().map(runtime_dir).collect();
        assert!(
            dirs.contains(&"/run/k3s/containerd".to_string()),
            "{dirs:?}"
        );
        assert!(
            dirs.contains(&"/var/snap/microk8s/common/run".to_string()),
            "{dirs:?}"
        );
    }

    fn resource_versions(w: &World) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (kind, ns) in [
            ("Namespace", ""),
            ("ServiceAccount", "cadvisor"),
            ("Service", "cadvisor"),
            ("DaemonSet", "cadvisor"),
        ] {
            for o in w.cluster.list(kind, (!ns.is_empty()).then_some(ns)) {
                if kind == "Namespace" && o["metadata"]["name"] != "cadvisor" {
                    continue;
                }
                out.push((
                    format!(
                        "{kind} {}",
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    o["metadata"]["resourceVersion"].clone(),
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A kubeadm node joins: the rerun adds it to the kubeadm group's DaemonSet and changes
    /// nothing else; when the kubeadm nodes leave, the rerun deletes their group's DaemonSet.
    #[test]
    fn a_node_joining_lands_in_its_group_and_an_emptied_group_is_removed() {
        let Some(mut w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        install_ok(&w, &[]);
        let group = daemonsets(&w)[1]["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let before = resource_versions(&w);

        let (root, sim) = layout_node("kubeadm", "node-3");
        w.cluster.add_node(sim);
        w.nodes.push(root);
        let report = install_ok(&w, &[]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2", "node-3"]);
        let after = resource_versions(&w);
        let changed: Vec<&String> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b != a)
            .map(|(b, _)| &b.0)
            .collect();
        assert_eq!(before.len(), after.len());
        assert_eq!(
            changed,
            [&format!("DaemonSet {group}")],
            "{before:?}\n{after:?}"
        );
        let dss = daemonsets(&w);
        assert_eq!(pinned_to(&dss[1]), ["node-2", "node-3"]);
        assert_eq!(pinned_to(&dss[0]), ["node-1"]);

        w.cluster.remove_node("node-2");
        w.cluster.remove_node("node-3");
        // A dry run says which group DaemonSet would go, and deletes nothing.
        let dry = w.run(&["install", "--dry-run", "-o", "json"]);
        assert_eq!(code(&dry), 0, "{}", text(&dry));
        let dry = json(&dry);
        assert_eq!(
            dry["prune"],
            serde_json::json!([format!("DaemonSet cadvisor/{group}")]),
            "{dry:#}"
        );
        assert_eq!(dry["changed"], true);
        assert_eq!(daemonsets(&w).len(), 2);
        let report = install_ok(&w, &[]);
        assert_eq!(passed_nodes(&report), ["node-1"]);
        assert_eq!(
            report["pruned"],
            serde_json::json!([format!("DaemonSet cadvisor/{group}")])
        );
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 1, "{dss:#?}");
        // One group again: `cadvisor` exactly as a single-layout install renders it.
        assert!(
            dss[0]["spec"]["template"]["spec"]["affinity"].is_null(),
            "{:#}",
            dss[0]
        );
    }

    /// With node groups installed, a kubeconfig that may not list nodes stops install (exit 4)
    /// before anything is applied: one unpinned DaemonSet would land on every group's nodes.
    #[test]
    fn without_the_node_list_install_leaves_installed_groups_alone() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        install_ok(&w, &[]);
        let before = resource_versions(&w);
        w.cluster.failures().forbid("list", "nodes");
        let out = w.run(&["install", "--yes", "--timeout", "60s"]);
        assert_exit_saying(&out, 4, "cannot read the cluster's nodes");
        assert_exit_saying(
            &out,
            4,
            "node groups are installed (DaemonSet cadvisor/cadvisor-",
        );
        assert_eq!(resource_versions(&w), before, "something was applied");
    }

    /// A DaemonSet named like a node group's but not created by install (another tool wrote it,
    /// our label or not) is never pruned.
    #[test]
    fn a_group_named_daemonset_install_did_not_create_is_never_pruned() {
        let Some(w) = world(1) else { return };
        install_ok(&w, &["--no-verify"]);
        for (name, labels) in [
            ("cadvisor-0badcafe", serde_json::json!({"app": "x"})),
            (
                "cadvisor-deadbeef",
                serde_json::json!({"app": "x", "app.kubernetes.io/managed-by": "cadvisor-setup"}),
            ),
        ] {
            w.cluster.create(
                "helm",
                serde_json::json!({
                    "apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": name, "namespace": "cadvisor", "labels": labels},
                    "spec": {
                        "selector": {"matchLabels": {"app": "x"}},
                        "template": {"metadata": {"labels": {"app": "x"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
                    }
                }),
            );
        }
        let report = install_ok(&w, &["--no-verify"]);
        assert!(report.get("pruned").is_none(), "{report:#}");
        for name in ["cadvisor-0badcafe", "cadvisor-deadbeef"] {
            assert!(
                w.cluster.get("DaemonSet", "cadvisor", name).is_some(),
                "{name} was deleted"
            );
        }
    }

    /// A Windows node is in no group (the DaemonSets select Linux nodes): one DaemonSet as
    /// before, every Linux node verified, a warning naming the Windows node.
    #[test]
    fn a_windows_node_is_left_to_itself() {
        let Some(w) = shared_world(1, |_| {}) else {
            return;
        };
        w.nodes[0].root.write("/etc/hostname", "node-1\n");
        let mut windows = SimNode::kubeadm("win-1", w.nodes[0].root.path());
        windows.os = "windows".into();
        windows.runtime_endpoint = "npipe:////./pipe/containerd-containerd".into();
        windows.annotations.clear();
        w.cluster.add_node(windows);
        let out = w.run(&["install", "--yes", "-o", "json", "--timeout", "60s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(passed_nodes(&json(&out)), ["node-1"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                "node win-1: runs windows; cAdvisor's DaemonSets run on Linux nodes only"
            ),
            "{}",
            text(&out)
        );
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 1);
        assert!(dss[0]["spec"]["template"]["spec"]["affinity"].is_null());
        let detected = w.run(&["detect", "--cluster"]);
        assert_eq!(code(&detected), 0, "{}", text(&detected));
    }

    /// RBAC forbids one node's configz: that node falls back to its distribution's defaults,
    /// and the report says so, naming the node, the error and where its facts came from.
    #[test]
    fn a_node_whose_configz_is_forbidden_falls_back_and_the_report_names_it() {
        let Some(w) = shared_world(2, |_| {}) else {
            return;
        };
        // The commands run on node-1 (its kubelet's name).
        w.nodes[0].root.write("/etc/hostname", "node-1\n");
        w.cluster.failures().forbid_configz("node-2");
        let out = w.run(&["install", "--yes", "-o", "json", "--timeout", "60s"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2"]);
        let node2 = &report["nodes"]["nodes"][1];
        assert_eq!(node2["name"], "node-2");
        assert_eq!(node2["fallback"], true, "{report:#}");
        assert!(
            node2["configz_error"]
                .as_str()
                .is_some_and(|e| e.contains("403") || e.contains("forbidden")),
            "{node2:#}"
        );
        assert!(
            node2["socket_source"]
                .as_str()
                .is_some_and(|s| s.starts_with("microk8s default (")),
            "{node2:#}"
        );
        assert_eq!(report["nodes"]["nodes"][0]["this_host"], true);
        assert_eq!(report["nodes"]["nodes"][0]["fallback"], false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning: node node-2: configz not read"),
            "{}",
            text(&out)
        );
        // One layout: the single `cadvisor` DaemonSet, no affinity.
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 1);
        assert!(dss[0]["spec"]["template"]["spec"]["affinity"].is_null());
    }

    /// `detect --cluster` from a workstation, one node's configz forbidden: the per-node table
    /// with the source of every fact, the fallback named, and the groups.
    #[test]
    fn detect_cluster_from_a_workstation_snapshots() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        w.cluster.failures().forbid_configz("node-2");
        let workstation = HostRootDir::new();
        workstation.write("/etc/hostname", "workstation\n");
        let root = workstation.path().display().to_string();
        let kubeconfig_dir = w
            .cluster
            .kubeconfig_path()
            .parent()
            .expect("dir")
            .display()
            .to_string();
        let known = [
            (root.as_str(), "[HOST_ROOT]"),
            (kubeconfig_dir.as_str(), "[KUBECONFIG_DIR]"),
        ];
        let out = run_on(
            &w,
            workstation.path(),
            &["detect", "--cluster", "-o", "json"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!(
            "detect_cluster_workstation_json",
            support::snapshot::json(&out, &known)
        );
        let out = run_on(&w, workstation.path(), &["detect", "--cluster"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!(
            "detect_cluster_workstation_human",
            support::snapshot::human(&out, &known)
        );
    }

    /// `render --cluster --out-dir`: one file per object, the further group's DaemonSet in a
    /// file named after it, listed in the kustomization.
    #[test]
    fn render_cluster_out_dir_writes_each_groups_daemonset() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("k3s", "node-2")]) else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = dir.path().join("deploy");
        let out = w.run(&[
            "render",
            "--cluster",
            "--out-dir",
            out_dir.to_str().expect("utf-8"),
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let mut files: Vec<String> = std::fs::read_dir(&out_dir)
            .expect("out dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        files.sort();
        let group = files
            .iter()
            .find(|f| f.starts_with("daemonset-cadvisor-"))
            .unwrap_or_else(|| panic!("no group DaemonSet file: {files:?}"))
            .clone();
        assert!(files.contains(&"daemonset.yaml".to_string()), "{files:?}");
        let kustomization =
            std::fs::read_to_string(out_dir.join("kustomization.yaml")).expect("kustomization");
        assert!(kustomization.contains(&group), "{kustomization}");
        let text = std::fs::read_to_string(out_dir.join(&group)).expect("group file");
        assert!(text.contains("/run/k3s/containerd"), "{text}");
        assert!(text.contains("\"node-2\""), "{text}");
        assert!(daemonsets(&w).is_empty(), "render applied something");
    }

    /// Every node's configz is read, concurrently but never more than `--parallel` at once.
    #[test]
    fn configz_is_read_for_every_node_at_most_parallel_at_once() {
        let Some(w) = shared_world(9, |_| {}) else {
            return;
        };
        let latency = Duration::from_millis(200);
        w.cluster.failures().set_proxy_latency(latency);
        let out = w.run(&[
            "install",
            "--yes",
            "--no-verify",
            "--parallel",
            "3",
            "--timeout",
            "60s",
            "-o",
            "json",
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let peak = w.cluster.proxy_peak();
        assert_eq!(
            peak, 3,
            "at most 3 proxy requests at once, and more than one"
        );
        let mut read: Vec<String> = w
            .cluster
            .requests()
            .iter()
            .filter_map(|r| {
                r.path
                    .strip_prefix("/api/v1/nodes/")
                    .and_then(|p| p.strip_suffix("/proxy/configz"))
                    .map(str::to_string)
            })
            .collect();
        read.sort();
        read.dedup();
        assert_eq!(read.len(), 9, "{read:?}");
        // `render --cluster` and `detect --cluster` take the same bound.
        for command in ["render", "detect"] {
            w.cluster.reset_proxy_peak();
            let out = w.run(&[command, "--cluster", "--parallel", "2"]);
            assert_eq!(code(&out), 0, "{}", text(&out));
            assert!(
                w.cluster.proxy_peak() <= 2,
                "{command}: {}",
                w.cluster.proxy_peak()
            );
        }
    }

    /// On a node, host detection leads for that node; a kubelet configz that says otherwise is
    /// a warning naming both sockets.
    #[test]
    fn a_configz_disagreeing_with_this_hosts_detection_is_a_warning_naming_both() {
        let Some(w) = shared_world(1, |n| {
            n.runtime_endpoint = "unix:///run/elsewhere/containerd.sock".into();
        }) else {
            return;
        };
        let out = w.run(&["detect", "--cluster", "-o", "json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "this host's detection found runtime socket /var/snap/microk8s/common/run/containerd.sock, but the kubelet's configz says /run/elsewhere/containerd.sock"
            ),
            "{}",
            text(&out)
        );
        let report = json(&out);
        assert_eq!(report["nodes"]["nodes"][0]["this_host"], true);
        assert_eq!(report["nodes"]["nodes"][0]["socket"], MICROK8S_SOCKET);
    }

    // ---- --label-nodes ---------------------------------------------------------------------

    const GROUP_LABEL: &str = "cadvisor-setup/group";

    fn node_object(w: &World, name: &str) -> Value {
        w.cluster.get("Node", "", name).expect("node")
    }

    fn group_label(w: &World, name: &str) -> Option<String> {
        node_object(w, name)["metadata"]["labels"][GROUP_LABEL]
            .as_str()
            .map(str::to_string)
    }

    /// The managers owning `metadata.labels[key]` on the node.
    fn label_owners(w: &World, name: &str, key: &str) -> Vec<String> {
        crate::support::managed_fields::label_owners(&node_object(w, name), key)
    }

    /// The DaemonSet's required node affinity on our label: its one value.
    fn selects_label(ds: &Value) -> String {
        let expr = &ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"];
        assert_eq!(expr.as_array().map(Vec::len), Some(1), "{ds:#}");
        assert_eq!(expr[0]["key"], GROUP_LABEL, "{ds:#}");
        assert_eq!(expr[0]["operator"], "In", "{ds:#}");
        assert_eq!(
            expr[0]["values"].as_array().map(Vec::len),
            Some(1),
            "{ds:#}"
        );
        expr[0]["values"][0].as_str().expect("value").to_string()
    }

    fn node_resource_versions(w: &World) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = w
            .cluster
            .list("Node", None)
            .iter()
            .map(|n| {
                (
                    n["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    n["metadata"]["resourceVersion"].clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn kubectl_ok(w: &World, args: &[&str]) {
        let out = w.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    }

    /// A MicroK8s node and a kubeadm node, with the user's consent to label nodes: `render
    /// --cluster` and `--dry-run` show the labels and set none; install labels each node with
    /// its group (a merge patch under our field manager: only that label is ours, the user's own stays) and each
    /// DaemonSet selects its label; every node verified; a rerun writes nothing; a node joining
    /// is labelled by the rerun and lands in its group without a manifest change; status lists
    /// the labelled nodes; uninstall removes only our label.
    /// The node labels are written before the objects: when applying the objects then fails,
    /// the error names the labels written too, not only the objects.
    #[test]
    fn a_failed_apply_after_labelling_the_nodes_names_the_labels_it_wrote() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        w.cluster.failures().forbid("patch", "daemonsets");
        let out = w.run(&["install", "--yes", "--label-nodes", "--timeout", "30s"]);
        assert_exit_saying(&out, 4, "forbidden");
        assert!(group_label(&w, "node-1").is_some(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let applied = err
            .split("applied before the failure:")
            .nth(1)
            .and_then(|rest| rest.split("; not applied:").next())
            .unwrap_or_default();
        assert!(
            applied.contains("node-1") && applied.contains("node-2"),
            "the labels written are not named as applied: {err}"
        );
    }

    #[test]
    fn label_nodes_labels_each_node_with_its_group_and_the_daemonsets_select_the_label() {
        let Some(mut w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        if !real::require("kubectl", real::tool_path("kubectl").is_some()) {
            return;
        }
        // The user's own label, set with the real kubectl (manager kubectl-label).
        kubectl_ok(&w, &["label", "node", "node-2", "team=storage"]);

        let rendered = w.run(&["render", "--cluster", "--label-nodes", "-o", "json"]);
        assert_eq!(code(&rendered), 0, "{}", text(&rendered));
        let stderr = String::from_utf8_lossy(&rendered.stderr).to_string();
        assert!(stderr.contains("render labels no node"), "{stderr}");
        let rendered = json(&rendered);
        let to_set = rendered["node_labels"].as_array().expect("node_labels");
        assert_eq!(to_set.len(), 2, "{rendered:#}");
        for l in to_set {
            let line = format!(
                "kubectl label node {} {}",
                l["node"].as_str().expect("node"),
                l["label"].as_str().expect("label")
            );
            assert!(stderr.contains(&line), "{line:?} missing:\n{stderr}");
        }
        let dry = w.run(&["install", "--dry-run", "--label-nodes", "-o", "json"]);
        assert_eq!(code(&dry), 0, "{}", text(&dry));
        let dry = json(&dry);
        assert_eq!(
            dry["node_labels"].as_array().map(Vec::len),
            Some(2),
            "{dry:#}"
        );
        assert!(
            dry["node_labels"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|l| l["action"] == "label")
        );
        assert_eq!(
            group_label(&w, "node-1"),
            None,
            "render or the dry run labelled a node"
        );
        assert_eq!(group_label(&w, "node-2"), None);

        let report = install_ok(&w, &["--label-nodes"]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2"]);
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 2, "{dss:#?}");
        let (main, group) = (&dss[0], &dss[1]);
        let main_value = selects_label(main);
        let group_value = selects_label(group);
        assert_ne!(main_value, group_value);
        assert_eq!(
            group["metadata"]["labels"]["cadvisor-setup/layout"], group_value,
            "the label value is the group's layout hash"
        );
        assert_eq!(
            group_label(&w, "node-1").as_deref(),
            Some(main_value.as_str())
        );
        assert_eq!(
            group_label(&w, "node-2").as_deref(),
            Some(group_value.as_str())
        );
        assert_eq!(label_owners(&w, "node-2", GROUP_LABEL), ["cadvisor-setup"]);
        // The user's label is untouched and still the user's.
        assert_eq!(
            node_object(&w, "node-2")["metadata"]["labels"]["team"],
            "storage"
        );
        assert_eq!(label_owners(&w, "node-2", "team"), ["kubectl-label"]);
        // Our field manager owns nothing else on the Node.
        let ours: Vec<Value> = node_object(&w, "node-2")["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["manager"] == "cadvisor-setup")
            .cloned()
            .collect();
        assert_eq!(ours.len(), 1, "{ours:#?}");
        assert_eq!(
            ours[0]["fieldsV1"],
            serde_json::json!({"f:metadata": {"f:labels": {"f:cadvisor-setup/group": {}}}})
        );
        let labels = report["node_labels"].as_array().expect("node_labels");
        assert_eq!(labels.len(), 2, "{report:#}");
        assert_eq!(labels[1]["node"], "node-2");
        assert_eq!(labels[1]["action"], "label");
        assert_eq!(labels[1]["value"], group_value.as_str());
        // One pod per node, each from its group's DaemonSet.
        let pods = w.cluster.list("Pod", Some("cadvisor"));
        let owner_of = |node: &str| {
            pods.iter()
                .find(|p| {
                    p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null()
                })
                .map(|p| p["metadata"]["ownerReferences"][0]["name"].clone())
        };
        assert_eq!(owner_of("node-1"), Some(Value::from("cadvisor")));
        assert_eq!(owner_of("node-2"), group["metadata"]["name"].clone().into());

        // A rerun writes nothing: no object, no node.
        let objects = resource_versions(&w);
        let nodes = node_resource_versions(&w);
        let again = install_ok(&w, &["--label-nodes"]);
        assert_eq!(again["changed"], false, "{again:#}");
        assert!(
            again["node_labels"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|l| l["action"] == "keep"),
            "{again:#}"
        );
        assert_eq!(resource_versions(&w), objects);
        assert_eq!(node_resource_versions(&w), nodes);

        let status = json(&w.run(&["status", "-o", "json"]));
        assert_eq!(
            status["labelled_nodes"],
            serde_json::json!([
                {"node": "node-1", "value": main_value, "ours": true},
                {"node": "node-2", "value": group_value, "ours": true}
            ]),
            "{status:#}"
        );

        // A kubeadm node joins: the rerun labels it, and no manifest changes.
        let (root, sim) = layout_node("kubeadm", "node-3");
        w.cluster.add_node(sim);
        w.nodes.push(root);
        let joined = install_ok(&w, &["--label-nodes"]);
        assert_eq!(passed_nodes(&joined), ["node-1", "node-2", "node-3"]);
        assert_eq!(joined["changed"], true);
        assert_eq!(
            group_label(&w, "node-3").as_deref(),
            Some(group_value.as_str())
        );
        // The DaemonSets' status moved (one more node), their spec did not.
        assert!(
            joined["objects"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|o| o["action"] == "unchanged"),
            "a manifest changed: {joined:#}"
        );
        let generations = |dss: &[Value]| -> Vec<Value> {
            dss.iter()
                .map(|d| d["metadata"]["generation"].clone())
                .collect()
        };
        assert_eq!(generations(&daemonsets(&w)), generations(&dss));
        let added: Vec<&Value> = joined["node_labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["changed"] == true)
            .collect();
        assert_eq!(added.len(), 1, "{joined:#}");
        assert_eq!(added[0]["node"], "node-3");

        // A node that joins already labelled with its group's value (by its provisioning, here
        // kubectl) gets its cAdvisor at once, without a rerun; a rerun keeps the label as
        // theirs, and uninstall leaves it.
        let (root, sim) = layout_node("kubeadm", "node-4");
        w.cluster.add_node(sim);
        w.nodes.push(root);
        kubectl_ok(
            &w,
            &[
                "label",
                "node",
                "node-4",
                &format!("{GROUP_LABEL}={group_value}"),
            ],
        );
        let group_name = group["metadata"]["name"].clone();
        assert!(
            w.cluster.wait_until(Duration::from_secs(20), |c| {
                c.list("Pod", Some("cadvisor")).iter().any(|p| {
                    p["spec"]["nodeName"] == "node-4"
                        && p["metadata"]["ownerReferences"][0]["name"] == group_name
                })
            }),
            "no pod of {group_name} on node-4"
        );
        let kept = install_ok(&w, &["--label-nodes"]);
        assert_eq!(
            passed_nodes(&kept),
            ["node-1", "node-2", "node-3", "node-4"]
        );
        assert_eq!(kept["changed"], false, "{kept:#}");
        let theirs = kept["node_labels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["node"] == "node-4")
            .cloned()
            .expect("node-4");
        assert_eq!(
            (theirs["action"].clone(), theirs["ours"].clone()),
            ("keep".into(), false.into())
        );
        assert_eq!(label_owners(&w, "node-4", GROUP_LABEL), ["kubectl-label"]);

        let removed = uninstall_ok(&w);
        assert_eq!(
            removed["unlabelled"],
            serde_json::json!(["node-1", "node-2", "node-3"]),
            "{removed:#}"
        );
        for n in ["node-1", "node-2", "node-3"] {
            assert_eq!(group_label(&w, n), None, "{n}");
            assert!(label_owners(&w, n, GROUP_LABEL).is_empty());
        }
        assert_eq!(
            node_object(&w, "node-2")["metadata"]["labels"]["team"],
            "storage"
        );
        assert_eq!(
            group_label(&w, "node-4").as_deref(),
            Some(group_value.as_str())
        );
        assert!(daemonsets(&w).is_empty());
        let again = json(&w.run(&["uninstall", "--yes", "-o", "json"]));
        assert_eq!(again["changed"], false, "{again:#}");
    }

    /// A node changes group (its kubelet moves to the cgroupfs driver): the rerun relabels it
    /// and a new group DaemonSet serves it; when its old group empties, that DaemonSet goes.
    #[test]
    fn a_node_changing_group_is_relabelled_and_an_emptied_group_is_removed() {
        let Some(w) = mixed_world(&[
            ("microk8s", "node-1"),
            ("kubeadm", "node-2"),
            ("kubeadm", "node-3"),
        ]) else {
            return;
        };
        install_ok(&w, &["--label-nodes"]);
        let first = group_label(&w, "node-2").expect("labelled");
        assert_eq!(group_label(&w, "node-3").as_deref(), Some(first.as_str()));
        assert_eq!(daemonsets(&w).len(), 2);

        w.cluster
            .update_node("node-3", |n| n.cgroup_driver = "cgroupfs".into());
        let report = install_ok(&w, &["--label-nodes"]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2", "node-3"]);
        let moved = group_label(&w, "node-3").expect("labelled");
        assert_ne!(moved, first);
        let change = report["node_labels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["node"] == "node-3")
            .cloned()
            .expect("node-3");
        assert_eq!(change["action"], "relabel", "{report:#}");
        assert_eq!(change["previous"], first.as_str());
        let dss = daemonsets(&w);
        assert_eq!(dss.len(), 3, "{dss:#?}");
        let serving = dss
            .iter()
            .find(|d| d["metadata"]["name"] == format!("cadvisor-{moved}"))
            .expect("the new group's DaemonSet");
        assert_eq!(selects_label(serving), moved);
        assert!(
            serving["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .expect("args")
                .contains(&Value::from("--raw_cgroup_prefix_whitelist=/kubepods")),
            "{serving:#}"
        );

        w.cluster
            .update_node("node-2", |n| n.cgroup_driver = "cgroupfs".into());
        let report = install_ok(&w, &["--label-nodes"]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2", "node-3"]);
        assert_eq!(group_label(&w, "node-2").as_deref(), Some(moved.as_str()));
        assert_eq!(
            report["pruned"],
            serde_json::json!([format!("DaemonSet cadvisor/cadvisor-{first}")]),
            "{report:#}"
        );
        assert_eq!(daemonsets(&w).len(), 2);
    }

    /// Our label key with a value someone else set: exit 7 naming the node and its writer,
    /// nothing applied and no node labelled; with `--force` the label is taken over (the other
    /// manager loses it) and `uninstall` removes it.
    #[test]
    fn a_foreign_value_on_our_label_is_refused_unless_forced_and_uninstall_removes_it() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        if !real::require("kubectl", real::tool_path("kubectl").is_some()) {
            return;
        }
        kubectl_ok(
            &w,
            &["label", "node", "node-2", &format!("{GROUP_LABEL}=mine")],
        );
        let nodes = node_resource_versions(&w);
        let out = w.run(&["install", "--yes", "--label-nodes", "--timeout", "60s"]);
        assert_exit_saying(
            &out,
            7,
            "node label cadvisor-setup/group was set by someone else: node node-2 has cadvisor-setup/group=mine (set by kubectl-label)",
        );
        assert!(daemonsets(&w).is_empty(), "something was applied");
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());
        assert_eq!(node_resource_versions(&w), nodes, "a node was changed");
        // The dry run refuses the same way.
        let dry = w.run(&["install", "--dry-run", "--label-nodes"]);
        assert_eq!(code(&dry), 7, "{}", text(&dry));

        let report = install_ok(&w, &["--label-nodes", "--force"]);
        assert_eq!(passed_nodes(&report), ["node-1", "node-2"]);
        let taken = report["node_labels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["node"] == "node-2")
            .cloned()
            .expect("node-2");
        assert_eq!(taken["action"], "take_over", "{report:#}");
        assert_eq!(taken["previous"], "mine");
        let value = group_label(&w, "node-2").expect("labelled");
        assert_ne!(value, "mine");
        assert_eq!(label_owners(&w, "node-2", GROUP_LABEL), ["cadvisor-setup"]);
        let status = json(&w.run(&["status", "-o", "json"]));
        assert_eq!(status["labelled_nodes"][1]["ours"], true, "{status:#}");

        // A kubeconfig that may not list nodes: uninstall removes the rest and keeps the
        // labels, saying so; allowed again, a second uninstall removes them.
        w.cluster.failures().forbid("list", "nodes");
        let partial = uninstall_ok(&w);
        assert_eq!(
            partial["kept"][0]["object"], "node label cadvisor-setup/group",
            "{partial:#}"
        );
        assert!(daemonsets(&w).is_empty());
        assert!(group_label(&w, "node-2").is_some());
        w.cluster.failures().allow_all();
        let removed = uninstall_ok(&w);
        assert_eq!(
            removed["unlabelled"],
            serde_json::json!(["node-1", "node-2"])
        );
        assert_eq!(group_label(&w, "node-2"), None);
        assert_eq!(group_label(&w, "node-1"), None);
    }

    /// Two installs with `--label-nodes` in two namespaces select the same node labels (a
    /// node's group hash is its layout's): uninstalling one keeps every label the other's
    /// DaemonSets select, saying whose, so the other keeps its pods; uninstalling the other then
    /// removes them.
    #[test]
    fn uninstalling_one_install_keeps_the_node_labels_another_install_selects() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        install_ok(&w, &["--label-nodes"]);
        let labels = [group_label(&w, "node-1"), group_label(&w, "node-2")];
        assert!(labels.iter().all(Option::is_some), "{labels:?}");
        let second = install_ok(&w, &["--label-nodes", "--namespace", "second"]);
        assert_eq!(passed_nodes(&second), ["node-1", "node-2"]);
        let in_second = |w: &World| {
            w.cluster
                .list("DaemonSet", Some("second"))
                .into_iter()
                .filter(|d| d["metadata"]["deletionTimestamp"].is_null())
                .count()
        };
        assert_eq!(in_second(&w), 2);

        let first_gone = uninstall_ok(&w);
        assert_eq!(
            [group_label(&w, "node-1"), group_label(&w, "node-2")],
            labels,
            "{first_gone:#}"
        );
        assert!(first_gone.get("unlabelled").is_none(), "{first_gone:#}");
        let kept = first_gone["kept"].to_string();
        assert!(
            kept.contains("another install of cadvisor-setup") && kept.contains("second/cadvisor"),
            "{first_gone:#}"
        );
        assert!(daemonsets(&w).is_empty());
        assert_eq!(in_second(&w), 2);
        let verified = w.run(&["verify", "--namespace", "second", "-o", "json"]);
        assert_eq!(code(&verified), 0, "{}", text(&verified));

        let out = w.run(&["uninstall", "--yes", "--namespace", "second", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let mut unlabelled = json(&out)["unlabelled"].clone();
        assert_eq!(unlabelled.take(), serde_json::json!(["node-1", "node-2"]));
        assert_eq!(
            [group_label(&w, "node-1"), group_label(&w, "node-2")],
            [None, None]
        );
    }

    /// What people and Ansible see with `--label-nodes`: install's node label lines and
    /// `node_labels`, status' labelled nodes, uninstall's `unlabelled`.
    #[test]
    fn label_nodes_report_snapshots() {
        let Some(w) = mixed_world(&[("microk8s", "node-1"), ("kubeadm", "node-2")]) else {
            return;
        };
        let norm = |out: &Output, json: bool| super::report_snapshots::normalised(&w, out, json);
        let args = [
            "install",
            "--yes",
            "--label-nodes",
            "--no-verify",
            "--timeout",
            "60s",
        ];
        let out = w.run(&args);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("label_nodes_install_human", norm(&out, false));
        let mut rerun = args.to_vec();
        rerun.extend(["-o", "json"]);
        let out = w.run(&rerun);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("label_nodes_install_unchanged_json", norm(&out, true));
        let out = w.run(&["status"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("label_nodes_status_human", norm(&out, false));
        let out = w.run(&["uninstall", "--yes", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        insta::assert_snapshot!("label_nodes_uninstall_json", norm(&out, true));
    }

    /// Consent given but one group: nothing is labelled and the manifest is today's; a bad
    /// `CADVISOR_SETUP_LABEL_NODES` or answers-file value is exit 2 before any request.
    #[test]
    fn label_nodes_with_one_group_labels_nothing_and_bad_values_are_usage_errors() {
        let Some(w) = world(1) else { return };
        w.cluster.clear_requests();
        let mut cmd = w.std_cmd(&["install", "--yes", "--no-verify"]);
        cmd.env("CADVISOR_SETUP_LABEL_NODES", "maybe");
        let out = cmd.output().expect("run");
        assert_exit_saying(&out, 2, "label-nodes");
        let answers = Answers::new("label-nodes: sometimes\n");
        let out = w.run(&["--config", answers.path(), "install", "--yes"]);
        assert_eq!(code(&out), 2, "{}", text(&out));
        assert!(
            w.cluster.requests().is_empty(),
            "{:?}",
            w.cluster.requests()
        );

        let mut cmd = w.std_cmd(&[
            "install",
            "--yes",
            "--no-verify",
            "-o",
            "json",
            "--timeout",
            "60s",
        ]);
        cmd.env("CADVISOR_SETUP_LABEL_NODES", "true");
        let out = cmd.output().expect("run");
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert!(json(&out).get("node_labels").is_none(), "{}", text(&out));
        assert_eq!(group_label(&w, "node-1"), None);
        let ds = w.daemonset().expect("daemonset");
        assert!(
            ds["spec"]["template"]["spec"]["affinity"].is_null(),
            "{ds:#}"
        );
    }
}

/// `install` and the Prometheus that is already there (issue #11): the Prometheus Operator's
/// `Prometheus` objects, our ServiceMonitor labelled for the chosen one's selectors, the
/// NetworkPolicy admitting it and the nodes only.
mod prometheus_integration {
    use super::*;
    use serde_json::json;
    use support::fake_api::tls::self_signed_server;
    use support::prometheus::{RealPrometheus, Web, pod_proxy_job, require_prometheus};

    /// MicroK8s' observability addon (kube-prometheus-stack, release `kube-prom-stack`): the
    /// Prometheus selects ServiceMonitors labelled `release: kube-prom-stack` in every namespace
    /// (prometheus-community/helm-charts: charts/kube-prometheus-stack/values.yaml).
    const STACK_NS: &str = "observability";
    const STACK_NAME: &str = "kube-prom-stack-kube-prome-prometheus";

    fn prometheus(w: &World, namespace: &str, name: &str, spec: Value) {
        w.cluster.create(
            "helm",
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}),
        );
    }

    /// The operator's StatefulSet for `name`, labelled and selecting as the operator does.
    fn statefulset(w: &World, namespace: &str, name: &str) {
        let selector = json!({
            "app.kubernetes.io/name": "prometheus",
            "operator.prometheus.io/name": name,
        });
        w.cluster.create(
            "prometheus-operator",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": format!("prometheus-{name}"), "namespace": namespace,
                    "labels": {"operator.prometheus.io/name": name}},
                "spec": {"selector": {"matchLabels": selector},
                    "serviceName": "prometheus-operated",
                    "template": {"metadata": {"labels": selector},
                        "spec": {"containers": [{"name": "prometheus", "image": "quay.io/prometheus/prometheus:v3.5.0"}]}}}}),
        );
    }

    /// One node, the operator's CRDs, and `monitoring/k8s` with `spec`.
    fn operator_world(spec: Value) -> Option<World> {
        let w = world(1)?;
        w.cluster.set_prometheus_operator(true);
        prometheus(&w, "monitoring", "k8s", spec);
        Some(w)
    }

    fn all_namespaces(service_monitor_selector: Value) -> Value {
        json!({"serviceMonitorSelector": service_monitor_selector,
            "serviceMonitorNamespaceSelector": {}})
    }

    fn stack_world() -> Option<World> {
        let w = world(1)?;
        w.cluster.set_prometheus_operator(true);
        prometheus(
            &w,
            STACK_NS,
            STACK_NAME,
            all_namespaces(json!({"matchLabels": {"release": "kube-prom-stack"}})),
        );
        statefulset(&w, STACK_NS, STACK_NAME);
        Some(w)
    }

    fn service_monitor(w: &World) -> Option<Value> {
        w.cluster.get("ServiceMonitor", "cadvisor", "cadvisor")
    }

    fn network_policy(w: &World) -> Option<Value> {
        w.cluster.get("NetworkPolicy", "cadvisor", "cadvisor")
    }

    #[test]
    fn the_observability_addon_selects_our_service_monitor_and_only_it_and_the_nodes_may_scrape() {
        let Some(w) = stack_world() else { return };
        // detect --cluster says beforehand what install will do.
        let detected = json(&w.run(&["detect", "--cluster", "-o", "json"]));
        assert_eq!(
            detected["prometheus"][0]["name"], STACK_NAME,
            "{detected:#}"
        );
        assert_eq!(
            detected["prometheus"][0]["selectable"], true,
            "{detected:#}"
        );
        assert_eq!(
            detected["prometheus"][0]["would_add"]["service_monitor_labels"],
            json!({"release": "kube-prom-stack"})
        );
        let out = w.run(&["detect", "--cluster"]);
        assert!(
            text(&out).contains("would select our ServiceMonitor labelled release=kube-prom-stack"),
            "{}",
            text(&out)
        );
        let report = install_ok(&w, &[]);
        assert_eq!(
            report["prometheus"]["chosen"],
            format!("{STACK_NS}/{STACK_NAME}"),
            "{report:#}"
        );
        assert_eq!(report["prometheus"]["selected"], true, "{report:#}");
        assert_eq!(report["prometheus"]["network_policy"], true, "{report:#}");
        let sm = service_monitor(&w).expect("ServiceMonitor applied");
        assert_eq!(
            sm["metadata"]["labels"]["release"], "kube-prom-stack",
            "{sm:#}"
        );
        assert_eq!(
            sm["metadata"]["labels"]["app.kubernetes.io/name"], "cadvisor",
            "{sm:#}"
        );

        let np = network_policy(&w).expect("NetworkPolicy applied");
        let spec = &np["spec"];
        assert_eq!(
            spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "cadvisor"
        );
        assert_eq!(spec["policyTypes"], json!(["Ingress"]));
        let rules = spec["ingress"].as_array().expect("ingress rules");
        assert_eq!(rules.len(), 2, "{np:#}");
        let from_prometheus = &rules[0]["from"][0];
        assert_eq!(
            from_prometheus["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            STACK_NS
        );
        assert_eq!(
            from_prometheus["podSelector"]["matchLabels"],
            json!({"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": STACK_NAME}),
            "the StatefulSet's selector names the Prometheus pods: {np:#}"
        );
        let node_ip = &w.cluster.nodes()[0].internal_ip;
        assert_eq!(
            rules[1]["from"],
            json!([{"ipBlock": {"cidr": format!("{node_ip}/32")}}])
        );
        for rule in rules {
            assert_eq!(
                rule["ports"],
                json!([{"protocol": "TCP", "port": 8080}]),
                "{np:#}"
            );
        }
        validate_strict(&np);

        let out = w.run(&["status", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let status = json(&out);
        assert_eq!(status["prometheus"][0]["name"], STACK_NAME, "{status:#}");
        assert_eq!(status["prometheus"][0]["selects_ours"], true, "{status:#}");
        assert_eq!(
            status["prometheus"][0]["selects_service_monitors"],
            "release=kube-prom-stack"
        );
        let out = w.run(&["status"]);
        assert!(
            text(&out).contains(&format!(
                "Prometheus {STACK_NS}/{STACK_NAME}: scrapes our ServiceMonitor"
            )),
            "{}",
            text(&out)
        );

        // A rerun changes nothing; uninstall removes what install made.
        let again = install_ok(&w, &[]);
        assert_eq!(again["changed"], false, "{again:#}");
        uninstall_ok(&w);
        assert!(service_monitor(&w).is_none());
        assert!(network_policy(&w).is_none());
        assert!(
            w.cluster.get("Prometheus", STACK_NS, STACK_NAME).is_some(),
            "the user's Prometheus stays"
        );
    }

    #[test]
    fn kube_prometheus_selects_everything_so_nothing_is_added() {
        // kube-prometheus: `serviceMonitorSelector: {}` in `monitoring`
        // (prometheus-operator/kube-prometheus: manifests/prometheus-prometheus.yaml).
        let Some(w) = operator_world(all_namespaces(json!({}))) else {
            return;
        };
        w.cluster.clear_requests();
        let report = install_ok(&w, &[]);
        assert_eq!(report["prometheus"]["selected"], true, "{report:#}");
        assert_eq!(report["prometheus"]["service_monitor_labels"], json!({}));
        // The operator's API is discovered once, for the ServiceMonitor and the Prometheus alike;
        // the nodes are listed for this host's configz (before detection) and once more for the
        // node groups and the NetworkPolicy alike.
        let gets = |path: &str| {
            let requests = w.cluster.requests();
            requests
                .iter()
                .filter(|r| r.method == "GET" && r.path == path)
                .count()
        };
        assert_eq!(gets("/apis/monitoring.coreos.com/v1"), 1);
        assert_eq!(gets("/api/v1/nodes"), 2);
        let sm = service_monitor(&w).expect("ServiceMonitor applied");
        let labels = sm["metadata"]["labels"].as_object().expect("labels");
        assert_eq!(labels.len(), 2, "only our own labels: {sm:#}");
        // No StatefulSet to read: the operator's own pod label names its pods.
        let np = network_policy(&w).expect("NetworkPolicy");
        let rules = &np["spec"]["ingress"];
        assert_eq!(
            rules[0]["from"],
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"operator.prometheus.io/name": "k8s"}}}]),
            "{np:#}"
        );
        assert_eq!(
            rules[0]["ports"],
            json!([{"protocol": "TCP", "port": 8080}])
        );
        validate_strict(&np);

        // A rerun that no longer wants the policy deletes ours (and says so); the rest stays.
        let report = install_ok(&w, &["--network-policy", "never"]);
        assert_eq!(report["changed"], true, "{report:#}");
        assert_eq!(
            report["pruned"],
            json!(["NetworkPolicy cadvisor/cadvisor"]),
            "{report:#}"
        );
        assert!(network_policy(&w).is_none(), "--network-policy never");
        assert!(service_monitor(&w).is_some());
        let again = install_ok(&w, &["--network-policy", "never"]);
        assert_eq!(again["changed"], false, "{again:#}");
    }

    #[test]
    fn a_selector_that_excludes_us_is_refused_before_anything_is_applied() {
        let Some(w) = operator_world(all_namespaces(json!({"matchExpressions": [
            {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["cadvisor"]}]})))
        else {
            return;
        };
        let out = w.run(&["install", "--yes", "--prometheus", "monitoring/k8s"]);
        assert_exit_saying(&out, 3, "app.kubernetes.io/name notin (cadvisor)");
        assert!(text(&out).contains("nothing was applied"), "{}", text(&out));
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());

        // auto: the same Prometheus is a warning; cAdvisor is installed without integration.
        let out = w.run(&["install", "--yes", "--timeout", "60s", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let report = json(&out);
        assert_eq!(report["prometheus"]["selected"], false, "{report:#}");
        assert!(
            report["prometheus"]["note"]
                .as_str()
                .unwrap_or("")
                .contains("notin (cadvisor)"),
            "{report:#}"
        );
        assert!(
            network_policy(&w).is_none(),
            "auto: no policy without a Prometheus"
        );
    }

    #[test]
    fn with_two_prometheus_an_unattended_install_needs_to_be_told_which() {
        let Some(w) = stack_world() else { return };
        prometheus(&w, "monitoring", "k8s", all_namespaces(json!({})));
        let out = w.run(&["install", "--yes"]);
        assert_exit_saying(&out, 3, "several Prometheus instances");
        assert!(
            text(&out).contains(&format!("{STACK_NS}/{STACK_NAME}")),
            "{}",
            text(&out)
        );
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());

        let report = install_ok(&w, &["--prometheus", "monitoring/k8s"]);
        assert_eq!(
            report["prometheus"]["chosen"], "monitoring/k8s",
            "{report:#}"
        );
        assert_eq!(
            report["prometheus"]["found"].as_array().map(Vec::len),
            Some(2)
        );
        let sm = service_monitor(&w).expect("ServiceMonitor applied");
        assert!(sm["metadata"]["labels"]["release"].is_null(), "{sm:#}");
        // The policy admits monitoring/k8s by the operator's label (no StatefulSet to read).
        let np = network_policy(&w).expect("NetworkPolicy");
        assert_eq!(
            np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
            json!({"operator.prometheus.io/name": "k8s"})
        );

        let out = w.run(&["install", "--yes", "--prometheus", "monitoring/nope"]);
        assert_exit_saying(&out, 3, "no such Prometheus");
    }

    #[test]
    fn a_nil_namespace_selector_means_the_prometheus_namespace_and_says_how_to_reach_it() {
        let Some(w) = world(1) else { return };
        w.cluster.set_prometheus_operator(true);
        prometheus(
            &w,
            "monitoring",
            "k8s",
            json!({"serviceMonitorSelector": {}}),
        );
        let out = w.run(&["install", "--yes", "--prometheus", "monitoring/k8s"]);
        assert_exit_saying(&out, 3, "only in its own namespace monitoring");
        assert!(
            text(&out).contains("--namespace monitoring"),
            "{}",
            text(&out)
        );
        assert!(w.cluster.get("Namespace", "", "cadvisor").is_none());
    }

    #[test]
    fn a_namespace_selector_labels_the_namespace_we_create() {
        let Some(w) = operator_world(json!({"serviceMonitorSelector": {},
            "serviceMonitorNamespaceSelector": {"matchLabels": {"monitoring": "enabled"}}}))
        else {
            return;
        };
        let report = install_ok(&w, &[]);
        assert_eq!(
            report["prometheus"]["namespace_labels"],
            json!({"monitoring": "enabled"})
        );
        let ns = w
            .cluster
            .get("Namespace", "", "cadvisor")
            .expect("namespace");
        assert_eq!(ns["metadata"]["labels"]["monitoring"], "enabled", "{ns:#}");
    }

    /// A real Prometheus serving as `web` says, scraping our one cAdvisor pod through the API
    /// server's pod proxy with the job `render --scrape-config` prints.
    fn scraping_prometheus(w: &World, tls_files: &std::path::Path, web: &Web) -> RealPrometheus {
        let pod = w
            .cluster
            .first_pod_name("cadvisor")
            .expect("a cAdvisor pod");
        let out = w.run(&["render", "--scrape-config", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let job = pod_proxy_job(
            &json(&out)["scrape_config"],
            &w.cluster,
            tls_files,
            &format!("127.0.0.1:{}", w.cluster.port()),
            &pod,
        );
        RealPrometheus::start_serving(&job, web)
    }

    /// The service proxy paths `verify` asked through, in order.
    fn service_proxy_paths(w: &World) -> Vec<String> {
        w.cluster
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/services/"))
            .map(|r| r.path)
            .collect()
    }

    #[test]
    fn a_prometheus_with_web_tls_is_asked_over_https_under_its_route_prefix() {
        if !require_prometheus() {
            return;
        }
        // prometheus-operator (Documentation/api-reference/api.md, PrometheusSpec): `routePrefix`
        // is Prometheus' `--web.route-prefix`; `web.tlsConfig` makes its web server serve TLS.
        let spec = |tls: bool| {
            let mut spec = all_namespaces(json!({}));
            spec["routePrefix"] = json!("/prom");
            if tls {
                spec["web"] = json!({"tlsConfig": {"cert": {"secret": {"name": "prometheus-tls", "key": "tls.crt"}},
                    "keySecret": {"name": "prometheus-tls", "key": "tls.key"}}});
            }
            spec
        };
        let Some(w) = operator_world(spec(false)) else {
            return;
        };
        const CHOSEN: &[&str] = &[
            "--prometheus",
            "monitoring/k8s",
            "--network-policy",
            "never",
        ];
        install_ok(&w, CHOSEN);
        w.cluster.create(
            "prometheus-operator",
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "prometheus-operated", "namespace": "monitoring"},
                "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": "prometheus"},
                    "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]}}),
        );
        let tls_files = tempfile::tempdir().expect("tempdir");
        let real_prometheus = scraping_prometheus(
            &w,
            tls_files.path(),
            &Web {
                tls: Some(self_signed_server()),
                route_prefix: Some("/prom".to_string()),
            },
        );
        w.cluster.set_service_backend(
            "monitoring",
            "prometheus-operated",
            Some(&real_prometheus.address()),
        );
        let verify = |choice: &str, timeout: &str| {
            w.cluster.clear_requests();
            w.run(&[
                "verify",
                "--prometheus",
                choice,
                "--timeout",
                timeout,
                "-o",
                "json",
            ])
        };

        // Without tlsConfig the object says http: the TLS port refuses plain http (Go's 400),
        // so asking over http cannot pass; a Prometheus that cannot be read is exit 1 (README).
        let out = verify("monitoring/k8s", "10s");
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(
            text(&out).contains("Client sent an HTTP request to an HTTPS server"),
            "{}",
            text(&out)
        );
        let paths = service_proxy_paths(&w);
        assert!(!paths.is_empty(), "asked through the service proxy");
        for path in &paths {
            assert!(
                path.starts_with(
                    "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/prom/api/v1/"
                ),
                "{path}"
            );
        }

        // With tlsConfig: https, under the route prefix, named and auto alike.
        w.cluster.delete("Prometheus", "monitoring", "k8s");
        prometheus(&w, "monitoring", "k8s", spec(true));
        for choice in ["monitoring/k8s", "auto"] {
            let out = verify(choice, "30s");
            assert_eq!(
                code(&out),
                0,
                "{choice}: {}\n{}",
                text(&out),
                real_prometheus.log()
            );
            let report = json(&out);
            let p = &report["prometheus"];
            assert_eq!(p["ok"], true, "{report:#}");
            assert_eq!(
                p["endpoint"],
                json!({"kind": "service-proxy", "namespace": "monitoring",
                    "service": "prometheus-operated", "port": "web", "https": true,
                    "path_prefix": "/prom"}),
                "{report:#}"
            );
            assert_eq!(p["subject"]["pod"], POD, "{report:#}");
            let paths = service_proxy_paths(&w);
            assert!(
                !paths.is_empty(),
                "{choice}: asked through the service proxy"
            );
            for path in &paths {
                assert!(
                    path.starts_with(
                        "/api/v1/namespaces/monitoring/services/https:prometheus-operated:web/proxy/prom/api/v1/"
                    ),
                    "{choice}: {path}"
                );
            }
        }

        // install's last step asks it the same way.
        let report = install_ok(&w, CHOSEN);
        let p = &report["prometheus_verification"];
        assert_eq!(p["ok"], true, "{report:#}");
        assert_eq!(p["endpoint"]["https"], true, "{report:#}");
    }

    #[test]
    fn usage_errors_come_before_the_cluster() {
        let Some(w) = world(1) else { return };
        w.cluster.clear_requests();
        for args in [
            &["install", "--yes", "--prometheus", "not a name"][..],
            &[
                "install",
                "--yes",
                "--prometheus",
                "monitoring/k8s",
                "--service-monitor",
                "never",
            ],
            &["install", "--yes", "--network-policy", "sometimes"],
            // verify has nothing to ask through with `none`.
            &["verify", "--prometheus", "none"],
        ] {
            let out = w.run(args);
            assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        }
        assert!(
            w.cluster.requests().is_empty(),
            "{:?}",
            w.cluster.requests()
        );
    }

    /// `kubernetes-validate --strict` on the object as applied, server fields removed.
    fn validate_strict(object: &Value) {
        let validator = real::tool_path("kubernetes-validate");
        if !real::require(
            "kubernetes-validate (pip install kubernetes-validate; scripts/test.sh installs it)",
            validator.is_some(),
        ) {
            return;
        }
        let mut clean = object.clone();
        let meta = &object["metadata"];
        clean["metadata"] = json!({"name": meta["name"], "namespace": meta["namespace"],
            "labels": meta["labels"]});
        if let Some(o) = clean.as_object_mut() {
            o.remove("status");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("networkpolicy.yaml");
        std::fs::write(&file, clean.to_string()).expect("write");
        for version in ["1.28.0", "1.37.0"] {
            let out = std::process::Command::new(validator.as_ref().expect("checked"))
                .args(["-k", version, "--strict"])
                .arg(&file)
                .output()
                .expect("run kubernetes-validate");
            assert!(
                out.status.success(),
                "k8s {version}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// API servers that misbehave on purpose (or are not API servers at all): whatever they answer,
/// the binary ends with an error, neither growing its memory without bound nor hanging.
mod hostile {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    /// A plain-HTTP "API server" on 127.0.0.1 that answers every request with `answer`, one
    /// connection per thread; its address.
    fn serve(answer: fn(&mut TcpStream, &str)) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    // The rest of the request head.
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let mut stream = stream;
                    answer(&mut stream, &first);
                });
            }
        });
        format!("http://{addr}")
    }

    fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
        let path = dir.join("hostile.config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: '{server}'}}\nusers:\n- name: u\n  user: {{token: abc}}\n"
            ),
        )
        .expect("write kubeconfig");
        path
    }

    fn run(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
        let root = tempfile::tempdir().expect("tempdir");
        assert_cmd::Command::cargo_bin("cadvisor-setup")
            .expect("binary")
            .env_clear()
            .env("NO_COLOR", "1")
            .arg("--host-root")
            .arg(root.path())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .timeout(Duration::from_secs(120))
            .output()
            .expect("run cadvisor-setup")
    }

    /// An answer of 300 MiB of JSON whitespace: kube-client would read it whole (its
    /// `request_text` collects without limit; an endless one grew the binary past 20 GB in
    /// 25 s). Now the answer is refused past 256 MiB.
    #[test]
    fn an_endless_api_answer_is_an_error_not_memory() {
        let server = serve(|stream, _request| {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..300 {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                if stream.write_all(&frame).is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kubeconfig(dir.path(), &server);
        let out = run(&kubeconfig, &["status", "-y"]);
        assert_exit_saying(
            &out,
            4,
            "is larger than 256 MiB, which no real API server sends",
        );
        // Said as what it is, not as a server that cannot be reached.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("answered as no real one does") && !stderr.contains("cannot reach"),
            "{stderr}"
        );
    }

    /// An object judged ours when `uninstall` planned (for instance while its confirmation
    /// prompt waited) and replaced before the delete (someone deleted ours and created their
    /// own of the same name) is someone else's now: the delete names the planned uid as a
    /// precondition, so the API server refuses it, and the new object is kept.
    #[tokio::test]
    async fn an_object_replaced_after_the_uninstall_plan_is_not_deleted() {
        use cadvisor_setup::cluster::uninstall;
        let c = FakeCluster::start(FakeClusterConfig::with_nodes(Vec::new()));
        let ours = |kind: &str| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {
                    "name": "cadvisor",
                    "namespace": "cadvisor",
                    "labels": {"app.kubernetes.io/managed-by": "cadvisor-setup"},
                    "annotations": {"cadvisor-setup/ownership": "created"}
                }
            })
        };
        c.create("cadvisor-setup", ours("ServiceAccount"));
        c.create("cadvisor-setup", ours("ConfigMap"));
        let cluster = cadvisor_setup::cluster::client::connect(c.kubeconfig_path())
            .await
            .expect("client");
        let plan = uninstall::plan(&cluster, "cadvisor").await.expect("plan");
        assert_eq!(plan.delete.len(), 2, "{:?}", plan.describe());

        // Between the plan and the delete: ours goes, theirs comes, same name.
        c.delete("ServiceAccount", "cadvisor", "cadvisor");
        let theirs = c.create(
            "kubectl-create",
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "cadvisor", "namespace": "cadvisor"}}),
        );

        let done = uninstall::run(&cluster, "cadvisor", plan, Duration::from_secs(20))
            .await
            .expect("uninstall");
        let left = c
            .get("ServiceAccount", "cadvisor", "cadvisor")
            .expect("their ServiceAccount is kept");
        assert_eq!(left["metadata"]["uid"], theirs["metadata"]["uid"]);
        assert_eq!(
            done.deleted,
            vec!["ConfigMap cadvisor/cadvisor".to_string()]
        );
        assert!(
            done.kept
                .iter()
                .any(|k| k.object == "ServiceAccount cadvisor/cadvisor"
                    && k.reason.contains("replaced since it was read")),
            "{:?}",
            done.kept
        );
        assert!(c.get("ConfigMap", "cadvisor", "cadvisor").is_none());
    }

    /// A kubeconfig whose user is an exec credential plugin (client certificate from the
    /// plugin, as `aws eks get-token` or `kubelogin` give tokens) still connects: the client is
    /// built on a thread of its own with a deadline, so a plugin that never ends cannot hold
    /// us (`cluster::client` unit test), and one that answers works as before.
    #[test]
    fn an_exec_credential_plugin_still_connects() {
        let c = FakeCluster::start(FakeClusterConfig::with_nodes(Vec::new()));
        let dir = tempfile::tempdir().expect("tempdir");
        let [ca, cert, key] = c.write_client_tls_files(dir.path());
        let pem = |p: &std::path::Path| std::fs::read_to_string(p).expect("pem");
        let credential = serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"clientCertificateData": pem(&cert), "clientKeyData": pem(&key)}
        });
        let answer = dir.path().join("credential.json");
        std::fs::write(&answer, credential.to_string()).expect("write");
        let kubeconfig = dir.path().join("exec.config");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: '{}', certificate-authority: '{}'}}\nusers:\n- name: u\n  user:\n    exec: {{apiVersion: client.authentication.k8s.io/v1, command: cat, args: ['{}'], interactiveMode: Never}}\n",
                c.server_url(),
                ca.display(),
                answer.display()
            ),
        )
        .expect("write kubeconfig");
        let mut cmd = assert_cmd::Command::cargo_bin("cadvisor-setup").expect("binary");
        let out = cmd
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["status", "-y", "-o", "json"])
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run");
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(json(&out)["state"], "not installed", "{}", text(&out));
    }

    /// A server whose list `continue` tokens never end (each page empty, the next one always
    /// promised): paged forever before; now the list stops past `pages::MAX_LISTED` objects.
    #[test]
    fn a_list_that_never_ends_is_an_error_not_a_hang() {
        let server = serve(|stream, request| {
            let body = if request.starts_with("GET /version") {
                r#"{"major":"1","minor":"33","gitVersion":"v1.33.4","gitCommit":"x","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#.to_string()
            } else {
                r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"1","continue":"again"},"items":[]}"#.to_string()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kubeconfig(dir.path(), &server);
        let out = run(&kubeconfig, &["render", "--cluster", "-y"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("did not end within 50000 objects"),
            "{}",
            text(&out)
        );
        assert_ne!(code(&out), 0, "{}", text(&out));
    }
}
