//! Prometheus' HTTP API, read-only: `/api/v1/targets` and `/api/v1/query`
//! (prometheus.io/docs/prometheus/latest/querying/api/), reached at a base URL or through the
//! API server's service proxy. Every answer is read up to a bound and parsed into the few fields
//! the judge needs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster::{self, Cluster};
use crate::verify::http;

/// The most of a `/api/v1/targets` answer we read: a big Prometheus has thousands of targets
/// at about 1-2 kB each.
pub const MAX_TARGETS_ANSWER: u64 = 32 * 1024 * 1024;
/// The most of a `/api/v1/query` answer we read (our queries return a handful of series).
pub const MAX_QUERY_ANSWER: u64 = 4 * 1024 * 1024;

/// Where Prometheus' API is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Endpoint {
    /// A base URL, perhaps with a path prefix (`http://127.0.0.1:9090`, `https://host/prometheus`).
    Url { url: String },
    /// Through the API server's service proxy
    /// (`/api/v1/namespaces/NS/services/[https:]NAME:PORT/proxy/...`, Kubernetes API "proxy"
    /// subresource of Service), with the kubeconfig's credentials.
    ServiceProxy {
        namespace: String,
        service: String,
        /// Port name or number.
        port: String,
        https: bool,
        /// Prometheus' `--web.route-prefix` (`/` or e.g. `/prometheus`).
        path_prefix: String,
    },
}

impl Endpoint {
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Url { url } => url.clone(),
            Endpoint::ServiceProxy {
                namespace,
                service,
                port,
                ..
            } => format!("service {namespace}/{service}:{port} (through the API server)"),
        }
    }

    /// The URL or the API server path of `api_path` (`/api/v1/...?...`).
    fn location(&self, api_path: &str) -> String {
        match self {
            Endpoint::Url { url } => format!("{}{api_path}", url.trim_end_matches('/')),
            Endpoint::ServiceProxy {
                namespace,
                service,
                port,
                https,
                path_prefix,
            } => {
                let scheme = if *https { "https:" } else { "" };
                let prefix = path_prefix.trim_end_matches('/');
                format!(
                    "/api/v1/namespaces/{namespace}/services/{scheme}{service}:{port}/proxy{prefix}{api_path}"
                )
            }
        }
    }
}

/// Why Prometheus' API could not be read. Each message is complete on its own line.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot read Prometheus at {location}: {error}; check --prometheus (e.g. \
         `kubectl -n observability port-forward svc/kube-prom-stack-kube-prome-prometheus 9090` \
         and --prometheus http://127.0.0.1:9090)"
    )]
    Unreachable { location: String, error: String },
    #[error("Prometheus at {location} answered HTTP {status}: {excerpt}")]
    Status {
        location: String,
        status: u16,
        excerpt: String,
    },
    #[error("the answer of {location} is larger than {limit} bytes")]
    TooLarge { location: String, limit: u64 },
    #[error("the answer of {location} is not Prometheus API JSON: {reason}")]
    Invalid { location: String, reason: String },
}

/// The most active targets we read: a big Prometheus has thousands. Each one read costs a
/// fixed size whatever its JSON, so this with [`MAX_TARGETS_ANSWER`] bounds the memory (a 32 MiB
/// answer of `{}` targets was 11 million of them, over 1.5 GB).
pub const MAX_TARGETS: usize = 100_000;

/// The target labels the judge reads (`judge::node_targets`); the others are skipped as they are
/// read, so a target with thousands of labels costs no more than one with three.
const KEPT_LABELS: &[&str] = &["job", "node", "instance"];
const KEPT_DISCOVERED_LABELS: &[&str] = &[
    "__meta_kubernetes_pod_node_name",
    "__meta_kubernetes_pod_name",
];

/// One active target (`data.activeTargets[]`), with only the labels the judge reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct Target {
    #[serde(default, deserialize_with = "kept_labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "discoveredLabels",
        skip_serializing,
        deserialize_with = "kept_discovered_labels"
    )]
    pub discovered_labels: BTreeMap<String, String>,
    #[serde(default, rename = "scrapePool")]
    pub scrape_pool: String,
    #[serde(default, rename = "scrapeUrl")]
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    #[serde(default)]
    pub health: String,
    #[serde(default, rename = "lastError")]
    pub last_error: String,
}

/// One series of an instant vector (`data.result[]`): its labels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct Series {
    #[serde(default)]
    pub metric: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TargetsData {
    #[serde(
        default,
        rename = "activeTargets",
        deserialize_with = "at_most_targets"
    )]
    active_targets: Vec<Target>,
}

fn kept_labels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(KeptLabels(KEPT_LABELS))
}

fn kept_discovered_labels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(KeptLabels(KEPT_DISCOVERED_LABELS))
}

/// A label map of which only these names are kept.
struct KeptLabels(&'static [&'static str]);

impl<'de> serde::de::Visitor<'de> for KeptLabels {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of label names to values")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.0.contains(&name.as_ref()) {
                out.insert(name.into_owned(), map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

fn at_most_targets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Target>, D::Error> {
    struct AtMost;
    impl<'de> serde::de::Visitor<'de> for AtMost {
        type Value = Vec<Target>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of targets")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<Target>, A::Error> {
            let mut out = Vec::new();
            while let Some(target) = seq.next_element::<Target>()? {
                if out.len() == MAX_TARGETS {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_TARGETS} active targets, more than any real Prometheus has"
                    )));
                }
                out.push(target);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(AtMost)
}

#[derive(Debug, Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Series>,
}

/// Reads Prometheus' API at one endpoint.
pub struct Api<'a> {
    pub endpoint: &'a Endpoint,
    /// Needed for [`Endpoint::ServiceProxy`].
    pub cluster: Option<&'a Cluster>,
    /// Per request.
    pub timeout: Duration,
}

impl Api<'_> {
    /// The active targets (`/api/v1/targets?state=active`).
    pub async fn targets(&self) -> Result<Vec<Target>, ApiError> {
        let data: TargetsData = self
            .get("/api/v1/targets?state=active", MAX_TARGETS_ANSWER)
            .await?;
        Ok(data.active_targets)
    }

    /// An instant query's series (`/api/v1/query?query=EXPR`); the value is not needed.
    pub async fn query(&self, expr: &str) -> Result<Vec<Series>, ApiError> {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let data: QueryData = self.get(&path, MAX_QUERY_ANSWER).await?;
        if data.result_type != "vector" {
            return Err(ApiError::Invalid {
                location: self.endpoint.location(&path),
                reason: format!(
                    "resultType {} for an instant vector query",
                    data.result_type
                ),
            });
        }
        Ok(data.result)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        api_path: &str,
        limit: u64,
    ) -> Result<T, ApiError> {
        let location = self.endpoint.location(api_path);
        let (status, body, complete) = match self.endpoint {
            Endpoint::Url { .. } => {
                let answer = http::get_bounded(&location, "application/json", limit, self.timeout)
                    .await
                    .map_err(|e| ApiError::Unreachable {
                        location: location.clone(),
                        error: e.to_string(),
                    })?;
                (answer.status.as_u16(), answer.body, answer.complete)
            }
            Endpoint::ServiceProxy { .. } => {
                let Some(cluster) = self.cluster else {
                    return Err(ApiError::Unreachable {
                        location,
                        error: "no cluster connection for the service proxy".to_string(),
                    });
                };
                let read = proxy_get(cluster, &location, limit);
                match tokio::time::timeout(self.timeout, read).await {
                    Ok(result) => result?,
                    Err(_) => {
                        return Err(ApiError::Unreachable {
                            location,
                            error: format!("no complete answer within {:?}", self.timeout),
                        });
                    }
                }
            }
        };
        if !complete {
            return Err(ApiError::TooLarge { location, limit });
        }
        parse(&location, status, &body)
    }
}

/// GET through the API server; a proxy error (503 from the service proxy) is an error status.
async fn proxy_get(
    cluster: &Cluster,
    path: &str,
    limit: u64,
) -> Result<(u16, Vec<u8>, bool), ApiError> {
    let unreachable = |error: String| ApiError::Unreachable {
        location: path.to_string(),
        error,
    };
    let request = ::http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let body = cluster
        .client
        .request_stream(request)
        .await
        .map_err(|e| unreachable(cluster::classify(&cluster.server, e).to_string()))?;
    let (bytes, complete) = cluster::proxy::read_at_most(body, limit)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok((200, bytes, complete))
}

/// Parses an API answer: `{"status":"success","data":...}`, or an error status / body.
fn parse<T: serde::de::DeserializeOwned>(
    location: &str,
    status: u16,
    body: &[u8],
) -> Result<T, ApiError> {
    let envelope: Result<Envelope<T>, _> = serde_json::from_slice(body);
    match envelope {
        Ok(Envelope {
            status: s,
            data: Some(data),
            ..
        }) if s == "success" && (200..300).contains(&status) => Ok(data),
        Ok(Envelope { error, .. }) if !(200..300).contains(&status) || error.is_some() => {
            Err(ApiError::Status {
                location: location.to_string(),
                status,
                excerpt: error.unwrap_or_default(),
            })
        }
        Ok(_) => Err(ApiError::Invalid {
            location: location.to_string(),
            reason: "no `data` in a successful answer".to_string(),
        }),
        Err(_) if !(200..300).contains(&status) => Err(ApiError::Status {
            location: location.to_string(),
            status,
            excerpt: excerpt(body),
        }),
        Err(e) => Err(ApiError::Invalid {
            location: location.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The first line of a body, at most 200 characters, printable.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_a_url_and_of_the_service_proxy() {
        let url = Endpoint::Url {
            url: "http://127.0.0.1:9090/prom/".into(),
        };
        assert_eq!(
            url.location("/api/v1/targets"),
            "http://127.0.0.1:9090/prom/api/v1/targets"
        );
        let proxy = Endpoint::ServiceProxy {
            namespace: "observability".into(),
            service: "prometheus".into(),
            port: "web".into(),
            https: false,
            path_prefix: "/".into(),
        };
        assert_eq!(
            proxy.location("/api/v1/query?query=up"),
            "/api/v1/namespaces/observability/services/prometheus:web/proxy/api/v1/query?query=up"
        );
        let prefixed = Endpoint::ServiceProxy {
            namespace: "monitoring".into(),
            service: "prometheus-operated".into(),
            port: "web".into(),
            https: true,
            path_prefix: "/prometheus/".into(),
        };
        assert_eq!(
            prefixed.location("/api/v1/targets"),
            "/api/v1/namespaces/monitoring/services/https:prometheus-operated:web/proxy/prometheus/api/v1/targets"
        );
    }

    #[test]
    fn answers_parse_and_errors_say_why() {
        let targets = br#"{"status":"success","data":{"activeTargets":[{"labels":{"job":"cadvisor","node":"n1"},"discoveredLabels":{"__meta_kubernetes_pod_node_name":"n1"},"scrapePool":"cadvisor","scrapeUrl":"http://10.1.0.7:8080/metrics","health":"up","lastError":"","lastScrape":"2026-12-06T09:00:00Z"}],"droppedTargets":[]}}"#;
        let data: TargetsData = parse("x", 200, targets).expect("targets");
        assert_eq!(data.active_targets[0].health, "up");
        assert_eq!(
            data.active_targets[0].discovered_labels["__meta_kubernetes_pod_node_name"],
            "n1"
        );
        let bad_query = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#;
        let err = parse::<QueryData>("x", 400, bad_query).unwrap_err();
        assert!(err.to_string().contains("parse error"), "{err}");
        let err = parse::<QueryData>("x", 503, b"<html>no</html>").unwrap_err();
        assert!(matches!(err, ApiError::Status { status: 503, .. }), "{err}");
        let err = parse::<QueryData>("x", 200, b"not json").unwrap_err();
        assert!(matches!(err, ApiError::Invalid { .. }), "{err}");
    }

    #[test]
    fn targets_are_bounded_in_number_and_keep_only_the_labels_the_judge_reads() {
        let mut body = String::from(r#"{"status":"success","data":{"activeTargets":["#);
        body.push_str(&vec!["{}"; MAX_TARGETS + 1].join(","));
        body.push_str("]}}");
        let err = parse::<TargetsData>("x", 200, body.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("more than 100000 active targets"),
            "{err}"
        );

        let many: Vec<String> = (0..10_000).map(|i| format!(r#""l{i}":"v""#)).collect();
        let body = format!(
            r#"{{"status":"success","data":{{"activeTargets":[{{"labels":{{{},"job":"cadvisor","instance":"10.1.0.7:8080"}},"discoveredLabels":{{{},"__meta_kubernetes_pod_name":"p"}},"health":"up"}}]}}}}"#,
            many.join(","),
            many.join(",")
        );
        let data: TargetsData = parse("x", 200, body.as_bytes()).expect("targets");
        let target = &data.active_targets[0];
        assert_eq!(
            target.labels.len(),
            2,
            "{:?}",
            target.labels.keys().take(5).collect::<Vec<_>>()
        );
        assert_eq!(target.labels["job"], "cadvisor");
        assert_eq!(target.discovered_labels.len(), 1);
        assert_eq!(target.discovered_labels["__meta_kubernetes_pod_name"], "p");
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(encode(r#"up{job="a b"}"#), "up%7Bjob%3D%22a%20b%22%7D");
    }
}
