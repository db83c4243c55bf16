//! `completions SHELL`: shell completions from the clap definition. With `-o json` the script is
//! the `script` field of the one JSON document, like every other command's output.

use clap::CommandFactory;
use std::io::Write;

use super::Context;
use crate::cli::Cli;
use crate::error::ExitCode;

pub fn run(ctx: &Context, shell: clap_complete::Shell) -> super::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cadvisor-setup", &mut script);
    if ctx.ui.json() {
        ctx.ui.emit_json(&serde_json::json!({
            "ok": true,
            "changed": false,
            "exit_code": 0,
            "shell": shell.to_string(),
            "script": String::from_utf8_lossy(&script),
        }));
    } else {
        std::io::stdout().lock().write_all(&script)?;
    }
    Ok(ExitCode::Success)
}
