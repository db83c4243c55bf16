//! The outcome of a command, for people and for automation, from one value.
//!
//! A command builds one [`Report`]: the envelope every `-o json` document shares (`ok`,
//! `changed`, `exit_code`, `message`) around the command's own body, and hands it to
//! [`Ui::report`], which prints either exactly one JSON document on stdout (the `-o json` contract) or the
//! body for people through its [`Human`] impl. Both come from the same value, so they cannot
//! drift, and the envelope is serialised in one place.
//!
//! The body is flattened (`#[serde(flatten)]`) so each command's fields stay at the top level of
//! the document, where tests, the Ansible role (`changed`) and users read them. A body must not
//! have fields named like the envelope's: [`envelope_collisions`] checks it, and each command's
//! tests call it.
//!
//! For people: a summary `message` of a successful report is printed first (a headline, see
//! [`Human::summary`]); the body follows; the `message` of a failed report comes last as `error: …` on stderr, followed by
//! [`Human::error_details`]. The `error:` line is printed in both modes, since stderr is for
//! people and stdout stays the one JSON document.

use serde::Serialize;

use super::Ui;
use crate::error::ExitCode;

/// The fields of the envelope; no body may use them.
#[cfg(test)]
pub const ENVELOPE: [&str; 4] = ["ok", "changed", "exit_code", "message"];

/// One command's outcome: the envelope and the command's `body`.
#[derive(Debug, Clone, Serialize)]
pub struct Report<T> {
    /// `exit_code == 0`, always (it is derived, never set on its own).
    ok: bool,
    /// Whether the command changed anything (the cluster, files); Ansible's `changed_when`.
    changed: bool,
    #[serde(serialize_with = "exit_code_number")]
    exit_code: ExitCode,
    /// The error of a failed run, or a one-line summary of a successful one; omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(flatten)]
    body: T,
}

fn exit_code_number<S: serde::Serializer>(code: &ExitCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u8(code.code())
}

impl<T> Report<T> {
    /// A report that ends the process with `exit_code`; `ok` follows from it. Unchanged and
    /// without a message until [`Report::changed`] / [`Report::message`] say otherwise.
    pub fn new(exit_code: ExitCode, body: T) -> Self {
        Report {
            ok: exit_code == ExitCode::Success,
            changed: false,
            exit_code,
            message: None,
            body,
        }
    }

    pub fn changed(mut self, changed: bool) -> Self {
        self.changed = changed;
        self
    }

    /// The error (failed report) or the summary (successful one); `None` omits it.
    pub fn message(mut self, message: impl Into<Option<String>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    pub fn is_changed(&self) -> bool {
        self.changed
    }

    pub fn exit_code(&self) -> ExitCode {
        self.exit_code
    }

    pub fn message_text(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn body(&self) -> &T {
        &self.body
    }
}

/// How a report's body reads for people.
pub trait Human {
    /// The body on stdout through [`Ui::line`] (notes, such as warnings, on stderr through
    /// [`Ui::note`]). Called only for human output.
    fn human(&self, ui: &Ui);

    /// Prints the summary `message` of a successful report, before the body: a line on stdout
    /// by default; a body whose stdout is data (render's YAML) puts it on stderr instead.
    fn summary(&self, ui: &Ui, summary: &str) {
        ui.line(summary);
    }

    /// Lines under the `error: <message>` line of a failed report (on stderr, both modes), e.g.
    /// an error's causes. None by default.
    fn error_details(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Ui {
    /// Prints `report`: one JSON document with `-o json`, otherwise its body for people (see
    /// the module documentation for where the message goes). Returns the exit code to end with.
    pub fn report<T: Serialize + Human>(&self, report: &Report<T>) -> ExitCode {
        let code = if self.json() {
            self.report_json(report)
        } else {
            if report.ok
                && let Some(summary) = &report.message
            {
                report.body.summary(self, summary);
            }
            report.body.human(self);
            report.exit_code
        };
        if !report.ok
            && let Some(error) = &report.message
        {
            self.note(format!("{} {error}", self.bad("error:")));
            for line in report.body.error_details() {
                self.note(format!("  {line}"));
            }
        }
        code
    }

    /// Prints `report` as one JSON document on stdout, whatever the output format (for a
    /// command line clap refused, whose message clap prints itself). Returns the exit code to
    /// end with: [`ExitCode::Unexpected`] if the report cannot be serialised, in which case the
    /// document says so (still one document with the envelope).
    pub fn report_json<T: Serialize>(&self, report: &Report<T>) -> ExitCode {
        let (text, code) = match serde_json::to_string_pretty(report) {
            Ok(text) => (text, report.exit_code),
            Err(e) => {
                let message = format!("cannot serialise the report: {e}");
                self.note(format!("{} {message}", self.bad("error:")));
                let fallback = Report::new(ExitCode::Unexpected, serde_json::Map::new())
                    .changed(report.changed)
                    .message(message);
                let text = serde_json::to_string_pretty(&fallback).unwrap_or_else(|_| {
                    r#"{"ok": false, "changed": false, "exit_code": 1}"#.to_string()
                });
                (text, ExitCode::Unexpected)
            }
        };
        super::write_stdout(format!("{text}\n").as_bytes());
        code
    }
}

/// The envelope's field names that `body` also serialises at the top level (empty when none):
/// with `#[serde(flatten)]` such a field would appear twice in the document.
#[cfg(test)]
pub fn envelope_collisions<T: Serialize>(body: &T) -> Vec<String> {
    match serde_json::to_value(body) {
        Ok(serde_json::Value::Object(map)) => ENVELOPE
            .iter()
            .filter(|k| map.contains_key(**k))
            .map(|k| k.to_string())
            .collect(),
        Ok(_) => vec!["<body is not a JSON object>".to_string()],
        Err(e) => vec![format!("<body does not serialise: {e}>")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        items: Vec<&'static str>,
    }

    #[test]
    fn the_envelope_and_the_flattened_body_are_one_object() {
        let report = Report::new(ExitCode::Success, Body { items: vec!["a"] }).changed(true);
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"ok": true, "changed": true, "exit_code": 0, "items": ["a"]})
        );
    }

    #[test]
    fn ok_follows_the_exit_code_and_the_message_is_omitted_when_none() {
        let report = Report::new(ExitCode::Detection, Body { items: vec![] })
            .message("nothing answered".to_string());
        let doc = serde_json::to_value(&report).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["message"], "nothing answered");
        let quiet =
            serde_json::to_value(Report::new(ExitCode::Success, Body { items: vec![] })).unwrap();
        assert!(quiet.get("message").is_none(), "{quiet}");
    }

    #[test]
    fn collisions_with_the_envelope_are_found() {
        assert!(envelope_collisions(&Body { items: vec![] }).is_empty());
        let bad = serde_json::json!({"ok": 1, "message": "x", "other": 2});
        assert_eq!(envelope_collisions(&bad), vec!["ok", "message"]);
        assert_eq!(envelope_collisions(&3), vec!["<body is not a JSON object>"]);
    }
}
