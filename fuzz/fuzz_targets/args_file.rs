//! `args_file`: the MicroK8s args-file parser and its `$VAR` expansion
//! (`cadvisor_setup::host::args_file`), checked against an independent model of kubelite's
//! `ReadArgsFromFile` and Go's `os.Expand`.
//!
//! The input is the file's text (lossy UTF-8, so every byte string is a test). Invariants:
//! - nothing panics;
//! - `expand_env` equals the model of Go's `os.Expand` (whatever its implementation, quadratic or
//!   linear), with no variables, with the snap's variables and with values that look like
//!   expansions themselves (expansion is not recursive);
//! - with no variables set the output is a subsequence of the input, is no longer than it, is a
//!   fixed point (expanding again changes nothing), and every `$` left in it is the last
//!   character or is followed by a character that cannot start a name (`$/x` stays, `$A`, `${`,
//!   `$1`, `$$` never survive);
//! - `Args::parse` equals the model (trim, skip blank and `#` lines, delete quotes, split on each
//!   single space, expand each part), is deterministic, and with the snap's variables no argument
//!   holds a quote, a space or a line break;
//! - `Args::get` is the last `--name=value` / `--name value` (pflag semantics).
#![no_main]

use cadvisor_setup::host::args_file::{Args, SnapVars, expand_env};
use libfuzzer_sys::fuzz_target;

/// Variable sets: (the library's, the model's).
fn var_sets() -> Vec<(SnapVars, Vec<(&'static str, &'static str)>)> {
    let snap = [
        ("SNAP", "/snap/microk8s/current"),
        ("SNAP_DATA", "/var/snap/microk8s/current"),
        ("SNAP_COMMON", "/var/snap/microk8s/common"),
        ("SNAP_NAME", "microk8s"),
    ];
    // Values that look like expansions, quotes and spaces: the output must hold them verbatim.
    let tricky = [
        ("A", "$A"),
        ("B", "${A} x"),
        ("_1", "'\"q"),
        ("1", "one"),
        ("*", "star"),
        ("AB", ""),
    ];
    let mut lib_tricky = SnapVars::empty();
    for (k, v) in tricky {
        lib_tricky = lib_tricky.with(k, v);
    }
    vec![
        (SnapVars::empty(), vec![]),
        (SnapVars::for_snap("microk8s"), snap.to_vec()),
        (lib_tricky, tricky.to_vec()),
    ]
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_name_byte(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `os.Expand` written as a token reader (not a port of the library's loop):
/// `$` at the end stays; `${}` and an unclosed `${` are eaten; `${x}` with a special `x`, `${...}`
/// up to the first `}`, `$` + one special character, `$` + a run of name bytes are names;
/// anything else after `$` leaves the `$` alone.
fn model_expand(s: &str, vars: &[(&str, &str)]) -> String {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| *v)
    };
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let rest = &s[i + 1..];
        let r = rest.as_bytes();
        if r[0] == b'{' {
            if r.len() > 2 && is_special(r[1]) && r[2] == b'}' {
                out.extend_from_slice(lookup(&rest[1..2]).as_bytes());
                i += 4;
            } else if let Some(close) = rest[1..].find('}') {
                let name = &rest[1..1 + close];
                if !name.is_empty() {
                    out.extend_from_slice(lookup(name).as_bytes());
                }
                i += 1 + close + 2; // `$`, `{`, name, `}`
            } else {
                i += 2; // an unclosed `${`: both eaten
            }
        } else if is_special(r[0]) {
            out.extend_from_slice(lookup(&rest[..1]).as_bytes());
            i += 2;
        } else {
            let n = r.iter().take_while(|c| is_name_byte(**c)).count();
            if n == 0 {
                out.push(b'$');
                i += 1;
            } else {
                out.extend_from_slice(lookup(&rest[..n]).as_bytes());
                i += 1 + n;
            }
        }
    }
    String::from_utf8(out).expect("the model only cuts at ASCII bytes")
}

/// kubelite's `ReadArgsFromFile`.
fn model_parse(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let mut args = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.replace(['"', '\''], "");
        for part in line.split(' ') {
            args.push(model_expand(part, vars));
        }
    }
    args
}

/// pflag: the last `--name=value`, or `--name` followed by a value not starting with `-`
/// (else the empty value); one dash works too.
fn model_get<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        let flag = match arg.strip_prefix("--") {
            Some(f) => f,
            None => match arg.strip_prefix('-') {
                Some(f) => f,
                None => continue,
            },
        };
        match flag.split_once('=') {
            Some((k, v)) if k == name => found = Some(v),
            Some(_) => {}
            None if flag == name => {
                found = match args.get(i + 1) {
                    Some(next) if !next.starts_with('-') => Some(next.as_str()),
                    _ => Some(""),
                };
            }
            None => {}
        }
    }
    found
}

fn is_subsequence(small: &str, big: &str) -> bool {
    let mut it = big.bytes();
    small.bytes().all(|c| it.any(|d| d == c))
}

fn check_no_vars(s: &str) {
    let out = expand_env(s, &SnapVars::empty());
    assert!(out.len() <= s.len(), "{s:?} grew to {out:?}");
    assert!(is_subsequence(&out, s), "{out:?} is not taken from {s:?}");
    if !s.contains('$') {
        assert_eq!(out, s, "text without `$` must not change");
    }
    let b = out.as_bytes();
    for (i, _) in out.match_indices('$') {
        if let Some(&next) = b.get(i + 1) {
            assert!(
                !(next == b'{' || is_special(next) || is_name_byte(next)),
                "expansion artifact in {out:?} (from {s:?}): `$` followed by {:?}",
                next as char
            );
        }
    }
    assert_eq!(
        expand_env(&out, &SnapVars::empty()),
        out,
        "not a fixed point"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    // expand_env on the whole text, on each line and on each space-separated part (what parse
    // hands it), so names and braces meet every boundary.
    check_no_vars(text);
    for (lib, model) in var_sets() {
        assert_eq!(
            expand_env(text, &lib),
            model_expand(text, &model),
            "expand_env({text:?}) with {model:?}"
        );
        assert_eq!(
            expand_env(text, &lib),
            expand_env(text, &lib),
            "expand_env is not deterministic"
        );
    }
    for part in text.split(['\n', ' ']).take(64) {
        check_no_vars(part);
    }

    for (lib, model) in var_sets() {
        let parsed = Args::parse(text, &lib);
        assert_eq!(
            parsed,
            Args::parse(text, &lib),
            "parse is not deterministic"
        );
        let expected = model_parse(text, &model);
        assert_eq!(
            parsed.args, expected,
            "Args::parse({text:?}) with {model:?}"
        );
        if model
            .iter()
            .all(|(_, v)| !v.contains(['"', '\'', ' ', '\n']))
        {
            for arg in &parsed.args {
                assert!(
                    !arg.contains(['"', '\'', ' ', '\n']),
                    "argument {arg:?} holds a quote, a space or a line break"
                );
            }
        }
        // Flag look-ups, for names the file itself uses and a few fixed ones.
        let mut names: Vec<String> = parsed
            .args
            .iter()
            .filter_map(|a| a.strip_prefix('-'))
            .map(|a| a.trim_start_matches('-'))
            .map(|a| a.split('=').next().unwrap_or_default().to_string())
            .take(16)
            .collect();
        names.extend(["address", "config", "", "-"].map(String::from));
        for name in &names {
            assert_eq!(
                parsed.get(name),
                model_get(&parsed.args, name),
                "get({name:?}) on {:?}",
                parsed.args
            );
        }
    }
});
