//! `uninstall`: undo `install` under the ownership model: delete what install created, restore
//! what `--force` adopted, keep the rest (saying why), namespace last and only when empty, and
//! wait until our objects and pods are gone. Idempotent: nothing left is success.

use super::Context;
use super::error::Failure;
use crate::cluster::uninstall::{Uninstalled, plan, run as uninstall};
use crate::error::ExitCode;
use crate::settings::UninstallSettings;

pub async fn run(ctx: &Context, args: UninstallSettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let plan = plan(&cluster, args.namespace.as_str()).await?;
    let ui = &ctx.ui;
    if plan.is_empty() {
        let done = Uninstalled {
            kept: plan.kept,
            ..Uninstalled::default()
        };
        if ui.json() {
            emit(ctx, &done);
        } else {
            ui.line(format!(
                "nothing to delete: no object in namespace {} (or cluster-wide) was created by cadvisor-setup",
                args.namespace
            ));
            print_kept(ctx, &done);
        }
        return Ok(ExitCode::Success);
    }
    let steps = plan.describe();
    ui.note(format!("will {}", steps.join(", ")));
    consent(ctx, steps.len())?;

    let spinner = crate::ui::progress::spinner(ui, "deleting and waiting until gone");
    let result = uninstall(&cluster, args.namespace.as_str(), plan, args.timeout).await;
    spinner.finish_and_clear();
    let done = result?;
    if ui.json() {
        emit(ctx, &done);
    } else {
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
        print_kept(ctx, &done);
    }
    Ok(ExitCode::Success)
}

fn emit(ctx: &Context, done: &Uninstalled) {
    ctx.ui.emit_json(&serde_json::json!({
        "ok": true,
        "changed": !done.deleted.is_empty() || !done.restored.is_empty(),
        "exit_code": 0,
        "deleted": done.deleted,
        "restored": done.restored,
        "kept": done.kept,
    }));
}

fn print_kept(ctx: &Context, done: &Uninstalled) {
    for k in &done.kept {
        ctx.ui.line(format!(
            "{} {}: {}",
            ctx.ui.warn("kept:"),
            k.object,
            k.reason
        ));
    }
}

/// `--yes`, or a confirmation from a person at a terminal; without either, change nothing (exit 2).
fn consent(ctx: &Context, steps: usize) -> super::Result<()> {
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
    let confirmed =
        crate::ui::prompts::confirm(&ctx.ui, &format!("Carry out these {steps} step(s)?"), false)?;
    if !confirmed {
        return Err(Failure::new(ExitCode::Usage, "declined: nothing was deleted").into());
    }
    Ok(())
}
