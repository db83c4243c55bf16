//! Which kubeconfig the cluster commands use, and the connection built from it.
//!
//! `install` passes what its host detection found; `verify`, `status` and `uninstall` run the
//! same discovery (`host::kubeconfig::discover`: `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`,
//! then the distribution's admin kubeconfig under the host root).

use std::path::PathBuf;

use super::Context;
use super::error::Failure;
use crate::cluster::{self, Cluster};
use crate::error::ExitCode;
use crate::host::KubeconfigFacts;
use crate::host::kubeconfig::KubeconfigEnv;
use crate::host::watch;

/// The kubeconfig: `detected` when given, else discovered from the flag, environment and host
/// (those reads bounded as every host phase is: `host::watch`).
pub async fn kubeconfig(
    ctx: &Context,
    detected: Option<&KubeconfigFacts>,
) -> super::Result<Option<KubeconfigFacts>> {
    if let Some(found) = detected {
        return Ok(Some(found.clone()));
    }
    let env = KubeconfigEnv::from_process(ctx.global.kubeconfig.clone());
    Ok(crate::host::kubeconfig_within(&ctx.host_root, &env, watch::HOST_BUDGET).await?)
}

/// Connects with [`kubeconfig`]; exit 4 saying what to do when there is none or it is unreadable.
pub async fn cluster(ctx: &Context, detected: Option<&KubeconfigFacts>) -> super::Result<Cluster> {
    let Some(found) = kubeconfig(ctx, detected).await? else {
        return Failure::err(
            ExitCode::Cluster,
            "no kubeconfig found (tried --kubeconfig, $KUBECONFIG, ~/.kube/config and the distribution's admin kubeconfig)\n  pass --kubeconfig PATH (MicroK8s: /var/snap/microk8s/current/credentials/client.config)",
        );
    };
    if !found.readable {
        let hint = found
            .hint
            .clone()
            .unwrap_or_else(|| format!("cannot read {}", found.path.display()));
        return Failure::err(ExitCode::Cluster, format!("kubeconfig: {hint}"));
    }
    let path: PathBuf = found.resolved.clone();
    let confined = crate::host::kubeconfig::confined_files(&ctx.host_root, &found);
    let confine = confined.as_ref().map(|c| c as cluster::client::Confine<'_>);
    let cluster = cluster::client::connect_merged(&path, &found.merged, confine).await?;
    ctx.ui.verbose(format!(
        "kubeconfig {} ({:?}) → API server {}",
        found.path.display(),
        found.source,
        cluster.server
    ));
    Ok(cluster)
}
