//! Pure judging of what Prometheus says: are our targets up on every node, and does a query by
//! the relabelled `pod`/`namespace`/`container` labels find the pod the kubelet reports? When
//! not, the first failing step names the cause.

use std::collections::BTreeMap;

use serde::Serialize;

use super::api::{Series, Target};

/// One cAdvisor pod we expect Prometheus to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub node: String,
    pub pod: String,
    /// The pod IP (matches a target's `instance`/address when no `node` label says it).
    pub ip: String,
}

/// The pod (and container) the kubelet reports, queried by the relabelled labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Per node: our target there, as Prometheus sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeTarget {
    pub node: String,
    pub pod: String,
    /// `up`, `down`, `unknown` (not scraped yet) or `missing`.
    pub health: String,
    pub scrape_url: Option<String>,
    pub last_error: Option<String>,
}

/// What the queries found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QueryResult {
    /// Series of the subject by `namespace`/`pod`/`container`.
    pub relabelled: usize,
    /// Series of the subject by `container_label_io_kubernetes_pod_name` without a `pod` label.
    pub unrelabelled: usize,
    /// Any series of the metric in our job.
    pub in_job: usize,
}

/// Why Prometheus does not (yet) show what we want; the first failing step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No target of our job for some node: Prometheus does not select our ServiceMonitor / job.
    TargetMissing,
    /// A target is down: Prometheus cannot reach cAdvisor's port.
    TargetDown,
    /// A target was not scraped yet (health `unknown`).
    NotScrapedYet,
    /// Series carry cAdvisor's container labels but no `pod`: the metric relabelling is missing.
    NotRelabelled,
    /// Our job has series, none of them for the subject pod.
    PodNotSeen,
    /// Our job has no series of the metric at all.
    NoSeries,
}

impl Reason {
    /// Whether waiting (another scrape) may change it.
    pub fn may_pass_later(self) -> bool {
        !matches!(self, Reason::NotRelabelled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub passed: bool,
    pub reason: Option<Reason>,
    /// What is wrong and what to change, when not passed.
    pub message: Option<String>,
    pub nodes: Vec<NodeTarget>,
}

/// The targets of `job` per expected pod: by the `node` target label (our relabelling), the
/// discovered `__meta_kubernetes_pod_node_name`/`__meta_kubernetes_pod_name`, or the pod IP.
pub fn node_targets(job: &str, expected: &[Expected], targets: &[Target]) -> Vec<NodeTarget> {
    let ours: Vec<&Target> = targets
        .iter()
        .filter(|t| t.labels.get("job").map(String::as_str) == Some(job))
        .collect();
    expected
        .iter()
        .map(|e| {
            let found = ours.iter().find(|t| matches(t, e));
            NodeTarget {
                node: e.node.clone(),
                pod: e.pod.clone(),
                health: found.map_or_else(|| "missing".to_string(), |t| t.health.clone()),
                scrape_url: found.map(|t| t.scrape_url.clone()),
                last_error: found
                    .map(|t| t.last_error.clone())
                    .filter(|e| !e.is_empty()),
            }
        })
        .collect()
}

fn matches(t: &Target, e: &Expected) -> bool {
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    if get(&t.labels, "node") == e.node
        || get(&t.discovered_labels, "__meta_kubernetes_pod_node_name") == e.node
        || get(&t.discovered_labels, "__meta_kubernetes_pod_name") == e.pod
    {
        return true;
    }
    let instance = get(&t.labels, "instance");
    !e.ip.is_empty() && instance.rsplit_once(':').map(|(host, _)| host) == Some(e.ip.as_str())
}

/// The verdict: every expected node has an `up` target, and the subject's series carry the
/// relabelled labels.
pub fn judge(
    job: &str,
    expected: &[Expected],
    targets: &[Target],
    subject: Option<&Subject>,
    query: &QueryResult,
) -> Judgement {
    let nodes = node_targets(job, expected, targets);
    let fail = |reason: Reason, message: String, nodes: Vec<NodeTarget>| Judgement {
        passed: false,
        reason: Some(reason),
        message: Some(message),
        nodes,
    };
    let names = |health: &str| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| n.health == health)
            .map(|n| n.node.clone())
            .collect()
    };
    let missing = names("missing");
    if !missing.is_empty() {
        let any = targets
            .iter()
            .any(|t| t.labels.get("job").map(String::as_str) == Some(job));
        let what = if any {
            format!(
                "Prometheus scrapes job {job:?} but has no target for node(s) {}",
                missing.join(", ")
            )
        } else {
            format!("Prometheus has no target of job {job:?}")
        };
        return fail(
            Reason::TargetMissing,
            format!(
                "{what}: it does not select our ServiceMonitor (its serviceMonitorSelector and \
                 serviceMonitorNamespaceSelector must match it), or its scrape job is missing or \
                 selects no cAdvisor pod (add the job of `cadvisor-setup render --scrape-config`)"
            ),
            nodes,
        );
    }
    if let Some(down) = nodes.iter().find(|n| n.health == "down") {
        return fail(
            Reason::TargetDown,
            format!(
                "the target for node {} ({}) is down: {}; Prometheus cannot reach cAdvisor's port \
                 (a NetworkPolicy that does not admit Prometheus, or the wrong port: cAdvisor \
                 listens on 8080, named http)",
                down.node,
                down.scrape_url.as_deref().unwrap_or("?"),
                down.last_error.as_deref().unwrap_or("no error given")
            ),
            nodes,
        );
    }
    if let Some(n) = nodes.iter().find(|n| n.health != "up") {
        return fail(
            Reason::NotScrapedYet,
            format!(
                "the target for node {} was not scraped yet (health {}); wait a scrape interval \
                 (30s) or raise --timeout",
                n.node, n.health
            ),
            nodes,
        );
    }
    let Some(subject) = subject else {
        // No pod to look for: pod-labelled series of any pod will do.
        if query.relabelled > 0 {
            return pass(nodes);
        }
        return no_pod_series(query, "any pod", nodes);
    };
    if query.relabelled > 0 {
        return pass(nodes);
    }
    no_pod_series(
        query,
        &format!(
            "pod {}/{} container {}",
            subject.namespace, subject.pod, subject.container
        ),
        nodes,
    )
}

fn pass(nodes: Vec<NodeTarget>) -> Judgement {
    Judgement {
        passed: true,
        reason: None,
        message: None,
        nodes,
    }
}

fn no_pod_series(query: &QueryResult, what: &str, nodes: Vec<NodeTarget>) -> Judgement {
    let (reason, message) = if query.unrelabelled > 0 {
        (
            Reason::NotRelabelled,
            format!(
                "{} series of {what} carry container_label_io_kubernetes_pod_name but no `pod` \
                 label: the metric relabelling is missing (the ServiceMonitor's \
                 metricRelabelings, or metric_relabel_configs of `cadvisor-setup render \
                 --scrape-config`; target relabelling cannot do it)",
                query.unrelabelled
            ),
        )
    } else if query.in_job > 0 {
        (
            Reason::PodNotSeen,
            format!(
                "Prometheus holds {} series of our job but none for {what}: cAdvisor does not \
                 label that pod yet (check with `cadvisor-setup verify` without --prometheus)",
                query.in_job
            ),
        )
    } else {
        (
            Reason::NoSeries,
            "our targets are up but Prometheus holds no container_memory_working_set_bytes \
             series of our job: is the memory metric group disabled (--metrics) or dropped by \
             a relabelling?"
                .to_string(),
        )
    };
    Judgement {
        passed: false,
        reason: Some(reason),
        message: Some(message),
        nodes,
    }
}

/// PromQL string literal (double-quoted, with `\` and `"` escaped; prometheus/prometheus:
/// promql/parser/lex.go accepts Go escapes).
pub fn promql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The metric every query asks for: the user's example, present with the default metric groups.
pub const METRIC: &str = "container_memory_working_set_bytes";

/// The three queries: by the relabelled labels, by cAdvisor's own label without `pod`, and any
/// series of the job.
pub fn queries(job: &str, subject: Option<&Subject>) -> [String; 3] {
    let job = promql_string(job);
    match subject {
        Some(s) => [
            format!(
                "{METRIC}{{job={job},namespace={},pod={},container={}}}",
                promql_string(&s.namespace),
                promql_string(&s.pod),
                promql_string(&s.container)
            ),
            format!(
                "{METRIC}{{job={job},container_label_io_kubernetes_pod_name={},pod=\"\"}}",
                promql_string(&s.pod)
            ),
            format!("{METRIC}{{job={job}}}"),
        ],
        None => [
            format!("{METRIC}{{job={job},pod!=\"\"}}"),
            format!("{METRIC}{{job={job},container_label_io_kubernetes_pod_name!=\"\",pod=\"\"}}"),
            format!("{METRIC}{{job={job}}}"),
        ],
    }
}

/// Counts the answers of [`queries`].
pub fn query_result(answers: [&[Series]; 3]) -> QueryResult {
    QueryResult {
        relabelled: answers[0].len(),
        unrelabelled: answers[1].len(),
        in_job: answers[2].len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(node: &str, health: &str, error: &str) -> Target {
        Target {
            labels: BTreeMap::from([
                ("job".to_string(), "cadvisor".to_string()),
                ("node".to_string(), node.to_string()),
                ("instance".to_string(), "10.1.0.7:8080".to_string()),
            ]),
            health: health.to_string(),
            last_error: error.to_string(),
            scrape_url: "http://10.1.0.7:8080/metrics".to_string(),
            ..Target::default()
        }
    }

    fn expected(nodes: &[&str]) -> Vec<Expected> {
        nodes
            .iter()
            .map(|n| Expected {
                node: n.to_string(),
                pod: format!("cadvisor-{n}"),
                ip: String::new(),
            })
            .collect()
    }

    fn loki() -> Subject {
        Subject {
            namespace: "loki".into(),
            pod: "loki-gateway-66c8f46897-2m445".into(),
            container: "nginx".into(),
        }
    }

    fn found(relabelled: usize, unrelabelled: usize, in_job: usize) -> QueryResult {
        QueryResult {
            relabelled,
            unrelabelled,
            in_job,
        }
    }

    #[test]
    fn up_everywhere_and_a_relabelled_series_passes() {
        let j = judge(
            "cadvisor",
            &expected(&["n1", "n2"]),
            &[target("n1", "up", ""), target("n2", "up", "")],
            Some(&loki()),
            &found(1, 0, 40),
        );
        assert!(j.passed, "{j:?}");
        assert!(j.nodes.iter().all(|n| n.health == "up"));
    }

    #[test]
    fn each_failing_step_names_its_cause() {
        let sub = loki();
        let all_up = [target("n1", "up", "")];
        let cases: [(Vec<Target>, QueryResult, Reason, &str); 7] = [
            (
                vec![],
                found(0, 0, 0),
                Reason::TargetMissing,
                "serviceMonitorSelector",
            ),
            (
                vec![target("n2", "up", "")],
                found(0, 0, 0),
                Reason::TargetMissing,
                "no target for node(s) n1",
            ),
            (
                vec![target("n1", "down", "connection refused")],
                found(0, 0, 0),
                Reason::TargetDown,
                "NetworkPolicy",
            ),
            (
                vec![target("n1", "unknown", "")],
                found(0, 0, 0),
                Reason::NotScrapedYet,
                "not scraped yet",
            ),
            (
                all_up.to_vec(),
                found(0, 3, 3),
                Reason::NotRelabelled,
                "metricRelabelings",
            ),
            (
                all_up.to_vec(),
                found(0, 0, 5),
                Reason::PodNotSeen,
                "loki/loki-gateway",
            ),
            (
                all_up.to_vec(),
                found(0, 0, 0),
                Reason::NoSeries,
                "--metrics",
            ),
        ];
        for (targets, q, reason, says) in cases {
            let j = judge("cadvisor", &expected(&["n1"]), &targets, Some(&sub), &q);
            assert!(!j.passed);
            assert_eq!(j.reason, Some(reason), "{j:?}");
            let message = j.message.expect("a message");
            assert!(message.contains(says), "{reason:?}: {message}");
        }
        assert!(!Reason::NotRelabelled.may_pass_later());
        assert!(Reason::NotScrapedYet.may_pass_later());
    }

    #[test]
    fn targets_match_nodes_by_label_discovery_or_pod_ip_and_other_jobs_do_not_count() {
        let mut by_meta = Target {
            labels: BTreeMap::from([("job".into(), "cadvisor".into())]),
            health: "up".into(),
            ..Target::default()
        };
        by_meta
            .discovered_labels
            .insert("__meta_kubernetes_pod_node_name".into(), "n1".into());
        let mut by_ip = by_meta.clone();
        by_ip.discovered_labels.clear();
        by_ip
            .labels
            .insert("instance".into(), "10.1.0.9:8080".into());
        let mut kubelet = target("n1", "up", "");
        kubelet.labels.insert("job".into(), "kubelet".into());
        let exp = vec![Expected {
            node: "n1".into(),
            pod: "cadvisor-a".into(),
            ip: "10.1.0.9".into(),
        }];
        for t in [by_meta, by_ip] {
            assert_eq!(node_targets("cadvisor", &exp, &[t])[0].health, "up");
        }
        assert_eq!(
            node_targets("cadvisor", &exp, &[kubelet])[0].health,
            "missing"
        );
    }

    #[test]
    fn queries_quote_their_values() {
        let [q1, q2, q3] = queries(
            "cadvisor",
            Some(&Subject {
                namespace: "a\"b".into(),
                pod: "p\\".into(),
                container: "c".into(),
            }),
        );
        assert_eq!(
            q1,
            r#"container_memory_working_set_bytes{job="cadvisor",namespace="a\"b",pod="p\\",container="c"}"#
        );
        assert!(
            q2.contains(r#"container_label_io_kubernetes_pod_name="p\\",pod="""#),
            "{q2}"
        );
        assert_eq!(q3, r#"container_memory_working_set_bytes{job="cadvisor"}"#);
    }
}
