//! Kubernetes label selectors, pure: whether one matches a label set, and which labels to add to
//! a set so that it matches.
//!
//! Semantics of apimachinery's `LabelSelectorAsSelector` (kubernetes/apimachinery:
//! pkg/apis/meta/v1/helpers.go, pkg/labels/selector.go): every `matchLabels` pair and every
//! `matchExpressions` requirement must hold; `In` needs the key with one of the values, `NotIn`
//! the key absent or with another value, `Exists` and `DoesNotExist` the key's presence or
//! absence; `In`/`NotIn` need at least one value, `Exists`/`DoesNotExist` none. An empty selector
//! matches everything. A *missing* selector means different things to different callers (the
//! Prometheus Operator reads a nil `serviceMonitorSelector` as "none"), so callers decide that.

use std::collections::{BTreeMap, BTreeSet};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

pub type Labels = BTreeMap<String, String>;

/// A selector the API machinery itself would refuse (so it selects nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct InvalidSelector(pub String);

/// Why no label set we could carry satisfies a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsatisfiable {
    #[error(transparent)]
    Invalid(#[from] InvalidSelector),
    #[error("{0}")]
    Conflict(String),
}

/// Whether `selector` selects an object labelled `labels`.
pub fn matches(selector: &LabelSelector, labels: &Labels) -> Result<bool, InvalidSelector> {
    let pairs_hold = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let mut exprs_hold = true;
    for req in selector.match_expressions.iter().flatten() {
        exprs_hold &= requirement_holds(req, labels)?;
    }
    Ok(pairs_hold && exprs_hold)
}

fn requirement_holds(
    req: &LabelSelectorRequirement,
    labels: &Labels,
) -> Result<bool, InvalidSelector> {
    let values = values(req)?;
    let current = labels.get(&req.key);
    Ok(match req.operator.as_str() {
        "In" => current.is_some_and(|v| values.contains(v.as_str())),
        "NotIn" => current.is_none_or(|v| !values.contains(v.as_str())),
        "Exists" => current.is_some(),
        "DoesNotExist" => current.is_none(),
        _ => unreachable_operator(req)?,
    })
}

fn unreachable_operator(req: &LabelSelectorRequirement) -> Result<bool, InvalidSelector> {
    Err(InvalidSelector(format!(
        "{}: unknown operator {:?} (In, NotIn, Exists, DoesNotExist)",
        req.key, req.operator
    )))
}

/// The requirement's values, checked against its operator as apimachinery checks them.
fn values(req: &LabelSelectorRequirement) -> Result<BTreeSet<&str>, InvalidSelector> {
    let values: BTreeSet<&str> = req.values.iter().flatten().map(String::as_str).collect();
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Err(InvalidSelector(format!(
            "{} {}: needs at least one value",
            req.key, req.operator
        ))),
        "Exists" | "DoesNotExist" if !values.is_empty() => Err(InvalidSelector(format!(
            "{} {}: takes no values",
            req.key, req.operator
        ))),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => Ok(values),
        _ => unreachable_operator(req).map(|_| values),
    }
}

/// The labels to add to `labels` so that `selector` matches; the labels already there are never
/// changed (they are ours, or not ours to change). The result is checked with [`matches`].
///
/// Choices where the selector allows several: `In` takes the first value every `In` of that key
/// lists and no `NotIn` excludes; `Exists` adds the value `"true"`.
pub fn satisfy(selector: &LabelSelector, labels: &Labels) -> Result<Labels, Unsatisfiable> {
    let mut have = labels.clone();
    let mut added = Labels::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        match have.get(key) {
            Some(current) if current == value => {}
            Some(current) => {
                return Err(Unsatisfiable::Conflict(format!(
                    "matchLabels needs {key}={value}, but that label is {key}={current} here"
                )));
            }
            None => {
                label(key, value)?;
                have.insert(key.clone(), value.clone());
                added.insert(key.clone(), value.clone());
            }
        }
    }
    let exprs = selector.match_expressions.as_deref().unwrap_or_default();
    // `In` first, so an `Exists` of the same key is met by the value `In` chose.
    let mut ordered: Vec<&LabelSelectorRequirement> = exprs.iter().collect();
    ordered.sort_by_key(|r| r.operator != "In");
    for req in ordered {
        let values = values(req)?;
        let key = &req.key;
        let current = have.get(key).cloned();
        let wanted = match (req.operator.as_str(), current) {
            ("In", Some(v)) if values.contains(v.as_str()) => None,
            ("In", Some(v)) => {
                return Err(Unsatisfiable::Conflict(format!(
                    "matchExpressions needs {key} In ({}), but that label is {key}={v} here",
                    join(&values)
                )));
            }
            ("In", None) => match allowed_values(exprs, key).into_iter().next() {
                Some(v) => Some(v.to_string()),
                None => {
                    return Err(Unsatisfiable::Conflict(format!(
                        "no value of {key} is in every In and in no NotIn of its matchExpressions"
                    )));
                }
            },
            ("NotIn", Some(v)) if values.contains(v.as_str()) => {
                return Err(Unsatisfiable::Conflict(format!(
                    "matchExpressions needs {key} NotIn ({}), but that label is {key}={v} here",
                    join(&values)
                )));
            }
            ("Exists", None) => {
                let excluded = excluded_values(exprs, key);
                ["true", "enabled"]
                    .into_iter()
                    .find(|v| !excluded.contains(v))
                    .map(str::to_string)
            }
            ("DoesNotExist", Some(v)) => {
                return Err(Unsatisfiable::Conflict(format!(
                    "matchExpressions needs no {key} label, but that label is {key}={v} here"
                )));
            }
            _ => None,
        };
        if let Some(value) = wanted {
            label(key, &value)?;
            have.insert(key.clone(), value.clone());
            added.insert(key.clone(), value);
        }
    }
    if matches(selector, &have)? {
        Ok(added)
    } else {
        // e.g. `Exists` and `DoesNotExist` on the same key.
        Err(Unsatisfiable::Conflict(format!(
            "its requirements contradict each other ({})",
            describe(Some(selector))
        )))
    }
}

/// The values of `key` every `In` lists and no `NotIn` excludes, in the first `In`'s order.
fn allowed_values<'a>(exprs: &'a [LabelSelectorRequirement], key: &str) -> Vec<&'a str> {
    let excluded = excluded_values(exprs, key);
    let ins: Vec<&LabelSelectorRequirement> = exprs
        .iter()
        .filter(|r| r.key == key && r.operator == "In")
        .collect();
    let Some(first) = ins.first() else {
        return Vec::new();
    };
    first
        .values
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|v| !excluded.contains(v))
        .filter(|v| {
            ins.iter()
                .all(|r| r.values.iter().flatten().any(|w| w == v))
        })
        .collect()
}

/// Every value a `NotIn` of `key` excludes.
fn excluded_values<'a>(exprs: &'a [LabelSelectorRequirement], key: &str) -> BTreeSet<&'a str> {
    exprs
        .iter()
        .filter(|r| r.key == key && r.operator == "NotIn")
        .flat_map(|r| r.values.iter().flatten().map(String::as_str))
        .collect()
}

/// A label we would add must be one the API server accepts.
fn label(key: &str, value: &str) -> Result<(), Unsatisfiable> {
    check_label(key, value).map_err(|reason| {
        Unsatisfiable::Conflict(format!("it needs {key}={value:?}, but {reason}"))
    })
}

/// Whether the API server accepts `key: value` as a label (kubernetes/apimachinery:
/// pkg/util/validation/validation.go IsQualifiedName, IsValidLabelValue).
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    if !qualified_name(key) {
        return Err(format!("{key:?} is not a valid label key"));
    }
    if !label_value(value) {
        return Err(format!("{value:?} is not a valid label value"));
    }
    Ok(())
}

/// `[prefix/]name`: name at most 63 characters of alphanumerics, `-`, `_`, `.`, starting and
/// ending alphanumeric; prefix a DNS subdomain of at most 253.
fn qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && label_value(name)
}

/// Empty, or at most 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric.
fn label_value(value: &str) -> bool {
    let b = value.as_bytes();
    value.is_empty()
        || (b.len() <= 63
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c)))
}

fn join(values: &BTreeSet<&str>) -> String {
    values.iter().copied().collect::<Vec<_>>().join(", ")
}

/// A selector in kubectl's notation (`release=kube-prom-stack,team in (a,b)`); `<none>` for a
/// missing selector and `<all>` for an empty one.
pub fn describe(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_string();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default().join(",");
        parts.push(match req.operator.as_str() {
            "In" => format!("{} in ({values})", req.key),
            "NotIn" => format!("{} notin ({values})", req.key),
            "Exists" => req.key.clone(),
            "DoesNotExist" => format!("!{}", req.key),
            other => format!("{} {other} ({values})", req.key),
        });
    }
    if parts.is_empty() {
        "<all>".to_string()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn selector(pairs: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> LabelSelector {
        LabelSelector {
            match_labels: (!pairs.is_empty()).then(|| labels(pairs)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        }
    }

    fn ours() -> Labels {
        labels(&[
            ("app.kubernetes.io/name", "cadvisor"),
            ("app.kubernetes.io/managed-by", "cadvisor-setup"),
        ])
    }

    #[test]
    fn an_empty_selector_matches_everything_and_adds_nothing() {
        let s = LabelSelector::default();
        assert!(matches(&s, &ours()).unwrap());
        assert!(matches(&s, &Labels::new()).unwrap());
        assert_eq!(satisfy(&s, &ours()).unwrap(), Labels::new());
        assert_eq!(describe(Some(&s)), "<all>");
        assert_eq!(describe(None), "<none>");
    }

    #[test]
    fn kube_prometheus_stack_release_label_is_added() {
        // kube-prometheus-stack's default: serviceMonitorSelector.matchLabels.release = <release>
        // (prometheus-community/helm-charts: charts/kube-prometheus-stack/templates/prometheus/prometheus.yaml).
        let s = selector(&[("release", "kube-prom-stack")], vec![]);
        assert!(!matches(&s, &ours()).unwrap());
        let added = satisfy(&s, &ours()).unwrap();
        assert_eq!(added, labels(&[("release", "kube-prom-stack")]));
        assert_eq!(describe(Some(&s)), "release=kube-prom-stack");
    }

    #[test]
    fn expressions_pick_values_that_hold() {
        let s = selector(
            &[],
            vec![
                req("team", "In", &["infra", "platform"]),
                req("team", "NotIn", &["infra"]),
                req("monitored", "Exists", &[]),
                req("legacy", "DoesNotExist", &[]),
                req(
                    "app.kubernetes.io/name",
                    "In",
                    &["cadvisor", "node-exporter"],
                ),
            ],
        );
        let added = satisfy(&s, &ours()).unwrap();
        assert_eq!(
            added,
            labels(&[("monitored", "true"), ("team", "platform")])
        );
        let mut all = ours();
        all.extend(added);
        assert!(matches(&s, &all).unwrap());
    }

    #[test]
    fn selectors_that_exclude_us_are_refused_with_the_reason() {
        let not_in = selector(
            &[],
            vec![req("app.kubernetes.io/name", "NotIn", &["cadvisor"])],
        );
        let err = satisfy(&not_in, &ours()).unwrap_err().to_string();
        assert!(
            err.contains("app.kubernetes.io/name NotIn (cadvisor)"),
            "{err}"
        );
        assert!(
            err.contains("app.kubernetes.io/name=cadvisor here"),
            "{err}"
        );

        let other_name = selector(&[("app.kubernetes.io/name", "node-exporter")], vec![]);
        assert!(satisfy(&other_name, &ours()).is_err());

        let gone = selector(
            &[],
            vec![req("app.kubernetes.io/managed-by", "DoesNotExist", &[])],
        );
        assert!(satisfy(&gone, &ours()).is_err());

        let contradiction = selector(
            &[],
            vec![req("x", "Exists", &[]), req("x", "DoesNotExist", &[])],
        );
        let err = satisfy(&contradiction, &ours()).unwrap_err().to_string();
        assert!(err.contains("needs no x label"), "{err}");

        let in_and_not_in = selector(&[], vec![req("x", "In", &["a"]), req("x", "NotIn", &["a"])]);
        assert!(satisfy(&in_and_not_in, &ours()).is_err());
    }

    #[test]
    fn invalid_selectors_are_errors_not_matches() {
        for s in [
            selector(&[], vec![req("x", "In", &[])]),
            selector(&[], vec![req("x", "Exists", &["a"])]),
            selector(&[], vec![req("x", "Like", &["a"])]),
        ] {
            assert!(matches(&s, &ours()).is_err());
            assert!(matches!(
                satisfy(&s, &ours()),
                Err(Unsatisfiable::Invalid(_))
            ));
        }
        // A label the API server would refuse is never proposed.
        let s = selector(&[("bad key!", "v")], vec![]);
        assert!(satisfy(&s, &ours()).is_err());
        let s = selector(&[("k", "-bad-")], vec![]);
        assert!(satisfy(&s, &ours()).is_err());
    }

    #[test]
    fn label_syntax() {
        assert!(qualified_name("release"));
        assert!(qualified_name("app.kubernetes.io/name"));
        assert!(!qualified_name("/name"));
        assert!(!qualified_name("Example.com/name"));
        assert!(!qualified_name(&"a".repeat(64)));
        assert!(label_value(""));
        assert!(label_value("kube-prom-stack"));
        assert!(!label_value("a b"));
    }

    fn arb_requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
        let key = prop::sample::select(vec!["a", "b", "app.kubernetes.io/name"]);
        let value = prop::sample::select(vec!["x", "y", "cadvisor"]);
        (
            key,
            prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist"]),
            prop::collection::vec(value, 0..3),
        )
            .prop_map(|(k, op, vals)| {
                let vals: Vec<&str> = match op {
                    "In" | "NotIn" if vals.is_empty() => vec!["x"],
                    "Exists" | "DoesNotExist" => vec![],
                    _ => vals,
                };
                req(k, op, &vals)
            })
    }

    proptest! {
        /// Whatever `satisfy` proposes makes the selector match, never changes a label we have,
        /// and `satisfy` refuses only selectors that no superset of our labels matches (checked
        /// by brute force over the small alphabet).
        #[test]
        fn satisfy_is_sound_and_complete_on_a_small_alphabet(
            pairs in prop::collection::btree_map(
                prop::sample::select(vec!["a", "b", "release"]).prop_map(String::from),
                prop::sample::select(vec!["x", "y"]).prop_map(String::from),
                0..3,
            ),
            exprs in prop::collection::vec(arb_requirement(), 0..4),
        ) {
            let s = LabelSelector {
                match_labels: Some(pairs),
                match_expressions: Some(exprs),
            };
            match satisfy(&s, &ours()) {
                Ok(added) => {
                    let mut all = ours();
                    for (k, v) in &added {
                        prop_assert!(!ours().contains_key(k));
                        all.insert(k.clone(), v.clone());
                    }
                    prop_assert!(matches(&s, &all).unwrap());
                }
                Err(_) => {
                    // No assignment of a, b, release over {absent, x, y, cadvisor, true} works.
                    let choices = [None, Some("x"), Some("y"), Some("cadvisor"), Some("true")];
                    for a in choices {
                        for b in choices {
                            for r in choices {
                                let mut all = ours();
                                for (k, v) in [("a", a), ("b", b), ("release", r)] {
                                    if let Some(v) = v {
                                        all.insert(k.to_string(), v.to_string());
                                    }
                                }
                                prop_assert!(!matches(&s, &all).unwrap());
                            }
                        }
                    }
                }
            }
        }
    }
}
