//! `uninstall`: undo `install` under the ownership model: delete what install created, restore
//! what `--force` adopted, keep the rest (saying why), namespace last and only when empty, and
//! wait until our objects and pods are gone. Idempotent: nothing left is success.

use serde::Serialize;

use super::Context;
use super::error::Failure;
use crate::cluster::node_labels::{self, Carrier, GROUP_LABEL};
use crate::cluster::uninstall::{Kept, Uninstalled, plan, run as uninstall};
use crate::error::ExitCode;
use crate::settings::UninstallSettings;
use crate::ui::{Human, Report, Ui};

pub async fn run(ctx: &Context, args: UninstallSettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let mut plan = plan(&cluster, args.namespace.as_str()).await?;
    let labelled = labels_to_remove(&cluster, args.namespace.as_str(), &mut plan.kept).await;
    let ui = &ctx.ui;
    if plan.is_empty() && labelled.is_empty() {
        let done = Uninstalled {
            kept: plan.kept,
            ..Uninstalled::default()
        };
        let nothing = format!(
            "nothing to delete: no object in namespace {} (or cluster-wide) was created by cadvisor-setup",
            args.namespace
        );
        return Ok(ui.report(&report(done, Vec::new()).message(nothing)));
    }
    let mut steps = plan.describe();
    steps.extend(
        labelled
            .iter()
            .map(|c| format!("remove label {GROUP_LABEL} from node {}", c.node)),
    );
    ui.note(format!("will {}", steps.join(", ")));
    consent(ctx, steps.len())?;

    let spinner = crate::ui::progress::spinner(ui, "deleting and waiting until gone");
    // Ctrl-C (or SIGTERM, SIGHUP) while deleting or waiting stops without the report of what is done (that is kept
    // inside the run), so it names the plan and how to see and finish the rest, instead of the
    // process dying between two deletes without a word.
    let result = tokio::select! {
        result = uninstall(&cluster, args.namespace.as_str(), plan, args.timeout) => result,
        by = crate::ui::interrupt::stop_signal() => {
            // The run stopped where it stood: if that was while it held the namespace closed
            // (namespace_lock), open it again, or every create in it would stay refused.
            let still_closed = reopen(&cluster, args.namespace.as_str()).await;
            Err(crate::cluster::ClusterError::Interrupted {
                by,
                doing: format!(
                    "uninstalling; some of this may be done already: {}\n  `cadvisor-setup status` shows what is left; `cadvisor-setup uninstall` again finishes it{still_closed}",
                    steps.join(", ")
                ),
            })
        }
    };
    spinner.finish_and_clear();
    let mut done = result?;
    // After the DaemonSets are gone: nothing selects the label any more.
    let (unlabelled, stays) = node_labels::remove_ours(&cluster, &labelled).await?;
    done.kept.extend(
        stays
            .into_iter()
            .map(|(object, reason)| Kept { object, reason }),
    );
    Ok(ui.report(&report(done, unlabelled)))
}

/// After an interrupted run: removes the ResourceQuota that closes `namespace` if the run left
/// it (within a few seconds: the API server may be what is slow). Empty when the namespace is
/// open; otherwise a line saying how to open it.
async fn reopen(cluster: &crate::cluster::Cluster, namespace: &str) -> String {
    use crate::cluster::namespace_lock;
    let removed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        namespace_lock::remove_leftover(cluster, namespace),
    )
    .await;
    match removed {
        Ok(Ok(_)) => String::new(),
        _ => format!(
            "\n  namespace {namespace} may be left closed to new objects: kubectl delete resourcequota --namespace {namespace} {}",
            namespace_lock::NAME
        ),
    }
}

/// `install --label-nodes`: the nodes our label comes off, wherever our field manager owns it,
/// except where another install's DaemonSet (in another namespace) selects its value: removing
/// it would take that DaemonSet's nodes away. A kubeconfig that may not list the nodes, or those
/// DaemonSets, keeps every label and says so in `kept`, rather than failing.
async fn labels_to_remove(
    cluster: &crate::cluster::Cluster,
    namespace: &str,
    kept: &mut Vec<Kept>,
) -> Vec<Carrier> {
    let kept_all = |kept: &mut Vec<Kept>, why: &str, e: crate::cluster::ClusterError| {
        kept.push(Kept {
            object: format!("node label {GROUP_LABEL}"),
            reason: format!("could not list {why} ({})", crate::error::first_line(&e)),
        });
        Vec::new()
    };
    let ours: Vec<Carrier> = match node_labels::carriers(cluster).await {
        Ok(carriers) => carriers.into_iter().filter(|c| c.ours).collect(),
        Err(e) => return kept_all(kept, "the nodes to remove it", e),
    };
    if ours.is_empty() {
        return ours;
    }
    let elsewhere = match node_labels::selected_elsewhere(cluster, namespace).await {
        Ok(elsewhere) => elsewhere,
        Err(e) => {
            return kept_all(
                kept,
                "cadvisor-setup's DaemonSets in other namespaces to know whether they select it",
                e,
            );
        }
    };
    let (stay, go): (Vec<Carrier>, Vec<Carrier>) = ours
        .into_iter()
        .partition(|c| elsewhere.contains_key(&c.value));
    kept.extend(stay.iter().map(|c| Kept {
        object: format!("node label {GROUP_LABEL}={} on {}", c.value, c.node),
        reason: format!(
            "DaemonSet {} (another install of cadvisor-setup) selects it",
            elsewhere.get(&c.value).map(String::as_str).unwrap_or("?")
        ),
    }));
    go
}

/// Changed when something was deleted, restored or unlabelled.
fn report(done: Uninstalled, unlabelled: Vec<String>) -> Report<Undone> {
    let changed = !done.deleted.is_empty() || !done.restored.is_empty() || !unlabelled.is_empty();
    Report::new(ExitCode::Success, Undone { done, unlabelled }).changed(changed)
}

/// `uninstall`'s report body: `deleted`, `restored` and `kept` (with the reason), and
/// `unlabelled`, the nodes our label `cadvisor-setup/group` came off (omitted when none).
#[derive(Debug, Serialize)]
pub struct Undone {
    #[serde(flatten)]
    done: Uninstalled,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unlabelled: Vec<String>,
}

impl Human for Undone {
    fn human(&self, ui: &Ui) {
        let done = &self.done;
        if !done.deleted.is_empty() {
            ui.line(format!(
                "{} {}",
                ui.good("deleted:"),
                done.deleted.join(", ")
            ));
        }
        if !done.restored.is_empty() {
            ui.line(format!(
                "{} {} (as they were before install --force)",
                ui.good("restored:"),
                done.restored.join(", ")
            ));
        }
        if !self.unlabelled.is_empty() {
            ui.line(format!(
                "{} label {GROUP_LABEL} from node {}",
                ui.good("removed:"),
                self.unlabelled.join(", ")
            ));
        }
        for k in &done.kept {
            ui.line(format!("{} {}: {}", ui.warn("kept:"), k.object, k.reason));
        }
    }
}

/// `--yes`, or a confirmation from a person at a terminal; without either, change nothing (exit 2).
fn consent(ctx: &Context, steps: usize) -> super::Result<()> {
    if ctx.global.yes {
        return Ok(());
    }
    if !ctx.ui.interactive() {
        return Failure::err(
            ExitCode::Usage,
            "uninstall needs --yes when no terminal is attached (nothing was deleted)",
        );
    }
    let confirmed =
        crate::ui::prompts::confirm(&ctx.ui, &format!("Carry out these {steps} step(s)?"), false)?;
    if !confirmed {
        return Failure::err(ExitCode::Usage, "declined: nothing was deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::report::envelope_collisions;

    #[test]
    fn changed_only_when_something_was_deleted_or_restored() {
        let nothing = report(Uninstalled::default(), Vec::new());
        assert!(!nothing.is_changed());
        assert!(envelope_collisions(nothing.body()).is_empty());
        let restored = report(
            Uninstalled {
                restored: vec!["ServiceAccount cadvisor/cadvisor".into()],
                ..Uninstalled::default()
            },
            Vec::new(),
        );
        assert!(restored.is_changed());
        let doc = serde_json::to_value(&restored).unwrap();
        assert_eq!(doc["deleted"], serde_json::json!([]));
        assert_eq!(doc["kept"], serde_json::json!([]));
        assert!(doc.get("unlabelled").is_none(), "{doc}");
        let unlabelled = report(Uninstalled::default(), vec!["node-2".into()]);
        assert!(unlabelled.is_changed());
        let doc = serde_json::to_value(&unlabelled).unwrap();
        assert_eq!(doc["unlabelled"], serde_json::json!(["node-2"]));
        assert!(envelope_collisions(unlabelled.body()).is_empty());
    }
}
