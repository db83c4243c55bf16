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
    safe_text(field, value)?;
    let ok = value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "is not a DNS-1123 label: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. `cadvisor`, `monitoring`)",
        ))
    }
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

/// A Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity): a non-negative decimal
/// number and an optional suffix (`m`, `k`, `M`, `G`, `T`, `P`, `E`, `Ki` … `Ei`, or `e<exp>`).
/// Returns its value in base units (cores or bytes), for request ≤ limit checks.
pub fn quantity(field: &'static str, value: &str, kind: QuantityKind) -> Result<f64, PlanError> {
    safe_text(field, value)?;
    let example = match kind {
        QuantityKind::Cpu => "e.g. `100m`, `0.5`, `1`",
        QuantityKind::Memory => "e.g. `200Mi`, `1Gi`, `500M`",
    };
    let fail = |why: &str| {
        Err(invalid(
            field,
            value,
            format!("is not a Kubernetes quantity ({why}); {example}"),
        ))
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return fail("no number");
    }
    let Ok(n) = number.parse::<f64>() else {
        return fail("no number");
    };
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if (s.starts_with('e') || s.starts_with('E')) && s.len() > 1 => {
            let exp = &s[1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            match exp.parse::<i32>() {
                Ok(e) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    10f64.powi(e)
                }
                _ => return fail("bad exponent"),
            }
        }
        _ => return fail("unknown suffix"),
    };
    if kind == QuantityKind::Memory && suffix == "m" {
        return fail("`m` means millibytes for memory; use Mi or M");
    }
    let v = n * factor;
    if v <= 0.0 {
        return fail("must be greater than zero");
    }
    Ok(v)
}

/// A container label key for `--whitelisted_container_labels`: letters, digits, `.`, `_`, `-`
/// and `/`, starting and ending with a letter or digit, at most 253 characters. No `,`: it is the
/// list separator (google/cadvisor cmd/cadvisor.go splits on commas).
pub fn label_key(field: &'static str, value: &str) -> Result<(), PlanError> {
    safe_text(field, value)?;
    let bytes = value.as_bytes();
    let ok = value.len() <= 253
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "is not a container label key: use letters, digits, '.', '_', '-' and '/', starting and ending with a letter or digit (e.g. `io.kubernetes.pod.uid`, `app`)",
        ))
    }
}

/// A containerd namespace (containerd/containerd namespaces/validate.go):
/// `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters.
pub fn containerd_namespace(field: &'static str, value: &str) -> Result<(), PlanError> {
    safe_text(field, value)?;
    let ok = value.len() <= 76
        && value
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "is not a containerd namespace: letters and digits separated by single '.', '_' or '-' (e.g. `k8s.io`)",
        ))
    }
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
    safe_text(field, value)?;
    if KNOWN_METRICS.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            format!(
                "is not a cAdvisor metric kind; known kinds: {}",
                KNOWN_METRICS.join(",")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(quantity("--cpu", "100m", QuantityKind::Cpu).ok(), Some(0.1));
        assert_eq!(quantity("--cpu", "2", QuantityKind::Cpu).ok(), Some(2.0));
        assert_eq!(
            quantity("--memory", "1Ki", QuantityKind::Memory).ok(),
            Some(1024.0)
        );
        assert_eq!(
            quantity("--memory", "1e3", QuantityKind::Memory).ok(),
            Some(1000.0)
        );
        for bad in ["", "m", "1.2.3", "-1", "0", "10x", "1e", "1 Gi", "1Gi\n"] {
            assert!(
                quantity("--memory", bad, QuantityKind::Memory).is_err(),
                "{bad}"
            );
        }
        assert!(quantity("--memory", "100m", QuantityKind::Memory).is_err());
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
