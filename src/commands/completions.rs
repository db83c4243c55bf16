//! `completions SHELL`: shell completions from the clap definition.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::ExitCode;

pub fn run(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "cadvisor-setup", &mut std::io::stdout());
    Ok(ExitCode::Success)
}
