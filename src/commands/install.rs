//! `install`: detect → plan → render → apply → wait → verify → report.
//!
//! Consent: `install` changes the cluster, so without a terminal it needs `--yes` (exit 2 and no
//! change otherwise). On a terminal without `--yes` it prints the plan and proceeds (the
//! interactive questions and the confirmation prompt come with the interactive work).
//! `--dry-run` needs no consent: it asks the API server for a server-side dry run and prints a
//! diff per object.
//!
//! Once anything was applied, a failure is reported by this command itself (one JSON document
//! with what was applied, or human lines saying so) and its exit code returned.
//!
//! Ctrl-C while waiting for the rollout or the verification ends with exit 1 (the exit-code
//! table of design §5 has no entry for an interruption, so it is 1 rather than the shell's 130),
//! naming what was applied: the objects stay and the DaemonSet keeps rolling out.

use std::path::PathBuf;

use serde_json::json;

use super::Context;
use super::verify_cluster::{self, Verification, VerifyOptions};
use crate::cli::{InstallArgs, ServiceMonitorMode};
use crate::cluster::apply::{Applied, ApplyOptions, apply};
use crate::cluster::rollout::{self, Rollout};
use crate::cluster::{Cluster, ClusterError};
use crate::error::{Classify, ExitCode, Failure};
use crate::host::HostFacts;
use crate::render::Manifests;

pub async fn run(ctx: &Context, args: InstallArgs) -> anyhow::Result<ExitCode> {
    if !args.dry_run && !ctx.global.yes && !ctx.ui.interactive() {
        return Err(Failure::new(
            ExitCode::Usage,
            "install changes the cluster and no terminal is attached to confirm: pass --yes (or --dry-run to see what would change); nothing was changed",
        )
        .into());
    }
    let resolved = ctx.resolve(&args.plan, &args.socket);
    let facts = detect(ctx, resolved.containerd_socket.clone()).await?;
    let cluster = super::connect::cluster(ctx, facts.kubeconfig.as_ref()).await?;
    let mut opts = crate::options::plan_options(&args.plan);
    if matches!(
        args.plan.service_monitor,
        None | Some(ServiceMonitorMode::Auto)
    ) {
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
    if !ctx.global.yes && ctx.ui.interactive() && !args.dry_run {
        show_plan(ctx, &manifests);
    }
    install(ctx, &args, &facts, &manifests, &cluster).await
}

/// Host detection with this command's socket override.
async fn detect(ctx: &Context, socket: Option<PathBuf>) -> anyhow::Result<HostFacts> {
    let options = crate::host::DetectOptions {
        containerd_socket: socket,
        kubeconfig_flag: ctx.global.kubeconfig.clone(),
        kubeconfig_env: Some(crate::host::kubeconfig::KubeconfigEnv::from_process(
            ctx.global.kubeconfig.clone(),
        )),
        ..crate::host::DetectOptions::default()
    };
    Ok(crate::host::detect(&ctx.host_root, &options).await?)
}

fn show_plan(ctx: &Context, manifests: &Manifests) {
    ctx.ui.note(
        ctx.ui
            .bold("will apply (server-side, field manager cadvisor-setup):"),
    );
    for m in &manifests.documents {
        ctx.ui.note(format!(
            "  {}",
            crate::cluster::describe(&m.kind, m.namespace.as_deref(), &m.name)
        ));
    }
}

/// Everything after the cluster is known: apply, wait, verify, report. Public for the benches.
pub async fn install(
    ctx: &Context,
    args: &InstallArgs,
    facts: &HostFacts,
    manifests: &Manifests,
    cluster: &Cluster,
) -> anyhow::Result<ExitCode> {
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
        namespace: namespace.clone(),
        daemonset: ds.name.clone(),
        timeout: args.timeout,
        expected_socket: facts.runtime.socket.clone(),
    };
    let spinner = crate::ui::progress::spinner(&ctx.ui, "verifying pod labels");
    // The verification stage starts here: measured from the watch event that completed the rollout.
    let ready_to_verify = ready_at.elapsed().as_secs_f64() * 1000.0;
    let verified = verify_cluster::verify(cluster, &verify_opts, |msg| {
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
            verify_cluster::record(ctx, cluster, &v).await;
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
            return e.exit_code();
        }
        match &self.verification {
            Some(v) => verify_cluster::code_of(v),
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
        verify_cluster::print_human(ctx, v);
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
