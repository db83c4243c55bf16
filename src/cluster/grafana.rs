//! Is Grafana's dashboard sidecar in use? (`--grafana-dashboard auto`)
//!
//! The grafana chart's sidecar (and kube-prometheus-stack's, which MicroK8s' observability addon
//! installs) loads ConfigMaps carrying the label `grafana_dashboard`; its own dashboards carry
//! it (grafana/helm-charts: charts/grafana sidecar.dashboards.label). One such ConfigMap anywhere
//! is the cheap sign: a single list call with a label selector.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

use super::{Cluster, ClusterError, classify};
use crate::plan::dashboard::SIDECAR_LABEL;

/// Whether some ConfigMap carries the sidecar's label. `None` when we may not list ConfigMaps
/// in every namespace (then nobody can tell; the caller keeps the dashboard off).
pub async fn sidecar_in_use(cluster: &Cluster) -> Result<Option<bool>, ClusterError> {
    let api: Api<ConfigMap> = Api::all(cluster.client.clone());
    let params = ListParams::default().labels(SIDECAR_LABEL.0).limit(1);
    match api.list(&params).await {
        Ok(list) => Ok(Some(!list.items.is_empty())),
        Err(e) => match classify(&cluster.server, e) {
            ClusterError::Forbidden { .. } => Ok(None),
            other => Err(other),
        },
    }
}
