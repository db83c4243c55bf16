//! The per-node pass rule, pure: cAdvisor's scan and the kubelet's baseline in, a
//! verdict out.
//!
//! A node passes when cAdvisor's metrics carry at least one non-empty
//! `container_label_io_kubernetes_pod_name` and every pod the kubelet reports with containers on
//! that node is among them. When the kubelet's `/metrics/cadvisor` cannot be read (a real API
//! server refuses the node proxy with `400 BadRequest: address not allowed` when the node's
//! address is loopback or link-local, as a real Kubernetes 1.36 API server did), the node is judged on
//! cAdvisor's labels alone, and the verdict says the baseline was unavailable and why, never
//! that the kubelet reports no pods.

use std::collections::BTreeSet;

use crate::metrics::{ScanReport, Verdict};

/// The kubelet's pseudo-container of a pod's sandbox in `/metrics/cadvisor` (older kubelets).
const SANDBOX_CONTAINER: &str = "POD";

/// What the kubelet's `/metrics/cadvisor` said about this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// It could not be read; `reason` says why (the proxy's answer).
    Unavailable { reason: String },
    /// It was read: these `namespace/pod` have containers on the node (possibly none).
    Reported { pods: BTreeSet<String> },
}

impl Baseline {
    /// The pods with at least one real container (not the sandbox) in a scan of the kubelet's
    /// `/metrics/cadvisor`.
    pub fn from_kubelet(report: &ScanReport) -> Baseline {
        let pods = report
            .pods_kubelet_format
            .iter()
            .filter(|p| {
                p.containers
                    .iter()
                    .any(|c| !c.is_empty() && c != SANDBOX_CONTAINER)
            })
            .map(|p| format!("{}/{}", p.namespace, p.pod))
            .collect();
        Baseline::Reported { pods }
    }
}

/// What [`judge`] decided about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVerdict {
    pub passed: bool,
    pub verdict: Verdict,
    /// `namespace/pod` named by `container_label_io_kubernetes_pod_name`, sorted.
    pub labelled_pods: Vec<String>,
    /// `namespace/pod` the kubelet reports with containers; empty when the baseline is
    /// unavailable.
    pub kubelet_pods: Vec<String>,
    /// Kubelet pods cAdvisor does not label.
    pub missing: Vec<String>,
    pub labelled_series: u64,
    pub id_only_series: u64,
    /// Why the baseline is unavailable, when it is (the node was judged on labels alone).
    pub baseline_unavailable: Option<String>,
}

pub fn judge(cadvisor: &ScanReport, kubelet_baseline: Baseline) -> NodeVerdict {
    let labelled: BTreeSet<String> = cadvisor
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.pod))
        .collect();
    let (kubelet_pods, missing, baseline_unavailable) = match kubelet_baseline {
        Baseline::Reported { pods } => {
            let missing = pods.difference(&labelled).cloned().collect();
            (pods.into_iter().collect(), missing, None)
        }
        Baseline::Unavailable { reason } => (Vec::new(), Vec::new(), Some(reason)),
    };
    NodeVerdict {
        passed: cadvisor.passed() && missing.is_empty(),
        verdict: cadvisor.verdict(),
        labelled_pods: labelled.into_iter().collect(),
        kubelet_pods,
        missing,
        labelled_series: cadvisor.labelled_series,
        id_only_series: cadvisor.id_only_series,
        baseline_unavailable,
    }
}

#[cfg(test)]
mod tests {
    //! From real scrapes of a real cluster (tests/fixtures, copied from
    //! shared/fixtures/real-scrapes): cAdvisor with the rendered manifest, the upstream manifest
    //! without the socket mount, and the kubelet's `/metrics/cadvisor` of the same node.

    use super::*;
    use crate::metrics;

    const RENDERED: &str = include_str!("../../tests/fixtures/cadvisor-microk8s-rendered.prom");
    const NO_MOUNT: &str = include_str!("../../tests/fixtures/cadvisor-upstream-nomount.prom");
    const KUBELET: &str = include_str!("../../tests/fixtures/kubelet-metrics-cadvisor.prom");

    fn scan(text: &str) -> ScanReport {
        metrics::scan(text.as_bytes()).expect("a fixture scans")
    }

    fn baseline() -> Baseline {
        Baseline::from_kubelet(&scan(KUBELET))
    }

    #[test]
    fn the_kubelet_baseline_names_the_pods_with_containers() {
        let Baseline::Reported { pods } = baseline() else {
            panic!("a scanned baseline is reported");
        };
        assert_eq!(pods.into_iter().collect::<Vec<_>>(), ["default/rk-test"]);
    }

    #[test]
    fn the_rendered_manifest_labels_every_kubelet_pod_and_passes() {
        let v = judge(&scan(RENDERED), baseline());
        assert!(v.passed, "{v:?}");
        assert_eq!(v.verdict, Verdict::Labelled);
        assert_eq!(
            v.labelled_pods,
            ["cadvisor/cadvisor-vkr82", "default/rk-test"]
        );
        assert_eq!(v.kubelet_pods, ["default/rk-test"]);
        assert!(v.missing.is_empty());
        assert_eq!((v.labelled_series, v.id_only_series), (154, 223));
        assert_eq!(v.baseline_unavailable, None);
    }

    #[test]
    fn the_upstream_manifest_is_id_only_and_names_the_missing_pods() {
        let v = judge(&scan(NO_MOUNT), baseline());
        assert!(!v.passed);
        assert_eq!(v.verdict, Verdict::IdOnly);
        assert!(v.labelled_pods.is_empty());
        assert_eq!(v.missing, ["default/rk-test"]);
        assert!(v.id_only_series > 0);
    }

    #[test]
    fn without_a_baseline_labels_alone_decide_and_the_reason_is_kept() {
        let reason = "400 BadRequest: address not allowed".to_string();
        let unavailable = || Baseline::Unavailable {
            reason: reason.clone(),
        };
        let v = judge(&scan(RENDERED), unavailable());
        assert!(v.passed);
        assert!(v.kubelet_pods.is_empty() && v.missing.is_empty());
        assert_eq!(v.baseline_unavailable.as_deref(), Some(reason.as_str()));
        let v = judge(&scan(NO_MOUNT), unavailable());
        assert!(!v.passed, "id-only metrics fail with or without a baseline");
    }

    #[test]
    fn a_labelled_scrape_missing_a_kubelet_pod_fails() {
        let mut pods = BTreeSet::new();
        pods.insert("default/rk-test".to_string());
        pods.insert("loki/loki-gateway-0".to_string());
        let v = judge(&scan(RENDERED), Baseline::Reported { pods });
        assert!(!v.passed);
        assert_eq!(v.verdict, Verdict::Labelled);
        assert_eq!(v.missing, ["loki/loki-gateway-0"]);
    }

    #[test]
    fn sandbox_only_pods_are_not_in_the_baseline() {
        let text = "container_cpu_usage_seconds_total{container=\"POD\",id=\"/kubepods/a\",namespace=\"ns\",pod=\"p\"} 1\n\
                    container_cpu_usage_seconds_total{container=\"web\",id=\"/kubepods/b\",namespace=\"ns\",pod=\"q\"} 1\n";
        let Baseline::Reported { pods } = Baseline::from_kubelet(&scan(text)) else {
            panic!("reported");
        };
        assert_eq!(pods.into_iter().collect::<Vec<_>>(), ["ns/q"]);
    }
}
