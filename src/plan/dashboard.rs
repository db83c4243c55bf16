//! `--grafana-dashboard`: a ConfigMap holding a small Grafana dashboard (CPU, memory working
//! set, network, filesystem I/O per pod and container), for Grafana's dashboard sidecar.
//!
//! The sidecar of the grafana chart loads every ConfigMap carrying its label
//! (grafana/helm-charts: charts/grafana values.yaml `sidecar.dashboards.label`, default
//! `grafana_dashboard`); kube-prometheus-stack (and so MicroK8s' observability addon) asks for
//! the value `"1"` (its `grafana.sidecar.dashboards.labelValue`). The sidecar must search our
//! namespace (`sidecar.dashboards.searchNamespace`). The dashboard queries our job
//! (`job="cadvisor"`) by the relabelled `namespace`/`pod`/`container` labels only, so the
//! kubelet's own cAdvisor series (job `kubelet`) are never counted twice.

use std::collections::BTreeMap;

use serde::Serialize;

/// The dashboard (Grafana JSON model, schemaVersion 39), embedded at build time. Its PromQL is
/// checked by `promtool check rules` in the tests.
pub const DASHBOARD_JSON: &str = include_str!("../../templates/grafana-dashboard.json");
/// The label Grafana's sidecar looks for, and kube-prometheus-stack's value.
pub const SIDECAR_LABEL: (&str, &str) = ("grafana_dashboard", "1");
/// The ConfigMap's name and its one key.
pub const CONFIGMAP_NAME: &str = "cadvisor-dashboard";
pub const FILE_NAME: &str = "cadvisor-pods.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardPlan {
    pub name: String,
    /// Our labels plus the sidecar's.
    pub labels: BTreeMap<String, String>,
    /// The key of the ConfigMap's `data` (the dashboard's file name for the sidecar).
    pub file_name: String,
    /// The dashboard JSON, as it is stored.
    pub json: String,
}

/// The dashboard ConfigMap's plan.
pub fn plan() -> DashboardPlan {
    let mut labels = super::object_labels();
    labels.insert(SIDECAR_LABEL.0.to_string(), SIDECAR_LABEL.1.to_string());
    DashboardPlan {
        name: CONFIGMAP_NAME.to_string(),
        labels,
        file_name: FILE_NAME.to_string(),
        json: DASHBOARD_JSON.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_is_grafana_json_with_four_panels_on_our_job() {
        let dash: serde_json::Value = serde_json::from_str(DASHBOARD_JSON).expect("JSON");
        let panels = dash["panels"].as_array().expect("panels");
        assert_eq!(panels.len(), 4);
        for panel in panels {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                assert!(expr.contains(r#"job="cadvisor""#), "{expr}");
                assert!(!expr.contains("container_label_"), "{expr}");
            }
        }
        assert_eq!(plan().labels["grafana_dashboard"], "1");
    }
}
