//! Which kubeconfig the cluster commands use, and the connection built from it.
//!
//! Order: `--kubeconfig`, then what host detection found (install), then `$KUBECONFIG` (first
//! existing entry), `~/.kube/config`, and the distributions' admin kubeconfigs under the host root.

use std::path::{Path, PathBuf};

use super::Context;
use crate::cluster::{self, Cluster};
use crate::error::{ExitCode, Failure};

/// Admin kubeconfigs of the distributions (reference/host-layouts.md).
const DISTRIBUTION_KUBECONFIGS: &[&str] = &[
    // canonical/microk8s: microk8s-resources/... credentials/client.config
    "/var/snap/microk8s/current/credentials/client.config",
    // k3s-io/k3s: --write-kubeconfig default
    "/etc/rancher/k3s/k3s.yaml",
    // rancher/rke2
    "/etc/rancher/rke2/rke2.yaml",
    // k0sproject/k0s
    "/var/lib/k0s/pki/admin.conf",
    // kubeadm
    "/etc/kubernetes/admin.conf",
];

/// The kubeconfig to open: `--kubeconfig`, else `detected` (a resolved path), else the usual places.
pub fn kubeconfig_path(ctx: &Context, detected: Option<&Path>) -> Option<PathBuf> {
    if let Some(flag) = &ctx.global.kubeconfig {
        return Some(flag.clone());
    }
    if let Some(path) = detected {
        return Some(path.to_path_buf());
    }
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(found) = std::env::split_paths(&list).find(|p| p.is_file())
    {
        return Some(found);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home).join(".kube/config");
        if ctx.host_root.is_system() && home.is_file() {
            return Some(home);
        }
    }
    DISTRIBUTION_KUBECONFIGS
        .iter()
        .map(|p| ctx.host_root.resolve(p))
        .find(|p| p.is_file())
}

/// Connects with [`kubeconfig_path`]; exit 4 with what to do when there is none.
pub async fn cluster(ctx: &Context, detected: Option<&Path>) -> anyhow::Result<Cluster> {
    let Some(path) = kubeconfig_path(ctx, detected) else {
        return Err(Failure::new(
            ExitCode::Cluster,
            "no kubeconfig found (tried --kubeconfig, $KUBECONFIG, ~/.kube/config and the distributions' admin kubeconfigs)\n  pass --kubeconfig PATH (MicroK8s: /var/snap/microk8s/current/credentials/client.config)",
        )
        .into());
    };
    let cluster = cluster::connect(&path).await?;
    ctx.ui.verbose(format!(
        "kubeconfig {} → API server {}",
        path.display(),
        cluster.server
    ));
    Ok(cluster)
}
