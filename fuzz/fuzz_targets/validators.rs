//! `validators`: every validator of `cadvisor_setup::validate`, on the same value.
//!
//! The input is the value (lossy UTF-8), and each of its first 16 lines too, so that seeds can
//! list many values.
//! Invariants:
//! - nothing panics, and each validator gives the same answer twice;
//! - a refusal names the field (the flag) in its message;
//! - an accepted value passed `safe_text`: non-empty, no control character, quote, backtick,
//!   backslash, white space or non-ASCII character, no template delimiter (`{{ }} {% %} {# #}`);
//!   so it cannot inject: written raw between double quotes, between single quotes, or as a
//!   plain scalar after `key: `, a YAML parser reads back one mapping whose only value is the
//!   value itself (plain: for the grammars that allow no `: `, ` #`, trailing `:` or leading
//!   indicator, i.e. all but paths);
//! - an accepted value matches the grammar its validator documents, checked with an independent
//!   regular expression (distribution/reference's for images, plus go-digest's lowercase
//!   64-hex rule for sha256; DNS-1123 label; containerd's namespace; label key; absolute
//!   normalised path; Kubernetes quantity with the validator's suffixes);
//! - an accepted quantity is an exact integer greater than zero (milli-CPU or bytes: it feeds
//!   request <= limit comparisons), and memory is never in millibytes (`m`);
//! - an accepted metric kind is one of `KNOWN_METRICS`.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cadvisor_setup::validate::{
    KNOWN_METRICS, QuantityKind, absolute_file_path, containerd_namespace, dns1123_label,
    image_reference, label_key, metric_name, quantity, safe_text,
};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

const FIELD: &str = "--fuzz-field";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

/// distribution/reference regexp.go `ReferenceRegexp`, with `\w` spelled out in ASCII as Go's.
static IMAGE: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let separator = "(?:[._]|__|[-]+)";
    let path_component = format!("{alnum}(?:{separator}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
    let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
    let domain = format!("(?:{domain_name}|{ipv6})(?::[0-9]+)?");
    let remote = format!("{path_component}(?:/{path_component})*");
    let name = format!("(?:{domain}/)?{remote}");
    let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    re(&format!("^{name}(?::{tag})?(?:@{digest})?$"))
});
static SHA256: LazyLock<Regex> = LazyLock::new(|| re("@sha256:[a-f0-9]{64}$"));
static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| re("^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$"));
static CONTAINERD_NS: LazyLock<Regex> =
    LazyLock::new(|| re("^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$"));
static LABEL_KEY: LazyLock<Regex> =
    LazyLock::new(|| re("^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$"));
static ABS_PATH: LazyLock<Regex> = LazyLock::new(|| re("^(?:/[A-Za-z0-9._+@:-]+)+$"));
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$")
});

/// `safe_text`'s promise, stated independently.
fn assert_safe(what: &str, v: &str) {
    assert!(!v.is_empty(), "{what} accepted an empty value");
    for bad in ["{{", "}}", "{%", "%}", "{#", "#}"] {
        assert!(!v.contains(bad), "{what} accepted {v:?} with {bad}");
    }
    for c in v.chars() {
        assert!(
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '`' | '\\'),
            "{what} accepted {v:?} with {c:?}"
        );
    }
    // Written raw (without escaping) in a YAML quoted scalar, it reads back as itself.
    for doc in [format!("k: \"{v}\"\n"), format!("k: '{v}'\n")] {
        let map: BTreeMap<String, String> = serde_saphyr::from_str(&doc)
            .unwrap_or_else(|e| panic!("{what} accepted {v:?}, and {doc:?} is not YAML: {e}"));
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [("k".to_string(), v.to_string())],
            "{what} accepted {v:?}: {doc:?} injects"
        );
    }
}

/// For grammars without `: `, ` #`, a trailing `:` or a leading indicator: written as a plain
/// scalar, read back as a string, it is the value itself (a number or a boolean to YAML's eyes,
/// maybe, but never more keys or structure).
fn assert_plain_scalar(what: &str, v: &str) {
    let doc = format!("k: {v}\n");
    let map: BTreeMap<String, String> = match serde_saphyr::from_str(&doc) {
        Ok(map) => map,
        Err(e) => panic!("{what} accepted {v:?}, and {doc:?} is not YAML: {e}"),
    };
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [("k".to_string(), v.to_string())],
        "{what} accepted {v:?}: {doc:?} injects"
    );
}

fn check<T: std::fmt::Debug>(
    what: &str,
    v: &str,
    f: impl Fn(&'static str, &str) -> Result<T, cadvisor_setup::plan::PlanError>,
) -> Option<T> {
    let first = f(FIELD, v);
    let again = f(FIELD, v);
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "{what}({v:?}) is not deterministic"
    );
    match first {
        Ok(t) => {
            assert!(safe_text(FIELD, v).is_ok(), "{what} accepted {v:?}");
            assert_safe(what, v);
            Some(t)
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(FIELD), "{what}({v:?}): {msg:?} names no field");
            None
        }
    }
}

fn check_value(v: &str) {
    check("safe_text", v, safe_text);

    if check("dns1123_label", v, dns1123_label).is_some() {
        assert!(DNS1123_LABEL.is_match(v), "dns1123_label accepted {v:?}");
        assert_plain_scalar("dns1123_label", v);
    }
    if check("image_reference", v, image_reference).is_some() {
        assert!(
            IMAGE.is_match(v),
            "image_reference accepted {v:?}, not a distribution reference"
        );
        if v.contains("@sha256:") {
            assert!(
                SHA256.is_match(v),
                "image_reference accepted {v:?}: sha256 wants 64 lowercase hex (go-digest)"
            );
        }
        assert!(v.len() <= 255, "image_reference accepted {v:?}");
        assert_plain_scalar("image_reference", v);
    }
    for kind in [QuantityKind::Cpu, QuantityKind::Memory] {
        let accepted = check("quantity", v, |f, v| quantity(f, v, kind));
        if let Some(n) = accepted {
            assert!(n > 0, "quantity({v:?}, {kind:?}) accepted with value {n}");
            assert!(QUANTITY.is_match(v), "quantity({v:?}, {kind:?}) accepted");
            if kind == QuantityKind::Memory {
                assert!(!v.ends_with('m'), "memory in millibytes: {v:?}");
            }
            assert_plain_scalar("quantity", v);
        }
    }
    if check("label_key", v, label_key).is_some() {
        assert!(LABEL_KEY.is_match(v), "label_key accepted {v:?}");
        assert!(
            !v.contains(','),
            "label_key accepted the list separator: {v:?}"
        );
        assert_plain_scalar("label_key", v);
    }
    if check("containerd_namespace", v, containerd_namespace).is_some() {
        assert!(
            CONTAINERD_NS.is_match(v) && v.len() <= 76,
            "containerd_namespace accepted {v:?}"
        );
        assert_plain_scalar("containerd_namespace", v);
    }
    if check("absolute_file_path", v, absolute_file_path).is_some() {
        assert!(ABS_PATH.is_match(v), "absolute_file_path accepted {v:?}");
        assert!(
            v.split('/').skip(1).all(|c| c != "." && c != ".."),
            "absolute_file_path accepted {v:?}"
        );
        // No plain-scalar check: a component may end with `:` (`/a:`), which YAML reads as a
        // key; the templates quote every value (`| q`), so only the quoted forms matter.
    }
    if check("metric_name", v, metric_name).is_some() {
        assert!(KNOWN_METRICS.contains(&v), "metric_name accepted {v:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    // Every grammar's limit is at most 255 bytes: longer values only slow the search down.
    if data.len() > 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    check_value(&text);
    if text.contains('\n') {
        for line in text.lines().take(16) {
            check_value(line);
        }
    }
});
