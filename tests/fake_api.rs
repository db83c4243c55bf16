//! Fidelity of the fake Kubernetes API server (tests/support/fake_api) against the reference
//! client, kubectl, and against kube-rs; and its simulated cAdvisor against a real containerd.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};
use support::managed_fields::label_owners;
use support::real;

const POD: &str = "loki-gateway-66c8f46897-2m445";
const MICROK8S_SOCKET: &str = "/var/snap/microk8s/common/run/containerd.sock";

fn have_kubectl() -> bool {
    real::require("kubectl", real::have_tool("kubectl"))
}

fn short_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cs")
        .tempdir_in("/tmp")
        .expect("host root")
}

fn cluster(nodes: &[(&str, &Path)]) -> FakeCluster {
    FakeCluster::start(FakeClusterConfig::with_nodes(
        nodes
            .iter()
            .map(|(name, root)| SimNode::microk8s(name, root))
            .collect(),
    ))
}

fn kubectl_with(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    match stdin {
        None => cmd
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run kubectl"),
        Some(text) => {
            use std::io::Write;
            let mut child = cmd
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn kubectl");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write manifest");
            child.wait_with_output().expect("wait for kubectl")
        }
    }
}

fn kubectl(c: &FakeCluster, args: &[&str]) -> Output {
    kubectl_with(c.kubeconfig_path(), args, None)
}

fn kubectl_apply(c: &FakeCluster, manager: &str, manifest: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager",
        manager,
        "-f",
        "-",
    ];
    args.extend_from_slice(extra);
    kubectl_with(c.kubeconfig_path(), &args, Some(manifest))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cadvisor\n";

/// The DaemonSet of the user's working MicroK8s fix (cadvisor.md §3.3): the socket's directory
/// mounted read-only at /var/snap-run, `--containerd=/var/snap-run/containerd.sock`.
fn microk8s_daemonset(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cadvisor
  namespace: cadvisor
  labels: {{app: cadvisor}}
spec:
  selector:
    matchLabels: {{app: cadvisor}}
  template:
    metadata:
      labels: {{app: cadvisor}}
    spec:
      containers:
      - name: cadvisor
        image: {image}
        args:
        - --containerd=/var/snap-run/containerd.sock
        - --store_container_labels=false
        - --whitelisted_container_labels=io.kubernetes.container.name,io.kubernetes.pod.name,io.kubernetes.pod.namespace
        ports: [{{name: http, containerPort: 8080}}]
        volumeMounts:
        - {{name: rootfs, mountPath: /rootfs, readOnly: true}}
        - {{name: sys, mountPath: /sys, readOnly: true}}
        - {{name: snap-run, mountPath: /var/snap-run, readOnly: true}}
      volumes:
      - {{name: rootfs, hostPath: {{path: /}}}}
      - {{name: sys, hostPath: {{path: /sys}}}}
      - {{name: snap-run, hostPath: {{path: /var/snap/microk8s/common/run}}}}
"#
    )
}

/// google/cadvisor deploy/kubernetes/base/daemonset.yaml: no socket mount, default `--containerd`.
const UPSTREAM_DAEMONSET: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cadvisor
  namespace: cadvisor
spec:
  selector:
    matchLabels: {name: cadvisor}
  template:
    metadata:
      labels: {name: cadvisor}
    spec:
      containers:
      - name: cadvisor
        image: gcr.io/cadvisor/cadvisor:v0.52.1
        ports: [{name: http, containerPort: 8080, protocol: TCP}]
        volumeMounts:
        - {name: rootfs, mountPath: /rootfs, readOnly: true}
        - {name: var-run, mountPath: /var/run, readOnly: true}
        - {name: sys, mountPath: /sys, readOnly: true}
        - {name: docker, mountPath: /var/lib/docker, readOnly: true}
        - {name: disk, mountPath: /dev/disk, readOnly: true}
      volumes:
      - {name: rootfs, hostPath: {path: /}}
      - {name: var-run, hostPath: {path: /var/run}}
      - {name: sys, hostPath: {path: /sys}}
      - {name: docker, hostPath: {path: /var/lib/docker}}
      - {name: disk, hostPath: {path: /dev/disk}}
"#;

fn install(c: &FakeCluster, daemonset: &str) {
    ok(kubectl_apply(c, "kubectl-test", NAMESPACE, &[]));
    ok(kubectl_apply(c, "kubectl-test", daemonset, &[]));
    ok(kubectl(
        c,
        &[
            "rollout",
            "status",
            "ds/cadvisor",
            "-n",
            "cadvisor",
            "--timeout=30s",
        ],
    ));
}

fn cadvisor_pods(c: &FakeCluster) -> Vec<Value> {
    c.list("Pod", Some("cadvisor"))
}

/// The nodes cAdvisor's pods (not terminating) are scheduled to, sorted.
fn scheduled_nodes(c: &FakeCluster) -> Vec<String> {
    let mut nodes: Vec<String> = cadvisor_pods(c)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    nodes.sort();
    nodes
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

mod kubectl_reads {
    use super::*;

    /// As the real API server: a ResourceQuota key whose name part is longer than 63 characters
    /// is invalid (422), the whole quota with it.
    #[test]
    fn a_quota_key_longer_than_a_qualified_name_is_invalid() {
        if !have_kubectl() {
            return;
        }
        let c = cluster(&[]);
        ok(kubectl(&c, &["create", "namespace", "q"]));
        let quota = |key: &str| {
            format!(
                "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\n  namespace: q\nspec:\n  hard:\n    {key}: \"0\"\n"
            )
        };
        let long = "count/mongodbdatabasecollectionthroughputsettings.documentdb.azure.com";
        let out = kubectl_with(
            c.kubeconfig_path(),
            &["create", "-f", "-"],
            Some(&quota(long)),
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("name part must be no more than 63 characters"),
            "{}",
            text(&out)
        );
        let short = "count/certificaterequests.cert-manager.io";
        ok(kubectl_with(
            c.kubeconfig_path(),
            &["create", "-f", "-"],
            Some(&quota(short)),
        ));
    }

    #[test]
    fn kubectl_gets_nodes_namespaces_and_daemonsets() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path()), ("node-2", root.path())]);
        let out = ok(kubectl(&c, &["get", "nodes"]));
        assert!(out.contains("node-1") && out.contains("node-2"), "{out}");
        assert!(out.contains("Ready"), "{out}");

        let nodes: Value = serde_json::from_str(&ok(kubectl(&c, &["get", "nodes", "-o", "json"])))
            .expect("kubectl prints JSON");
        assert_eq!(nodes["kind"], "List");
        assert_eq!(
            nodes["items"][0]["status"]["nodeInfo"]["containerRuntimeVersion"],
            "containerd://1.6.20"
        );
        let out = ok(kubectl(&c, &["get", "namespaces"]));
        assert!(out.contains("kube-system"), "{out}");
        // Typed clients send protobuf bodies.
        ok(kubectl(&c, &["create", "namespace", "scratch"]));
        ok(kubectl(
            &c,
            &[
                "create",
                "configmap",
                "cm",
                "-n",
                "scratch",
                "--from-literal=k=v",
            ],
        ));
        assert_eq!(
            c.get("ConfigMap", "scratch", "cm").expect("configmap")["data"]["k"],
            "v"
        );
        assert_eq!(
            c.get("Namespace", "", "scratch").expect("namespace")["metadata"]["managedFields"][0]["manager"],
            "kubectl-create"
        );

        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        let ds: Value = serde_json::from_str(&ok(kubectl(
            &c,
            &["get", "ds", "-n", "cadvisor", "-o", "json"],
        )))
        .expect("JSON");
        assert_eq!(ds["items"][0]["metadata"]["name"], "cadvisor");
        assert_eq!(ds["items"][0]["status"]["numberAvailable"], 2);
        let out = ok(kubectl(
            &c,
            &["get", "pods", "-n", "cadvisor", "-l", "app=cadvisor"],
        ));
        assert_eq!(out.matches("Running").count(), 2, "{out}");
        let out = ok(kubectl(
            &c,
            &[
                "get",
                "pods",
                "-A",
                "-o",
                "wide",
                "--field-selector",
                "spec.nodeName=node-2",
            ],
        ));
        assert_eq!(out.matches("cadvisor-").count(), 1, "{out}");
        assert!(out.contains("node-2") && out.contains("NODE"), "{out}");
        let out = ok(kubectl(&c, &["get", "nodes", "-o", "wide"]));
        assert!(out.contains("containerd://1.6.20"), "{out}");
    }

    #[test]
    fn requests_without_a_trusted_client_certificate_get_401() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let out = kubectl_with(&c.kubeconfig_with_untrusted_cert(), &["get", "nodes"], None);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("error: You must be logged in to the server"),
            "{}",
            text(&out)
        );
    }

    #[tokio::test]
    async fn kube_client_without_a_certificate_gets_401() {
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let anonymous = c.kubeconfig_without_client_cert();
        let client = cadvisor_setup::cluster::client::connect(&anonymous)
            .await
            .expect("client");
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.client);
        match nodes.list(&Default::default()).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 401);
                assert_eq!(status.reason, "Unauthorized");
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }

    #[test]
    fn forbidden_switch_answers_like_rbac() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        c.failures().forbid("patch", "daemonsets");
        let out = kubectl_apply(
            &c,
            "kubectl-test",
            &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"),
            &[],
        );
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                r#"daemonsets.apps "cadvisor" is forbidden: User "admin" cannot patch resource "daemonsets" in API group "apps" in the namespace "cadvisor""#
            ),
            "{}",
            text(&out)
        );
        c.failures().forbid("list", "nodes");
        let out = kubectl(&c, &["get", "nodes"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                r#"nodes is forbidden: User "admin" cannot list resource "nodes" in API group "" at the cluster scope"#
            ),
            "{}",
            text(&out)
        );
        c.failures().allow_all();
        ok(kubectl(&c, &["get", "nodes"]));
    }

    /// The switch works even when flipped before the server task has first run (its receiver
    /// subscribes after the flip), and it takes effect before `set_api_down` returns.
    #[test]
    fn api_down_right_after_start_is_honoured() {
        let c = FakeCluster::start(FakeClusterConfig::default());
        c.failures().set_api_down(true);
        assert!(std::net::TcpStream::connect(("127.0.0.1", c.port())).is_err());
        c.failures().set_api_down(false);
        assert!(std::net::TcpStream::connect(("127.0.0.1", c.port())).is_ok());
    }

    #[test]
    fn api_down_refuses_connections_until_it_is_back() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        ok(kubectl(&c, &["get", "nodes"]));
        c.failures().set_api_down(true);
        let out = kubectl(&c, &["get", "nodes", "--request-timeout=5s"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("was refused"),
            "{}",
            text(&out)
        );
        c.failures().set_api_down(false);
        ok(kubectl(&c, &["get", "nodes"]));
    }
}

/// The API server's service proxy (`services/NAME:PORT/proxy/...`), as `kubectl get --raw`
/// reaches a Prometheus through it.
mod service_proxy {
    use super::*;
    use std::io::{Read, Write};

    /// A one-thread HTTP server on loopback answering every request with its own request line.
    fn echo_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = request.lines().next().unwrap_or("").to_string();
                let body = format!("{{\"echo\": {}}}", serde_json::json!(line));
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn kubectl_reaches_a_backend_through_the_service_proxy_with_its_query() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let path = "/api/v1/namespaces/monitoring/services/prometheus-operated:web/proxy/api/v1/query?query=up%7Bjob%3D%22cadvisor%22%7D";
        // No Service: 404, as the real API server.
        let out = kubectl(&c, &["get", "--raw", path]);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("NotFound") || text(&out).contains("not found"),
            "{}",
            text(&out)
        );
        c.create(
            "prometheus-operator",
            serde_json::json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "prometheus-operated", "namespace": "monitoring"},
                "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 9090}],
                    "selector": {"app.kubernetes.io/name": "prometheus"}}}),
        );
        // A Service without a ready endpoint: 503.
        let out = kubectl(&c, &["get", "--raw", path]);
        assert!(
            text(&out).contains("no endpoints available"),
            "{}",
            text(&out)
        );
        c.set_service_backend("monitoring", "prometheus-operated", Some(&echo_server()));
        let body: Value = serde_json::from_str(&ok(kubectl(&c, &["get", "--raw", path])))
            .expect("JSON from the backend");
        assert_eq!(
            body["echo"], "GET /api/v1/query?query=up%7Bjob%3D%22cadvisor%22%7D HTTP/1.1",
            "path and query reach the backend"
        );
        // `https:` speaks TLS to the endpoint: a plain backend fails the handshake (503).
        let out = kubectl(
            &c,
            &[
                "get",
                "--raw",
                &path.replace("services/", "services/https:"),
            ],
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("error trying to reach service"),
            "{}",
            text(&out)
        );
    }
}

mod apply {
    use super::*;

    #[test]
    fn server_side_apply_creates_then_is_a_no_op_then_conflicts() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let v1 = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1");
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        let out = ok(kubectl_apply(&c, "kubectl-test", &v1, &[]));
        assert!(
            out.contains("daemonset.apps/cadvisor serverside-applied"),
            "{out}"
        );
        let ds = c.get("DaemonSet", "cadvisor", "cadvisor").expect("created");
        assert_eq!(ds["metadata"]["generation"], 1);
        let managers = &ds["metadata"]["managedFields"];
        assert_eq!(managers[0]["manager"], "kubectl-test");
        assert_eq!(managers[0]["operation"], "Apply");
        assert_eq!(managers[0]["fieldsType"], "FieldsV1");
        assert!(
            managers[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                [r#"k:{"name":"cadvisor"}"#]["f:image"]
                .is_object(),
            "{managers:#}"
        );
        assert!(c.wait_until(Duration::from_secs(10), |c| {
            c.get("DaemonSet", "cadvisor", "cadvisor")
                .is_some_and(|d| d["status"]["numberAvailable"] == 1)
        }));

        // The same configuration again changes nothing: same resourceVersion and generation.
        let before = c.get("DaemonSet", "cadvisor", "cadvisor").expect("ds");
        ok(kubectl_apply(&c, "kubectl-test", &v1, &[]));
        let after = c.get("DaemonSet", "cadvisor", "cadvisor").expect("ds");
        assert_eq!(rv(&before), rv(&after));
        assert_eq!(after["metadata"]["generation"], 1);

        // Another manager changing a field kubectl-test owns: 409, kubectl's conflict text.
        let v2 = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.53.0");
        let out = kubectl_apply(&c, "someone-else", &v2, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                r#"Apply failed with 1 conflict: conflict with "kubectl-test": .spec.template.spec.containers[name="cadvisor"].image"#
            ),
            "{}",
            text(&out)
        );
        assert_eq!(
            rv(&after),
            rv(&c.get("DaemonSet", "cadvisor", "cadvisor").expect("ds"))
        );

        // --force-conflicts takes the field; the template changed, so generation moves.
        ok(kubectl_apply(
            &c,
            "someone-else",
            &v2,
            &["--force-conflicts"],
        ));
        let forced = c.get("DaemonSet", "cadvisor", "cadvisor").expect("ds");
        assert_eq!(forced["metadata"]["generation"], 2);
        let image_owners: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields")
            .iter()
            .filter(|m| {
                m["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                    [r#"k:{"name":"cadvisor"}"#]["f:image"]
                    .is_object()
            })
            .map(|m| m["manager"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(image_owners, vec!["someone-else"]);
        ok(kubectl(
            &c,
            &[
                "rollout",
                "status",
                "ds/cadvisor",
                "-n",
                "cadvisor",
                "--timeout=30s",
            ],
        ));
        let pods = cadvisor_pods(&c);
        assert_eq!(pods.len(), 1);
        assert_eq!(
            pods[0]["spec"]["containers"][0]["image"],
            "gcr.io/cadvisor/cadvisor:v0.53.0"
        );
        assert_eq!(
            pods[0]["metadata"]["labels"]["pod-template-generation"],
            "2"
        );
    }

    #[test]
    fn a_daemonset_from_client_side_apply_conflicts_with_its_manager_named() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        c.seed_foreign_daemonset("cadvisor", "cadvisor", "gcr.io/cadvisor/cadvisor:v0.49.1");
        let out = kubectl_apply(
            &c,
            "cadvisor-setup",
            &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"),
            &[],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(r#"conflict with "kubectl-client-side-apply" using apps/v1"#)
                && err.contains(r#".spec.template.spec.containers[name="cadvisor"].image"#),
            "{}",
            text(&out)
        );
    }

    #[test]
    fn dry_run_returns_the_result_without_storing_it() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        let out = ok(kubectl_apply(
            &c,
            "kubectl-test",
            &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"),
            &["--dry-run=server", "-o", "json"],
        ));
        let ds: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
        assert!(c.get("DaemonSet", "cadvisor", "cadvisor").is_none());
    }

    #[test]
    fn deleting_cascades_to_pods_and_namespace_content() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        assert_eq!(cadvisor_pods(&c).len(), 1);
        // Held Terminating until released below, however slow kubectl is on a busy machine.
        c.failures().set_pod_stop_delay(Duration::from_secs(120));
        ok(kubectl(&c, &["delete", "ds", "cadvisor", "-n", "cadvisor"]));
        assert!(c.get("DaemonSet", "cadvisor", "cadvisor").is_none());
        // The garbage collector deletes the pods; they terminate gracefully, then go.
        let pods = cadvisor_pods(&c);
        assert_eq!(pods.len(), 1, "{pods:#?}");
        assert!(
            pods.iter()
                .all(|p| p["metadata"]["deletionTimestamp"].is_string()),
            "{pods:#?}"
        );
        let listed = ok(kubectl(&c, &["get", "pods", "-n", "cadvisor"]));
        assert!(listed.contains("Terminating"), "{listed}");
        c.failures().set_pod_stop_delay(Duration::from_millis(100));
        assert!(c.wait_until(Duration::from_secs(5), |c| cadvisor_pods(c).is_empty()));

        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        ok(kubectl(
            &c,
            &[
                "delete",
                "namespace",
                "cadvisor",
                "--wait=true",
                "--timeout=20s",
            ],
        ));
        assert!(c.get("Namespace", "", "cadvisor").is_none());
        assert!(c.list("DaemonSet", Some("cadvisor")).is_empty());
        assert!(cadvisor_pods(&c).is_empty());
    }
}

mod rollout {
    use super::*;

    /// The DaemonSet controller scales a percentage maxUnavailable rounding up, and never to 0
    /// (kubernetes/kubernetes: pkg/controller/daemon/util/daemonset_util.go `UnavailableCount`).
    #[test]
    fn a_percentage_max_unavailable_rounds_up_like_the_daemonset_controller() {
        use support::fake_api::controller::max_unavailable;
        let ds = |v: Value| serde_json::json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": v}}}});
        let ten = ds(Value::from("10%"));
        for (desired, budget) in [
            (1, 1),
            (5, 1),
            (10, 1),
            (11, 2),
            (15, 2),
            (300, 30),
            (301, 31),
        ] {
            assert_eq!(max_unavailable(&ten, desired), budget, "10% of {desired}");
        }
        assert_eq!(max_unavailable(&ds(Value::from("0%")), 300), 1);
        assert_eq!(max_unavailable(&ds(Value::from(3)), 300), 3);
        assert_eq!(max_unavailable(&serde_json::json!({}), 300), 1);
    }

    /// Required node affinity on `kubernetes.io/hostname` limits the DaemonSet to its nodes; a
    /// node that joins later and matches gets a pod, one that does not gets none; kubectl sees
    /// the nodes with their own OS, architecture and runtime.
    #[test]
    fn node_affinity_pins_daemon_pods_and_a_joining_node_is_scheduled_when_it_matches() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path()), ("node-2", root.path())]);
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        let pinned = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1").replace(
            "      containers:",
            "      affinity:\n        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            nodeSelectorTerms:\n            - matchExpressions:\n              - key: kubernetes.io/hostname\n                operator: In\n                values: [node-1, node-3]\n      containers:",
        );
        assert!(pinned.contains("affinity:"), "{pinned}");
        ok(kubectl_apply(&c, "kubectl-test", &pinned, &[]));
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
            == ["node-1"]));
        c.add_node(SimNode::k3s("node-3", root.path()));
        c.add_node(SimNode::kubeadm("node-4", root.path()));
        assert!(
            c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
                == ["node-1", "node-3"]),
            "{:?}",
            scheduled_nodes(&c)
        );
        let wide = ok(kubectl(&c, &["get", "nodes", "-o", "wide"]));
        assert!(wide.contains("node-3"), "{wide}");
        assert!(wide.contains("v1.33.4+k3s1"), "{wide}");
        assert!(wide.contains("containerd://2.0.5-k3s1"), "{wide}");
        let arch = ok(kubectl(
            &c,
            &[
                "get",
                "node",
                "node-3",
                "-o",
                "jsonpath={.status.nodeInfo.architecture}",
            ],
        ));
        assert_eq!(arch, "arm64");
        let configz = ok(kubectl(
            &c,
            &["get", "--raw", "/api/v1/nodes/node-4/proxy/configz"],
        ));
        let configz: Value = serde_json::from_str(&configz).expect("configz JSON");
        assert_eq!(configz["kubeletconfig"]["cgroupDriver"], "systemd");
        assert_eq!(
            configz["kubeletconfig"]["containerRuntimeEndpoint"],
            "unix:///run/containerd/containerd.sock"
        );
        c.failures().forbid_configz("node-4");
        let denied = kubectl(&c, &["get", "--raw", "/api/v1/nodes/node-4/proxy/configz"]);
        assert!(!denied.status.success());
        assert!(
            text(&denied).contains("Forbidden") || text(&denied).contains("forbidden"),
            "{}",
            text(&denied)
        );
        // A node that leaves takes its daemon pod with it.
        c.remove_node("node-3");
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
            == ["node-1"]));
    }

    /// Why `--label-nodes` writes its label with a merge patch: a merge patch of a Node that does
    /// not exist is 404 and creates nothing (kubernetes/kubernetes: pkg/registry/core/node/
    /// strategy.go, `AllowCreateOnUpdate` false), and it records the field manager it names as
    /// the label's owner, taking it from whoever set it before.
    #[test]
    fn a_merge_patch_never_creates_a_node_and_records_its_manager() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let patch = r#"{"metadata":{"labels":{"example.com/group":"a"}}}"#;
        let gone = kubectl(
            &c,
            &["patch", "node", "ghost", "--type", "merge", "-p", patch],
        );
        assert!(!gone.status.success(), "{}", text(&gone));
        assert!(text(&gone).contains("not found"), "{}", text(&gone));
        assert!(c.get("Node", "", "ghost").is_none(), "a Node was created");

        ok(kubectl(
            &c,
            &["label", "node", "node-1", "example.com/group=b"],
        ));
        ok(kubectl(
            &c,
            &[
                "patch",
                "node",
                "node-1",
                "--type",
                "merge",
                "-p",
                patch,
                "--field-manager",
                "cadvisor-setup",
            ],
        ));
        let node = c.get("Node", "", "node-1").expect("node-1");
        assert_eq!(node["metadata"]["labels"]["example.com/group"], "a");
        assert_eq!(
            label_owners(&node, "example.com/group"),
            ["cadvisor-setup"],
            "{node:#}"
        );
    }

    /// uid is immutable, as a real API server keeps it: a server-side apply naming another
    /// uid than the live object's is 422 "metadata.uid: ... field is immutable" and changes
    /// nothing; naming its own uid applies; a create by apply gets a uid of its own.
    #[test]
    fn an_apply_naming_another_uid_is_refused_as_immutable() {
        if !have_kubectl() {
            return;
        }
        let c = FakeCluster::start(FakeClusterConfig::with_nodes(Vec::new()));
        let manifest = |uid: &str, value: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  namespace: default\n  uid: \"{uid}\"\ndata:\n  k: {value}\n"
            )
        };
        ok(kubectl_apply(&c, "first", &manifest("made-up", "a"), &[]));
        let live = c.get("ConfigMap", "default", "m").expect("created");
        let uid = live["metadata"]["uid"].as_str().expect("uid").to_string();
        assert_ne!(uid, "made-up", "a create sets its own uid");

        let out = kubectl_apply(&c, "first", &manifest("someone-else", "b"), &[]);
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "is invalid: metadata.uid: Invalid value: \"someone-else\": field is immutable"
            ),
            "{}",
            text(&out)
        );
        assert_eq!(
            c.get("ConfigMap", "default", "m").expect("kept")["data"]["k"],
            "a"
        );

        ok(kubectl_apply(&c, "first", &manifest(&uid, "c"), &[]));
        assert_eq!(
            c.get("ConfigMap", "default", "m").expect("kept")["data"]["k"],
            "c"
        );
    }

    /// Object count quota as quota admission enforces it: with a ResourceQuota allowing
    /// `count/configmaps: 0` (one ConfigMap, `kube-root-ca.crt`, already there), once the quota
    /// controller has written its status, `kubectl create configmap` is refused with 403
    /// "exceeded quota", by apply as by create, and nothing is stored; other kinds and other
    /// namespaces are not limited; a quota whose status is not written yet is not enforced;
    /// without the quota it works.
    #[test]
    fn a_resource_quota_of_zero_refuses_new_objects_of_its_kinds() {
        if !have_kubectl() {
            return;
        }
        let c = FakeCluster::start(FakeClusterConfig::with_nodes(Vec::new()));
        ok(kubectl_apply(
            &c,
            "admin",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: closed\n",
            &[],
        ));
        ok(kubectl_apply(
            &c,
            "admin",
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: lock\n  namespace: closed\nspec:\n  hard:\n    count/configmaps: \"0\"\n    count/roles.rbac.authorization.k8s.io: \"0\"\n",
            &[],
        ));
        // Enforced once the quota controller has copied spec.hard to status.hard.
        assert!(c.wait_until(Duration::from_secs(10), |c| {
            c.get("ResourceQuota", "closed", "lock")
                .is_some_and(|q| q["status"]["hard"]["count/configmaps"] == "0")
        }));
        let out = kubectl(&c, &["create", "configmap", "x", "-n", "closed"]);
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("configmaps \"x\" is forbidden: exceeded quota: lock, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=0"),
            "{}",
            text(&out)
        );
        let manifest =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: closed\n";
        let out = kubectl_apply(&c, "someone", manifest, &[]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(c.get("ConfigMap", "closed", "x").is_none());
        assert!(c.get("ConfigMap", "closed", "y").is_none());
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: closed\nrules: []\n";
        let out = kubectl_apply(&c, "someone", role, &[]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exceeded quota: lock"),
            "{}",
            text(&out)
        );
        ok(kubectl(
            &c,
            &["create", "serviceaccount", "s", "-n", "closed"],
        ));
        ok(kubectl(&c, &["create", "configmap", "x", "-n", "default"]));
        // A quota the quota controller has not taken up is not enforced.
        c.failures().stop_quota_controller(true);
        ok(kubectl_apply(
            &c,
            "admin",
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: unsynced\n  namespace: default\nspec:\n  hard:\n    count/configmaps: \"0\"\n",
            &[],
        ));
        ok(kubectl(&c, &["create", "configmap", "z", "-n", "default"]));
        assert!(
            c.get("ResourceQuota", "default", "unsynced")
                .expect("quota")["status"]["hard"]
                .is_null()
        );
        ok(kubectl(
            &c,
            &["delete", "resourcequota", "lock", "-n", "closed"],
        ));
        ok(kubectl(&c, &["create", "configmap", "x", "-n", "closed"]));
    }

    /// Node labels as a real API server keeps them: `kubectl label` (manager `kubectl-label`)
    /// and server-side apply of a Node holding only a label (the applier owns just that
    /// label); applying another value over someone else's label is a conflict naming them
    /// unless forced; applying without it removes it. The DaemonSet controller follows the
    /// stored labels through `nodeSelector`: a pod where a node gains the label, none where it
    /// loses it.
    #[test]
    fn node_labels_by_kubectl_and_server_side_apply_drive_a_node_selector() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path()), ("node-2", root.path())]);
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        let selected = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1").replace(
            "      containers:",
            "      nodeSelector:\n        example.com/role: metrics\n      containers:",
        );
        assert!(selected.contains("nodeSelector:"), "{selected}");
        ok(kubectl_apply(&c, "kubectl-test", &selected, &[]));
        std::thread::sleep(Duration::from_millis(200));
        assert!(scheduled_nodes(&c).is_empty(), "{:?}", scheduled_nodes(&c));

        ok(kubectl(
            &c,
            &["label", "node", "node-2", "example.com/role=metrics"],
        ));
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
            == ["node-2"]));
        let label_node = |name: &str, labels: &str| {
            format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n{labels}")
        };
        let ours = label_node("node-1", "  labels:\n    example.com/role: metrics\n");
        ok(kubectl_apply(&c, "cadvisor-setup", &ours, &[]));
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
            == ["node-1", "node-2"]));
        let owners =
            |name: &str| label_owners(&c.get("Node", "", name).expect("node"), "example.com/role");
        assert_eq!(owners("node-1"), ["cadvisor-setup"]);
        assert_eq!(owners("node-2"), ["kubectl-label"]);
        // The applier owns only its label: the kubelet's labels stay the kubelet's.
        let node1 = c.get("Node", "", "node-1").expect("node");
        assert_eq!(
            node1["metadata"]["labels"]["kubernetes.io/hostname"],
            "node-1"
        );
        let entry = node1["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["manager"] == "cadvisor-setup")
            .cloned()
            .expect("our entry");
        assert_eq!(
            entry["fieldsV1"],
            serde_json::json!({"f:metadata": {"f:labels": {"f:example.com/role": {}}}})
        );

        // Another value over kubectl-label's label: a conflict naming it; forced, taken over.
        let theirs = label_node("node-2", "  labels:\n    example.com/role: other\n");
        let refused = kubectl_apply(&c, "cadvisor-setup", &theirs, &[]);
        assert!(!refused.status.success(), "{}", text(&refused));
        assert!(
            text(&refused).contains("kubectl-label"),
            "{}",
            text(&refused)
        );
        ok(kubectl_apply(
            &c,
            "cadvisor-setup",
            &theirs,
            &["--force-conflicts"],
        ));
        assert_eq!(owners("node-2"), ["cadvisor-setup"]);
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c)
            == ["node-1"]));

        // Applying the Node without the label removes it (no one else owns it).
        ok(kubectl_apply(
            &c,
            "cadvisor-setup",
            &label_node("node-1", ""),
            &[],
        ));
        let node1 = c.get("Node", "", "node-1").expect("node");
        assert!(
            node1["metadata"]["labels"]
                .get("example.com/role")
                .is_none(),
            "{node1:#}"
        );
        assert!(owners("node-1").is_empty());
        assert!(c.wait_until(Duration::from_secs(10), |c| scheduled_nodes(c).is_empty()));
    }

    #[test]
    fn kubectl_rollout_status_watches_until_every_node_runs_the_new_pod() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[
            ("node-1", root.path()),
            ("node-2", root.path()),
            ("node-3", root.path()),
        ]);
        c.failures().set_pod_start_delay(Duration::from_secs(2));
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        ok(kubectl_apply(
            &c,
            "kubectl-test",
            &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"),
            &[],
        ));
        c.clear_requests();
        let out = ok(kubectl(
            &c,
            &[
                "rollout",
                "status",
                "ds/cadvisor",
                "-n",
                "cadvisor",
                "--timeout=30s",
            ],
        ));
        assert!(
            out.contains(r#"daemon set "cadvisor" successfully rolled out"#),
            "{out}"
        );
        assert!(
            out.contains("Waiting for daemon set"),
            "it saw the rollout progress: {out}"
        );
        assert!(
            c.requests()
                .iter()
                .any(|r| r.is_watch() && r.path.ends_with("/daemonsets")),
            "rollout status watched"
        );
        let ds = c.get("DaemonSet", "cadvisor", "cadvisor").expect("ds");
        for field in [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "updatedNumberScheduled",
            "numberReady",
            "numberAvailable",
        ] {
            assert_eq!(ds["status"][field], 3, "{field}: {:#}", ds["status"]);
        }
        assert!(ds["status"].get("numberUnavailable").is_none());
        assert_eq!(ds["status"]["observedGeneration"], 1);
    }

    #[test]
    fn image_pull_failure_and_crash_loop_show_in_pods_and_events() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        c.failures().set_image_pull_failure(true);
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        ok(kubectl_apply(
            &c,
            "kubectl-test",
            &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v9.9.9"),
            &[],
        ));
        let out = kubectl(
            &c,
            &[
                "rollout",
                "status",
                "ds/cadvisor",
                "-n",
                "cadvisor",
                "--timeout=2s",
            ],
        );
        assert!(!out.status.success(), "{}", text(&out));
        let pods = ok(kubectl(&c, &["get", "pods", "-n", "cadvisor"]));
        assert!(pods.contains("ImagePullBackOff"), "{pods}");
        let pod = cadvisor_pods(&c).remove(0);
        let name = pod["metadata"]["name"].as_str().expect("name").to_string();
        let events = ok(kubectl(
            &c,
            &[
                "get",
                "events",
                "-n",
                "cadvisor",
                "--field-selector",
                &format!("involvedObject.name={name}"),
            ],
        ));
        assert!(events.contains("Failed to pull image"), "{events}");
        let out = kubectl(&c, &["logs", "-n", "cadvisor", &name]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is waiting to start"),
            "{}",
            text(&out)
        );

        // The pull works again, but the container now crashes: CrashLoopBackOff, rising restarts.
        c.failures().set_image_pull_failure(false);
        c.failures().set_crash_loop(true);
        ok(kubectl(&c, &["delete", "pod", "-n", "cadvisor", &name]));
        assert!(c.wait_until(Duration::from_secs(10), |c| {
            cadvisor_pods(c).first().is_some_and(|p| {
                p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(0)
                    >= 2
            })
        }));
        let pods = ok(kubectl(&c, &["get", "pods", "-n", "cadvisor"]));
        assert!(pods.contains("CrashLoopBackOff"), "{pods}");
        let crashed = cadvisor_pods(&c).remove(0);
        let log = ok(kubectl(
            &c,
            &[
                "logs",
                "-n",
                "cadvisor",
                crashed["metadata"]["name"].as_str().expect("name"),
            ],
        ));
        assert!(log.contains("Failed to create a manager"), "{log}");
        // kubectl get -w asks for Tables, in watch events too.
        let watched = kubectl(
            &c,
            &[
                "get",
                "pods",
                "-n",
                "cadvisor",
                "-w",
                "--request-timeout=2s",
            ],
        );
        let watched = String::from_utf8_lossy(&watched.stdout).into_owned();
        assert!(
            watched.contains("RESTARTS") && watched.contains("CrashLoopBackOff"),
            "{watched}"
        );
        let pod = cadvisor_pods(&c).remove(0);
        let events = c.events_for("cadvisor", pod["metadata"]["name"].as_str().expect("name"));
        assert!(
            events.iter().any(|e| e["reason"] == "BackOff"
                && e["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Back-off restarting failed container cadvisor")),
            "{events:#?}"
        );
    }

    /// Lists in pages as the API server serves them: `limit`, an opaque `continue` that resumes
    /// after the last item, `remainingItemCount`; kubectl's `--chunk-size` follows it, and so
    /// does the verification's pod list (`rollout::daemonset_pods_as`).
    #[test]
    fn lists_come_in_pages_that_kubectl_and_the_pod_list_follow() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let names: Vec<String> = (1..=5).map(|i| format!("node-{i}")).collect();
        let c = cluster(
            &names
                .iter()
                .map(|n| (n.as_str(), root.path()))
                .collect::<Vec<_>>(),
        );
        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        let mut all: Vec<String> = cadvisor_pods(&c)
            .iter()
            .map(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        all.sort();
        assert_eq!(all.len(), 5);

        let page = |query: &str| -> Value {
            let path = format!("/api/v1/namespaces/cadvisor/pods?{query}");
            serde_json::from_str(&ok(kubectl(&c, &["get", "--raw", &path]))).expect("json")
        };
        let first = page("limit=2");
        assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(first["metadata"]["remainingItemCount"], 3);
        let token = first["metadata"]["continue"].as_str().expect("continue");
        let second = page(&format!("limit=2&continue={token}"));
        let third = page(&format!(
            "limit=2&continue={}",
            second["metadata"]["continue"].as_str().expect("continue")
        ));
        assert_eq!(third["items"].as_array().map(Vec::len), Some(1));
        assert!(third["metadata"]["continue"].is_null(), "{third:#}");
        let mut paged: Vec<String> = [first, second, third]
            .iter()
            .flat_map(|p| p["items"].as_array().cloned().unwrap_or_default())
            .map(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        paged.sort();
        assert_eq!(paged, all);

        let chunked = ok(kubectl(
            &c,
            &[
                "get",
                "pods",
                "-n",
                "cadvisor",
                "--chunk-size=2",
                "-o",
                "name",
            ],
        ));
        assert_eq!(chunked.lines().count(), 5, "{chunked}");

        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let mut listed = runtime.block_on(async {
            let cluster = cadvisor_setup::cluster::client::connect(c.kubeconfig_path())
                .await
                .expect("client");
            cadvisor_setup::cluster::rollout::daemonset_pods_as(
                &cluster,
                "cadvisor",
                "cadvisor",
                2,
                |p| p.metadata.name.unwrap_or_default(),
            )
            .await
            .expect("pods")
        });
        listed.sort();
        assert_eq!(listed, all);
        assert_eq!(
            c.requests()
                .iter()
                .filter(|r| r.path == "/api/v1/namespaces/cadvisor/pods"
                    && r.query.iter().any(|(k, v)| k == "limit" && v == "2"))
                .count(),
            3 + 3 + 3,
            "three pages each: by hand, by kubectl --chunk-size=2, by the pod list"
        );
    }
}

mod kube_client {
    use super::*;
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::api::{Api, Patch, PatchParams};
    use kube::runtime::{WatchStreamExt, watcher};

    fn daemonset(image: &str) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "cadvisor", "namespace": "cadvisor"},
            "spec": {
                "selector": {"matchLabels": {"app": "cadvisor"}},
                "template": {
                    "metadata": {"labels": {"app": "cadvisor"}},
                    "spec": {"containers": [{"name": "cadvisor", "image": image}]}
                }
            }
        }))
        .expect("DaemonSet")
    }

    #[tokio::test]
    async fn kube_server_side_apply_and_watcher_see_the_rollout() {
        let root = short_root();
        let c = cluster(&[("node-1", root.path()), ("node-2", root.path())]);
        c.failures().set_pod_start_delay(Duration::from_millis(300));
        c.create(
            "kubectl-create",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cadvisor"}}),
        );
        let cluster = cadvisor_setup::cluster::client::connect(c.kubeconfig_path())
            .await
            .expect("client");
        let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), "cadvisor");
        let pp = PatchParams::apply("cadvisor-setup");

        let created = api
            .patch(
                "cadvisor",
                &pp,
                &Patch::Apply(daemonset("gcr.io/cadvisor/cadvisor:v0.52.1")),
            )
            .await
            .expect("create by apply");
        assert_eq!(created.metadata.generation, Some(1));

        let watch = watcher(
            api.clone(),
            watcher::Config::default().fields("metadata.name=cadvisor"),
        )
        .applied_objects()
        .try_filter(|ds| {
            let s = ds.status.clone().unwrap_or_default();
            futures::future::ready(
                s.observed_generation >= ds.metadata.generation
                    && s.desired_number_scheduled == 2
                    && s.number_available == Some(2)
                    && s.updated_number_scheduled == Some(2),
            )
        });
        let done = tokio::time::timeout(Duration::from_secs(20), Box::pin(watch).next())
            .await
            .expect("rolled out within 20s");
        assert!(matches!(done, Some(Ok(_))), "{done:?}");

        let again = api
            .patch(
                "cadvisor",
                &pp,
                &Patch::Apply(daemonset("gcr.io/cadvisor/cadvisor:v0.52.1")),
            )
            .await
            .expect("no-op apply");
        let live = api.get("cadvisor").await.expect("get");
        assert_eq!(
            again.metadata.resource_version,
            live.metadata.resource_version
        );
        assert_eq!(live.metadata.generation, Some(1));

        let other = PatchParams::apply("someone-else");
        match api
            .patch(
                "cadvisor",
                &other,
                &Patch::Apply(daemonset("gcr.io/cadvisor/cadvisor:v0.53.0")),
            )
            .await
        {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 409);
                assert_eq!(s.reason, "Conflict");
                assert!(
                    s.message.contains(r#"conflict with "cadvisor-setup""#),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let forced = api
            .patch(
                "cadvisor",
                &other.force(),
                &Patch::Apply(daemonset("gcr.io/cadvisor/cadvisor:v0.53.0")),
            )
            .await
            .expect("forced apply");
        assert_eq!(forced.metadata.generation, Some(2));
        assert!(
            c.requests()
                .iter()
                .any(|r| r.is_watch() && r.param("resourceVersion").is_some()),
            "the watcher listed then watched from the list's resourceVersion"
        );
    }
}

mod simulated_cadvisor {
    use super::*;
    use support::containerd::Containerd;

    /// A MicroK8s node whose real containerd runs the user's `nginx` container of the Loki
    /// gateway pod.
    fn microk8s_node() -> Option<(tempfile::TempDir, Containerd)> {
        if !real::require_containerd() || !have_kubectl() {
            return None;
        }
        let root = short_root();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("nginx", POD, "loki", "nginx");
        Some((root, ctd))
    }

    fn metrics_and_log(c: &FakeCluster) -> (String, String) {
        let pod = cadvisor_pods(c).remove(0);
        let name = pod["metadata"]["name"].as_str().expect("name").to_string();
        let metrics = ok(kubectl(
            c,
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/cadvisor/pods/{name}:8080/proxy/metrics"),
            ],
        ));
        let log = ok(kubectl(c, &["logs", "-n", "cadvisor", &name]));
        (metrics, log)
    }

    #[test]
    fn upstream_manifest_without_the_socket_mount_gives_id_only_series() {
        let Some((root, _ctd)) = microk8s_node() else {
            return;
        };
        let c = cluster(&[("node-1", root.path())]);
        install(&c, UPSTREAM_DAEMONSET);
        let (metrics, log) = metrics_and_log(&c);
        assert!(
            log.contains("Registration of the containerd container factory failed: unable to create containerd client: containerd: cannot unix dial containerd api service: dial unix /run/containerd/containerd.sock: connect: no such file or directory"),
            "{log}"
        );
        assert!(!metrics.contains("container_label_"), "{metrics}");
        assert!(
            metrics.contains("container_cpu_usage_seconds_total{cpu=\"total\",id=\"/\"}"),
            "{metrics}"
        );
        // The container's cgroup is there, but only as a raw cgroup.
        assert!(
            metrics
                .lines()
                .filter(|l| l.starts_with("container_cpu_usage_seconds_total{"))
                .count()
                >= 2,
            "{metrics}"
        );

        // The kubelet, which knows the socket, labels the same container.
        let kubelet = ok(kubectl(
            &c,
            &[
                "get",
                "--raw",
                "/api/v1/nodes/node-1/proxy/metrics/cadvisor",
            ],
        ));
        assert!(kubelet.contains(&format!("pod=\"{POD}\"")), "{kubelet}");
        assert!(kubelet.contains("container=\"nginx\""), "{kubelet}");
    }

    #[test]
    fn microk8s_manifest_with_the_socket_directory_mounted_gives_pod_labels() {
        let Some((root, _ctd)) = microk8s_node() else {
            return;
        };
        let c = cluster(&[("node-1", root.path())]);
        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        let (metrics, log) = metrics_and_log(&c);
        assert!(
            log.contains("Registration of the containerd container factory successfully"),
            "{log}"
        );
        assert!(
            metrics.contains(&format!("container_label_io_kubernetes_pod_name=\"{POD}\"")),
            "{metrics}"
        );
        assert!(
            metrics.contains("container_label_io_kubernetes_container_name=\"nginx\""),
            "{metrics}"
        );
        assert!(
            metrics.contains("container_label_io_kubernetes_pod_namespace=\"loki\""),
            "{metrics}"
        );
        // Union effect: the root cgroup's series carries the same label names, empty.
        assert!(
            metrics.contains("container_cpu_usage_seconds_total{container_label_io_kubernetes_container_name=\"\",container_label_io_kubernetes_pod_name=\"\",container_label_io_kubernetes_pod_namespace=\"\",cpu=\"total\",id=\"/\",image=\"\",name=\"\"}"),
            "{metrics}"
        );
        // Only whitelisted labels: containerd's own image labels are not there.
        assert!(
            !metrics.contains("container_label_io_containerd"),
            "{metrics}"
        );

        assert_eq!(c.mirror_workload_pods(), 1);
        let pods = ok(kubectl(&c, &["get", "pods", "-n", "loki", "-o", "wide"]));
        assert!(
            pods.contains(POD) && pods.contains("Running") && pods.contains("node-1"),
            "{pods}"
        );

        let configz = ok(kubectl(
            &c,
            &["get", "--raw", "/api/v1/nodes/node-1/proxy/configz"],
        ));
        let configz: Value = serde_json::from_str(&configz).expect("configz JSON");
        assert_eq!(
            configz["kubeletconfig"]["containerRuntimeEndpoint"],
            MICROK8S_SOCKET
        );
    }

    #[test]
    fn a_mount_of_the_wrong_host_directory_really_fails() {
        let Some((root, _ctd)) = microk8s_node() else {
            return;
        };
        let c = cluster(&[("node-1", root.path())]);
        // Mounted at the right place in the pod, but from /run on the host (kubeadm's layout).
        let wrong = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1").replace(
            "path: /var/snap/microk8s/common/run}",
            "path: /run/containerd}",
        );
        install(&c, &wrong);
        let (metrics, log) = metrics_and_log(&c);
        assert!(
            log.contains(
                "dial unix /var/snap-run/containerd.sock: connect: no such file or directory"
            ),
            "{log}"
        );
        assert!(
            !metrics.contains("container_label_io_kubernetes_pod_name"),
            "{metrics}"
        );
    }
}

mod kubelet {
    use super::*;

    #[test]
    fn a_hostpath_type_check_that_fails_keeps_the_pod_creating() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let typed = microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1").replace(
            "{path: /var/snap/microk8s/common/run}",
            "{path: /var/snap/microk8s/common/run, type: Directory}",
        );
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        ok(kubectl_apply(&c, "kubectl-test", &typed, &[]));
        let out = kubectl(
            &c,
            &[
                "rollout",
                "status",
                "ds/cadvisor",
                "-n",
                "cadvisor",
                "--timeout=2s",
            ],
        );
        assert!(!out.status.success(), "{}", text(&out));
        let pods = ok(kubectl(&c, &["get", "pods", "-n", "cadvisor"]));
        assert!(pods.contains("ContainerCreating"), "{pods}");
        let pod = cadvisor_pods(&c).remove(0);
        let events = c.events_for("cadvisor", pod["metadata"]["name"].as_str().expect("name"));
        assert!(
            events.iter().any(|e| e["reason"] == "FailedMount"
                && e["message"].as_str().unwrap_or_default().contains(
                    "hostPath type check failed: /var/snap/microk8s/common/run is not a directory"
                )),
            "{events:#?}"
        );

        // Once the directory exists on the node, the kubelet's retry succeeds (/sys and / pass
        // the same check).
        std::fs::create_dir_all(root.path().join("var/snap/microk8s/common/run")).expect("mkdir");
        ok(kubectl(
            &c,
            &[
                "rollout",
                "status",
                "ds/cadvisor",
                "-n",
                "cadvisor",
                "--timeout=20s",
            ],
        ));
    }

    #[test]
    fn pod_proxy_accepts_the_name_forms_and_refuses_other_ports() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        install(&c, &microk8s_daemonset("gcr.io/cadvisor/cadvisor:v0.52.1"));
        let name = cadvisor_pods(&c)[0]["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        for target in [
            format!("{name}:8080"),
            name.clone(),
            format!("http:{name}:8080"),
        ] {
            let body = ok(kubectl(
                &c,
                &[
                    "get",
                    "--raw",
                    &format!("/api/v1/namespaces/cadvisor/pods/{target}/proxy/metrics"),
                ],
            ));
            assert!(
                body.contains("# TYPE container_cpu_usage_seconds_total counter"),
                "{target}: {body}"
            );
        }
        let out = kubectl(
            &c,
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/cadvisor/pods/{name}:9090/proxy/metrics"),
            ],
        );
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("connection refused"),
            "{}",
            text(&out)
        );
        let log = ok(kubectl(&c, &["logs", "-n", "cadvisor", "ds/cadvisor"]));
        assert!(
            log.contains("Registration of the containerd container factory failed"),
            "{log}"
        );
    }

    #[test]
    fn servicemonitors_are_served_only_with_the_prometheus_operator() {
        if !have_kubectl() {
            return;
        }
        let root = short_root();
        let c = cluster(&[("node-1", root.path())]);
        let monitor = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: cadvisor\n  namespace: cadvisor\nspec:\n  selector:\n    matchLabels: {app: cadvisor}\n  endpoints:\n  - port: http\n";
        ok(kubectl_apply(&c, "kubectl-test", NAMESPACE, &[]));
        let out = kubectl_apply(&c, "kubectl-test", monitor, &[]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                r#"no matches for kind "ServiceMonitor" in version "monitoring.coreos.com/v1""#
            ),
            "{}",
            text(&out)
        );
        c.set_prometheus_operator(true);
        ok(kubectl_apply(&c, "kubectl-test", monitor, &[]));
        let got = ok(kubectl(
            &c,
            &["get", "servicemonitors", "-n", "cadvisor", "-o", "json"],
        ));
        let list: Value = serde_json::from_str(&got).expect("JSON");
        assert_eq!(list["items"][0]["spec"]["endpoints"][0]["port"], "http");
    }
}

mod ssa_semantics {
    use serde_json::json;
    use support::fake_api::apply::{self, Elem};

    use super::*;

    fn ds(args: Value, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "cadvisor", "namespace": "cadvisor"},
            "spec": {"template": {"spec": {"containers": [{"name": "cadvisor", "image": image, "args": args}]}}}
        })
    }

    #[test]
    fn a_field_the_applier_stops_applying_is_removed_unless_someone_else_owns_it() {
        let t = "2026-11-27T00:00:00Z";
        let mut with_labels = ds(json!(["--a"]), "img:1");
        with_labels["metadata"]["labels"] = json!({"app": "cadvisor", "team": "obs"});
        let live = apply::apply(None, &with_labels, "me", false, t).expect("create");
        // Another manager applies the same `team` label: shared ownership.
        let shared = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "cadvisor", "namespace": "cadvisor", "labels": {"team": "obs"}}});
        let live =
            apply::apply(Some(&live), &shared, "other", false, t).expect("shared, no conflict");
        // `me` drops both labels: `app` goes, `team` stays (other still owns it).
        let live =
            apply::apply(Some(&live), &ds(json!(["--a"]), "img:1"), "me", false, t).expect("apply");
        assert_eq!(live["metadata"]["labels"], json!({"team": "obs"}));
        // Args are an atomic list: replaced whole.
        let live = apply::apply(
            Some(&live),
            &ds(json!(["--b", "--c"]), "img:1"),
            "me",
            false,
            t,
        )
        .expect("apply");
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--b", "--c"])
        );
    }

    /// Dropping the only field under a struct drops the struct too (a required node affinity
    /// left as `{}` would be invalid), as structured-merge-diff's field sets hold every prefix.
    #[test]
    fn a_struct_left_empty_by_a_dropped_field_goes_with_it() {
        let t = "2026-11-27T00:00:00Z";
        let mut pinned = ds(json!(["--a"]), "img:1");
        pinned["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}
        ]}}});
        pinned["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let live = apply::apply(None, &pinned, "me", false, t).expect("create");
        let mut unpinned = ds(json!(["--a"]), "img:1");
        unpinned["spec"]["template"]["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let live = apply::apply(Some(&live), &unpinned, "me", false, t).expect("apply");
        let pod = &live["spec"]["template"]["spec"];
        assert!(pod.get("affinity").is_none(), "{pod:#}");
        assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
        assert_eq!(pod["containers"][0]["image"], "img:1");
    }

    #[test]
    fn fields_v1_round_trips_through_managed_fields() {
        let t = "2026-11-27T00:00:00Z";
        let live =
            apply::apply(None, &ds(json!(["--a"]), "img:1"), "me", false, t).expect("create");
        let entries = apply::entries(&live);
        assert_eq!(entries.len(), 1);
        let image = vec![
            Elem::Field("spec".into()),
            Elem::Field("template".into()),
            Elem::Field("spec".into()),
            Elem::Field("containers".into()),
            Elem::Key(r#"{"name":"cadvisor"}"#.into()),
            Elem::Field("image".into()),
        ];
        assert!(entries[0].fields.contains(&image));
        assert!(
            entries[0].fields.contains(&image[..5]),
            "the list item itself"
        );
        assert_eq!(
            apply::path_string(&image),
            r#".spec.template.spec.containers[name="cadvisor"].image"#
        );
        let mut copy = live.clone();
        apply::set_entries(&mut copy, &entries);
        assert_eq!(
            copy["metadata"]["managedFields"],
            live["metadata"]["managedFields"]
        );
    }

    #[test]
    fn conflicts_name_every_field_and_force_moves_ownership() {
        let t = "2026-11-27T00:00:00Z";
        let live =
            apply::apply(None, &ds(json!(["--a"]), "img:1"), "first", false, t).expect("create");
        let err = apply::apply(
            Some(&live),
            &ds(json!(["--b"]), "img:2"),
            "second",
            false,
            t,
        )
        .expect_err("two conflicts");
        assert_eq!(err.code, 409);
        assert_eq!(err.body["reason"], "Conflict");
        let message = err.message();
        assert!(
            message.starts_with("Apply failed with 2 conflicts: conflicts with \"first\":"),
            "{message}"
        );
        let causes = err.body["details"]["causes"].as_array().expect("causes");
        assert_eq!(causes.len(), 2);
        assert!(causes.iter().all(|c| c["reason"] == "FieldManagerConflict"));
        let forced = apply::apply(Some(&live), &ds(json!(["--b"]), "img:2"), "second", true, t)
            .expect("forced");
        let first = apply::entries(&forced)
            .into_iter()
            .find(|e| e.manager == "first")
            .expect("first keeps the rest");
        assert!(
            first
                .fields
                .iter()
                .all(|p| !matches!(p.last(), Some(Elem::Field(f)) if f == "image" || f == "args"))
        );
    }
}

mod whitelist {
    use super::*;
    use support::containerd::Containerd;

    /// google/cadvisor#3235: before v0.48.0 whitelist entries were not trimmed, so the space in
    /// the upstream overlay's list hid `io.kubernetes.pod.name`; from v0.48.0 it is harmless.
    #[test]
    fn a_space_in_the_whitelist_hides_the_pod_name_before_v0_48_only() {
        if !real::require_containerd() || !have_kubectl() {
            return;
        }
        let root = short_root();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("nginx", POD, "loki", "nginx");
        let c = cluster(&[("node-1", root.path())]);
        // The upstream overlay's list, space included (quoted whole, as YAML needs).
        let spaced = |image: &str| {
            microk8s_daemonset(image).replace(
                "- --whitelisted_container_labels=io.kubernetes.container.name,io.kubernetes.pod.name,io.kubernetes.pod.namespace",
                "- \"--whitelisted_container_labels=io.kubernetes.container.name, io.kubernetes.pod.name,io.kubernetes.pod.namespace\"",
            )
        };
        for (image, pod_name_visible) in [
            ("gcr.io/cadvisor/cadvisor:v0.47.2", false),
            ("gcr.io/cadvisor/cadvisor:v0.49.1", true),
        ] {
            install(&c, &spaced(image));
            let pod = cadvisor_pods(&c)
                .into_iter()
                .find(|p| {
                    p["spec"]["containers"][0]["image"] == image
                        && p["status"]["phase"] == "Running"
                })
                .expect("a running pod of this image");
            let name = pod["metadata"]["name"].as_str().expect("name").to_string();
            let metrics = ok(kubectl(
                &c,
                &[
                    "get",
                    "--raw",
                    &format!("/api/v1/namespaces/cadvisor/pods/{name}:8080/proxy/metrics"),
                ],
            ));
            assert!(
                metrics.contains("container_label_io_kubernetes_container_name=\"nginx\""),
                "{image}: {metrics}"
            );
            assert_eq!(
                metrics.contains(&format!("container_label_io_kubernetes_pod_name=\"{POD}\"")),
                pod_name_visible,
                "{image}: {metrics}"
            );
        }
    }
}
