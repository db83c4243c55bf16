//! Nothing read from a host file, the cluster or a metrics scrape can drive the terminal.
//!
//! A `snap.yaml` version, a pod name in a scrape or an error message from the API server may
//! hold escape sequences (`ESC ] 0 ; title BEL`, `ESC [ 2 J`, OSC 8 links, ...). Rather than
//! trusting every call site to escape what it formats, the escaping happens where text leaves
//! the program: [`super::Ui::line`] and [`super::Ui::note`] (and so `verbose`) pass every string
//! through [`for_terminal`], which makes each control character visible (`\x1b`, `\u{9b}`).
//! No call site can forget it, because there is no other way to print human output.
//!
//! Our own colours are the one exception, and they cannot be forged: [`super::Ui`]'s styling
//! functions first escape the text they are given, then let `console` style it, then replace
//! each ESC of the styling with a marker made of a private-use character and a random
//! per-process nonce. [`for_terminal`] escapes everything else and only then turns the markers
//! back into ESC. A value that contains the marker character but not the nonce (which it cannot
//! know) stays visible text. JSON output is escaped by `serde_json` and does not come here.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A private-use character (Unicode: U+E000..U+F8FF are never assigned) starting each marker.
const MARK: char = '\u{E000}';

/// `MARK` + 16 hex digits, random per process (std's `RandomState` is seeded from the OS).
fn marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        format!("{MARK}{:016x}", h.finish())
    })
}

/// Does `c` have to be shown escaped? C0 controls except newline and tab, DEL, C1 controls
/// (U+0080..U+009F: U+009B is a one-character CSI on some terminals), and the Unicode
/// bidirectional overrides and isolates that reorder what is shown (CVE-2021-42574).
pub fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a visible escape (`\x1b`, `\r`, `\u{9b}`).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
            continue;
        }
        match c {
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Our own styled text: every ESC (from `console`) becomes the marker. The caller has escaped
/// the text inside already.
pub fn mark_styling(styled: &str) -> String {
    styled.replace('\u{1b}', marker())
}

/// What may be written to the terminal: every control character escaped, then our styling
/// markers turned back into ESC.
pub fn for_terminal(text: &str) -> String {
    let escaped = escape_controls(text);
    if escaped.contains(MARK) {
        escaped.replace(marker(), "\u{1b}")
    } else {
        escaped.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        let hostile = "v1\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m\u{7f}\u{202e}";
        let shown = for_terminal(hostile);
        assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        assert_eq!(
            shown,
            "v1\\x1b]0;pwned\\x07\\x1b[2J\\r\\u{9b}31m\\x7f\\u{202e}"
        );
        assert_eq!(for_terminal("a\n\tb"), "a\n\tb");
    }

    #[test]
    fn only_our_markers_become_escapes() {
        let ours = mark_styling("\u{1b}[31mFAIL\u{1b}[0m");
        let forged = format!("{MARK}0000000000000000[2J");
        let shown = for_terminal(&format!("{ours} {forged} \u{1b}[2J"));
        assert_eq!(
            shown,
            format!("\u{1b}[31mFAIL\u{1b}[0m {forged} \\x1b[2J"),
            "{shown:?}"
        );
    }
}
