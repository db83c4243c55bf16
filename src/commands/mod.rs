//! One file per subcommand; each wires the stages together. Only this module knows their order.

pub mod completions;
pub mod connect;
pub mod detect;
pub mod install;
pub mod render;
pub mod status;
pub mod uninstall;
pub mod verify;
pub mod verify_cluster;

use clap::Parser;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{ExitCode, exit_code_of};
use crate::host::HostRoot;
use crate::ui::Ui;

/// What every command gets: the global flags, the terminal context and the host root.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
    pub host_root: HostRoot,
}

/// Parses the command line, runs the command and turns the outcome into an exit status.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let ui = Ui::from_env(cli.global.output, cli.global.verbose);
    let code = match run(cli, ui.clone()) {
        Ok(code) => code,
        Err(err) => {
            let code = exit_code_of(&err);
            report_error(&ui, &err, code);
            code
        }
    };
    std::process::ExitCode::from(code.code())
}

fn run(cli: Cli, ui: Ui) -> anyhow::Result<ExitCode> {
    let host_root = match &cli.global.host_root {
        Some(dir) => HostRoot::new(dir)?,
        None => HostRoot::system(),
    };
    let ctx = Context {
        global: cli.global,
        ui,
        host_root,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Detect(args) => detect::run(&ctx, args).await,
            Command::Render(args) => render::run(&ctx, args).await,
            Command::Install(args) => install::run(&ctx, args).await,
            Command::Verify(args) => verify::run(&ctx, args).await,
            Command::Status(args) => status::run(&ctx, args).await,
            Command::Uninstall(args) => uninstall::run(&ctx, args).await,
            Command::Completions { shell } => completions::run(shell),
        }
    })
}

/// Logs go to stderr; `-vv` shows debug logs (kube logs through tracing), `RUST_LOG` overrides.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
        2 => "cadvisor_setup=debug,info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// `error: <what>` then each cause on its own line; in JSON mode also one JSON document.
fn report_error(ui: &Ui, err: &anyhow::Error, code: ExitCode) {
    if ui.json() {
        let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
        ui.emit_json(&serde_json::json!({
            "ok": false,
            "changed": false,
            "exit_code": code.code(),
            "error": err.to_string(),
            "causes": causes,
        }));
    }
    ui.note(format!("{} {err}", ui.bad("error:")));
    for cause in err.chain().skip(1) {
        ui.note(format!("  caused by: {cause}"));
    }
}
