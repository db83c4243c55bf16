//! One file per subcommand; each wires the stages together. Only this module knows their order.

pub mod completions;
pub mod connect;
pub mod detect;
pub mod install;
pub mod render;
pub mod status;
pub mod uninstall;
pub mod verify;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, GlobalArgs, PlanArgs, SocketArgs};
use crate::error::{ExitCode, exit_code_of};
use crate::host::HostRoot;
use crate::options::{Answers, Resolved};
use crate::ui::Ui;

/// What every command gets: the global flags, the terminal context and the host root.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
    pub host_root: HostRoot,
    /// The parsed command line, to tell a flag from its environment variable.
    pub matches: clap::ArgMatches,
    /// `--config answers.yaml`, empty when not given.
    pub answers: Answers,
}

impl Context {
    /// Plan options by precedence flag > env > answers file > default.
    pub fn resolve(&self, plan: &PlanArgs, socket: &SocketArgs) -> Resolved {
        let resolved = crate::options::resolve(
            plan,
            socket.containerd_socket.as_ref(),
            &self.matches,
            &self.answers,
        );
        for line in resolved.describe() {
            self.ui.verbose(format!("  {line}"));
        }
        resolved
    }
}

/// Parses the command line, runs the command and turns the outcome into an exit status.
pub fn main() -> std::process::ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => return parse_error(err),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return parse_error(err),
    };
    init_logging(cli.global.verbose);
    let ui = Ui::from_env(cli.global.output, cli.global.verbose);
    let code = match run(cli, matches, ui.clone()) {
        Ok(code) => code,
        Err(err) => {
            let code = exit_code_of(&err);
            report_error(&ui, &err, code);
            code
        }
    };
    std::process::ExitCode::from(code.code())
}

/// A command line clap refuses: its message on stderr, exit 2; with `-o json` also one JSON
/// document on stdout, so automation always gets one (help and version print as usual).
fn parse_error(err: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let shows_text = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if shows_text
        || !wants_json(
            std::env::args().skip(1),
            std::env::var("CADVISOR_SETUP_OUTPUT").ok(),
        )
    {
        err.exit()
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    Ui::from_env(crate::cli::OutputFormat::Json, 0).emit_json(&serde_json::json!({
        "ok": false,
        "changed": false,
        "exit_code": ExitCode::Usage.code(),
        "error": message,
    }));
    let _ = err.print();
    std::process::ExitCode::from(ExitCode::Usage.code())
}

/// `-o json`, `-ojson`, `--output json`, `--output=json` or `CADVISOR_SETUP_OUTPUT=json`, read
/// from the raw arguments because clap could not parse them.
fn wants_json(args: impl Iterator<Item = String>, env: Option<String>) -> bool {
    let mut wants = env.is_some_and(|v| v == "json");
    let mut next_is_format = false;
    for arg in args {
        if next_is_format {
            wants = arg == "json";
            next_is_format = false;
        } else if arg == "-o" || arg == "--output" {
            next_is_format = true;
        } else if let Some(v) = arg
            .strip_prefix("--output=")
            .or_else(|| arg.strip_prefix("-o"))
        {
            wants = v == "json";
        }
    }
    wants
}

fn run(cli: Cli, matches: clap::ArgMatches, ui: Ui) -> anyhow::Result<ExitCode> {
    let host_root = match &cli.global.host_root {
        Some(dir) => HostRoot::new(dir)?,
        None => HostRoot::new(crate::host::root::default_host_root(|k| {
            std::env::var_os(k)
        }))?,
    };
    let answers = match &cli.global.config {
        Some(path) => Answers::load(path)?,
        None => Answers::default(),
    };
    if let Some(path) = &cli.global.kubeconfig {
        crate::options::check_kubeconfig_flag(path)?;
    }
    let ctx = Context {
        global: cli.global,
        ui,
        host_root,
        matches,
        answers,
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
            Command::Completions { shell } => completions::run(&ctx, shell),
        }
    })
}

/// Logs go to stderr; `-vv` shows debug logs (kube logs through tracing), `RUST_LOG` overrides.
/// Below `-vv` kube's own logs are off: it logs `ERROR ... client error (Connect)` for a failure
/// that our error report already explains (once, with what to do).
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn,kube_client=off,kube_runtime=off,kube=off",
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
    // Our error types print their source inline ("cannot read X: <os error>"); show a cause on
    // its own line only when it adds something.
    let mut causes: Vec<String> = Vec::new();
    let mut shown = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            shown.push_str(&text);
            causes.push(text);
        }
    }
    if ui.json() {
        ui.emit_json(&serde_json::json!({
            "ok": false,
            "changed": false,
            "exit_code": code.code(),
            "error": err.to_string(),
            "causes": causes,
        }));
    }
    ui.note(format!("{} {err}", ui.bad("error:")));
    for cause in causes {
        ui.note(format!("  caused by: {cause}"));
    }
}

#[cfg(test)]
mod tests {
    use super::wants_json;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn json_is_recognised_in_every_spelling() {
        assert!(wants_json(args(&["status", "-o", "json", "--bad"]), None));
        assert!(wants_json(args(&["-ojson", "status"]), None));
        assert!(wants_json(args(&["--output=json"]), None));
        assert!(wants_json(args(&["--output", "json"]), None));
        assert!(wants_json(args(&["status"]), Some("json".into())));
        assert!(!wants_json(
            args(&["status", "-o", "json", "-o", "human"]),
            None
        ));
        assert!(!wants_json(args(&["status", "--bad"]), None));
    }
}
