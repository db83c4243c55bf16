//! `install`: detect → plan → render → apply → wait → verify → report.
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

use serde_json::json;

use super::Context;
use super::error::Failure;
use crate::cli::ServiceMonitorMode;
use crate::cluster::apply::{Applied, ApplyOptions, apply};
use crate::cluster::rollout::{self, Rollout};
use crate::cluster::{Cluster, ClusterError};
use crate::error::ExitCode;
use crate::host::{ConfigzHints, HostFacts, HostFiles};
use crate::options::{Resolved, ValueSource};
use crate::plan::Plan;
use crate::render::Manifests;
use crate::settings::InstallSettings;
use crate::ui::prompts::{self, PlanDecision};
use crate::verify::{self, Verification, VerifyOptions};

pub async fn run(ctx: &Context, args: InstallSettings) -> super::Result<ExitCode> {
    if !args.dry_run && !ctx.global.yes && !ctx.ui.interactive() {
        return Err(Failure::new(
            ExitCode::Usage,
            "install changes the cluster and no terminal is attached to confirm: pass --yes (or --dry-run to see what would change); nothing was changed",
        )
        .into());
    }
    // A person at a terminal who did not pass --yes gets the conversation; --dry-run changes
    // nothing, so it needs none.
    let conversation = !ctx.global.yes && ctx.ui.interactive() && !args.dry_run;
    let mut resolved = args.resolved.clone();
    // Detection runs once and the API server is connected to once: the host's files first
    // (cheap: they name the kubeconfig and this node), then the one client, then the socket
    // probes with the kubelet's own configuration.
    let files = crate::host::read_files(
        &ctx.host_root,
        &detect_options(ctx, resolved.containerd_socket.clone(), None),
    );
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
        ctx.ui
            .note(format!("{} {warning}", ctx.ui.warn("warning:")));
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
    if resolved.service_monitor == ServiceMonitorMode::Auto {
        // "auto": a ServiceMonitor only when the Prometheus operator's CRD is served.
        opts.service_monitor = crate::cluster::resources::serves(
            &cluster,
            "monitoring.coreos.com/v1",
            "servicemonitors",
        )
        .await?;
    }
    let plan = crate::plan::make(&facts, &opts)?;
    let manifests = crate::render::manifests(&plan, args.templates.as_deref())?;
    if manifests.documents.is_empty() {
        return Err(Failure::new(ExitCode::Unexpected, "rendering produced no objects").into());
    }
    for warning in &plan.warnings {
        ctx.ui
            .note(format!("{} {warning}", ctx.ui.warn("warning:")));
    }
    if conversation {
        show_plan(ctx, &plan, &manifests);
        loop {
            match prompts::confirm_plan(&ctx.ui, "Apply this to the cluster?")? {
                PlanDecision::Apply => break,
                PlanDecision::ShowYaml => ctx.ui.note(manifests.to_yaml().trim_end()),
                PlanDecision::Cancel => return Ok(cancelled(ctx)),
            }
        }
    }
    install(ctx, &args, &facts, &manifests, &cluster).await
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
    let kubeconfig = super::connect::kubeconfig(ctx, found);
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
            return Err(Failure::new(
                ExitCode::Usage,
                "no containerd socket was chosen; nothing was applied\n  pass --containerd-socket PATH (the socket the kubelet uses, e.g. /var/snap/microk8s/common/run/containerd.sock)",
            )
            .into());
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
    Ok(crate::host::probe(&ctx.host_root, files, &options).await?)
}

/// Declined at the confirmation: exit 2 ("no consent", like a missing --yes), nothing applied.
fn cancelled(ctx: &Context) -> ExitCode {
    let code = ExitCode::Usage;
    if ctx.ui.json() {
        ctx.ui.emit_json(&json!({
            "ok": false,
            "changed": false,
            "exit_code": code.code(),
            "cancelled": true,
            "error": "cancelled at the confirmation; nothing was applied",
        }));
    }
    ctx.ui
        .note("cancelled: nothing was applied (rerun with --yes to skip the questions)");
    code
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

/// Everything after the cluster is known: apply, wait, verify, report. Public for the benches.
pub async fn install(
    ctx: &Context,
    args: &InstallSettings,
    facts: &HostFacts,
    manifests: &Manifests,
    cluster: &Cluster,
) -> super::Result<ExitCode> {
    let apply_opts = ApplyOptions {
        force: args.force,
        dry_run: args.dry_run,
    };
    // On failure the error names what was applied before it (ClusterError::Partial).
    let applied = apply(cluster, &manifests.documents, apply_opts).await?;
    if args.dry_run {
        return Ok(report_dry_run(ctx, &applied));
    }
    let mut outcome = Outcome {
        applied,
        rollout: None,
        ready_to_verify_ms: None,
        verification: None,
        error: None,
    };
    if !ctx.ui.json() {
        for o in &outcome.applied.objects {
            let action = format!("{:?}", o.action).to_lowercase();
            ctx.ui
                .note(format!("{} {}", ctx.ui.dim(&action), o.describe()));
            if let Some(note) = &o.note {
                ctx.ui.note(format!("  {note}"));
            }
        }
    }

    let Some(ds) = manifests.documents.iter().find(|m| m.kind == "DaemonSet") else {
        return Ok(finish(ctx, outcome));
    };
    let namespace = ds
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let spinner = crate::ui::progress::spinner(
        &ctx.ui,
        format!("rolling out DaemonSet {namespace}/{}", ds.name),
    );
    let waited = rollout::wait(cluster, &namespace, &ds.name, args.timeout, |p| {
        spinner.set_message(p.message())
    })
    .await;
    spinner.finish_and_clear();
    let rolled: Rollout = match waited {
        Ok(r) => r,
        Err(e) => {
            outcome.error = Some(e);
            return Ok(finish(ctx, outcome));
        }
    };
    if !ctx.ui.json() {
        ctx.ui.note(format!(
            "{} {}/{} nodes ready in {:.1}s",
            ctx.ui.good("rolled out:"),
            rolled.progress.available,
            rolled.progress.desired,
            rolled.elapsed.as_secs_f64()
        ));
    }
    let ready_at = rolled.ready_at;
    outcome.rollout = Some(rolled);
    if args.no_verify {
        return Ok(finish(ctx, outcome));
    }

    let verify_opts = VerifyOptions {
        expected_socket: facts.runtime.socket.clone(),
        concurrency: args.parallel,
        ..VerifyOptions::new(&namespace, &ds.name, args.timeout)
    };
    let spinner = crate::ui::progress::spinner(&ctx.ui, "verifying pod labels");
    // The verification stage starts here: measured from the watch event that completed the rollout.
    let ready_to_verify = ready_at.elapsed().as_secs_f64() * 1000.0;
    let verified = verify::verify(cluster, &verify_opts, |msg| {
        spinner.set_message(msg.to_string())
    })
    .await;
    outcome.ready_to_verify_ms = Some(ready_to_verify);
    ctx.ui.verbose(format!(
        "rollout ready → verification start: {ready_to_verify:.1} ms"
    ));
    spinner.finish_and_clear();
    match verified {
        Ok(v) => {
            super::verify::record(ctx, cluster, &v).await;
            outcome.verification = Some(v);
        }
        Err(e) => outcome.error = Some(e),
    }
    Ok(finish(ctx, outcome))
}

struct Outcome {
    applied: Applied,
    rollout: Option<Rollout>,
    ready_to_verify_ms: Option<f64>,
    verification: Option<Verification>,
    error: Option<ClusterError>,
}

impl Outcome {
    fn code(&self) -> ExitCode {
        if let Some(e) = &self.error {
            return super::error::cluster(e);
        }
        match &self.verification {
            Some(v) => v.exit_code(),
            None => ExitCode::Success,
        }
    }
}

/// Prints the outcome (one JSON document, or lines for people) and returns its exit code.
fn finish(ctx: &Context, outcome: Outcome) -> ExitCode {
    let code = outcome.code();
    let ui = &ctx.ui;
    if ui.json() {
        let rollout = outcome.rollout.as_ref().map(|r| {
            json!({
                "namespace": r.namespace,
                "name": r.name,
                "desired": r.progress.desired,
                "ready": r.progress.ready,
                "available": r.progress.available,
                "updated": r.progress.updated,
                "elapsed_seconds": r.elapsed.as_secs_f64(),
                "ready_to_verify_ms": outcome.ready_to_verify_ms,
            })
        });
        let failure = match &outcome.error {
            Some(ClusterError::Rollout(f)) => Some(json!(f)),
            _ => None,
        };
        ui.emit_json(&json!({
            "ok": code == ExitCode::Success,
            "changed": outcome.applied.changed(),
            "exit_code": code.code(),
            "dry_run": false,
            "objects": outcome.applied.objects,
            "rollout": rollout,
            "rollout_failure": failure,
            "verification": outcome.verification,
            "error": outcome.error.as_ref().map(|e| e.to_string()),
        }));
        return code;
    }
    if let Some(v) = &outcome.verification {
        super::verify::print_human(ctx, v);
    }
    if let Some(e) = &outcome.error {
        ui.note(format!("{} {e}", ui.bad("error:")));
    }
    if code == ExitCode::Success {
        ui.line(format!(
            "{} cAdvisor is installed{}",
            ui.good("done:"),
            if outcome.applied.changed() {
                ""
            } else {
                " (nothing changed)"
            }
        ));
    } else {
        ui.note(format!(
            "  applied (still in place): {}; `cadvisor-setup status` shows the state, `cadvisor-setup uninstall` removes it",
            outcome.applied.summary()
        ));
    }
    code
}

fn report_dry_run(ctx: &Context, applied: &Applied) -> ExitCode {
    let diff = applied.diff();
    if ctx.ui.json() {
        ctx.ui.emit_json(&json!({
            "ok": true,
            "changed": applied.changed(),
            "exit_code": 0,
            "dry_run": true,
            "objects": applied.objects,
            "diff": diff,
        }));
    } else if applied.changed() {
        ctx.ui.line(diff.trim_end());
        ctx.ui.note("(dry run: nothing was changed)");
    } else {
        ctx.ui.line("dry run: nothing would change");
    }
    ExitCode::Success
}
