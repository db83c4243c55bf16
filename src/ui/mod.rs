//! The only module that talks to the terminal: prompts, progress, reports.
//!
//! [`Ui`] is the one context that knows whether stdin/stderr are terminals, whether colour is
//! allowed and which output format was asked for (rustup's `Process` idea), so the interactive
//! and unattended paths are both testable.
//!
//! Everything printed for people goes through [`Ui::line`] or [`Ui::note`], which escape control
//! characters from whatever the text holds (host files, the cluster, metrics): see [`escape`].
//! A command's outcome is one [`Report`], printed by [`Ui::report`] as JSON or for people.

pub mod escape;
pub mod interrupt;
pub mod progress;
pub mod prompts;
pub mod report;

pub use report::{Human, Report};

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

/// The first failed write to stdout (a full disk, a reader that went away): then the output did
/// not all arrive, and the command must not end as a success ([`finish_stdout`]).
static STDOUT_FAILURE: OnceLock<(std::io::ErrorKind, String)> = OnceLock::new();

/// Writes `bytes` to stdout, noting a failure for [`finish_stdout`].
pub(crate) fn write_stdout(bytes: &[u8]) {
    if let Err(e) = std::io::stdout().lock().write_all(bytes) {
        let _ = STDOUT_FAILURE.set((e.kind(), e.to_string()));
    }
}

/// Flushes stdout; the first write to it that failed, if any, as the error. `render > FILE` on
/// a full disk used to end with exit 0 and a cut file.
pub fn finish_stdout() -> std::io::Result<()> {
    if let Err(e) = std::io::stdout().lock().flush() {
        let _ = STDOUT_FAILURE.set((e.kind(), e.to_string()));
    }
    match STDOUT_FAILURE.get() {
        Some((kind, text)) => Err(std::io::Error::new(*kind, text.clone())),
        None => Ok(()),
    }
}

use crate::cli::OutputFormat;

#[derive(Debug, Clone)]
pub struct Ui {
    pub format: OutputFormat,
    pub color: bool,
    pub stdin_is_terminal: bool,
    pub stderr_is_terminal: bool,
    pub verbose: u8,
}

impl Ui {
    pub fn from_env(format: OutputFormat, verbose: u8) -> Self {
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let stdout_is_terminal = std::io::stdout().is_terminal();
        // https://no-color.org: any non-empty NO_COLOR disables colour.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            format,
            color: !no_color && stdout_is_terminal && format == OutputFormat::Human,
            stdin_is_terminal: std::io::stdin().is_terminal(),
            stderr_is_terminal,
            verbose,
        }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A person is there to answer prompts.
    pub fn interactive(&self) -> bool {
        self.stdin_is_terminal && self.stderr_is_terminal
    }

    /// Human output on stdout (nothing in JSON mode).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json() {
            let shown = escape::for_terminal(text.as_ref());
            write_stdout(format!("{shown}\n").as_bytes());
        }
    }

    /// Output for people that must pass byte for byte (a generated completion script: escaping
    /// would change it), on stdout; nothing in JSON mode.
    pub fn verbatim(&self, text: &[u8]) {
        if !self.json() {
            write_stdout(text);
        }
    }

    /// Notes for people on stderr (both modes: stdout stays clean for JSON).
    pub fn note(&self, text: impl AsRef<str>) {
        let shown = escape::for_terminal(text.as_ref());
        let _ = writeln!(std::io::stderr().lock(), "{shown}");
    }

    /// `warning: text` on stderr, the prefix styled.
    pub fn warning(&self, text: impl std::fmt::Display) {
        self.note(format!("{} {text}", self.warn("warning:")));
    }

    /// Details shown with `-v`.
    pub fn verbose(&self, text: impl AsRef<str>) {
        if self.verbose > 0 {
            self.note(text);
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.style(text, console::Style::new().bold())
    }

    pub fn good(&self, text: &str) -> String {
        self.style(text, console::Style::new().green())
    }

    pub fn bad(&self, text: &str) -> String {
        self.style(text, console::Style::new().red().bold())
    }

    pub fn warn(&self, text: &str) -> String {
        self.style(text, console::Style::new().yellow())
    }

    pub fn dim(&self, text: &str) -> String {
        self.style(text, console::Style::new().dim())
    }

    /// `text` styled when colour is on. The text is escaped first and the styling's own ESCs
    /// are marked, so only [`Ui::line`]/[`Ui::note`] turn them into real ones (see [`escape`]).
    fn style(&self, text: &str, style: console::Style) -> String {
        if self.color {
            let styled = style
                .force_styling(true)
                .apply_to(escape::escape_controls(text))
                .to_string();
            escape::mark_styling(&styled)
        } else {
            text.to_string()
        }
    }
}
