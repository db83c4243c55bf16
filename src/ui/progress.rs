//! indicatif progress, shown only on a terminal and never in JSON mode.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ui;

/// A spinner with a message (`2/3 nodes ready`), hidden when stderr is not a terminal.
pub fn spinner(ui: &Ui, message: impl Into<String>) -> ProgressBar {
    let target = if ui.stderr_is_terminal && !ui.json() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
        bar.set_style(style);
    }
    bar.set_message(super::escape::escape_controls(&message.into()).into_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
