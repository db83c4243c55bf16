//! `status`: what is installed, which version, nodes ready, objects and their field managers,
//! and the last verification. Read-only, never prompts.

use super::Context;
use crate::cluster::status::{daemonset, managed_objects};
use crate::error::ExitCode;
use crate::settings::StatusSettings;

pub async fn run(ctx: &Context, args: StatusSettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let objects = managed_objects(&cluster, args.namespace.as_str()).await?;
    let ds_name = objects
        .iter()
        .find(|o| o.kind == "DaemonSet")
        .map_or("cadvisor", |o| o.name.as_str());
    let ds = daemonset(&cluster, args.namespace.as_str(), ds_name).await?;
    let ours: Vec<String> = objects
        .iter()
        .filter(|o| o.ownership.is_ours())
        .map(|o| o.describe())
        .collect();
    // Installed: our DaemonSet is there. Partially: some of our objects are, without it (an
    // interrupted install or uninstall).
    let state = match &ds {
        Some(ds) if ds.ours => "installed",
        _ if !ours.is_empty() => "partially installed",
        _ => "not installed",
    };

    if ctx.ui.json() {
        ctx.ui.emit_json(&serde_json::json!({
            "ok": true,
            "changed": false,
            "exit_code": 0,
            "installed": state == "installed",
            "state": state,
            "left": if state == "partially installed" { Some(&ours) } else { None },
            "server": cluster.server,
            "daemonset": ds,
            "objects": objects,
        }));
        return Ok(ExitCode::Success);
    }
    let ui = &ctx.ui;
    match &ds {
        None if state == "partially installed" => ui.line(format!(
            "cAdvisor is {} in namespace {}: no DaemonSet {ds_name}, but these of our objects are left: {} (`cadvisor-setup install` completes it, `cadvisor-setup uninstall` removes them)",
            ui.warn("partially installed"),
            args.namespace,
            ours.join(", ")
        )),
        None => ui.line(format!(
            "cAdvisor is not installed in namespace {} (no DaemonSet {ds_name})",
            args.namespace
        )),
        Some(ds) => {
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
    }
    if !objects.is_empty() {
        ui.line(format!(
            "{} (app.kubernetes.io/managed-by=cadvisor-setup):",
            ui.bold("objects")
        ));
        for o in &objects {
            ui.line(format!(
                "  {:<40} {:<8} managers: {}",
                o.describe(),
                format!("{:?}", o.ownership).to_lowercase(),
                o.managers.join(", ")
            ));
        }
    }
    Ok(ExitCode::Success)
}
