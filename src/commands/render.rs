//! `render`: host facts (or a `--distro` preset) → plan → manifests, printed as multi-document
//! YAML, written to `--out-dir`, or printed as one JSON document with `-o json`.

use std::path::PathBuf;

use serde::Serialize;

use super::Context;
use super::error::ResultExt as _;
use crate::cli::{GrafanaDashboardMode, ServiceMonitorMode};
use crate::error::ExitCode;
use crate::host::{self, DetectOptions, DistroKind, HostFacts};
use crate::options::Resolved;
use crate::settings::RenderSettings;
use crate::ui::{Human, Report, Ui};
use crate::{plan, render};

pub async fn run(ctx: &Context, args: RenderSettings) -> super::Result<ExitCode> {
    if args.scrape_config {
        return scrape_config(ctx, &args);
    }
    let resolved = &args.resolved;
    let mut facts = facts_for_render(ctx, args.distro, resolved).await?;
    if let (Some(socket), Some(_)) = (&resolved.containerd_socket, args.distro) {
        // `--containerd-socket` is the first authority (over the kubelet and runtime configuration), also over a preset
        // (detection already puts it first).
        facts.runtime.socket = Some(socket.clone());
    }
    if args.distro.is_none()
        && !facts.runtime.verified
        && let Some(socket) = &facts.runtime.socket
    {
        facts.warnings.push(format!(
            "{} did not answer as a containerd holding kubelet containers; the manifests use it anyway",
            socket.display()
        ));
    }
    if resolved.service_monitor == ServiceMonitorMode::Auto {
        ctx.ui.verbose(
            "  --service-monitor auto: render looks at no cluster, so no ServiceMonitor (use --service-monitor always)",
        );
    }
    if resolved.grafana_dashboard == GrafanaDashboardMode::Auto {
        ctx.ui.verbose(
            "  --grafana-dashboard auto: render looks at no cluster, so no dashboard (use --grafana-dashboard on)",
        );
    }
    let opts = &resolved.plan;
    // `--cluster`: the live cluster's node facts, one DaemonSet per node group.
    // (`--containerd-socket` names the socket of every node: one DaemonSet, as without it.)
    let layout = if args.cluster && resolved.containerd_socket.is_none() {
        let cluster = super::connect::cluster(ctx, facts.kubeconfig.as_ref()).await?;
        Some(
            super::groups::read(
                &cluster,
                &opts.namespace,
                Some(&facts),
                facts.kubelet.node_name.as_deref(),
                args.parallel,
            )
            .await?,
        )
    } else {
        None
    };
    let label_nodes = args.label_nodes && layout.is_some();
    if args.label_nodes && !label_nodes {
        ctx.ui.verbose(
            "  --label-nodes: only with --cluster (several node groups), so no node label is used",
        );
    }
    let plans = super::groups::plans(layout.as_ref(), &facts, opts, label_nodes)?;
    // render changes nothing in the cluster: the labels the DaemonSets select by are for the
    // user to set (`install --label-nodes` sets them).
    let node_labels: Vec<NodeLabelToSet> = if label_nodes {
        super::groups::wanted_labels(layout.as_ref(), &facts)
            .unwrap_or_default()
            .into_iter()
            .map(|(node, value)| NodeLabelToSet {
                node,
                label: format!("{}={value}", crate::plan::groups::GROUP_LABEL),
            })
            .collect()
    } else {
        Vec::new()
    };
    if !node_labels.is_empty() {
        ctx.ui.note(
            "render labels no node: the DaemonSets select their nodes by label, so set these before applying them (`install --label-nodes` sets them itself):",
        );
        for l in &node_labels {
            ctx.ui
                .note(format!("  kubectl label node {} {}", l.node, l.label));
        }
    }
    let manifests = render::manifests_for_groups(&plans, args.templates.as_deref())?;
    let Some(plan) = plans.first() else {
        return super::error::Failure::err(ExitCode::Unexpected, "no plan was made");
    };
    let mut warnings: Vec<&String> = facts.warnings.iter().collect();
    if let Some(l) = &layout {
        warnings.extend(&l.warnings);
    }
    warnings.extend(plans.iter().flat_map(|p| &p.warnings));
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(*w));
    for warning in &warnings {
        ctx.ui.warning(warning);
    }

    let written = match &args.out_dir {
        Some(dir) => Some(
            render::write_out_dir(&manifests, dir, args.templates.as_deref())
                .with_context(|| format!("writing the manifests to {}", dir.display()))?,
        ),
        None => None,
    };

    let message = match (&written, &args.out_dir) {
        (Some(files), Some(dir)) => Some(format!(
            "wrote {} files to {} (build them with `kubectl kustomize {}`)",
            files.len(),
            dir.display(),
            dir.display()
        )),
        _ => None,
    };
    let report = Report::new(
        ExitCode::Success,
        Rendered {
            distribution: facts.distribution.kind,
            runtime_socket: plan.runtime.host_socket.clone(),
            manifests: manifests.objects(),
            warnings: warnings.into_iter().cloned().collect(),
            nodes: layout,
            node_labels,
            out_dir: written.as_ref().and(args.out_dir.clone()),
            files: written.clone(),
            yaml: manifests.to_yaml(),
        },
    )
    .changed(written.is_some())
    .message(message);
    Ok(ctx.ui.report(&report))
}

/// `render --scrape-config`: the plain-Prometheus job for the namespace; no host facts needed.
fn scrape_config(ctx: &Context, args: &RenderSettings) -> super::Result<ExitCode> {
    let job = plan::scrape::job(&args.resolved.plan.namespace)?;
    let rendered = render::scrape_config(&job, args.templates.as_deref())?;
    let report = Report::new(
        ExitCode::Success,
        ScrapeConfigRendered {
            job_name: job.job_name,
            namespace: job.namespace,
            scrape_config: rendered.object,
            yaml: rendered.yaml,
        },
    );
    Ok(ctx.ui.report(&report))
}

/// `render --scrape-config`'s report body: the job as an object (JSON) or as YAML with its
/// comments (people).
#[derive(Serialize)]
pub struct ScrapeConfigRendered {
    job_name: String,
    namespace: String,
    /// `{"scrape_configs": [job]}`.
    scrape_config: serde_json::Value,
    #[serde(skip)]
    yaml: String,
}

impl Human for ScrapeConfigRendered {
    fn human(&self, ui: &Ui) {
        ui.line(self.yaml.trim_end());
    }

    fn summary(&self, ui: &Ui, summary: &str) {
        ui.note(summary);
    }
}

/// `render`'s report body: the manifests as objects (JSON) or as multi-document YAML (people),
/// and where `--out-dir` wrote them.
#[derive(Serialize)]
pub struct Rendered {
    distribution: DistroKind,
    /// The containerd socket the manifests mount (a host path).
    runtime_socket: String,
    manifests: Vec<serde_json::Value>,
    /// Also printed on stderr in both modes as the run goes.
    warnings: Vec<String>,
    /// `--cluster`: every node's facts and the node groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<super::groups::NodeLayout>,
    /// `--cluster --label-nodes` with several groups: the label each node must carry for the
    /// DaemonSets to select it (render sets none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    node_labels: Vec<NodeLabelToSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<PathBuf>>,
    /// The same manifests as YAML, for people (JSON has `manifests`).
    #[serde(skip)]
    yaml: String,
}

/// A node and the label (`cadvisor-setup/group=HASH`) it must carry.
#[derive(Serialize)]
pub struct NodeLabelToSet {
    node: String,
    label: String,
}

impl Human for Rendered {
    /// The YAML on stdout; with `--out-dir` nothing (the summary says where the files are).
    fn human(&self, ui: &Ui) {
        if self.files.is_none() {
            ui.line(self.yaml.trim_end());
        }
    }

    /// On stderr: stdout carries only manifests (none with `--out-dir`).
    fn summary(&self, ui: &Ui, summary: &str) {
        ui.note(summary);
    }
}

/// The facts the plan is made from: a distribution preset (`--distro`, nothing read from this
/// host), or this host's detected facts (host files and socket probes only: `render` needs no
/// cluster).
pub async fn facts_for_render(
    ctx: &Context,
    distro: Option<DistroKind>,
    resolved: &Resolved,
) -> super::Result<HostFacts> {
    if let Some(distro) = distro {
        return Ok(plan::preset(distro));
    }
    let opts = DetectOptions {
        containerd_socket: resolved.containerd_socket.clone(),
        kubeconfig_flag: ctx.global.kubeconfig.clone(),
        ..DetectOptions::default()
    };
    let facts = host::detect_within(&ctx.host_root, &opts, host::watch::HOST_BUDGET)
        .await
        .context("detecting this host's runtime socket and cgroup driver")?;
    ctx.ui.verbose(format!(
        "rendering for this host: {} with runtime socket {}",
        facts.distribution.kind,
        facts
            .runtime
            .socket
            .as_ref()
            .map_or_else(|| "(none)".to_string(), |s| s.display().to_string())
    ));
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::report::envelope_collisions;

    #[test]
    fn the_body_is_apart_from_the_envelope_and_the_yaml_is_for_people_only() {
        let body = Rendered {
            distribution: DistroKind::K3s,
            runtime_socket: "/run/k3s/containerd/containerd.sock".into(),
            manifests: vec![serde_json::json!({"kind": "Namespace"})],
            warnings: vec![],
            nodes: None,
            node_labels: vec![],
            out_dir: Some("/srv/out".into()),
            files: Some(vec!["/srv/out/namespace.yaml".into()]),
            yaml: "---\nkind: Namespace\n".into(),
        };
        assert!(envelope_collisions(&body).is_empty());
        let doc = serde_json::to_value(&body).unwrap();
        assert!(doc.get("yaml").is_none(), "{doc}");
        assert_eq!(doc["distribution"], "k3s");
        assert_eq!(doc["out_dir"], "/srv/out");
    }
}
