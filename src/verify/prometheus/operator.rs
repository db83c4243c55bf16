//! `verify --prometheus auto|NAMESPACE/NAME`: the Prometheus Operator's Prometheus, reached
//! through the API server's service proxy on the operator's governing Service
//! `prometheus-operated`, port `web` (prometheus-operator: pkg/prometheus/statefulset.go
//! `governingServiceName`, the container port `web`), under `spec.routePrefix` (Prometheus'
//! `--web.route-prefix`, default `/`), over https when `spec.web.tlsConfig` is set.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;

use super::{Endpoint, PrometheusError};
use crate::cluster::prometheus::PrometheusChoice;
use crate::cluster::{self, Cluster, ClusterError, classify};

/// The Service the operator creates for every Prometheus' pods.
pub const GOVERNING_SERVICE: &str = "prometheus-operated";
/// Its port, named after the container port `web` (9090).
pub const WEB_PORT: &str = "web";

/// The endpoint of the chosen Prometheus and its `namespace/name`. No Prometheus, or several
/// with `auto`, is [`PrometheusError::Choice`] naming what there is; so is `none` (refused before
/// any I/O by `verify`'s settings).
pub async fn endpoint(
    cluster: &Cluster,
    choice: &PrometheusChoice,
) -> Result<(Endpoint, String), PrometheusError> {
    let (namespace, name) = match choice {
        PrometheusChoice::None => {
            return Err(PrometheusError::Choice(
                "--prometheus none: no Prometheus to verify through".to_string(),
            ));
        }
        PrometheusChoice::Named { namespace, name } => (namespace.clone(), name.clone()),
        PrometheusChoice::Auto => {
            let found = cluster::prometheus::list(cluster).await?;
            let instances = found.map(|f| f.instances).unwrap_or_default();
            match instances.as_slice() {
                [one] => (one.namespace.clone(), one.name.clone()),
                [] => {
                    return Err(PrometheusError::Choice(
                        "--prometheus auto: the cluster has no Prometheus Operator Prometheus; give Prometheus' URL with --prometheus http://HOST:PORT".to_string(),
                    ));
                }
                several => {
                    let ids: Vec<String> = several.iter().map(|i| i.id()).collect();
                    return Err(PrometheusError::Choice(format!(
                        "--prometheus auto: {} Prometheus objects ({}); name one with --prometheus NAMESPACE/NAME",
                        ids.len(),
                        ids.join(", ")
                    )));
                }
            }
        }
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "Prometheus"),
        "prometheuses",
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), &namespace, &resource);
    let object = api
        .get_opt(&name)
        .await
        .map_err(|e| classify(&cluster.server, e))?
        .ok_or_else(|| {
            PrometheusError::Cluster(ClusterError::NotFound {
                object: format!("Prometheus {namespace}/{name}"),
                hint: "`cadvisor-setup status` lists the Prometheus objects".to_string(),
            })
        })?;
    let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
    let endpoint = Endpoint::ServiceProxy {
        namespace: namespace.clone(),
        service: GOVERNING_SERVICE.to_string(),
        port: WEB_PORT.to_string(),
        https: !spec["web"]["tlsConfig"].is_null(),
        path_prefix: route_prefix(&spec),
    };
    Ok((endpoint, format!("{namespace}/{name}")))
}

/// `spec.routePrefix` as an absolute path without a trailing slash (`""` for `/`); anything
/// that is not a plain path is ignored (the default).
fn route_prefix(spec: &Value) -> String {
    let prefix = spec["routePrefix"].as_str().unwrap_or("/").trim();
    let plain = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !plain || prefix.contains("..") {
        return String::new();
    }
    format!("/{}", prefix.trim_matches('/'))
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_prefix_is_a_plain_path_or_nothing() {
        let of = |v: Value| route_prefix(&serde_json::json!({ "routePrefix": v }));
        assert_eq!(route_prefix(&Value::Null), "");
        assert_eq!(of("/".into()), "");
        assert_eq!(of("/prometheus/".into()), "/prometheus");
        assert_eq!(of("prometheus".into()), "/prometheus");
        assert_eq!(of("/a?b#c".into()), "");
        assert_eq!(of("/../x".into()), "");
    }
}
