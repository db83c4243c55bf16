//! One line of the Prometheus text exposition format, parsed in place (no allocation).
//!
//! Format: <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>
//! (prometheus/common `expfmt/text_parse.go` is the reference parser):
//!
//! ```text
//! # HELP name text            # TYPE name counter           (comments, skipped)
//! name{label="value",...} 1.5e+07 1784000000000           (value, optional ms timestamp)
//! {"utf8.name",label="v"} NaN                              (quoted names, format 1.0.0)
//! ```
//!
//! Label values escape `\\`, `\"` and `\n`. cAdvisor emits every label name of its union on every
//! series, with `""` where a container lacks the label (google/cadvisor `lib/metrics/prometheus.go`),
//! so an empty value means "absent" for every label this module cares about.

use memchr::memchr2;

/// The labels the scanner looks at. cAdvisor's own `/metrics` names pods through the sanitised
/// container labels; the kubelet's `/metrics/cadvisor` uses `pod`, `namespace` and `container`
/// (kubernetes/kubernetes `pkg/kubelet/server/server.go` `containerPrometheusLabelsFunc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Id,
    CadvisorPod,
    CadvisorNamespace,
    CadvisorContainer,
    KubeletPod,
    KubeletNamespace,
    KubeletContainer,
}

const LABEL_COUNT: usize = 7;

impl Label {
    fn of(name: &[u8]) -> Option<Label> {
        // `io.kubernetes.pod.name` etc. after cAdvisor's sanitizeLabelName ([^a-zA-Z0-9_] → `_`).
        match name {
            b"id" => Some(Label::Id),
            b"container_label_io_kubernetes_pod_name" => Some(Label::CadvisorPod),
            b"container_label_io_kubernetes_pod_namespace" => Some(Label::CadvisorNamespace),
            b"container_label_io_kubernetes_container_name" => Some(Label::CadvisorContainer),
            b"pod" => Some(Label::KubeletPod),
            b"namespace" => Some(Label::KubeletNamespace),
            b"container" => Some(Label::KubeletContainer),
            _ => None,
        }
    }
}

/// A label value as it appears on the line: still escaped when `escaped` is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawValue<'a> {
    pub bytes: &'a [u8],
    pub escaped: bool,
}

impl RawValue<'_> {
    /// The value with `\\`, `\"` and `\n` resolved, written into `out` (cleared first).
    pub fn unescape_into(&self, out: &mut Vec<u8>) {
        out.clear();
        if !self.escaped {
            out.extend_from_slice(self.bytes);
            return;
        }
        let mut rest = self.bytes;
        while let Some(pos) = memchr::memchr(b'\\', rest) {
            out.extend_from_slice(&rest[..pos]);
            match rest.get(pos + 1) {
                Some(b'n') => out.push(b'\n'),
                Some(&c @ (b'\\' | b'"')) => out.push(c),
                // Not a valid escape: keep it as written (the parser is lenient, not a validator).
                Some(&c) => out.extend_from_slice(&[b'\\', c]),
                None => out.push(b'\\'),
            }
            rest = rest.get(pos + 2..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }
}

/// The interesting labels of one sample line; only non-empty values are kept.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Labels<'a> {
    values: [Option<RawValue<'a>>; LABEL_COUNT],
}

impl<'a> Labels<'a> {
    pub fn get(&self, label: Label) -> Option<RawValue<'a>> {
        self.values[label as usize]
    }

    fn set(&mut self, label: Label, value: RawValue<'a>) {
        // A later duplicate wins, as in the reference parser; an empty value clears it.
        self.values[label as usize] = if value.bytes.is_empty() {
            None
        } else {
            Some(value)
        };
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Line<'a> {
    /// Blank, or a `#` comment (`# HELP`, `# TYPE` or free text).
    Skip,
    Sample(Labels<'a>),
}

/// Why a line is not valid exposition format.
pub(super) type Malformed = &'static str;

/// Parses one line (without its `\n`; a trailing `\r` is tolerated).
pub(super) fn parse(line: &[u8]) -> Result<Line<'_>, Malformed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut i = skip_blanks(line, 0);
    match line.get(i) {
        None | Some(b'#') => return Ok(Line::Skip),
        _ => {}
    }
    let mut have_name = false;
    let name_end = scan_name(line, i);
    if name_end > i {
        have_name = true;
        i = skip_blanks(line, name_end);
    }
    let mut labels = Labels::default();
    if line.get(i) == Some(&b'{') {
        i = parse_label_set(line, i + 1, &mut labels, &mut have_name)?;
        i = skip_blanks(line, i);
    }
    if !have_name {
        return Err("expected a metric name");
    }
    let value_end = scan_token(line, i);
    if value_end == i {
        return Err("expected a sample value after the metric name and labels");
    }
    if !is_float(&line[i..value_end]) {
        return Err("the sample value is not a number (nor NaN, +Inf, -Inf)");
    }
    i = skip_blanks(line, value_end);
    let ts_end = scan_token(line, i);
    if ts_end > i {
        if !is_timestamp(&line[i..ts_end]) {
            return Err("the timestamp is not an integer number of milliseconds");
        }
        i = skip_blanks(line, ts_end);
    }
    if i < line.len() {
        return Err("unexpected text after the value and timestamp");
    }
    Ok(Line::Sample(labels))
}

/// Parses `name="value",...}` starting just after `{`; returns the index after `}`.
fn parse_label_set<'a>(
    line: &'a [u8],
    mut i: usize,
    labels: &mut Labels<'a>,
    have_name: &mut bool,
) -> Result<usize, Malformed> {
    loop {
        i = skip_blanks(line, i);
        let (name, quoted) = match line.get(i) {
            None => return Err("the label set has no closing `}`"),
            Some(b'}') => return Ok(i + 1),
            Some(b'"') => {
                let (value, next) = parse_quoted(line, i + 1)?;
                i = next;
                (value.bytes, true)
            }
            Some(_) => {
                let end = scan_name(line, i);
                if end == i {
                    return Err("expected a label name");
                }
                let name = &line[i..end];
                i = end;
                (name, false)
            }
        };
        i = skip_blanks(line, i);
        if line.get(i) == Some(&b'=') {
            i = skip_blanks(line, i + 1);
            if line.get(i) != Some(&b'"') {
                return Err("a label value must be in double quotes");
            }
            let (value, next) = parse_quoted(line, i + 1)?;
            i = next;
            if let Some(label) = Label::of(name) {
                labels.set(label, value);
            }
        } else if quoted && !*have_name {
            // `{"metric.name", ...}`: a quoted name without `=` is the metric name.
            *have_name = true;
        } else {
            return Err("expected `=` after a label name");
        }
        i = skip_blanks(line, i);
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            _ => return Err("expected `,` or `}` after a label value"),
        }
    }
}

/// Reads a quoted string starting just after its opening `"`; returns it (raw) and the index
/// after the closing `"`.
fn parse_quoted(line: &[u8], start: usize) -> Result<(RawValue<'_>, usize), Malformed> {
    let mut escaped = false;
    let mut i = start;
    loop {
        let rest = line.get(i..).unwrap_or_default();
        match memchr2(b'"', b'\\', rest) {
            None => return Err("a quoted label value has no closing `\"`"),
            Some(pos) if rest[pos] == b'\\' => {
                escaped = true;
                i += pos + 2;
                if i > line.len() {
                    return Err("a quoted label value has no closing `\"`");
                }
            }
            Some(pos) => {
                let end = i + pos;
                let value = RawValue {
                    bytes: &line[start..end],
                    escaped,
                };
                return Ok((value, end + 1));
            }
        }
    }
}

/// `[a-zA-Z0-9_:]`: metric and label name characters (a leading digit is tolerated).
const NAME_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        c += 1;
    }
    table
};

fn scan_name(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && NAME_CHAR[line[i] as usize] {
        i += 1;
    }
    i
}

fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
        i += 1;
    }
    i
}

fn scan_token(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && line[i] != b' ' && line[i] != b'\t' {
        i += 1;
    }
    i
}

/// Go's `strconv.ParseFloat` forms that exposition uses: decimals, exponents, `NaN`, `±Inf`.
fn is_float(token: &[u8]) -> bool {
    // Fast path: the common case is plain ASCII digits with an optional sign, dot and exponent.
    let plain = token
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    if plain {
        return text.parse::<f64>().is_ok();
    }
    matches!(
        text.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "+inf" | "-inf" | "infinity" | "+infinity" | "-infinity"
    )
}

fn is_timestamp(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Labels<'_> {
        match parse(line.as_bytes()) {
            Ok(Line::Sample(labels)) => labels,
            other => panic!("{line:?} should be a sample, got {other:?}"),
        }
    }

    fn value(labels: &Labels<'_>, label: Label) -> Option<String> {
        labels.get(label).map(|raw| {
            let mut out = Vec::new();
            raw.unescape_into(&mut out);
            String::from_utf8(out).unwrap()
        })
    }

    #[test]
    fn cadvisor_container_series_with_timestamp() {
        let labels = sample(
            r#"container_memory_working_set_bytes{container_label_io_kubernetes_container_name="nginx",container_label_io_kubernetes_pod_name="nginx-7c5ddbdf54-x2x9q",container_label_io_kubernetes_pod_namespace="default",id="/kubepods.slice/cri-containerd-0a.scope",image="docker.io/library/nginx:latest",name="0a"} 1.2345e+07 1784000000000"#,
        );
        assert_eq!(
            value(&labels, Label::CadvisorPod).as_deref(),
            Some("nginx-7c5ddbdf54-x2x9q")
        );
        assert_eq!(
            value(&labels, Label::CadvisorNamespace).as_deref(),
            Some("default")
        );
        assert_eq!(
            value(&labels, Label::CadvisorContainer).as_deref(),
            Some("nginx")
        );
        assert_eq!(
            value(&labels, Label::Id).as_deref(),
            Some("/kubepods.slice/cri-containerd-0a.scope")
        );
        assert_eq!(value(&labels, Label::KubeletPod), None);
    }

    #[test]
    fn union_effect_empty_values_count_as_absent() {
        let labels = sample(
            r#"container_cpu_usage_seconds_total{container_label_io_kubernetes_pod_name="",cpu="total",id="/system.slice/containerd.service"} 12.5"#,
        );
        assert_eq!(value(&labels, Label::CadvisorPod), None);
        assert_eq!(
            value(&labels, Label::Id).as_deref(),
            Some("/system.slice/containerd.service")
        );
    }

    #[test]
    fn escapes_in_values_do_not_end_the_value() {
        let labels = sample(r#"m{a="x\"y,id=\"fake\"",id="/real\\path",pod="line\nbreak"} 1"#);
        assert_eq!(value(&labels, Label::Id).as_deref(), Some("/real\\path"));
        assert_eq!(
            value(&labels, Label::KubeletPod).as_deref(),
            Some("line\nbreak")
        );
    }

    #[test]
    fn special_values_blanks_and_trailing_comma() {
        for line in [
            "m NaN",
            "m +Inf",
            "m -Inf 1784000000000",
            "m{} 1",
            "m { a = \"b\" , } 0",
            "m{a=\"b\",}\t3\t-5",
            "  m 1  ",
            "m 1\r",
            "{\"utf8.metric\",pod=\"p\"} 1",
            "m{\"quoted.label\"=\"v\"} 1",
        ] {
            assert!(
                matches!(parse(line.as_bytes()), Ok(Line::Sample(_))),
                "{line:?} should parse"
            );
        }
        assert_eq!(
            value(&sample("{\"utf8.metric\",pod=\"p\"} 1"), Label::KubeletPod).as_deref(),
            Some("p")
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        for line in [
            "",
            "   ",
            "# HELP m Help text with \"quotes\".",
            "# TYPE m gauge",
            "#",
        ] {
            assert!(matches!(parse(line.as_bytes()), Ok(Line::Skip)), "{line:?}");
        }
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, why) in [
            ("m{a=\"b\" 1", "`,` or `}`"),
            ("m{a=\"b 1", "closing `\"`"),
            ("m{a=b} 1", "double quotes"),
            ("m{a} 1", "`=`"),
            ("m", "sample value"),
            ("m one", "not a number"),
            ("m 1 12.5", "timestamp"),
            ("m 1 2 3", "unexpected text"),
            ("{a=\"b\"} 1", "metric name"),
            ("m{", "closing `}`"),
            ("m{a=\"b\\", "closing `\"`"),
        ] {
            match parse(line.as_bytes()) {
                Err(reason) => assert!(reason.contains(why), "{line:?}: {reason}"),
                Ok(_) => panic!("{line:?} should be malformed"),
            }
        }
    }

    #[test]
    fn invalid_escapes_are_kept_verbatim() {
        let raw = RawValue {
            bytes: br"a\tb\\c\",
            escaped: true,
        };
        let mut out = Vec::new();
        raw.unescape_into(&mut out);
        assert_eq!(out, b"a\\tb\\c\\");
    }
}
