//! One file per subcommand; each wires the stages together. Only this module knows their order.

pub mod completions;
pub mod connect;
pub mod detect;
pub mod error;
pub mod groups;
pub mod install;
pub mod render;
pub mod status;
pub mod uninstall;
pub mod verify;

use clap::{CommandFactory, FromArgMatches};

pub use error::{Error, Result};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::ExitCode;
use crate::host::{HostRoot, isolated};
use crate::options::Answers;
use crate::settings::{self, KubeconfigPath};
use crate::ui::{Human, Report, Ui};

/// What every command gets: the global flags, the terminal context and the host root.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
    pub host_root: HostRoot,
}

/// One command with its validated settings (built before any I/O but reading `--config`).
enum Job {
    Detect(settings::DetectSettings),
    Render(settings::RenderSettings),
    Install(settings::InstallSettings),
    Verify(settings::VerifySettings),
    Status(settings::StatusSettings),
    Uninstall(settings::UninstallSettings),
    Completions(clap_complete::Shell),
}

impl Job {
    /// Flags, environment and answers file → this command's settings; every bad value is an
    /// error here (exit 2), before anything is probed or contacted.
    fn settle(command: Command, matches: &clap::ArgMatches, answers: &Answers) -> Result<Job> {
        Ok(match command {
            Command::Detect(args) => Job::Detect(settings::detect(&args, matches, answers)?),
            Command::Render(args) => Job::Render(settings::render(&args, matches, answers)?),
            Command::Install(args) => Job::Install(settings::install(&args, matches, answers)?),
            Command::Verify(args) => Job::Verify(settings::verify(&args, matches, answers)?),
            Command::Status(args) => Job::Status(settings::status(&args, matches, answers)?),
            Command::Uninstall(args) => {
                Job::Uninstall(settings::uninstall(&args, matches, answers)?)
            }
            Command::Completions { shell } => Job::Completions(shell),
        })
    }

    /// `name = value (source)` for `-v`.
    fn describe(&self) -> Vec<String> {
        match self {
            Job::Detect(s) => s.describe.clone(),
            Job::Render(s) => s.resolved.describe(),
            Job::Install(s) => {
                let mut lines = s.resolved.describe();
                lines.extend(s.describe.iter().cloned());
                lines
            }
            Job::Verify(s) => s.describe.clone(),
            Job::Status(s) => s.describe.clone(),
            Job::Uninstall(s) => s.describe.clone(),
            Job::Completions(_) => Vec::new(),
        }
    }
}

/// Parses the command line, runs the command and turns the outcome into an exit status.
pub fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    // This binary run by itself for the host-facts phase (`host::isolated`), before clap.
    if first.as_deref() == Some(std::ffi::OsStr::new(isolated::CHILD_ARG)) {
        return isolated::child_main();
    }
    if first.is_some_and(|a| a == crate::cluster::exec_shim::ARG) {
        return crate::cluster::exec_shim::run(args.collect());
    }
    if let Ok(exe) = std::env::current_exe() {
        crate::cluster::exec_shim::enable(exe);
    }
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
    let mut code = match run(cli, matches, ui.clone()) {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            report_error(&ui, &err, code);
            code
        }
    };
    // Output that did not all arrive is not a success, whatever the command did.
    if let Err(e) = crate::ui::finish_stdout() {
        // A reader that went away (`| head`) chose to: no message, as a SIGPIPE would be.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            ui.note(format!(
                "error: could not write the output to stdout ({e}): it is incomplete"
            ));
        }
        if code == ExitCode::Success {
            code = ExitCode::Unexpected;
        }
    }
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
    if shows_text {
        err.exit()
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let from_env = from_environment(&err, &args, |name| std::env::var_os(name).is_some());
    if !wants_json(
        args.iter().cloned(),
        std::env::var("CADVISOR_SETUP_OUTPUT").ok(),
    ) {
        let _ = err.print();
        if let Some(note) = &from_env {
            eprintln!("{note}");
        }
        return std::process::ExitCode::from(ExitCode::Usage.code());
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let message = match &from_env {
        Some(note) => format!("{message} ({})", note.trim_start_matches("note: ")),
        None => message.to_string(),
    };
    // The JSON document only: clap prints its own message (with usage) for people below.
    let report =
        Report::new(ExitCode::Usage, Failed::new(message.clone(), Vec::new())).message(message);
    Ui::from_env(crate::cli::OutputFormat::Json, 0).report_json(&report);
    let _ = err.print();
    if let Some(note) = &from_env {
        eprintln!("{note}");
    }
    std::process::ExitCode::from(ExitCode::Usage.code())
}

/// For a conflict clap reports between two flags, the one the user did not type but set
/// through its environment variable: clap names only the flag (`the argument '--no-cluster'
/// cannot be used with '--cluster'`), which then looks like a flag nobody gave.
fn from_environment(
    err: &clap::Error,
    args: &[String],
    is_set: impl Fn(&str) -> bool,
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    // A conflict, or a value that is empty or invalid (`CADVISOR_SETUP_OUTPUT=` exported empty):
    // clap names only the flag, which looks like one nobody typed.
    let conflict = err.kind() == ErrorKind::ArgumentConflict;
    if !conflict && err.kind() != ErrorKind::InvalidValue {
        return None;
    }
    let mut named = Vec::new();
    for kind in [ContextKind::InvalidArg, ContextKind::PriorArg] {
        match err.get(kind) {
            Some(ContextValue::String(s)) => named.push(s.clone()),
            Some(ContextValue::Strings(v)) => named.extend(v.iter().cloned()),
            _ => {}
        }
    }
    let command = Cli::command();
    let mut commands = vec![&command];
    commands.extend(command.get_subcommands());
    let notes: Vec<String> = named
        .iter()
        .filter_map(|shown| {
            let long = shown.split_whitespace().next()?.strip_prefix("--")?;
            let typed = args
                .iter()
                .any(|a| a.strip_prefix("--").and_then(|a| a.split('=').next()) == Some(long));
            let env = commands
                .iter()
                .flat_map(|c| c.get_arguments())
                .find(|a| a.get_long() == Some(long))?
                .get_env()?
                .to_string_lossy()
                .into_owned();
            (!typed && is_set(&env))
                .then(|| format!("--{long} comes from {env} in the environment"))
        })
        .collect();
    let then = if conflict {
        "unset it to use the flag you typed"
    } else {
        "give it a valid value or unset it"
    };
    (!notes.is_empty()).then(|| format!("note: {}; {then}", notes.join(", ")))
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

fn run(cli: Cli, matches: clap::ArgMatches, ui: Ui) -> Result<ExitCode> {
    // Low → high args: the answers file, the kubeconfig flag and every value are checked before
    // the host root is read, a socket probed or the API server contacted.
    let answers = match &cli.global.config {
        Some(path) => Answers::load(path)?,
        None => Answers::default(),
    };
    if let Some(path) = &cli.global.kubeconfig {
        KubeconfigPath::parse(path)?;
    }
    let job = Job::settle(cli.command, &matches, &answers)?;
    let lines = job.describe();
    if !lines.is_empty() {
        ui.verbose("values:");
    }
    for line in lines {
        ui.verbose(format!("  {line}"));
    }
    let host_root = match &cli.global.host_root {
        Some(dir) => HostRoot::new(dir)?,
        None => HostRoot::new(crate::host::root::default_host_root(|k| {
            std::env::var_os(k)
        }))?,
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
        match job {
            Job::Detect(s) => detect::run(&ctx, s).await,
            Job::Render(s) => render::run(&ctx, s).await,
            Job::Install(s) => install::run(&ctx, s).await,
            Job::Verify(s) => verify::run(&ctx, s).await,
            Job::Status(s) => status::run(&ctx, s).await,
            Job::Uninstall(s) => uninstall::run(&ctx, s).await,
            Job::Completions(shell) => completions::run(&ctx, shell),
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

/// `error: <what>` then each cause on its own line (stderr); in JSON mode also one JSON document.
fn report_error(ui: &Ui, err: &Error, code: ExitCode) {
    // Our error types print their source inline ("cannot read X: <os error>"); show a cause on
    // its own line only when it adds something.
    let mut causes: Vec<String> = Vec::new();
    let mut shown = err.to_string();
    for cause in std::iter::successors(std::error::Error::source(err), |e| e.source()) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            shown.push_str(&text);
            causes.push(text);
        }
    }
    let message = err.to_string();
    ui.report(&Report::new(code, Failed::new(message.clone(), causes)).message(message));
}

/// The body of a failed command's report: `error` (the same text as the envelope's `message`,
/// kept because automation reads it) and the causes under it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failed {
    pub error: String,
    pub causes: Vec<String>,
}

impl Failed {
    pub fn new(error: String, causes: Vec<String>) -> Self {
        Failed { error, causes }
    }
}

impl Human for Failed {
    /// Nothing on stdout: the error and its causes are the `error:` lines on stderr.
    fn human(&self, _ui: &Ui) {}

    fn error_details(&self) -> Vec<String> {
        self.causes
            .iter()
            .map(|c| format!("caused by: {c}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{ExitCode, Failed, Report, wants_json};
    use crate::ui::report::envelope_collisions;

    #[test]
    fn a_failure_is_one_document_with_error_and_causes() {
        let body = Failed::new("cannot reach".into(), vec!["refused".into()]);
        assert!(envelope_collisions(&body).is_empty());
        let doc = serde_json::to_value(
            Report::new(ExitCode::Cluster, body).message("cannot reach".to_string()),
        )
        .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"ok": false, "changed": false, "exit_code": 4,
                "message": "cannot reach", "error": "cannot reach", "causes": ["refused"]})
        );
    }

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
