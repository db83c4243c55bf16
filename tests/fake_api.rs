//! Fidelity of the fake Kubernetes API server (tests/support/fake_api) against the reference
//! client, kubectl, and against kube-rs.

mod support;

use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};

fn kubectl(cluster: &FakeCluster, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .args(args)
        .output()
        .expect("run kubectl")
}

#[test]
fn kubectl_gets_nodes() {
    let root = tempfile::tempdir().unwrap();
    let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
        "node-1",
        root.path(),
    )]));
    let out = kubectl(&cluster, &["get", "nodes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    assert!(stdout.contains("node-1"));
}
