//! The interactive conversation (dialoguer, on stderr): pick a socket when detection is
//! ambiguous, confirm or change the plan's main choices, confirm before anything is applied.
//!
//! Only values nobody gave (no flag, environment variable or answers-file key) are asked; the
//! others are shown with their source. Unattended runs (`--yes`) never reach this module.

use std::path::PathBuf;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};

use super::Ui;
use super::interrupt::PromptGuard;
use crate::cli::ServiceMonitorMode;
use crate::host::SocketCandidate;
use crate::options::{Resolved, ValueSource};

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cancelled at the prompt; nothing was applied")]
    Cancelled,
    /// An answer the prompt's own check let through but its type refuses (not expected).
    #[error(transparent)]
    Invalid(#[from] crate::plan::PlanError),
    #[error("cannot talk to the terminal: {0}")]
    Terminal(String),
}

fn map_err(err: dialoguer::Error) -> PromptError {
    match err {
        dialoguer::Error::IO(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            PromptError::Cancelled
        }
        dialoguer::Error::IO(e) => PromptError::Terminal(e.to_string()),
    }
}

/// Runs one dialoguer interaction under a [`PromptGuard`]: Ctrl-C (or a SIGINT) is
/// [`PromptError::Cancelled`] with the cursor shown again, instead of death by SIGINT.
fn guarded<T>(interact: impl FnOnce() -> dialoguer::Result<T>) -> Result<T, PromptError> {
    let guard = PromptGuard::new();
    let result = interact().map_err(map_err);
    if guard.interrupted() {
        return Err(PromptError::Cancelled);
    }
    result
}

fn theme(ui: &Ui) -> Box<dyn dialoguer::theme::Theme> {
    if ui.color {
        Box::new(ColorfulTheme::default())
    } else {
        Box::new(dialoguer::theme::SimpleTheme)
    }
}

/// Lets the user pick one of the live sockets. `None` when they choose none.
pub fn select_socket(
    ui: &Ui,
    candidates: &[SocketCandidate],
) -> Result<Option<PathBuf>, PromptError> {
    let live: Vec<&SocketCandidate> = candidates
        .iter()
        .filter(|c| c.probe.version.is_some())
        .collect();
    if live.is_empty() {
        return Ok(None);
    }
    let items: Vec<String> = live
        .iter()
        .map(|c| {
            let pods = c
                .probe
                .kubernetes_containers
                .map(|n| format!("{n} kubelet containers"))
                .unwrap_or_else(|| "no kubelet containers".to_string());
            // dialoguer prints items as they are: escape what came from host files.
            let item = format!("{}  ({}; {})", c.path.display(), c.origin, pods);
            super::escape::escape_controls(&item).into_owned()
        })
        .collect();
    let choice = select_or_none(
        ui,
        "Several containerd sockets answer. Which one runs this node's pods?",
        items,
        "none of these (stop)",
    )?;
    Ok(choice.map(|i| live[i].path.clone()))
}

/// A choice list of `items` and a last `none` item; the index chosen, `None` for `none` or Esc.
fn select_or_none(
    ui: &Ui,
    prompt: &str,
    mut items: Vec<String>,
    none: &str,
) -> Result<Option<usize>, PromptError> {
    let count = items.len();
    items.push(none.to_string());
    let theme = theme(ui);
    let choice = guarded(|| {
        Select::with_theme(theme.as_ref())
            .with_prompt(prompt)
            .items(&items)
            .default(0)
            .interact_opt()
    })?;
    Ok(choice.filter(|i| *i < count))
}

/// Several Prometheus found: which one should scrape cAdvisor (`None`: none of them).
pub fn select_prometheus(ui: &Ui, ids: &[String]) -> Result<Option<usize>, PromptError> {
    let items = ids
        .iter()
        .map(|id| super::escape::escape_controls(id).into_owned())
        .collect();
    select_or_none(
        ui,
        "Several Prometheus instances run here. Which one should scrape cAdvisor?",
        items,
        "none of them (no Prometheus integration)",
    )
}

/// Asks for the values nobody gave, with the detected defaults pre-filled.
pub fn ask_plan(ui: &Ui, resolved: &mut Resolved) -> Result<(), PromptError> {
    let theme = theme(ui);
    let theme = theme.as_ref();
    let given = |r: &Resolved, name: &str| r.source(name) != ValueSource::Default;

    if given(resolved, "namespace") {
        show(ui, resolved, "namespace", &resolved.plan.namespace);
    } else {
        let value = text(
            theme,
            "Namespace for cAdvisor",
            resolved.plan.namespace.to_string(),
            |v| crate::values::Namespace::parse("namespace", v),
        )?;
        set(resolved, "namespace", |r| r.plan.namespace = value);
    }

    if given(resolved, "image") {
        show(ui, resolved, "image", &resolved.plan.image);
    } else {
        let value = text(
            theme,
            "cAdvisor image (change it for a private registry)",
            resolved.plan.image.to_string(),
            |v| crate::values::Image::parse("image", v),
        )?;
        set(resolved, "image", |r| r.plan.image = value);
    }

    let metrics = resolved.plan.metrics.as_ref();
    let metrics = metrics.map(|m| crate::values::join(m, ","));
    if given(resolved, "metrics") {
        show(ui, resolved, "metrics", metrics.unwrap_or_default());
    } else {
        let default = metrics.unwrap_or_else(|| crate::plan::DEFAULT_METRICS.join(","));
        let list = text(theme, "Metric groups (comma-separated)", default, |v| {
            let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
            crate::values::parse_all("metrics", &list, crate::values::MetricGroup::parse)
        })?;
        set(resolved, "metrics", |r| r.plan.metrics = Some(list));
    }

    if given(resolved, "privileged") {
        show(ui, resolved, "privileged", resolved.plan.privileged);
    } else {
        let value = guarded(|| {
            Confirm::with_theme(theme)
                .with_prompt("Run cAdvisor privileged, with /dev/kmsg for OOM events?")
                .default(resolved.plan.privileged)
                .interact()
        })?;
        set(resolved, "privileged", |r| r.plan.privileged = value);
    }

    if given(resolved, "service-monitor") {
        let mode = format!("{:?}", resolved.service_monitor).to_lowercase();
        show(ui, resolved, "service-monitor", mode);
    } else {
        let modes = [
            ServiceMonitorMode::Auto,
            ServiceMonitorMode::Always,
            ServiceMonitorMode::Never,
        ];
        let items = [
            "auto: when the Prometheus Operator's CRD exists",
            "always",
            "never",
        ];
        let default = modes
            .iter()
            .position(|m| *m == resolved.service_monitor)
            .unwrap_or(0);
        let choice = guarded(|| {
            Select::with_theme(theme)
                .with_prompt("Prometheus Operator ServiceMonitor")
                .items(items)
                .default(default)
                .interact()
        })?;
        let mode = modes[choice.min(modes.len() - 1)];
        set(resolved, "service-monitor", |r| {
            r.service_monitor = mode;
            r.plan.service_monitor = mode == ServiceMonitorMode::Always;
        });
    }
    Ok(())
}

/// What to do with the plan: apply it, show the YAML first, or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanDecision {
    Apply,
    ShowYaml,
    Cancel,
}

pub fn confirm_plan(ui: &Ui, question: &str) -> Result<PlanDecision, PromptError> {
    let theme = theme(ui);
    let items = ["Apply", "Show the YAML first", "Cancel (apply nothing)"];
    let choice = guarded(|| {
        Select::with_theme(theme.as_ref())
            .with_prompt(super::escape::escape_controls(question))
            .items(items)
            .default(0)
            .interact_opt()
    })?;
    Ok(match choice {
        Some(0) => PlanDecision::Apply,
        Some(1) => PlanDecision::ShowYaml,
        _ => PlanDecision::Cancel,
    })
}

/// A yes/no question; `default` is what Enter means.
pub fn confirm(ui: &Ui, question: &str, default: bool) -> Result<bool, PromptError> {
    let theme = theme(ui);
    guarded(|| {
        Confirm::with_theme(theme.as_ref())
            .with_prompt(super::escape::escape_controls(question))
            .default(default)
            .interact_opt()
    })
    .map(|answer| answer.unwrap_or(false))
}

/// A line of text, `parse`d as it is typed (what it refuses is said under the prompt).
fn text<T>(
    theme: &dyn dialoguer::theme::Theme,
    prompt: &str,
    default: String,
    parse: impl Fn(&str) -> Result<T, crate::plan::PlanError>,
) -> Result<T, PromptError> {
    let answer: String = guarded(|| {
        Input::with_theme(theme)
            .with_prompt(prompt)
            .default(default)
            .validate_with(|v: &String| parse(v).map(drop).map_err(|e| e.to_string()))
            .interact_text()
    })?;
    Ok(parse(&answer)?)
}

fn show(ui: &Ui, resolved: &Resolved, name: &str, value: impl std::fmt::Display) {
    ui.note(format!(
        "  {name}: {value} {}",
        ui.dim(&format!("(from {})", resolved.source(name)))
    ));
}

fn set(resolved: &mut Resolved, name: &'static str, apply: impl FnOnce(&mut Resolved)) {
    apply(resolved);
    resolved.sources.insert(name, ValueSource::Prompt);
}
