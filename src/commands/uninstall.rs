//! `uninstall`: undo `install` under the ownership model: delete what install created, restore
//! what `--force` adopted, keep the rest (saying why), namespace last and only when empty, and
//! wait until our objects and pods are gone. Idempotent: nothing left is success.

use serde::Serialize;

use super::Context;
use super::error::Failure;
use crate::cluster::uninstall::{Uninstalled, plan, run as uninstall};
use crate::error::ExitCode;
use crate::settings::UninstallSettings;
use crate::ui::{Human, Report, Ui};

pub async fn run(ctx: &Context, args: UninstallSettings) -> super::Result<ExitCode> {
    let cluster = super::connect::cluster(ctx, None).await?;
    let plan = plan(&cluster, args.namespace.as_str()).await?;
    let ui = &ctx.ui;
    if plan.is_empty() {
        let done = Uninstalled {
            kept: plan.kept,
            ..Uninstalled::default()
        };
        let nothing = format!(
            "nothing to delete: no object in namespace {} (or cluster-wide) was created by cadvisor-setup",
            args.namespace
        );
        return Ok(ui.report(&report(done).message(nothing)));
    }
    let steps = plan.describe();
    ui.note(format!("will {}", steps.join(", ")));
    consent(ctx, steps.len())?;

    let spinner = crate::ui::progress::spinner(ui, "deleting and waiting until gone");
    let result = uninstall(&cluster, args.namespace.as_str(), plan, args.timeout).await;
    spinner.finish_and_clear();
    let done = result?;
    Ok(ui.report(&report(done)))
}

/// Changed when something was deleted or restored.
fn report(done: Uninstalled) -> Report<Undone> {
    let changed = !done.deleted.is_empty() || !done.restored.is_empty();
    Report::new(ExitCode::Success, Undone(done)).changed(changed)
}

/// `uninstall`'s report body: `deleted`, `restored` and `kept` (with the reason).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Undone(Uninstalled);

impl Human for Undone {
    fn human(&self, ui: &Ui) {
        let done = &self.0;
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
        let nothing = report(Uninstalled::default());
        assert!(!nothing.is_changed());
        assert!(envelope_collisions(nothing.body()).is_empty());
        let restored = report(Uninstalled {
            restored: vec!["ServiceAccount cadvisor/cadvisor".into()],
            ..Uninstalled::default()
        });
        assert!(restored.is_changed());
        let doc = serde_json::to_value(&restored).unwrap();
        assert_eq!(doc["deleted"], serde_json::json!([]));
        assert_eq!(doc["kept"], serde_json::json!([]));
    }
}
