//! `install`: detect → node facts and groups → plan → render → apply → prune → wait → verify →
//! report.
//!
//! Node groups (`commands::groups`, `plan::groups`): every node is read through the API server,
//! this host's detection leading for its own node; one DaemonSet per group (one group: today's
//! single `cadvisor`, unchanged). Rollout wait and verification cover every group's DaemonSet;
//! a group DaemonSet whose group became empty is deleted if install created it. With
//! `--label-nodes` (several groups) each node first gets our label `cadvisor-setup/group` and the
//! DaemonSets select it (`cluster::node_labels`); a label someone else set to another value is
//! exit 7 unless `--force`, found before anything is written. From a machine
//! that is not a node (no runtime socket found) the API server's facts are all there is
//! (remote mode).
//!
//! Consent: `install` changes the cluster, so without a terminal it needs `--yes` (exit 2 and no
//! change otherwise). On a terminal without `--yes` it first says which API server it connects
//! to and proves that server answers (`GET /version`, at most 5 s, with a spinner; exit 4 before
//! any question otherwise), then holds a short conversation: the detected facts, a socket choice
//! when detection is ambiguous, the values nobody gave (namespace, image, metrics, privileged,
//! ServiceMonitor), the plan, then Apply / Show the YAML / Cancel. Cancel
//! applies nothing and exits 2 (no consent, like a missing `--yes`). With `--yes` nothing is
//! asked, and an ambiguous detection is exit 3 naming `--containerd-socket`.
//! `--dry-run` needs no consent: it asks the API server for a server-side dry run and prints a
//! diff per object.
//!
//! Once anything was applied, a failure is reported by this command itself (one JSON document
//! with what was applied, or human lines saying so) and its exit code returned.
//!
//! Ctrl-C at a question is a "no" (exit 2, nothing applied; `ui::interrupt` shows the cursor
//! again). Ctrl-C while waiting for the rollout or the verification ends with exit 1 (the
//! exit-code table (`ExitCode::TABLE`) has no entry for an interruption, so it is 1 rather than 130),
//! naming what was applied: the objects stay and the DaemonSet keeps rolling out.

use std::path::PathBuf;

use super::Context;
use super::error::Failure;
use crate::cli::{GrafanaDashboardMode, PrometheusChoice, ServiceMonitorMode};
use crate::cluster::apply::{Applied, ApplyOptions, apply};
use crate::cluster::node_labels::NodeLabelChange;
use crate::cluster::rollout::{self, Rollout};
use crate::cluster::{Cluster, ClusterError};
use crate::error::ExitCode;
use crate::host::{ConfigzHints, HostFacts, HostFiles};
use crate::options::{Resolved, ValueSource};
use crate::plan::Plan;
use crate::render::Manifests;
use crate::settings::InstallSettings;
use crate::ui::prompts::{self, PlanDecision};
use crate::verify::prometheus::PrometheusVerification;
use crate::verify::{Verification, VerifyOptions};

mod prometheus;
pub use prometheus::PrometheusOutcome;

pub async fn run(ctx: &Context, args: InstallSettings) -> super::Result<ExitCode> {
    if !args.dry_run && !ctx.global.yes && !ctx.ui.interactive() {
        return Failure::err(
            ExitCode::Usage,
            "install changes the cluster and no terminal is attached to confirm: pass --yes (or --dry-run to see what would change); nothing was changed",
        );
    }
    // A person at a terminal who did not pass --yes gets the conversation; --dry-run changes
    // nothing, so it needs none.
    let conversation = !ctx.global.yes && ctx.ui.interactive() && !args.dry_run;
    let mut resolved = args.resolved.clone();
    // Detection runs once and the API server is connected to once: the host's files first
    // (cheap: they name the kubeconfig and this node), then the one client, then the socket
    // probes with the kubelet's own configuration.
    let files = crate::host::read_files_within(
        &ctx.host_root,
        &detect_options(ctx, resolved.containerd_socket.clone(), None),
        crate::host::watch::HOST_BUDGET,
    )
    .await?;
    // A conversation first proves the cluster answers, so an unreachable API server is said
    // before any question is asked (not after five answers). Unattended, a kubeconfig that
    // cannot be used is reported after detection, whose own failure (exit 3) comes first.
    let cluster = if conversation {
        Some(connect_first(ctx, files.kubeconfig.as_ref()).await?)
    } else {
        super::connect::cluster(ctx, files.kubeconfig.as_ref())
            .await
            .ok()
    };
    // The kubelet's own runtime endpoint (configz through the API server) outranks host files.
    let configz = match &cluster {
        Some(cluster) => super::detect::configz(ctx, cluster, files.node_name()).await,
        None => None,
    };
    let socket = resolved.containerd_socket.clone();
    let mut facts = probe(ctx, files.clone(), socket, configz.clone()).await?;
    for warning in &facts.warnings {
        ctx.ui.warning(warning);
    }
    if conversation {
        facts = ask(ctx, &mut resolved, facts, &files, configz).await?;
    }
    // Unattended, an ambiguous detection stops in plan::make: exit 3 naming --containerd-socket.
    let cluster = match cluster {
        Some(cluster) => cluster,
        None => super::connect::cluster(ctx, facts.kubeconfig.as_ref()).await?,
    };
    let mut opts = resolved.plan.clone();
    // The Prometheus operator's API, asked once: for a ServiceMonitor on "auto" (only when its
    // CRD is served) and for the Prometheus step (its Prometheus objects).
    let monitoring = match resolved.service_monitor {
        ServiceMonitorMode::Never => Vec::new(),
        ServiceMonitorMode::Always if args.prometheus == PrometheusChoice::None => Vec::new(),
        _ => {
            crate::cluster::resources::served(&cluster, crate::cluster::prometheus::API_VERSION)
                .await?
        }
    };
    if resolved.service_monitor == ServiceMonitorMode::Auto {
        opts.service_monitor = monitoring.iter().any(|r| r == "servicemonitors");
    }
    if resolved.grafana_dashboard == GrafanaDashboardMode::Auto {
        // "auto": the dashboard only when Grafana's dashboard sidecar is in use.
        opts.grafana_dashboard = match crate::cluster::grafana::sidecar_in_use(&cluster).await? {
            Some(in_use) => in_use,
            None => {
                ctx.ui.verbose(
                    "  --grafana-dashboard auto: may not list ConfigMaps in every namespace, so no dashboard (use --grafana-dashboard on)",
                );
                false
            }
        };
    }
    // Every node through the API server (this host leading for its own node): one DaemonSet
    // per node group. `--containerd-socket` names the socket of every node: one DaemonSet.
    let layout = if resolved.containerd_socket.is_none() {
        super::groups::read_for_install(ctx, &cluster, &opts.namespace, &facts, args.parallel)
            .await?
    } else {
        None
    };
    let nodes = layout.as_ref().map(|l| l.nodes.as_slice());
    let prometheus = prometheus::step(
        ctx,
        &cluster,
        &args,
        &mut opts,
        conversation,
        &monitoring,
        nodes,
    )
    .await?;
    let plans = super::groups::plans(layout.as_ref(), &facts, &opts, args.label_nodes)?;
    let manifests = crate::render::manifests_for_groups(&plans, args.templates.as_deref())?;
    let Some(plan) = plans.first() else {
        return Failure::err(ExitCode::Unexpected, "rendering produced no objects");
    };
    if manifests.documents.is_empty() {
        return Failure::err(ExitCode::Unexpected, "rendering produced no objects");
    }
    let mut warnings: Vec<&String> = layout.iter().flat_map(|l| &l.warnings).collect();
    warnings.extend(plans.iter().flat_map(|p| &p.warnings));
    let mut seen = std::collections::HashSet::new();
    for warning in warnings.into_iter().filter(|w| seen.insert(*w)) {
        ctx.ui.warning(warning);
    }
    // `--label-nodes`: which node gets, keeps or loses our label, decided now (a label someone
    // else set is exit 7 unless --force, before anything is written); written in `install`.
    let node_labels = if args.label_nodes {
        match super::groups::wanted_labels(layout.as_ref(), &facts) {
            Some(wanted) => {
                let carriers = crate::cluster::node_labels::carriers(&cluster).await?;
                // Another install's DaemonSets may select a label this one would remove.
                let elsewhere = match crate::cluster::node_labels::selected_elsewhere(
                    &cluster,
                    opts.namespace.as_str(),
                )
                .await
                {
                    Ok(selected) => Some(selected.into_keys().collect()),
                    Err(e) => {
                        ctx.ui.warning(format!(
                            "--label-nodes: cannot list cadvisor-setup's DaemonSets in other namespaces ({}), so no node label is removed",
                            crate::error::first_line(&e)
                        ));
                        None
                    }
                };
                crate::cluster::node_labels::plan(
                    &wanted,
                    &carriers,
                    elsewhere.as_ref(),
                    args.force,
                )
                .map_err(|nodes| ClusterError::ForeignNodeLabel {
                    label: crate::cluster::node_labels::GROUP_LABEL.to_string(),
                    nodes,
                })?
            }
            None => {
                ctx.ui.note(format!(
                    "{} --label-nodes: the plan follows no node groups (the nodes were not read, or --containerd-socket names one socket for every node), so no node label is changed",
                    ctx.ui.warn("warning:")
                ));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if conversation {
        show_plan(ctx, plan, &manifests);
        if plans.len() > 1 {
            show_groups(ctx, &plans);
        }
        show_node_labels(ctx, &node_labels);
        loop {
            match prompts::confirm_plan(&ctx.ui, "Apply this to the cluster?")? {
                PlanDecision::Apply => break,
                PlanDecision::ShowYaml => ctx.ui.note(manifests.to_yaml().trim_end()),
                PlanDecision::Cancel => return Ok(ctx.ui.report(&cancelled_report())),
            }
        }
    }
    // One DaemonSet: verification compares against what this host's detection found, as
    // always; several: against each group's socket.
    let targets: Vec<Target> = plans
        .iter()
        .map(|p| Target {
            daemonset: p.daemonset.name.clone(),
            expected_socket: if plans.len() == 1 {
                facts.runtime.socket.clone()
            } else {
                Some(PathBuf::from(&p.runtime.host_socket))
            },
        })
        .collect();
    let groups = Groups {
        targets,
        // Only with the nodes known (or one socket named for every node) may an unplanned
        // group DaemonSet go: a failed node listing must not delete the other groups'.
        prune: layout.is_some() || resolved.containerd_socket.is_some(),
        layout: layout.filter(super::groups::NodeLayout::notable),
        node_labels,
    };
    install(ctx, &args, groups, &manifests, &cluster, prometheus).await
}

/// The DaemonSets of the node groups: what install waits for and verifies, and what it may prune.
#[derive(Debug, Clone)]
pub struct Groups {
    pub targets: Vec<Target>,
    /// The cluster's nodes and groups, when worth reporting (several groups, a fallback).
    pub layout: Option<super::groups::NodeLayout>,
    /// Delete our group DaemonSets the plan no longer names.
    pub prune: bool,
    /// `--label-nodes`: our node label, node by node (empty without the flag).
    pub node_labels: Vec<NodeLabelChange>,
}

/// One DaemonSet install waits for and verifies.
#[derive(Debug, Clone)]
pub struct Target {
    pub daemonset: String,
    /// The runtime socket (host path) its pods should reach, for the manifest diagnosis.
    pub expected_socket: Option<PathBuf>,
}

/// The node groups in a few lines, before the confirmation.
fn show_groups(ctx: &Context, plans: &[Plan]) {
    let ui = &ctx.ui;
    ui.note(ui.bold("node groups (one DaemonSet each):"));
    for p in plans {
        ui.note(format!(
            "  {}: socket {}, nodes {}",
            p.daemonset.name,
            p.runtime.host_socket,
            p.daemonset.hostnames.join(", ")
        ));
    }
}

/// `--label-nodes`: the node labels that would change, before the confirmation.
fn show_node_labels(ctx: &Context, labels: &[NodeLabelChange]) {
    let changes: Vec<&NodeLabelChange> = labels.iter().filter(|l| l.changed).collect();
    if changes.is_empty() {
        return;
    }
    ctx.ui.note(
        ctx.ui
            .bold("node labels (--label-nodes; only this label of each node is ours):"),
    );
    for l in changes {
        ctx.ui.note(format!("  {}", l.describe()));
    }
}

/// Before the conversation: connects with the kubeconfig that detection would find, says so in
/// one line, and waits (with a spinner, at most [`PROBE_TIMEOUT`]) for `GET /version` to answer.
/// An unreachable, silent or refusing API server is exit 4 here, before any question.
///
/// [`PROBE_TIMEOUT`]: crate::cluster::client::PROBE_TIMEOUT
async fn connect_first(
    ctx: &Context,
    found: Option<&crate::host::KubeconfigFacts>,
) -> super::Result<Cluster> {
    let kubeconfig = super::connect::kubeconfig(ctx, found).await?;
    let cluster = super::connect::cluster(ctx, kubeconfig.as_ref()).await?;
    let via = kubeconfig
        .map(|k| format!(" (kubeconfig {})", k.path.display()))
        .unwrap_or_default();
    ctx.ui
        .note(format!("connecting to {}{via}", cluster.server));
    let spinner = crate::ui::progress::spinner(&ctx.ui, "waiting for the API server");
    let answered =
        crate::cluster::client::probe(&cluster, crate::cluster::client::PROBE_TIMEOUT).await;
    spinner.finish_and_clear();
    let version = answered?;
    ctx.ui
        .verbose(format!("  the API server answers: Kubernetes {version}"));
    Ok(cluster)
}

/// The questions before the plan: the detected facts, a socket when detection is ambiguous
/// (then detection again with it), and the values nobody gave. Returns the facts to plan from.
async fn ask(
    ctx: &Context,
    resolved: &mut Resolved,
    facts: HostFacts,
    files: &HostFiles,
    configz: Option<ConfigzHints>,
) -> super::Result<HostFacts> {
    show_facts(ctx, &facts);
    let mut facts = facts;
    if facts.runtime.ambiguous && resolved.containerd_socket.is_none() {
        let Some(socket) = prompts::select_socket(&ctx.ui, &facts.runtime.candidates)? else {
            // Declined at the prompt: no consent, exit 2 like Cancel.
            return Failure::err(
                ExitCode::Usage,
                "no containerd socket was chosen; nothing was applied\n  pass --containerd-socket PATH (the socket the kubelet uses, e.g. /var/snap/microk8s/common/run/containerd.sock)",
            );
        };
        resolved.containerd_socket = Some(socket.clone());
        resolved
            .sources
            .insert("containerd-socket", ValueSource::Prompt);
        facts = probe(ctx, files.clone(), Some(socket), configz).await?;
    }
    // No socket at all: no questions, plan::make says what is missing (exit 3).
    if facts.runtime.socket.is_some() {
        prompts::ask_plan(&ctx.ui, resolved)?;
        // Each answer was checked as it was typed; the plan's checks across values too.
        crate::plan::check_options(&resolved.plan)?;
        ctx.ui.verbose("values after the questions:");
        for line in resolved.describe() {
            ctx.ui.verbose(format!("  {line}"));
        }
    }
    Ok(facts)
}

/// Detection's options: this command's socket override and the kubelet's configz.
fn detect_options(
    ctx: &Context,
    socket: Option<PathBuf>,
    configz: Option<ConfigzHints>,
) -> crate::host::DetectOptions {
    crate::host::DetectOptions {
        containerd_socket: socket,
        kubeconfig_flag: ctx.global.kubeconfig.clone(),
        kubeconfig_env: Some(crate::host::kubeconfig::KubeconfigEnv::from_process(
            ctx.global.kubeconfig.clone(),
        )),
        configz,
        ..crate::host::DetectOptions::default()
    }
}

/// Detection's probe phase over the files already read.
async fn probe(
    ctx: &Context,
    files: HostFiles,
    socket: Option<PathBuf>,
    configz: Option<ConfigzHints>,
) -> super::Result<HostFacts> {
    let options = detect_options(ctx, socket, configz);
    let budget = crate::host::watch::HOST_BUDGET;
    Ok(crate::host::probe_within(&ctx.host_root, files, &options, budget).await?)
}

/// Declined at the confirmation: exit 2 ("no consent", like a missing --yes), nothing applied.
fn cancelled_report() -> crate::ui::Report<Cancelled> {
    let error = "cancelled at the confirmation; nothing was applied".to_string();
    let body = Cancelled {
        cancelled: true,
        error: error.clone(),
    };
    crate::ui::Report::new(ExitCode::Usage, body).message(error)
}

/// `install`'s report body when the plan was declined: `cancelled` and `error` (the message).
#[derive(Debug, serde::Serialize)]
struct Cancelled {
    cancelled: bool,
    error: String,
}

impl crate::ui::Human for Cancelled {
    /// Nothing on stdout: the `error:` line and the hint under it say it.
    fn human(&self, _ui: &crate::ui::Ui) {}

    fn error_details(&self) -> Vec<String> {
        vec!["rerun with --yes to skip the questions".to_string()]
    }
}

/// What detection found, in a few lines, before the questions.
fn show_facts(ctx: &Context, facts: &HostFacts) {
    let ui = &ctx.ui;
    let d = &facts.distribution;
    ui.note(format!(
        "{} {}{}{}",
        ui.bold("this node:"),
        d.kind,
        d.version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default(),
        facts
            .kubelet
            .node_name
            .as_deref()
            .map(|n| format!(", node {n}"))
            .unwrap_or_default()
    ));
    let rt = &facts.runtime;
    match &rt.socket {
        Some(socket) => ui.note(format!(
            "  runtime socket: {} ({}{})",
            socket.display(),
            if rt.verified {
                ui.good("verified")
            } else {
                ui.warn("not verified")
            },
            rt.version
                .as_deref()
                .map(|v| format!(", containerd {v}"))
                .unwrap_or_default()
        )),
        None if rt.ambiguous => ui.note(format!(
            "  runtime socket: {} (several live sockets)",
            ui.warn("ambiguous")
        )),
        None => ui.note(format!("  runtime socket: {}", ui.bad("none found"))),
    }
    ui.note(format!(
        "  cgroup: {}{}",
        format!("{:?}", facts.cgroup.mode).to_lowercase(),
        facts
            .cgroup
            .driver
            .map(|d| format!(", driver {}", d.as_str()))
            .unwrap_or_default()
    ));
    if let Some(kc) = &facts.kubeconfig {
        ui.note(format!("  kubeconfig: {}", kc.path.display()));
    }
}

/// The plan in a few lines, then the objects that would be applied.
fn show_plan(ctx: &Context, plan: &Plan, manifests: &Manifests) {
    let ui = &ctx.ui;
    ui.note(ui.bold("plan:"));
    ui.note(format!("  namespace:  {}", plan.namespace));
    ui.note(format!("  image:      {}", plan.image));
    ui.note(format!(
        "  socket:     {} (in the pod: {})",
        plan.runtime.host_socket, plan.runtime.pod_socket
    ));
    ui.note(format!("  privileged: {}", plan.security.privileged));
    ui.note(format!("  args:       {}", plan.args.join(" ")));
    ui.note(ui.bold("will apply (server-side, field manager cadvisor-setup):"));
    for m in &manifests.documents {
        ui.note(format!(
            "  {}",
            crate::cluster::describe(&m.kind, m.namespace.as_deref(), &m.name)
        ));
    }
}

/// Everything after the cluster is known: apply, prune emptied group DaemonSets, wait for
/// every DaemonSet, verify every node, report. Public for the benches.
pub async fn install(
    ctx: &Context,
    args: &InstallSettings,
    groups: Groups,
    manifests: &Manifests,
    cluster: &Cluster,
    prometheus: PrometheusOutcome,
) -> super::Result<ExitCode> {
    let apply_opts = ApplyOptions {
        force: args.force,
        dry_run: args.dry_run,
    };
    // `--label-nodes`: the nodes carry their label before the DaemonSets that select by it are
    // applied (a DaemonSet that selects no node yet would count as rolled out at once), so what
    // apply would refuse (exit 7) is found first, with reads only.
    let node_labels = groups.node_labels.clone();
    // Ctrl-C (or SIGTERM, SIGHUP) while writing (node labels, objects, pruning) lets the write
    // under way finish and stops at the next step naming what was written (exit 1, as while
    // waiting), rather than dying between two writes without a word; a second one kills at once.
    let writing = (!args.dry_run).then(crate::ui::interrupt::WriteGuard::new);
    let interrupted = || writing.as_ref().and_then(|g| g.interrupted());
    let stopped = |by: &'static str, outcome: Outcome| {
        let outcome = Outcome {
            error: Some(ClusterError::Interrupted {
                by,
                doing: "applying".to_string(),
            }),
            ..outcome
        };
        Ok(finish(ctx, outcome))
    };
    if !args.dry_run && node_labels.iter().any(|l| l.changed) {
        crate::cluster::apply::check(cluster, &manifests.documents, apply_opts).await?;
        crate::cluster::node_labels::apply(cluster, &node_labels).await?;
        if let Some(by) = interrupted() {
            return stopped(
                by,
                Outcome {
                    node_labels,
                    ..Outcome::new(Applied::default())
                },
            );
        }
    }
    // On failure the error names what was applied before it (ClusterError::Partial), the node
    // labels written just now included.
    let applied = apply(cluster, &manifests.documents, apply_opts)
        .await
        .map_err(|e| {
            let labelled = node_labels.iter().filter(|l| l.changed && !args.dry_run);
            with_written_first(e, labelled.map(NodeLabelChange::describe), manifests)
        })?;
    let namespace = manifests
        .documents
        .iter()
        .find(|m| m.kind == "DaemonSet")
        .and_then(|m| m.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let planned: Vec<(String, String)> = manifests
        .documents
        .iter()
        .map(|m| (m.kind.clone(), m.name.clone()))
        .collect();
    let prefix = format!("{}-", crate::plan::NAME);
    // Group DaemonSets no group needs any more (only with the nodes known), and a NetworkPolicy,
    // ServiceMonitor or dashboard this run's plan no longer has.
    let prune = |dry_run| {
        let prefix = groups.prune.then_some(prefix.as_str());
        crate::cluster::uninstall::prune(cluster, &namespace, &planned, prefix, dry_run)
    };
    if args.dry_run {
        let would = prune(true).await?;
        return Ok(ctx.ui.report(&dry_run_report(&applied, would, node_labels)));
    }
    let mut outcome = Outcome {
        nodes: groups.layout,
        prometheus,
        node_labels,
        ..Outcome::new(applied)
    };
    if !ctx.ui.json() {
        for l in outcome.node_labels.iter().filter(|l| l.changed) {
            ctx.ui
                .note(format!("{} {}", ctx.ui.dim("node label:"), l.describe()));
        }
        for o in &outcome.applied.objects {
            let action = format!("{:?}", o.action).to_lowercase();
            ctx.ui
                .note(format!("{} {}", ctx.ui.dim(&action), o.describe()));
            if let Some(note) = &o.note {
                ctx.ui.note(format!("  {note}"));
            }
        }
    }

    if let Some(by) = interrupted() {
        return stopped(by, outcome);
    }
    let Some(ds) = manifests.documents.iter().find(|m| m.kind == "DaemonSet") else {
        return Ok(finish(ctx, outcome));
    };
    // A node group that became empty (its nodes left or joined another group): its DaemonSet
    // goes, if install created it.
    match prune(false).await {
        Ok(pruned) => {
            for p in &pruned {
                let why = if p.starts_with("DaemonSet ") {
                    "its node group is empty"
                } else {
                    "no longer in the plan"
                };
                ctx.ui
                    .note(format!("{} {p} ({why})", ctx.ui.dim("deleted")));
            }
            outcome.pruned = pruned;
        }
        Err(e) => {
            outcome.error = Some(e);
            return Ok(finish(ctx, outcome));
        }
    }
    if let Some(by) = interrupted() {
        return stopped(by, outcome);
    }
    // From here the rollout wait listens for Ctrl-C itself.
    drop(writing);
    let spinner = crate::ui::progress::spinner(
        &ctx.ui,
        format!("rolling out DaemonSet {namespace}/{}", ds.name),
    );
    let targets = &groups.targets;
    let several = targets.len() > 1;
    let waits = targets.iter().map(|t| {
        let spinner = &spinner;
        let namespace = &namespace;
        async move {
            rollout::wait(cluster, namespace, &t.daemonset, args.timeout, |p| {
                if several {
                    spinner.set_message(format!("{}: {}", t.daemonset, p.message()));
                } else {
                    spinner.set_message(p.message());
                }
            })
            .await
        }
    });
    let waited = futures::future::join_all(waits).await;
    spinner.finish_and_clear();
    let rolled: Vec<Rollout> = match waited.into_iter().collect() {
        Ok(rolled) => rolled,
        Err(e) => {
            outcome.error = Some(e);
            return Ok(finish(ctx, outcome));
        }
    };
    if !ctx.ui.json() {
        for r in &rolled {
            ctx.ui.note(format!(
                "{} {}{}/{} nodes ready in {:.1}s",
                ctx.ui.good("rolled out:"),
                if several {
                    format!("{}: ", r.name)
                } else {
                    String::new()
                },
                r.progress.available,
                r.progress.desired,
                r.elapsed.as_secs_f64()
            ));
        }
    }
    let Some(ready_at) = rolled.iter().map(|r| r.ready_at).max() else {
        return Ok(finish(ctx, outcome));
    };
    let mut rolled = rolled.into_iter();
    outcome.rollout = rolled.next();
    outcome.group_rollouts = rolled.collect();
    if args.no_verify {
        return Ok(finish(ctx, outcome));
    }

    let spinner = crate::ui::progress::spinner(&ctx.ui, "verifying pod labels");
    // The verification stage starts here: measured from the watch event that completed the rollout.
    let ready_to_verify = ready_at.elapsed().as_secs_f64() * 1000.0;
    // Each group's DaemonSet at once.
    let each = targets.iter().map(|t| VerifyOptions {
        expected_socket: t.expected_socket.clone(),
        concurrency: args.parallel,
        ..VerifyOptions::new(&namespace, &t.daemonset, args.timeout)
    });
    let verified = super::verify::verify_each(cluster, each.collect(), &spinner).await;
    outcome.ready_to_verify_ms = Some(ready_to_verify);
    ctx.ui.verbose(format!(
        "rollout ready → verification start: {ready_to_verify:.1} ms"
    ));
    spinner.finish_and_clear();
    let mut done = Vec::new();
    for v in verified {
        match v {
            Ok(v) => {
                super::verify::record(ctx, cluster, &v).await;
                done.push(v);
            }
            Err(e) => {
                outcome.error = Some(e);
                return Ok(finish(ctx, outcome));
            }
        }
    }
    outcome.verification = Verification::merge(done);
    if outcome.verification.as_ref().is_some_and(|v| v.ok) {
        through_prometheus(ctx, args, cluster, &namespace, &ds.name, &mut outcome).await;
    }
    Ok(finish(ctx, outcome))
}

/// The last step when a Prometheus was chosen and selects our ServiceMonitor: does it scrape
/// cAdvisor and answer by pod, namespace and container? Within `--timeout` (the operator, the
/// config reload and a 30s scrape interval all come first). A Prometheus that cannot be asked
/// (no Service, no endpoints, forbidden) is a note, not a failure: the install stands, and
/// `verify --prometheus NAMESPACE/NAME` checks later.
async fn through_prometheus(
    ctx: &Context,
    args: &InstallSettings,
    cluster: &Cluster,
    namespace: &str,
    daemonset: &str,
    outcome: &mut Outcome,
) {
    use crate::verify::prometheus::{self, PrometheusOptions, operator};
    let Some(scraper) = &outcome.prometheus.scraper else {
        return;
    };
    let id = scraper.id();
    let endpoint = operator::service_proxy(scraper.namespace.clone(), &scraper.web);
    let opts = PrometheusOptions {
        give_up_when_unreadable: true,
        ..PrometheusOptions::new(endpoint, namespace, daemonset, args.timeout)
    };
    let spinner = crate::ui::progress::spinner(&ctx.ui, format!("asking Prometheus {id}"));
    let checked =
        prometheus::verify(cluster, &opts, |msg| spinner.set_message(msg.to_string())).await;
    spinner.finish_and_clear();
    match checked {
        Ok(v) => outcome.prometheus_verification = Some(v),
        Err(e) => {
            outcome.prometheus_note = Some(format!(
                "could not ask Prometheus {id}: {e}; check later with `cadvisor-setup verify --prometheus {id}`"
            ))
        }
    }
}

/// `e`, from applying the objects, also naming what was `written` before them (node labels).
fn with_written_first(
    e: ClusterError,
    written: impl Iterator<Item = String>,
    manifests: &Manifests,
) -> ClusterError {
    let mut written: Vec<String> = written.collect();
    if written.is_empty() {
        return e;
    }
    match e {
        ClusterError::Partial {
            applied,
            not_applied,
            source,
        } => {
            if applied != "nothing" {
                written.push(applied);
            }
            ClusterError::Partial {
                applied: written.join(", "),
                not_applied,
                source,
            }
        }
        other => ClusterError::Partial {
            applied: written.join(", "),
            not_applied: manifests
                .documents
                .iter()
                .map(|m| crate::cluster::describe(&m.kind, m.namespace.as_deref(), &m.name))
                .collect::<Vec<_>>()
                .join(", "),
            source: Box::new(other),
        },
    }
}

/// What `install` found after applying, gathered as it goes; [`finish`] reports it.
#[derive(Default)]
struct Outcome {
    applied: Applied,
    /// Group DaemonSets deleted because their group became empty.
    pruned: Vec<String>,
    /// `--label-nodes`: our label on each node.
    node_labels: Vec<NodeLabelChange>,
    /// The cluster's nodes and groups, when worth reporting (several groups, a fallback).
    nodes: Option<super::groups::NodeLayout>,
    prometheus: PrometheusOutcome,
    /// `cadvisor`'s rollout; the other groups' in `group_rollouts`.
    rollout: Option<Rollout>,
    group_rollouts: Vec<Rollout>,
    ready_to_verify_ms: Option<f64>,
    verification: Option<Verification>,
    /// The last step: the chosen Prometheus scrapes cAdvisor and answers by pod labels.
    prometheus_verification: Option<PrometheusVerification>,
    /// Why the chosen Prometheus could not be asked.
    prometheus_note: Option<String>,
    error: Option<ClusterError>,
}

impl Outcome {
    fn new(applied: Applied) -> Outcome {
        Outcome {
            applied,
            ..Outcome::default()
        }
    }

    fn code(&self) -> ExitCode {
        if let Some(e) = &self.error {
            return super::error::cluster(e);
        }
        match (&self.verification, &self.prometheus_verification) {
            (Some(v), _) if !v.ok => v.exit_code(),
            (_, Some(p)) => p.exit_code(),
            (Some(v), None) => v.exit_code(),
            (None, None) => ExitCode::Success,
        }
    }

    /// The report: changed when an object changed (even if a later step failed); a failure's
    /// message is the error, or the failed verification's.
    fn report(self) -> crate::ui::Report<Installed> {
        let code = self.code();
        let changed = changes(&self.applied, &self.pruned, &self.node_labels);
        let summary = |r: Rollout| RolloutSummary {
            namespace: r.namespace,
            name: r.name,
            desired: r.progress.desired,
            ready: r.progress.ready,
            available: r.progress.available,
            updated: r.progress.updated,
            elapsed_seconds: r.elapsed.as_secs_f64(),
            ready_to_verify_ms: self.ready_to_verify_ms,
        };
        let rollout = self.rollout.map(summary);
        let group_rollouts = self.group_rollouts.into_iter().map(summary).collect();
        let error = self.error.as_ref().map(ToString::to_string);
        let rollout_failure = match self.error {
            Some(ClusterError::Rollout(f)) => Some(*f),
            _ => None,
        };
        let message = error.clone().or_else(|| {
            self.verification
                .as_ref()
                .and_then(super::verify::failure_message)
                .or_else(|| {
                    self.prometheus_verification
                        .as_ref()
                        .filter(|p| !p.ok)
                        .map(|p| {
                            format!(
                                "verification through Prometheus failed: {}",
                                p.message.as_deref().unwrap_or("no reason given")
                            )
                        })
                })
        });
        let body = Installed {
            applied: self.applied,
            pruned: self.pruned,
            node_labels: self.node_labels,
            nodes: self.nodes,
            prometheus: self.prometheus,
            rollout,
            group_rollouts,
            rollout_failure,
            verification: self.verification,
            prometheus_verification: self.prometheus_verification,
            prometheus_note: self.prometheus_note,
            error,
            succeeded: code == ExitCode::Success,
        };
        crate::ui::Report::new(code, body)
            .changed(changed)
            .message(message)
    }
}

/// `install`'s report body: `dry_run` (false) and `objects` (what apply did), then `rollout`,
/// `rollout_failure`, `verification` and `error`, each `null` when that step did not happen or
/// did not fail.
#[derive(Debug, serde::Serialize)]
struct Installed {
    #[serde(flatten)]
    applied: Applied,
    /// Group DaemonSets deleted because their node group became empty (`DaemonSet ns/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pruned: Vec<String>,
    /// `--label-nodes`: our node label `cadvisor-setup/group` on each node (`node`, `value`,
    /// `previous`, `action`: label, relabel, take_over, keep or remove; `changed`). Omitted
    /// without the flag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    node_labels: Vec<NodeLabelChange>,
    /// With several node groups or a node on fallback facts: every node and the groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<super::groups::NodeLayout>,
    /// The Prometheus step: found, chosen, labels given, NetworkPolicy.
    prometheus: PrometheusOutcome,
    rollout: Option<RolloutSummary>,
    /// The rollouts of the other node groups' DaemonSets (`rollout` is `cadvisor`'s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_rollouts: Vec<RolloutSummary>,
    rollout_failure: Option<crate::cluster::rollout::RolloutFailure>,
    verification: Option<Verification>,
    /// The chosen Prometheus' view (only when one was chosen and asked), apart from the
    /// cAdvisor check above.
    #[serde(skip_serializing_if = "Option::is_none")]
    prometheus_verification: Option<PrometheusVerification>,
    /// Why the chosen Prometheus could not be asked (the install stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    prometheus_note: Option<String>,
    /// The error that stopped the install after something was applied (the message too).
    error: Option<String>,
    #[serde(skip)]
    succeeded: bool,
}

/// The finished rollout: its counters and how long it and the step to verification took.
#[derive(Debug, serde::Serialize)]
struct RolloutSummary {
    namespace: String,
    name: String,
    desired: i32,
    ready: i32,
    available: i32,
    updated: i32,
    elapsed_seconds: f64,
    ready_to_verify_ms: Option<f64>,
}

impl crate::ui::Human for Installed {
    /// The verification per node, then `done:` on success. What was applied and the rollout
    /// were already said as they happened (on stderr).
    fn human(&self, ui: &crate::ui::Ui) {
        if let Some(v) = &self.verification {
            super::verify::print_human(ui, v);
        }
        if let Some(p) = &self.prometheus_verification {
            super::verify::print_prometheus(ui, p);
        }
        if let Some(note) = &self.prometheus_note {
            ui.line(format!("{} {note}", ui.warn("note:")));
        }
        if self.succeeded {
            ui.line(format!(
                "{} cAdvisor is installed{}",
                ui.good("done:"),
                if changes(&self.applied, &self.pruned, &self.node_labels) {
                    ""
                } else {
                    " (nothing changed)"
                }
            ));
        }
    }

    /// Under the error: what stays in place and what to do about it.
    fn error_details(&self) -> Vec<String> {
        vec![format!(
            "applied (still in place): {}; `cadvisor-setup status` shows the state, `cadvisor-setup uninstall` removes it",
            self.applied.summary()
        )]
    }
}

/// Whether anything changed (or would): an object applied, a group DaemonSet pruned or a node
/// label changed.
fn changes(applied: &Applied, pruned: &[String], node_labels: &[NodeLabelChange]) -> bool {
    applied.changed() || !pruned.is_empty() || node_labels.iter().any(|l| l.changed)
}

/// Prints the outcome (one JSON document, or lines for people) and returns its exit code.
fn finish(ctx: &Context, outcome: Outcome) -> ExitCode {
    ctx.ui.report(&outcome.report())
}

/// `install --dry-run`'s report: `changed` says whether anything would change.
fn dry_run_report(
    applied: &Applied,
    prune: Vec<String>,
    node_labels: Vec<NodeLabelChange>,
) -> crate::ui::Report<DryRun<'_>> {
    let changed = changes(applied, &prune, &node_labels);
    let body = DryRun {
        applied,
        diff: applied.diff(),
        prune,
        node_labels,
    };
    crate::ui::Report::new(ExitCode::Success, body).changed(changed)
}

/// `install --dry-run`'s report body: `dry_run` (true), `objects` as the server would have
/// them, `diff`, a unified diff per object that would change, and `prune`, the group
/// DaemonSets that would be deleted (omitted when none).
#[derive(Debug, serde::Serialize)]
struct DryRun<'a> {
    #[serde(flatten)]
    applied: &'a Applied,
    diff: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    prune: Vec<String>,
    /// `--label-nodes`: the node labels as they would be (nothing is written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    node_labels: Vec<NodeLabelChange>,
}

impl crate::ui::Human for DryRun<'_> {
    fn human(&self, ui: &crate::ui::Ui) {
        if self.applied.changed() {
            ui.line(self.diff.trim_end());
        }
        for p in &self.prune {
            ui.line(format!("would delete {p} (its node group is empty)"));
        }
        let labels: Vec<&NodeLabelChange> = self.node_labels.iter().filter(|l| l.changed).collect();
        for l in &labels {
            ui.line(format!("would {}", l.describe()));
        }
        if self.applied.changed() || !self.prune.is_empty() || !labels.is_empty() {
            ui.note("(dry run: nothing was changed)");
        } else {
            ui.line("dry run: nothing would change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::apply::{Action, AppliedObject};
    use crate::cluster::ownership::Ownership;
    use crate::ui::report::envelope_collisions;

    fn applied(changed: bool, dry_run: bool) -> Applied {
        Applied {
            dry_run,
            objects: vec![AppliedObject {
                api_version: "apps/v1".into(),
                kind: "DaemonSet".into(),
                name: "cadvisor".into(),
                namespace: Some("cadvisor".into()),
                action: if changed {
                    Action::Created
                } else {
                    Action::Unchanged
                },
                changed,
                ownership: Ownership::Created,
                resource_version: Some("1".into()),
                before: None,
                after: serde_json::json!({"kind": "DaemonSet"}),
                note: None,
            }],
        }
    }

    #[test]
    fn the_install_document_keeps_its_fields_and_the_envelope_apart() {
        let report = Outcome::new(applied(true, false)).report();
        assert!(report.ok() && report.is_changed() && report.message_text().is_none());
        assert!(envelope_collisions(report.body()).is_empty());
        let doc = serde_json::to_value(&report).unwrap();
        for key in [
            "dry_run",
            "objects",
            "rollout",
            "rollout_failure",
            "verification",
            "error",
        ] {
            assert!(doc.get(key).is_some(), "{key} missing: {doc:#}");
        }
        assert_eq!(doc["dry_run"], false);
        assert_eq!(doc["objects"][0]["action"], "created");
        assert!(doc.get("succeeded").is_none(), "{doc:#}");

        let rerun = Outcome::new(applied(false, false)).report();
        assert!(rerun.ok() && !rerun.is_changed());
    }

    #[test]
    fn an_error_after_apply_is_the_message_and_changed_still_counts() {
        let mut failed = Outcome::new(applied(true, false));
        failed.error = Some(ClusterError::Interrupted {
            by: "Ctrl-C",
            doing: "waiting for the rollout".into(),
        });
        let report = failed.report();
        assert!(!report.ok() && report.is_changed());
        assert_eq!(
            report.message_text(),
            Some("interrupted (Ctrl-C) while waiting for the rollout")
        );
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["error"], doc["message"]);
        assert!(doc["rollout_failure"].is_null());
        let details = crate::ui::Human::error_details(report.body());
        assert!(
            details[0].contains("applied (still in place): DaemonSet cadvisor/cadvisor"),
            "{details:?}"
        );
    }

    #[test]
    fn a_dry_run_is_never_a_change_but_says_whether_one_would_happen() {
        let would = applied(true, true);
        let report = dry_run_report(&would, Vec::new(), Vec::new());
        assert!(report.ok() && report.is_changed());
        assert!(envelope_collisions(report.body()).is_empty());
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["dry_run"], true);
        assert!(
            doc["diff"].as_str().unwrap().contains("+kind: DaemonSet"),
            "{doc:#}"
        );
        let same = applied(false, true);
        let doc = serde_json::to_value(dry_run_report(&same, Vec::new(), Vec::new())).unwrap();
        assert_eq!(
            (doc["changed"].clone(), doc["diff"].clone()),
            (false.into(), "".into())
        );
    }

    #[test]
    fn a_cancelled_plan_is_exit_2_with_the_error() {
        let report = cancelled_report();
        assert_eq!(report.exit_code(), ExitCode::Usage);
        assert!(envelope_collisions(report.body()).is_empty());
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["cancelled"], true);
        assert_eq!(doc["error"], doc["message"]);
        assert_eq!(doc["changed"], false);
    }
}
