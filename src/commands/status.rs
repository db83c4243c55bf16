//! `status`: what is installed, which version, nodes ready, objects and their field managers,
//! and the last verification. Read-only, never prompts.

use serde::Serialize;

use super::Context;
use crate::cluster::node_labels::Carrier;
use crate::cluster::prometheus::Seen;
use crate::cluster::status::{DaemonSetState, ManagedObject, daemonset, managed_objects};
use crate::error::ExitCode;
use crate::settings::StatusSettings;
use crate::ui::{Human, Report, Ui};

pub async fn run(ctx: &Context, args: StatusSettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let objects = managed_objects(&cluster, args.namespace.as_str()).await?;
    let daemonsets: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind == "DaemonSet")
        .map(|o| o.name.as_str())
        .collect();
    let ds_name = daemonsets
        .iter()
        .find(|n| **n == crate::plan::NAME)
        .or(daemonsets.first())
        .map_or_else(|| crate::plan::NAME.to_string(), |n| n.to_string());
    let ds = daemonset(&cluster, args.namespace.as_str(), &ds_name).await?;
    // The other node groups' DaemonSets (`cadvisor-<layout>`).
    let mut groups = Vec::new();
    for name in daemonsets.iter().filter(|n| **n != ds_name) {
        if let Some(state) = daemonset(&cluster, args.namespace.as_str(), name).await? {
            groups.push(state);
        }
    }
    let prometheus =
        crate::cluster::prometheus::seen(&cluster, args.namespace.as_str(), crate::plan::NAME)
            .await?;
    // `install --label-nodes`: the nodes carrying our group label (read-only; a kubeconfig that
    // may not list nodes shows none).
    let labelled_nodes = crate::cluster::node_labels::carriers(&cluster)
        .await
        .unwrap_or_default();
    let ours: Vec<String> = objects
        .iter()
        .filter(|o| o.ownership.is_ours())
        .map(|o| o.describe())
        .collect();
    // Installed: our DaemonSet is there. Partially: some of our objects are, without it (an
    // interrupted install or uninstall).
    let state = match &ds {
        Some(ds) if ds.ours => State::Installed,
        _ if !ours.is_empty() => State::Partial,
        _ => State::NotInstalled,
    };
    let body = Status {
        installed: state == State::Installed,
        state,
        left: (state == State::Partial).then_some(ours),
        server: cluster.server.clone(),
        daemonset: ds,
        group_daemonsets: groups,
        labelled_nodes,
        objects,
        prometheus,
        namespace: args.namespace.as_str().to_string(),
        daemonset_name: ds_name,
    };
    Ok(ctx.ui.report(&Report::new(ExitCode::Success, body)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum State {
    #[serde(rename = "installed")]
    Installed,
    #[serde(rename = "partially installed")]
    Partial,
    #[serde(rename = "not installed")]
    NotInstalled,
}

/// `status`'s report body (read-only: never `changed`).
#[derive(Debug, Serialize)]
pub struct Status {
    installed: bool,
    state: State,
    /// Our objects left without our DaemonSet (only when partially installed), else `null`.
    left: Option<Vec<String>>,
    server: String,
    daemonset: Option<DaemonSetState>,
    /// The DaemonSets of further node groups (one per socket layout), when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_daemonsets: Vec<DaemonSetState>,
    /// Nodes carrying the label `cadvisor-setup/group` (`install --label-nodes`), with its value
    /// and whether our field manager owns it; omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labelled_nodes: Vec<Carrier>,
    objects: Vec<ManagedObject>,
    /// The Prometheus Operator's Prometheus objects and whether each selects our ServiceMonitor;
    /// `null` when the operator's API is not served.
    prometheus: Option<Vec<Seen>>,
    #[serde(skip)]
    namespace: String,
    /// The DaemonSet looked for (ours, or `cadvisor`).
    #[serde(skip)]
    daemonset_name: String,
}

impl Human for Status {
    fn human(&self, ui: &Ui) {
        let ds_name = &self.daemonset_name;
        match &self.daemonset {
            None if self.state == State::Partial => ui.line(format!(
                "cAdvisor is {} in namespace {}: no DaemonSet {ds_name}, but these of our objects are left: {} (`cadvisor-setup install` completes it, `cadvisor-setup uninstall` removes them)",
                ui.warn("partially installed"),
                self.namespace,
                self.left.as_deref().unwrap_or_default().join(", ")
            )),
            None => ui.line(format!(
                "cAdvisor is not installed in namespace {} (no DaemonSet {ds_name})",
                self.namespace
            )),
            Some(ds) => daemonset_lines(ui, ds),
        }
        for ds in &self.group_daemonsets {
            daemonset_lines(ui, ds);
        }
        if !self.labelled_nodes.is_empty() {
            ui.line(format!(
                "{} ({}, install --label-nodes):",
                ui.bold("labelled nodes"),
                crate::cluster::node_labels::GROUP_LABEL
            ));
            for n in &self.labelled_nodes {
                ui.line(format!(
                    "  {:<40} {}{}",
                    n.node,
                    n.value,
                    if n.ours {
                        String::new()
                    } else {
                        format!(" ({})", ui.warn("not set by cadvisor-setup"))
                    }
                ));
            }
        }
        if !self.objects.is_empty() {
            ui.line(format!(
                "{} (app.kubernetes.io/managed-by=cadvisor-setup):",
                ui.bold("objects")
            ));
            for o in &self.objects {
                ui.line(format!(
                    "  {:<40} {:<8} managers: {}",
                    o.describe(),
                    format!("{:?}", o.ownership).to_lowercase(),
                    o.managers.join(", ")
                ));
            }
        }
        for p in self.prometheus.iter().flatten() {
            let verdict = match p.selects_ours {
                Some(true) => ui.good("scrapes our ServiceMonitor"),
                Some(false) => ui.warn("does not select our ServiceMonitor"),
                None => "no ServiceMonitor of ours to select".to_string(),
            };
            ui.line(format!(
                "{} {}: {verdict} (selects {} in {})",
                ui.bold("Prometheus"),
                p.instance.id(),
                p.instance.selects_service_monitors,
                p.instance.in_namespaces
            ));
        }
    }
}

fn daemonset_lines(ui: &Ui, ds: &DaemonSetState) {
    ui.line(format!(
        "{} DaemonSet {}/{}{}",
        ui.bold("cAdvisor"),
        ds.namespace,
        ds.name,
        if ds.ours {
            ""
        } else {
            " (not installed by cadvisor-setup)"
        }
    ));
    ui.line(format!(
        "  image:    {} (version {})",
        ds.image.as_deref().unwrap_or("?"),
        ds.version.as_deref().unwrap_or("unknown")
    ));
    let nodes = format!("{}/{} nodes ready", ds.ready, ds.desired);
    ui.line(format!(
        "  nodes:    {}{}",
        if ds.ready >= ds.desired && ds.desired > 0 {
            ui.good(&nodes)
        } else {
            ui.warn(&nodes)
        },
        if ds.updated < ds.desired {
            format!(" ({}/{} updated)", ds.updated, ds.desired)
        } else {
            String::new()
        }
    ));
    match &ds.last_verification {
        Some(v) => ui.line(format!(
            "  verified: {} (this result since {})",
            if v.get("ok").and_then(|o| o.as_bool()) == Some(true) {
                ui.good("ok")
            } else {
                ui.bad("failed")
            },
            v.get("time").and_then(|t| t.as_str()).unwrap_or("?")
        )),
        None => ui.line("  verified: never (run `cadvisor-setup verify`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::report::envelope_collisions;

    #[test]
    fn the_body_is_apart_from_the_envelope() {
        let body = Status {
            installed: false,
            state: State::Partial,
            left: Some(vec!["ServiceAccount cadvisor/cadvisor".into()]),
            server: "https://127.0.0.1:16443".into(),
            daemonset: None,
            group_daemonsets: vec![],
            labelled_nodes: vec![],
            objects: vec![],
            prometheus: None,
            namespace: "cadvisor".into(),
            daemonset_name: "cadvisor".into(),
        };
        assert!(envelope_collisions(&body).is_empty());
        let doc = serde_json::to_value(&body).unwrap();
        assert_eq!(doc["state"], "partially installed");
        assert!(doc["daemonset"].is_null());
        assert!(doc.get("namespace").is_none(), "{doc}");
    }
}
