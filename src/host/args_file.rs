//! MicroK8s args files (`/var/snap/microk8s/current/args/*`), parsed exactly as kubelite parses them.
//!
//! kubelite's `ReadArgsFromFile` (canonical/microk8s:
//! build-scripts/components/kubernetes/patches/v1.36.0/0000-Kubelite-integration.patch):
//! `TrimSpace` each line, skip empty lines and lines starting with `#`, delete every `"` and `'`,
//! `strings.Split(line, " ")`, then `os.ExpandEnv` each part. Both `--k=v` and `--k v` occur
//! (the kubelet file uses `=`, the containerd file a space).

use std::collections::BTreeMap;

/// The snap variables an args file may use. Outside the snap they are not set, so we supply them
/// (snapcraft.io/docs/environment-variables): `SNAP_DATA` is the `current` revision directory,
/// `SNAP_COMMON` is shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapVars {
    vars: BTreeMap<String, String>,
}

impl SnapVars {
    /// The variables of snap `name` (`microk8s`, `k8s`) with the `current` revision symlinks.
    pub fn for_snap(name: &str) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("SNAP".into(), format!("/snap/{name}/current"));
        vars.insert("SNAP_DATA".into(), format!("/var/snap/{name}/current"));
        vars.insert("SNAP_COMMON".into(), format!("/var/snap/{name}/common"));
        vars.insert("SNAP_NAME".into(), name.to_string());
        SnapVars { vars }
    }

    /// No variables at all (every `$VAR` expands to the empty string, as for an unset variable).
    pub fn empty() -> Self {
        SnapVars::default()
    }

    /// One more variable (the fuzz targets and tests build their own sets).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    fn get(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or("")
    }
}

/// The parsed arguments of one args file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub args: Vec<String>,
}

impl Args {
    /// Parses the text of an args file as kubelite does.
    pub fn parse(text: &str, vars: &SnapVars) -> Self {
        let mut args = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line: String = line.chars().filter(|c| *c != '"' && *c != '\'').collect();
            // `strings.Split(line, " ")`: consecutive spaces give empty parts, kept as kubelite keeps them.
            for part in line.split(' ') {
                args.push(expand_env(part, vars));
            }
        }
        Args { args }
    }

    /// The value of flag `name` (without dashes): the last of `--name=value` or `--name value`,
    /// as pflag keeps the last occurrence. `-name` with one dash is accepted too (Go's flag package).
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut found = None;
        let mut iter = self.args.iter().peekable();
        while let Some(arg) = iter.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                continue;
            };
            if let Some((key, value)) = flag.split_once('=') {
                if key == name {
                    found = Some(value);
                }
            } else if flag == name {
                found = match iter.peek() {
                    Some(next) if !next.starts_with('-') => iter.next().map(String::as_str),
                    _ => Some(""),
                };
            }
        }
        found
    }
}

/// Go's `os.Expand` (src/os/env.go): `$NAME` (letters, digits, `_`), `${NAME}`, one-character
/// special names (`$1`, `$*`, ...); `${}` and an unclosed `${` are eaten; a `$` not followed by a
/// name stays.
///
/// One pass: Go scans for the closing `}` afresh after every `${`, which is quadratic on a line
/// of `${${${...` (20 MB never finished); here the position of the next `}` is remembered, and
/// since the scan only moves forward, every byte is looked at a bounded number of times.
pub fn expand_env(s: &str, vars: &SnapVars) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut close = NextClose::default();
    let mut i = 0; // start of the pending literal run
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[i..j]);
            let (name, width) = shell_name(s, j + 1, &mut close);
            if name.is_empty() && width > 0 {
                // Invalid syntax: eat the characters.
            } else if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(vars.get(name));
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// The position of the next `}` at or after some index, remembered between lookups (which only
/// move forward).
#[derive(Default)]
struct NextClose {
    found: Option<usize>,
    none_left: bool,
}

impl NextClose {
    fn at_or_after(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        if self.none_left {
            return None;
        }
        if let Some(p) = self.found.filter(|p| *p >= from) {
            return Some(p);
        }
        match bytes
            .get(from..)
            .and_then(|rest| memchr::memchr(b'}', rest))
        {
            Some(k) => {
                self.found = Some(from + k);
                self.found
            }
            None => {
                self.none_left = true;
                None
            }
        }
    }
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName` on `s[start..]` (not empty): the name after a `$` and how many bytes it
/// used.
fn shell_name<'a>(s: &'a str, start: usize, close: &mut NextClose) -> (&'a str, usize) {
    let all = s.as_bytes();
    let b = &all[start..];
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[start + 1..start + 2], 3);
        }
        return match close.at_or_after(all, start + 1) {
            // `${}`: bad syntax, eaten.
            Some(k) if k == start + 1 => ("", 2),
            Some(k) => (&s[start + 1..k], k - start + 1),
            // `${` never closed: bad syntax, eaten.
            None => ("", 1),
        };
    }
    if is_special(b[0]) {
        return (&s[start..start + 1], 1);
    }
    let n = b.iter().take_while(|c| is_alnum(**c)).count();
    (&s[start..start + n], n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mk() -> SnapVars {
        SnapVars::for_snap("microk8s")
    }

    // canonical/microk8s: microk8s-resources/default-args/containerd
    const CONTAINERD: &str = "--config ${SNAP_DATA}/args/containerd.toml\n\
        --root ${SNAP_COMMON}/var/lib/containerd\n\
        --state ${SNAP_COMMON}/run/containerd\n\
        --address ${SNAP_COMMON}/run/containerd.sock\n";

    #[test]
    fn microk8s_containerd_defaults_space_form() {
        let a = Args::parse(CONTAINERD, &mk());
        assert_eq!(
            a.get("address"),
            Some("/var/snap/microk8s/common/run/containerd.sock")
        );
        assert_eq!(
            a.get("config"),
            Some("/var/snap/microk8s/current/args/containerd.toml")
        );
        assert_eq!(a.args.len(), 8);
    }

    #[test]
    fn kubelet_equals_form_quotes_comments_and_blank_lines() {
        let text = "\n# comment --container-runtime-endpoint=/nope\n  \
            --eviction-hard=\"memory.available<100Mi,nodefs.available<1Gi\"\n\
            \t--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock  \n\
            --node-labels='a=b,c=d'\n";
        let a = Args::parse(text, &mk());
        assert_eq!(
            a.get("container-runtime-endpoint"),
            Some("/var/snap/microk8s/common/run/containerd.sock")
        );
        assert_eq!(
            a.get("eviction-hard"),
            Some("memory.available<100Mi,nodefs.available<1Gi")
        );
        assert_eq!(a.get("node-labels"), Some("a=b,c=d"));
        assert_eq!(a.get("missing"), None);
    }

    #[test]
    fn ctr_file_mixes_both_forms_and_last_wins() {
        let text =
            "--address=${SNAP_COMMON}/run/containerd.sock\n--namespace k8s.io\n--namespace other\n";
        let a = Args::parse(text, &mk());
        assert_eq!(
            a.get("address"),
            Some("/var/snap/microk8s/common/run/containerd.sock")
        );
        assert_eq!(a.get("namespace"), Some("other"));
    }

    #[test]
    fn boolean_flag_followed_by_flag_has_empty_value() {
        let a = Args::parse("--anonymous-auth\n--x=1", &mk());
        assert_eq!(a.get("anonymous-auth"), Some(""));
        assert_eq!(a.get("x"), Some("1"));
    }

    #[test]
    fn quotes_are_deleted_not_interpreted() {
        // kubelite deletes quotes and then splits on spaces: a quoted value with a space splits.
        let a = Args::parse("--a \"x y\"", &mk());
        assert_eq!(a.args, vec!["--a", "x", "y"]);
    }

    #[test]
    fn go_expand_edge_cases() {
        let v = SnapVars::empty().with("A", "1").with("AB", "2");
        assert_eq!(expand_env("$A", &v), "1");
        assert_eq!(expand_env("$AB", &v), "2");
        assert_eq!(expand_env("${A}B", &v), "1B");
        assert_eq!(expand_env("$A/x", &v), "1/x");
        assert_eq!(expand_env("$UNSET/x", &v), "/x");
        assert_eq!(expand_env("a$", &v), "a$");
        assert_eq!(expand_env("$/x", &v), "$/x");
        assert_eq!(expand_env("x${}y", &v), "xy");
        assert_eq!(expand_env("x${A", &v), "xA");
        assert_eq!(expand_env("$1x", &v), "x");
        assert_eq!(expand_env("no dollars", &v), "no dollars");
    }

    /// A direct transcription of Go's `os.Expand` and `getShellName` (src/os/env.go), rescanning
    /// for `}` after every `${` as Go does: the reference the one-pass version must match.
    fn go_expand(s: &str, vars: &SnapVars) -> String {
        fn get_shell_name(s: &str) -> (&str, usize) {
            let b = s.as_bytes();
            if b[0] == b'{' {
                if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
                    return (&s[1..2], 3);
                }
                for i in 1..b.len() {
                    if b[i] == b'}' {
                        if i == 1 {
                            return ("", 2);
                        }
                        return (&s[1..i], i + 1);
                    }
                }
                return ("", 1);
            }
            if is_special(b[0]) {
                return (&s[0..1], 1);
            }
            let mut i = 0;
            while i < b.len() && is_alnum(b[i]) {
                i += 1;
            }
            (&s[..i], i)
        }
        let b = s.as_bytes();
        let mut buf = String::new();
        let mut i = 0;
        let mut j = 0;
        while j < b.len() {
            if b[j] == b'$' && j + 1 < b.len() {
                buf.push_str(&s[i..j]);
                let (name, w) = get_shell_name(&s[j + 1..]);
                if name.is_empty() && w > 0 {
                } else if name.is_empty() {
                    buf.push('$');
                } else {
                    buf.push_str(vars.get(name));
                }
                j += w;
                i = j + 1;
            }
            j += 1;
        }
        buf + &s[i.min(s.len())..]
    }

    proptest! {
        /// The one-pass expansion is Go's, on short random mixes of `$`, braces, names, special
        /// characters and multi-byte text.
        #[test]
        fn expand_env_matches_go(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("$"), Just("${"), Just("}"), Just("{"), Just("A"), Just("AB"), Just("_"),
                    Just("1"), Just("*"), Just("-"), Just("/"), Just(" "), Just("é"), Just("x"),
                    Just("SNAP_DATA"), Just("${}"), Just("$$"),
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            let v = SnapVars::for_snap("microk8s").with("A", "1").with("AB", "2").with("1", "one");
            prop_assert_eq!(expand_env(&text, &v), go_expand(&text, &v));
        }
    }

    proptest! {
        // Ten distinct inputs exist; a few dozen cases cover them.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A 1 MB line of `${`, `$` or a mix completes (a quadratic expansion never finishes on
        /// it) and gives what Go gives: unclosed `${` and `$$` pairs are eaten, a closed `${...}`
        /// is one (unset) name, `${A}` repeats its value.
        #[test]
        fn megabyte_lines_of_dollars_and_braces(
            unit in prop::sample::select(vec!["${", "$", "${A}", "$${", "${$"]),
            closed in any::<bool>(),
        ) {
            const MB: usize = 1 << 20;
            let v = SnapVars::empty().with("A", "a");
            let mut text = unit.repeat(MB / unit.len());
            if closed {
                text.push('}');
            }
            let out = expand_env(&text, &v);
            let n = MB / unit.len();
            match (unit, closed) {
                ("${", false) => prop_assert_eq!(out, ""),
                ("${", true) => prop_assert_eq!(out, ""),
                ("$", false) => prop_assert_eq!(out, if n % 2 == 1 { "$" } else { "" }),
                ("$", true) => prop_assert_eq!(out, if n % 2 == 1 { "$}" } else { "}" }),
                // `$$` is the special name `$` (unset), then `{` is plain text.
                ("$${", false) => prop_assert_eq!(out, "{".repeat(n)),
                ("$${", true) => prop_assert_eq!(out, "{".repeat(n) + "}"),
                ("${A}", false) => prop_assert_eq!(out, "a".repeat(n)),
                ("${A}", true) => prop_assert_eq!(out, "a".repeat(n) + "}"),
                _ => prop_assert!(out.len() <= text.len()),
            }
        }

    }

    proptest! {
        /// Text without `$`, quotes or `#` round-trips: the args are the space-split trimmed lines.
        #[test]
        fn plain_lines_split_on_spaces(lines in proptest::collection::vec("[a-z=/.-]{1,12}( [a-z=/.-]{1,12}){0,3}", 0..8)) {
            let text = lines.join("\n");
            let a = Args::parse(&text, &mk());
            let expected: Vec<String> = lines.iter().flat_map(|l| l.split(' ').map(String::from)).collect();
            prop_assert_eq!(a.args, expected);
        }

        /// Any input parses without panicking and never yields a quote character.
        #[test]
        fn never_panics_and_drops_quotes(text in "\\PC{0,200}") {
            let a = Args::parse(&text, &mk());
            prop_assert!(a.args.iter().all(|x| !x.contains('"') && !x.contains('\'')));
        }

        /// `--k=v` and `--k v` mean the same.
        #[test]
        fn both_forms_agree(key in "[a-z][a-z-]{0,10}", value in "[a-z0-9/._]{1,20}") {
            let eq = Args::parse(&format!("--{key}={value}"), &mk());
            let sp = Args::parse(&format!("--{key} {value}"), &mk());
            prop_assert_eq!(eq.get(&key), Some(value.as_str()));
            prop_assert_eq!(sp.get(&key), Some(value.as_str()));
        }
    }
}
