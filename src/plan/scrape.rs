//! The scrape job for a Prometheus without the Prometheus Operator (`render --scrape-config`):
//! the same target as the ServiceMonitor (cAdvisor's pods, port `http`) and the same metric
//! relabelings ([`super::metric_relabelings`]), found by Kubernetes service discovery.
//!
//! Pure: only the (validated) namespace comes from input; everything else is ours.

use serde::Serialize;

use super::{PlanError, Relabel};
use crate::validate;

/// The job name. The Prometheus Operator names a ServiceMonitor's job after the Service
/// (prometheus-operator: Documentation/api.md `jobLabel`, unset), which is `cadvisor` too, so
/// `job="cadvisor"` finds our series whichever way they were scraped (the dashboard relies on it).
pub const JOB_NAME: &str = super::NAME;

/// Kubernetes service discovery roles and what `discovery/kubernetes/kubernetes.go` of
/// prometheus/prometheus lets each role's `selectors` name (`allowedSelectors`).
pub const SD_ROLES: [(&str, &[&str]); 6] = [
    ("pod", &["pod"]),
    ("service", &["service"]),
    ("endpoints", &["pod", "service", "endpoints"]),
    ("endpointslice", &["pod", "service", "endpointslice"]),
    ("node", &["node"]),
    ("ingress", &["ingress"]),
];

/// One `kubernetes_sd_configs` selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdSelector {
    pub role: String,
    /// A label selector (`k=v,k2=v2`), or empty.
    pub label: String,
    /// A field selector (`status.phase=Running`), or empty.
    pub field: String,
}

/// What `templates/scrape-config.yaml.j2` renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScrapeJob {
    pub job_name: String,
    pub interval: String,
    /// Whether Prometheus keeps cAdvisor's own sample timestamps (see the template's comment).
    pub honor_timestamps: bool,
    /// Service discovery role: `pod`.
    pub role: String,
    /// The only namespace discovery watches: cAdvisor's.
    pub namespace: String,
    pub selectors: Vec<SdSelector>,
    /// The container port (by name) that serves `/metrics`.
    pub port_name: String,
    pub relabelings: Vec<Relabel>,
    pub metric_relabelings: Vec<Relabel>,
}

/// The job for cAdvisor installed in `namespace`.
pub fn job(namespace: &str) -> Result<ScrapeJob, PlanError> {
    validate::dns1123_label("--namespace", namespace)?;
    let label = super::selector()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(ScrapeJob {
        job_name: JOB_NAME.to_string(),
        interval: super::SCRAPE_INTERVAL.to_string(),
        // cAdvisor stamps container series with the time it housekept them, up to
        // --max_housekeeping_interval (15s) before the scrape. Keeping that stamp means series
        // of deleted containers are never marked stale (Prometheus marks only samples without
        // explicit timestamps; `track_timestamps_staleness` changes that from 2.48 on, and older
        // 2.x refuse the key). kube-prometheus sets honorTimestamps: false for cAdvisor for this
        // reason (prometheus-operator/kube-prometheus:
        // manifests/kubernetesControlPlane-serviceMonitorKubelet.yaml).
        honor_timestamps: false,
        role: "pod".to_string(),
        namespace: namespace.to_string(),
        selectors: vec![SdSelector {
            role: "pod".to_string(),
            label,
            // Pods of a finished rollout or a failed start have no working endpoint.
            field: "status.phase=Running".to_string(),
        }],
        port_name: "http".to_string(),
        relabelings: super::target_relabelings(),
        metric_relabelings: super::metric_relabelings(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_watches_one_namespace_and_relabels_like_the_service_monitor() {
        let job = job("monitoring").expect("job");
        assert_eq!(job.namespace, "monitoring");
        assert_eq!(job.selectors[0].label, "app.kubernetes.io/name=cadvisor");
        assert_eq!(job.metric_relabelings, super::super::metric_relabelings());
        assert!(!job.honor_timestamps);
        let allowed = SD_ROLES
            .iter()
            .find(|(r, _)| *r == job.role)
            .expect("a known role")
            .1;
        assert!(
            job.selectors
                .iter()
                .all(|s| allowed.contains(&s.role.as_str()))
        );
        assert!(super::job("Not_A_Label").is_err());
    }
}
