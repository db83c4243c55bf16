//! Snapshots of the reports (`-o json` and human output): one normalising function replaces
//! what changes between runs with stable placeholders before insta compares.

use std::process::Output;

/// `output` with every volatile value replaced by a placeholder:
///
/// - `known` literals first (longest first): temp paths, the containerd version, pod names,
///   each with the placeholder the test chooses (e.g. `[HOST_ROOT]`);
/// - when `output` is a JSON document, values under volatile keys (`uid`, `resourceVersion`,
///   `creationTimestamp`, `resource_version`, `time`, `*_ms`, `*_seconds`, `elapsed`) and it
///   is pretty-printed again;
/// - in any text: other paths under `/tmp/` (`[TMP]`), ports after `127.0.0.1:` or
///   `localhost:` (`[PORT]`), UUIDs (`[UID]`), RFC 3339 times (`[TIME]`), durations such as
///   `1.25s` or `340ms` (`[DURATION]`).
pub fn normalise(output: &str, known: &[(&str, &str)]) -> String {
    let mut known: Vec<(&str, &str)> = known
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .copied()
        .collect();
    known.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut text = output.to_string();
    for (literal, placeholder) in &known {
        text = text.replace(literal, placeholder);
    }
    if let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&text) {
        volatile_keys(&mut doc);
        text = serde_json::to_string_pretty(&doc).expect("a JSON value prints");
    }
    let text = replace_after(&text, "127.0.0.1:", "[PORT]", |c| c.is_ascii_digit());
    let text = replace_after(&text, "localhost:", "[PORT]", |c| c.is_ascii_digit());
    let text = tmp_paths(&text);
    let text = uuids(&text);
    let text = times(&text);
    durations(&text)
}

/// stdout and stderr of a human run, as one snapshot (exit code first).
pub fn human(out: &Output, known: &[(&str, &str)]) -> String {
    let text = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    normalise(&text, known)
}

/// stdout of a `-o json` run, which must be one JSON document.
pub fn json(out: &Output, known: &[(&str, &str)]) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        doc["exit_code"].as_i64(),
        out.status.code().map(i64::from),
        "exit_code in the document is the process's: {doc:#}"
    );
    normalise(&stdout, known)
}

fn volatile_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let volatile = matches!(
                    key.as_str(),
                    "uid"
                        | "resourceVersion"
                        | "resource_version"
                        | "creationTimestamp"
                        | "time"
                        | "elapsed"
                ) || key.ends_with("_ms")
                    || key.ends_with("_seconds");
                if volatile && !value.is_null() {
                    *value = serde_json::Value::String(format!("[{}]", key.to_uppercase()));
                } else {
                    volatile_keys(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(volatile_keys),
        _ => {}
    }
}

/// Every `marker` followed by one or more chars matching `part`: the chars become `placeholder`.
fn replace_after(text: &str, marker: &str, placeholder: &str, part: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let after = at + marker.len();
        out.push_str(&rest[..after]);
        let tail = &rest[after..];
        let len: usize = tail
            .chars()
            .take_while(|c| part(*c))
            .map(char::len_utf8)
            .sum();
        if len > 0 {
            out.push_str(placeholder);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// `/tmp/<name>` → `[TMP]` (what follows the first component is kept).
fn tmp_paths(text: &str) -> String {
    let out = replace_after(text, "/tmp/", "\u{0}", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    });
    out.replace("/tmp/\u{0}", "[TMP]")
}

/// Replaces each match of a fixed-shape pattern: `shape` holds `9` for a digit, `x` for a hex
/// digit, anything else literally.
fn replace_shape(text: &str, shape: &str, placeholder: &str) -> String {
    let shape: Vec<char> = shape.chars().collect();
    let chars: Vec<char> = text.chars().collect();
    let fits = |i: usize| {
        i + shape.len() <= chars.len()
            && shape.iter().zip(&chars[i..]).all(|(s, c)| match s {
                '9' => c.is_ascii_digit(),
                'x' => c.is_ascii_hexdigit(),
                lit => lit == c,
            })
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if fits(i) {
            out.push_str(placeholder);
            i += shape.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn uuids(text: &str) -> String {
    replace_shape(text, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "[UID]")
}

/// `2026-11-03T10:04:05Z`, `…05.123Z`, `…05+00:00` → `[TIME]`.
fn times(text: &str) -> String {
    let marked = replace_shape(text, "9999-99-99T99:99:99", "\u{1}");
    let mut out = String::with_capacity(marked.len());
    let mut rest = marked.as_str();
    while let Some(at) = rest.find('\u{1}') {
        out.push_str(&rest[..at]);
        out.push_str("[TIME]");
        let mut tail = &rest[at + 1..];
        if let Some(frac) = tail.strip_prefix('.') {
            let n = frac.chars().take_while(char::is_ascii_digit).count();
            tail = &frac[n..];
        }
        if let Some(t) = tail.strip_prefix('Z') {
            tail = t;
        } else if tail.len() >= 6
            && (tail.starts_with('+') || tail.starts_with('-'))
            && tail.as_bytes()[3] == b':'
        {
            tail = &tail[6..];
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A number directly followed by `ms`, `µs` or `s` and then a non-letter → `[DURATION]`
/// (also a stable `60s`: simpler than telling them apart); numbers inside words or identifiers
/// (`v1`, `k3s`) are left alone.
fn durations(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && (i == 0
                || !(chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '.' | '-' | '_')));
        if starts_number {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let unit = ["ms", "µs", "s"].iter().find(|u| {
                let u: Vec<char> = u.chars().collect();
                chars.get(j..j + u.len()) == Some(&u[..])
                    && chars.get(j + u.len()).is_none_or(|c| !c.is_alphanumeric())
            });
            if let Some(unit) = unit {
                out.push_str("[DURATION]");
                i = j + unit.chars().count();
                continue;
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn volatile_values_become_placeholders() {
        let text = "root /tmp/csAb12/var/x at https://127.0.0.1:40123 uid 0e7f3a2c-1b2d-4c5e-8f90-123456789abc \
                    at 2026-11-03T10:04:05.123Z took 1.25s and 340ms; keep v1.33 k3s 0.60.5 10.1.0.3";
        assert_eq!(
            normalise(text, &[("1.7.24", "[CONTAINERD_VERSION]")]),
            "root [TMP]/var/x at https://127.0.0.1:[PORT] uid [UID] at [TIME] took [DURATION] and \
             [DURATION]; keep v1.33 k3s 0.60.5 10.1.0.3"
        );
    }
}
