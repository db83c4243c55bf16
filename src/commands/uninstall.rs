//! `uninstall`: delete exactly what `install` created (our label and our field manager), namespace
//! last, and wait until it is gone. Idempotent: nothing left is success.

use super::Context;
use crate::cli::UninstallArgs;
use crate::cluster::uninstall::{delete, targets};
use crate::error::{ExitCode, Failure};

pub async fn run(ctx: &Context, args: UninstallArgs) -> anyhow::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let (objects, kept) = targets(&cluster, &args.namespace).await?;
    let ui = &ctx.ui;
    if objects.is_empty() {
        if ctx.ui.json() {
            ui.emit_json(&serde_json::json!({
                "ok": true, "changed": false, "exit_code": 0,
                "deleted": [], "kept": kept,
            }));
        } else {
            ui.line(format!(
                "nothing to delete: no object in namespace {} (or cluster-wide) was created by cadvisor-setup",
                args.namespace
            ));
        }
        return Ok(ExitCode::Success);
    }
    let names: Vec<String> = objects.iter().map(|o| o.describe()).collect();
    ui.note(format!("will delete: {}", names.join(", ")));
    consent(ctx, &names)?;

    let spinner = crate::ui::progress::spinner(ui, "deleting and waiting until gone");
    let result = delete(&cluster, &args.namespace, &objects, kept, args.timeout).await;
    spinner.finish_and_clear();
    let done = result?;
    if ui.json() {
        ui.emit_json(&serde_json::json!({
            "ok": true,
            "changed": !done.deleted.is_empty(),
            "exit_code": 0,
            "deleted": done.deleted,
            "kept": done.kept,
        }));
    } else {
        ui.line(format!(
            "{} {}",
            ui.good("deleted:"),
            done.deleted.join(", ")
        ));
        for k in &done.kept {
            ui.line(format!("{} {}: {}", ui.warn("kept:"), k.object, k.reason));
        }
    }
    Ok(ExitCode::Success)
}

/// `--yes`, or a confirmation from a person at a terminal; without either, change nothing (exit 2).
fn consent(ctx: &Context, names: &[String]) -> anyhow::Result<()> {
    if ctx.global.yes {
        return Ok(());
    }
    if !ctx.ui.interactive() {
        return Err(Failure::new(
            ExitCode::Usage,
            "uninstall needs --yes when no terminal is attached (nothing was deleted)",
        )
        .into());
    }
    let confirmed = crate::ui::prompts::confirm(
        &ctx.ui,
        &format!("Delete {} object(s)?", names.len()),
        false,
    )?;
    if !confirmed {
        return Err(Failure::new(ExitCode::Usage, "declined: nothing was deleted").into());
    }
    Ok(())
}
