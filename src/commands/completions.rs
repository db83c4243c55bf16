//! `completions SHELL`: shell completions from the clap definition. With `-o json` the script is
//! the `script` field of the one JSON document, like every other command's output.

use clap::CommandFactory;
use serde::Serialize;

use super::Context;
use crate::cli::Cli;
use crate::error::ExitCode;
use crate::ui::{Human, Report, Ui};

pub fn run(ctx: &Context, shell: clap_complete::Shell) -> super::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cadvisor-setup", &mut script);
    let report = Report::new(
        ExitCode::Success,
        Completions {
            shell: shell.to_string(),
            script: String::from_utf8_lossy(&script).into_owned(),
        },
    );
    Ok(ctx.ui.report(&report))
}

/// `completions`' report body: the script, printed as it is for people.
#[derive(Debug, Serialize)]
pub struct Completions {
    shell: String,
    script: String,
}

impl Human for Completions {
    fn human(&self, ui: &Ui) {
        ui.verbatim(self.script.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::report::envelope_collisions;

    #[test]
    fn the_body_is_apart_from_the_envelope() {
        let body = Completions {
            shell: "bash".into(),
            script: "complete -F _cadvisor-setup cadvisor-setup".into(),
        };
        assert!(envelope_collisions(&body).is_empty());
    }
}
