//! `verify --prometheus auto|NAMESPACE/NAME`: the Prometheus Operator's Prometheus, reached
//! through the API server's service proxy on the operator's governing Service
//! `prometheus-operated`, port `web` (prometheus-operator: pkg/prometheus/statefulset.go
//! `governingServiceName`, the container port `web`), under `spec.routePrefix`, over https when
//! `spec.web.tlsConfig` is set (`cluster::prometheus::Web`).

use super::{Endpoint, PrometheusError};
use crate::cluster::prometheus::{self, PrometheusChoice, Web};
use crate::cluster::{Cluster, ClusterError};

/// The Service the operator creates for every Prometheus' pods.
pub const GOVERNING_SERVICE: &str = "prometheus-operated";
/// Its port, named after the container port `web` (9090).
pub const WEB_PORT: &str = "web";

/// The endpoint of the chosen Prometheus and its `namespace/name`. No Prometheus, or several
/// with `auto`, is [`PrometheusError::Choice`] naming what there is; so is `none` (refused before
/// any I/O by `verify`'s settings). `auto` uses the listed object; a name is read.
pub async fn endpoint(
    cluster: &Cluster,
    choice: &PrometheusChoice,
) -> Result<(Endpoint, String), PrometheusError> {
    let (namespace, name, web) = match choice {
        PrometheusChoice::None => {
            return Err(PrometheusError::Choice(
                "--prometheus none: no Prometheus to verify through".to_string(),
            ));
        }
        PrometheusChoice::Named { namespace, name } => {
            let web = prometheus::web(cluster, namespace, name)
                .await?
                .ok_or_else(|| {
                    PrometheusError::Cluster(ClusterError::NotFound {
                        object: format!("Prometheus {namespace}/{name}"),
                        hint: "`cadvisor-setup status` lists the Prometheus objects".to_string(),
                    })
                })?;
            (namespace.clone(), name.clone(), web)
        }
        PrometheusChoice::Auto => {
            let found = prometheus::list(cluster).await?;
            let mut instances = found.map(|f| f.instances).unwrap_or_default();
            match instances.len() {
                1 => {
                    let one = instances.remove(0);
                    (one.namespace, one.name, one.web)
                }
                0 => {
                    return Err(PrometheusError::Choice(
                        "--prometheus auto: the cluster has no Prometheus Operator Prometheus; give Prometheus' URL with --prometheus http://HOST:PORT".to_string(),
                    ));
                }
                several => {
                    let ids: Vec<String> = instances.iter().map(|i| i.id()).collect();
                    return Err(PrometheusError::Choice(format!(
                        "--prometheus auto: {several} Prometheus objects ({}); name one with --prometheus NAMESPACE/NAME",
                        ids.join(", ")
                    )));
                }
            }
        }
    };
    let id = format!("{namespace}/{name}");
    Ok((service_proxy(namespace, &web), id))
}

/// The operator's governing Service of a Prometheus in `namespace` served as `web` says.
pub fn service_proxy(namespace: String, web: &Web) -> Endpoint {
    Endpoint::ServiceProxy {
        namespace,
        service: GOVERNING_SERVICE.to_string(),
        port: WEB_PORT.to_string(),
        https: web.https,
        path_prefix: web.route_prefix.clone(),
    }
}
