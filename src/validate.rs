//! Validation of every value that reaches a template.
//!
//! `plan::make` calls these before it builds a [`crate::plan::Plan`], so no input (flag, environment,
//! answers file or host fact) can inject YAML: a value with a newline, a quote, a backslash or a
//! template delimiter is refused whatever field it is in, and each field also has to match its own
//! grammar (DNS-1123 label, image reference, quantity, label key, absolute path, metric name).
//! Errors name the field (the flag), show the value escaped, say why and what is accepted.

use crate::plan::PlanError;

/// One refusal: which field, the offending value (escaped for display), why.
fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        field,
        value: value.escape_debug().to_string(),
        reason: reason.into(),
    }
}

/// [`safe_text`] first (its message names the dangerous character), then `Ok` when `ok`, else
/// the refusal [`invalid`] builds.
fn check(
    ok: bool,
    field: &'static str,
    value: &str,
    reason: impl Into<String>,
) -> Result<(), PlanError> {
    safe_text(field, value)?;
    if ok {
        Ok(())
    } else {
        Err(invalid(field, value, reason))
    }
}

/// At most `max` bytes of letters, digits and `extra`, starting and ending with a letter or digit.
pub(crate) fn alnum_edged(value: &str, max: usize, extra: &[u8]) -> bool {
    let bytes = value.as_bytes();
    value.len() <= max
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// Refuses characters and sequences that could break out of a YAML scalar or a template, whatever
/// the field. Runs first, so the message names the dangerous character.
pub fn safe_text(field: &'static str, value: &str) -> Result<(), PlanError> {
    if value.is_empty() {
        return Err(invalid(field, value, "must not be empty"));
    }
    for (needle, what) in [
        ("{{", "a template delimiter `{{`"),
        ("}}", "a template delimiter `}}`"),
        ("{%", "a template delimiter `{%`"),
        ("%}", "a template delimiter `%}`"),
        ("{#", "a template delimiter `{#`"),
        ("#}", "a template delimiter `#}`"),
    ] {
        if value.contains(needle) {
            return Err(invalid(field, value, format!("contains {what}")));
        }
    }
    if let Some(c) = value.chars().find(|c| {
        c.is_control() || matches!(c, '"' | '\'' | '`' | '\\') || !c.is_ascii() || c.is_whitespace()
    }) {
        let what = match c {
            '\n' | '\r' => "a line break".to_string(),
            '"' | '\'' | '`' => format!("a quote ({c})"),
            '\\' => "a backslash".to_string(),
            c if c.is_whitespace() => "white space".to_string(),
            c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
            c => format!("a non-ASCII character ({c})"),
        };
        return Err(invalid(field, value, format!("contains {what}")));
    }
    Ok(())
}

/// A DNS-1123 label (Kubernetes namespace and object names): at most 63 characters, lowercase
/// letters, digits and `-`, starting and ending with a letter or digit.
pub fn dns1123_label(field: &'static str, value: &str) -> Result<(), PlanError> {
    check(
        is_dns1123_label(value),
        field,
        value,
        "is not a DNS-1123 label: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. `cadvisor`, `monitoring`)",
    )
}

/// Whether `value` is a DNS-1123 label (see [`dns1123_label`]).
pub(crate) fn is_dns1123_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A container image reference as the distribution reference grammar defines it
/// (distribution/reference:regexp.go): `[host[:port]/]path[:tag][@algorithm:hex]`.
pub fn image_reference(field: &'static str, value: &str) -> Result<(), PlanError> {
    safe_text(field, value)?;
    let fail = |why: &str| {
        Err(invalid(
            field,
            value,
            format!(
                "is not an image reference ({why}); expected e.g. `ghcr.io/google/cadvisor:0.60.5` or `registry.example:5000/cadvisor@sha256:<64 hex>`"
            ),
        ))
    };
    if value.len() > 255 {
        return fail("longer than 255 characters");
    }
    let (name_tag, digest) = match value.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (value, None),
    };
    if let Some(digest) = digest {
        let Some((algo, hex)) = digest.split_once(':') else {
            return fail("the digest has no `algorithm:` prefix");
        };
        // `[a-z][a-z0-9]*` components joined by `+._-` (the reference grammar's, lowercase);
        // sha256 is 64 lowercase hex digits (go-digest refuses uppercase).
        let algo_ok = algo.split(['+', '.', '_', '-']).all(|c| {
            c.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let sha256_ok = algo != "sha256"
            || (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if !algo_ok || !hex_ok || !sha256_ok {
            return fail("the digest is malformed");
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !tag_ok {
            return fail("the tag is malformed");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        if is_host {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            let port_ok =
                port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !host_ok || !port_ok {
                return fail("the registry host is malformed");
            }
            components.remove(0);
        }
    }
    for component in components {
        if !path_component_ok(component) {
            return fail(
                "a repository path component is not lowercase letters and digits separated by '.', '_', '__' or '-'",
            );
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !is_alnum_lower(bytes[0]) || !is_alnum_lower(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum_lower(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum_lower(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// What a quantity measures: memory in millibytes is legal Kubernetes but never meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityKind {
    Cpu,
    Memory,
}

/// The largest quantity we accept, in units (milli-CPU or bytes): Kubernetes keeps a quantity's
/// value in an `int64` (k8s.io/apimachinery pkg/api/resource/quantity.go, "capped at 2^63-1").
pub const MAX_QUANTITY_UNITS: u128 = i64::MAX as u128;

/// A Kubernetes resource quantity, exactly (k8s.io/apimachinery pkg/api/resource/quantity.go):
///
/// ```text
/// <quantity>        ::= <signedNumber><suffix>
/// <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
/// <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
/// <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
/// <decimalSI>       ::= m | "" | k | M | G | T | P | E
/// <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>   (an integer exponent)
/// ```
///
/// A request or limit must also be greater than zero and a whole number of units: milli-CPU
/// (Kubernetes does not allow CPU finer than 1m, kubernetes.io "Resource Management for Pods and
/// Containers", meaning-of-cpu) or bytes. Returns the value in those units, computed in integers
/// (no `f64`: `0e400` is zero, not NaN, and `1e99999` is too large, not infinity), so request ≤
/// limit is compared exactly.
pub fn quantity(field: &'static str, value: &str, kind: QuantityKind) -> Result<u128, PlanError> {
    safe_text(field, value)?;
    let example = match kind {
        QuantityKind::Cpu => "e.g. `100m`, `0.5`, `1`",
        QuantityKind::Memory => "e.g. `200Mi`, `1Gi`, `500M`",
    };
    let fail = |why: &str| {
        Err(invalid(
            field,
            value,
            format!("is not a usable Kubernetes quantity ({why}); {example}"),
        ))
    };
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return fail("no number");
    }
    // (power of ten, power of two) of the suffix.
    let (exp10, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) && s.len() > 1 => match exponent(&s[1..]) {
            Some(e) => (e, 0),
            None => return fail("bad exponent: `e` takes an integer, e.g. `1e3`"),
        },
        _ => return fail("unknown suffix"),
    };
    if kind == QuantityKind::Memory && suffix == "m" {
        return fail("`m` means millibytes for memory; use Mi or M");
    }
    // The digits as one integer with the decimal point folded into the exponent, trailing
    // zeros too, so `sig` ends in a non-zero digit.
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() || negative {
        return fail("must be greater than zero");
    }
    let sig = significant.trim_end_matches('0');
    let unit_shift = match kind {
        QuantityKind::Cpu => 3,
        QuantityKind::Memory => 0,
    };
    let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
    let trailing = i64::try_from(significant.len() - sig.len()).unwrap_or(i64::MAX);
    let e = exp10
        .saturating_sub(frac_len)
        .saturating_add(trailing)
        .saturating_add(unit_shift);
    let too_large = || fail("too large: Kubernetes keeps quantities below 2^63 units");
    let too_fine = || match kind {
        QuantityKind::Cpu => {
            fail("finer than 1m: Kubernetes does not allow CPU below a thousandth")
        }
        QuantityKind::Memory => fail("not a whole number of bytes"),
    };
    // u128 holds 38 full decimal digits.
    let Some(m) = (sig.len() <= 38)
        .then(|| sig.parse::<u128>().ok())
        .flatten()
    else {
        return if e >= 0 { too_large() } else { too_fine() };
    };
    let Some(n) = m.checked_mul(1u128 << exp2) else {
        return too_large();
    };
    let units = if e >= 0 {
        let power = u32::try_from(e).ok().and_then(|e| 10u128.checked_pow(e));
        match power.and_then(|p| n.checked_mul(p)) {
            Some(units) => units,
            None => return too_large(),
        }
    } else {
        // 10^39 > u128::MAX > n: a larger divisor always leaves a fraction.
        let divisor = u32::try_from(-e).ok().and_then(|e| 10u128.checked_pow(e));
        match divisor {
            Some(d) if n % d == 0 => n / d,
            _ => return too_fine(),
        }
    };
    if units > MAX_QUANTITY_UNITS {
        return too_large();
    }
    Ok(units)
}

/// The integer after `e`: an optional sign and digits. Exponents beyond ±10^6 saturate there
/// (they are far outside every usable quantity either way).
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .parse::<i64>()
        .unwrap_or(if digits.trim_start_matches('0').is_empty() {
            0
        } else {
            i64::MAX
        })
        .min(1_000_000);
    Some(if negative { -magnitude } else { magnitude })
}

/// A container label key for `--whitelisted_container_labels`: letters, digits, `.`, `_`, `-`
/// and `/`, starting and ending with a letter or digit, at most 253 characters. No `,`: it is the
/// list separator (google/cadvisor cmd/cadvisor.go splits on commas).
pub fn label_key(field: &'static str, value: &str) -> Result<(), PlanError> {
    check(
        alnum_edged(value, 253, b"._-/"),
        field,
        value,
        "is not a container label key: use letters, digits, '.', '_', '-' and '/', starting and ending with a letter or digit (e.g. `io.kubernetes.pod.uid`, `app`)",
    )
}

/// A label value (kubernetes.io: "Labels and Selectors"): at most 63 characters, letters,
/// digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn label_value(field: &'static str, value: &str) -> Result<(), PlanError> {
    check(
        alnum_edged(value, 63, b"._-"),
        field,
        value,
        "is not a label value: at most 63 letters, digits, '.', '_' and '-', starting and ending with a letter or digit",
    )
}

/// A containerd namespace (containerd/containerd namespaces/validate.go):
/// `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters.
pub fn containerd_namespace(field: &'static str, value: &str) -> Result<(), PlanError> {
    let ok = value.len() <= 76
        && value
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    check(
        ok,
        field,
        value,
        "is not a containerd namespace: letters and digits separated by single '.', '_' or '-' (e.g. `k8s.io`)",
    )
}

/// An absolute, normalised host path of a file (a socket): starts with `/`, no empty, `.` or `..`
/// components, no trailing `/`, only `A-Za-z0-9._+@:-` in components.
pub fn absolute_file_path(field: &'static str, value: &str) -> Result<(), PlanError> {
    safe_text(field, value)?;
    let fail = |why: &str| {
        Err(invalid(
            field,
            value,
            format!(
                "is not a usable absolute path ({why}); e.g. `/var/snap/microk8s/common/run/containerd.sock`"
            ),
        ))
    };
    let Some(rest) = value.strip_prefix('/') else {
        return fail("it does not start with /");
    };
    if rest.is_empty() {
        return fail("it names no file");
    }
    for component in rest.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return fail("it has an empty, `.` or `..` component");
        }
        if !component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+@:-".contains(&b))
        {
            return fail("a component has characters other than letters, digits and ._+@:-");
        }
    }
    Ok(())
}

/// cAdvisor's metric kinds (google/cadvisor:lib/container/factory.go@6a0c4f25 `MetricKind`), the
/// values `--enable_metrics` accepts. cAdvisor refuses to start on an unknown one.
pub const KNOWN_METRICS: &[&str] = &[
    "advtcp",
    "app",
    "cpu",
    "cpuLoad",
    "cpu_topology",
    "cpuset",
    "disk",
    "diskIO",
    "hugetlb",
    "memory",
    "memory_numa",
    "network",
    "oom_event",
    "percpu",
    "perf_event",
    "pressure",
    "process",
    "referenced_memory",
    "resctrl",
    "sched",
    "tcp",
    "udp",
];

pub fn metric_name(field: &'static str, value: &str) -> Result<(), PlanError> {
    check(
        KNOWN_METRICS.contains(&value),
        field,
        value,
        format!(
            "is not a cAdvisor metric kind; known kinds: {}",
            KNOWN_METRICS.join(",")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dns_labels() {
        for ok in ["cadvisor", "a", "monitoring-1", &"a".repeat(63)] {
            assert!(dns1123_label("--namespace", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Cadvisor",
            "a_b",
            "a.b",
            &"a".repeat(64),
            "a\nb",
            "a\"b",
        ] {
            assert!(dns1123_label("--namespace", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "ghcr.io/google/cadvisor:0.60.5",
            "gcr.io/cadvisor/cadvisor:v0.45.0",
            "cadvisor",
            "library/cadvisor:latest",
            "localhost:5000/cadvisor:dev",
            "registry.example:5000/a/b__c/d-e.f:1.2_3",
            "ghcr.io/google/cadvisor@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ghcr.io/google/cadvisor:0.60.5@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(image_reference("--image", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Ghcr.io/Google/cadvisor",
            "ghcr.io/google/cadvisor:",
            "ghcr.io/google/cadvisor:-x",
            "ghcr.io/google/cadvisor@sha256:abc",
            "ghcr.io//cadvisor",
            "a b",
            "a:1\nkind: Secret",
            "reg:port/x",
            "x:{{y}}",
        ] {
            assert!(image_reference("--image", bad).is_err(), "{bad}");
        }
    }

    /// Found by the `validators` fuzz target: the reference grammar wants each algorithm
    /// component to start with a letter, and go-digest wants sha256 in lowercase hex.
    #[test]
    fn digest_algorithm_grammar_and_sha256_case() {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for ok in [
            format!("x@sha256:{hex}"),
            format!("x@sha512:{hex}{hex}"),
            format!("x@multihash+base58:{}", &hex[..32]),
        ] {
            assert!(image_reference("--image", &ok).is_ok(), "{ok}");
        }
        for bad in [
            format!("x@sha256:{}", hex.to_uppercase()),
            format!("x@sha256:{}F", &hex[..63]),
            format!("x@1:{hex}"),
            format!("x@+:{hex}"),
            format!("x@sha-:{hex}"),
            format!("x@a..b:{hex}"),
            format!("x@:{hex}"),
        ] {
            assert!(image_reference("--image", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        use QuantityKind::{Cpu, Memory};
        for (text, kind, units) in [
            ("100m", Cpu, Some(100)),
            ("2", Cpu, Some(2000)),
            ("+.5", Cpu, Some(500)),
            ("1.", Cpu, Some(1000)),
            ("1Ki", Memory, Some(1024)),
            ("0.5Ki", Memory, Some(512)),
            ("1e3", Memory, Some(1000)),
            ("12E-1", Memory, None), // 1.2 bytes
            ("120e-1", Memory, Some(12)),
        ] {
            assert_eq!(quantity("--q", text, kind).ok(), units, "{text}");
        }
        for bad in ["", "m", "1.2.3", "-1", "0", "10x", "1e", "1 Gi", "1Gi\n"] {
            assert!(
                quantity("--memory", bad, QuantityKind::Memory).is_err(),
                "{bad}"
            );
        }
        assert!(quantity("--memory", "100m", QuantityKind::Memory).is_err());
    }

    #[test]
    fn non_finite_zero_negative_too_fine_and_too_large_quantities_are_refused() {
        for (value, why) in [
            ("0e400", "greater than zero"),
            ("0.000", "greater than zero"),
            ("-1", "greater than zero"),
            ("-0.5Gi", "greater than zero"),
            ("1e99999", "too large"),
            ("1E+400", "too large"),
            ("9223372036854775808", "too large"),
            ("99999999999999999999999999999999999999999999", "too large"),
            ("1e-99999", "finer than 1m"),
            ("0.0001", "finer than 1m"),
            ("1u", "unknown suffix"),
            ("1e1.5", "bad exponent"),
            ("1e", "unknown suffix"),
            (".", "no number"),
            ("1Ki3", "unknown suffix"),
        ] {
            let err = quantity("--cpu-limit", value, QuantityKind::Cpu)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{value}: {err}");
        }
        let err = quantity("--memory-limit", "0.5", QuantityKind::Memory)
            .unwrap_err()
            .to_string();
        assert!(err.contains("whole number of bytes"), "{err}");
        assert_eq!(
            quantity("--memory-limit", "8Ei", QuantityKind::Memory).ok(),
            None,
            "2^63 bytes"
        );
        assert_eq!(
            quantity("--memory-limit", "7Ei", QuantityKind::Memory).ok(),
            Some(7 << 60)
        );
    }

    /// A quantity built from its grammar's parts, and its exact value as a fraction num/den in
    /// units (milli-CPU or bytes), computed independently of [`quantity`].
    fn generated() -> impl Strategy<Value = (String, QuantityKind, u128, u128)> {
        let suffix = prop_oneof![
            prop::sample::select(vec![
                ("", 0i32, 0u32),
                ("m", -3, 0),
                ("k", 3, 0),
                ("M", 6, 0),
                ("G", 9, 0),
                ("T", 12, 0),
                ("P", 15, 0),
                ("E", 18, 0),
                ("Ki", 0, 10),
                ("Mi", 0, 20),
                ("Gi", 0, 30),
                ("Ti", 0, 40),
                ("Pi", 0, 50),
                ("Ei", 0, 60),
            ])
            .prop_map(|(s, x, b)| (s.to_string(), x, b)),
            (-12i32..=12, prop::bool::ANY, prop::bool::ANY).prop_map(|(x, upper, plus)| {
                let e = if upper { "E" } else { "e" };
                let sign = if plus && x >= 0 { "+" } else { "" };
                (format!("{e}{sign}{x}"), x, 0)
            }),
        ];
        (
            "[0-9]{0,6}",
            prop::option::of("[0-9]{0,3}"),
            suffix,
            prop::bool::ANY,
        )
            .prop_filter("a number has a digit", |(int, frac, _, _)| {
                !int.is_empty() || frac.as_deref().is_some_and(|f| !f.is_empty())
            })
            .prop_map(|(int, frac, (suffix, x, b), cpu)| {
                let kind = if cpu {
                    QuantityKind::Cpu
                } else {
                    QuantityKind::Memory
                };
                let text = match &frac {
                    Some(f) => format!("{int}.{f}{suffix}"),
                    None => format!("{int}{suffix}"),
                };
                let f = frac.unwrap_or_default();
                let n: u128 = format!("0{int}{f}").parse().unwrap();
                let unit = if cpu { 1000 } else { 1 };
                let mut num = n * unit * (1u128 << b);
                let mut den = 10u128.pow(f.len() as u32);
                if x >= 0 {
                    num *= 10u128.pow(x as u32);
                } else {
                    den *= 10u128.pow((-x) as u32);
                }
                (text, kind, num, den)
            })
    }

    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    proptest! {
        #[test]
        fn no_text_panics(text in ".{0,40}") {
            let _ = quantity("--cpu-limit", &text, QuantityKind::Cpu);
            let _ = quantity("--memory-limit", &text, QuantityKind::Memory);
        }

        #[test]
        fn accepted_quantities_are_their_exact_integer_value(
            (text, kind, num, den) in generated()
        ) {
            let g = gcd(num, den).max(1);
            let (num, den) = (num / g, den / g);
            // Memory has no `m` suffix (millibytes are refused on purpose).
            let millibytes = kind == QuantityKind::Memory && text.ends_with('m');
            let expected = (num > 0 && den == 1 && num <= MAX_QUANTITY_UNITS && !millibytes)
                .then_some(num);
            prop_assert_eq!(quantity("--q", &text, kind).ok(), expected, "{}", text);
        }

        #[test]
        fn comparison_agrees_with_exact_fractions(
            (a, ka, an, ad) in generated(),
            (b, kb, bn, bd) in generated(),
        ) {
            if let (Ok(x), Ok(y), true) =
                (quantity("--a", &a, ka), quantity("--b", &b, kb), ka == kb)
            {
                // Both accepted: both fractions reduce to integers, so this cannot overflow.
                let (ga, gb) = (gcd(an, ad).max(1), gcd(bn, bd).max(1));
                let left = (an / ga) * (bd / gb);
                let right = (bn / gb) * (ad / ga);
                prop_assert_eq!(x.cmp(&y), left.cmp(&right), "{} vs {}", a, b);
            }
        }
    }

    #[test]
    fn labels_paths_metrics_namespaces() {
        assert!(label_key("--extra-label", "io.kubernetes.pod.uid").is_ok());
        assert!(label_key("--extra-label", "example.com/team").is_ok());
        for bad in ["", "a,b", "a b", ".a", "a.", "a=b"] {
            assert!(label_key("--extra-label", bad).is_err(), "{bad}");
        }
        assert!(absolute_file_path("socket", "/run/k3s/containerd/containerd.sock").is_ok());
        for bad in ["", "/", "run/x.sock", "/a//b", "/a/../b", "/a/", "/a b"] {
            assert!(absolute_file_path("socket", bad).is_err(), "{bad}");
        }
        assert!(metric_name("--metrics", "diskIO").is_ok());
        assert!(metric_name("--metrics", "accelerator").is_err());
        assert!(containerd_namespace("ns", "k8s.io").is_ok());
        assert!(containerd_namespace("ns", "k8s..io").is_err());
    }

    #[test]
    fn messages_name_the_danger() {
        let err = dns1123_label("--namespace", "a\nb")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--namespace") && err.contains("line break"),
            "{err}"
        );
        assert!(err.contains("a\\nb"), "value is shown escaped: {err}");
        let err = image_reference("--image", "x{{y}}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("template delimiter"), "{err}");
    }
}
