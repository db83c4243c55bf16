//! Prometheus in the tests. Debian's `prometheus` and `promtool` (2.42) are built without
//! Kubernetes service discovery (`field kubernetes_sd_configs not found`), so:
//! - [`check_kubernetes_sd`] checks a `kubernetes_sd_configs` entry by the rules upstream's
//!   `SDConfig.UnmarshalYAML` applies (prometheus/prometheus: discovery/kubernetes/kubernetes.go:
//!   roles, `allowedSelectors`, duplicated selector roles, label and field selectors that parse,
//!   namespaces), and [`check_meta_labels`] that the relabel rules read only meta labels the
//!   role attaches (discovery/kubernetes/pod.go);
//! - [`with_static_targets`] swaps the service discovery for a static target list, every relabel
//!   rule kept, for the real `promtool check config` and a real [`RealPrometheus`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::real;

/// SD roles and the selector roles each accepts (`allowedSelectors` in kubernetes.go).
pub const ROLES: [(&str, &[&str]); 6] = [
    ("pod", &["pod"]),
    ("service", &["service"]),
    ("endpoints", &["pod", "service", "endpoints"]),
    ("endpointslice", &["pod", "service", "endpointslice"]),
    ("node", &["node"]),
    ("ingress", &["ingress"]),
];

/// Keys of `SDConfig` besides the inline HTTP client configuration (kubernetes.go).
const SD_KEYS: [&str; 7] = [
    "api_server",
    "role",
    "kubeconfig_file",
    "namespaces",
    "selectors",
    "attach_metadata",
    "preferred_node_address_types",
];

/// Inline `config.HTTPClientConfig` keys (prometheus/common: config/http_config.go): allowed
/// only together with `api_server` ("to use custom HTTP client configuration please provide
/// the 'api_server' URL explicitly").
const HTTP_CLIENT_KEYS: [&str; 9] = [
    "basic_auth",
    "authorization",
    "oauth2",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "proxy_url",
    "follow_redirects",
    "enable_http2",
];

/// Meta labels the `pod` role attaches to every target (discovery/kubernetes/pod.go), and the
/// prefixes of the per-label ones.
const POD_META_LABELS: [&str; 17] = [
    "__meta_kubernetes_namespace",
    "__meta_kubernetes_pod_name",
    "__meta_kubernetes_pod_ip",
    "__meta_kubernetes_pod_container_init",
    "__meta_kubernetes_pod_container_name",
    "__meta_kubernetes_pod_container_id",
    "__meta_kubernetes_pod_container_image",
    "__meta_kubernetes_pod_container_port_name",
    "__meta_kubernetes_pod_container_port_number",
    "__meta_kubernetes_pod_container_port_protocol",
    "__meta_kubernetes_pod_ready",
    "__meta_kubernetes_pod_phase",
    "__meta_kubernetes_pod_node_name",
    "__meta_kubernetes_pod_host_ip",
    "__meta_kubernetes_pod_uid",
    "__meta_kubernetes_pod_controller_kind",
    "__meta_kubernetes_pod_controller_name",
];
const POD_META_PREFIXES: [&str; 4] = [
    "__meta_kubernetes_pod_label_",
    "__meta_kubernetes_pod_labelpresent_",
    "__meta_kubernetes_pod_annotation_",
    "__meta_kubernetes_pod_annotationpresent_",
];

/// One `kubernetes_sd_configs` entry, as upstream's unmarshalling judges it (strict YAML:
/// unknown keys are errors too).
pub fn check_kubernetes_sd(sd: &Value) -> Result<(), String> {
    let sd = sd
        .as_object()
        .ok_or("a kubernetes_sd_configs entry is a mapping")?;
    for key in sd.keys() {
        if !SD_KEYS.contains(&key.as_str()) && !HTTP_CLIENT_KEYS.contains(&key.as_str()) {
            return Err(format!("field {key} not found in type kubernetes.plain"));
        }
    }
    if sd.keys().any(|k| HTTP_CLIENT_KEYS.contains(&k.as_str())) && !sd.contains_key("api_server") {
        return Err("to use custom HTTP client configuration please provide the 'api_server' URL explicitly".into());
    }
    let role = match sd.get("role") {
        None | Some(Value::Null) => {
            return Err(
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"
                    .into(),
            );
        }
        Some(Value::String(role)) => role.as_str(),
        Some(other) => return Err(format!("role {other} is not a string")),
    };
    let allowed = ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, a)| *a)
        .ok_or_else(|| format!("unknown Kubernetes SD role {role:?}"))?;
    if let Some(ns) = sd.get("namespaces") {
        let ns = ns.as_object().ok_or("namespaces is a mapping")?;
        for (key, value) in ns {
            match key.as_str() {
                "names" => {
                    let names = value.as_array().ok_or("namespaces.names is a list")?;
                    for name in names {
                        let name = name.as_str().ok_or("a namespace name is a string")?;
                        dns1123_label(name)?;
                    }
                }
                "own_namespace" => {
                    value
                        .as_bool()
                        .ok_or("namespaces.own_namespace is a boolean")?;
                }
                other => return Err(format!("field {other} not found in type kubernetes.plain")),
            }
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for selector in sd
        .get("selectors")
        .map(|s| s.as_array().ok_or("selectors is a list"))
        .transpose()?
        .into_iter()
        .flatten()
    {
        let selector = selector.as_object().ok_or("a selector is a mapping")?;
        for key in selector.keys() {
            if !["role", "label", "field"].contains(&key.as_str()) {
                return Err(format!(
                    "field {key} not found in type kubernetes.SelectorConfig"
                ));
            }
        }
        let sel_role = selector.get("role").and_then(Value::as_str).unwrap_or("");
        if !ROLES.iter().any(|(r, _)| *r == sel_role) {
            return Err(format!("unknown Kubernetes SD role {sel_role:?}"));
        }
        if seen.contains(&sel_role) {
            return Err(format!("duplicated selector role: {sel_role}"));
        }
        seen.push(sel_role);
        if !allowed.contains(&sel_role) {
            return Err(format!(
                "{role} role supports only {} selectors",
                allowed.join(", ")
            ));
        }
        if let Some(field) = selector.get("field") {
            field_selector(field.as_str().ok_or("field is a string")?)?;
        }
        if let Some(label) = selector.get("label") {
            label_selector(label.as_str().ok_or("label is a string")?)?;
        }
    }
    Ok(())
}

fn dns1123_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    ok.then_some(())
        .ok_or_else(|| format!("{name:?} is not a namespace name (DNS-1123 label)"))
}

/// A label value or the name part of a key (k8s.io/apimachinery: util/validation).
fn label_name(text: &str, may_be_empty: bool) -> bool {
    if text.is_empty() {
        return may_be_empty;
    }
    let b = text.as_bytes();
    text.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// A qualified label key: `[prefix/]name`, the prefix a DNS subdomain.
fn label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| dns1123_label(p).is_ok())
                && label_name(name, false)
        }
        None => label_name(key, false),
    }
}

/// k8s.io/apimachinery `labels.Parse`: comma-separated requirements `k`, `!k`, `k=v`, `k==v`,
/// `k!=v`, `k in (a,b)`, `k notin (a,b)`.
pub fn label_selector(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("label selector {text:?}: {why}"));
    let mut rest = text.trim();
    while !rest.is_empty() {
        // A set requirement holds commas inside its parentheses.
        let end = match (rest.find(','), rest.find('(')) {
            (Some(c), Some(p)) if p < c => rest.find(')').map(|i| i + 1).unwrap_or(rest.len()),
            (Some(c), _) => c,
            (None, _) => rest.len(),
        };
        let req = rest[..end].trim();
        rest = rest[end..].trim_start_matches(',').trim();
        if let Some(key) = req.strip_prefix('!') {
            if !label_key(key.trim()) {
                return bad("bad key after `!`");
            }
            continue;
        }
        let words: Vec<&str> = req.split_whitespace().collect();
        if let [key, op, ..] = words.as_slice()
            && (*op == "in" || *op == "notin")
        {
            let values = req
                .split_once('(')
                .and_then(|(_, v)| v.strip_suffix(')'))
                .ok_or("a set needs (values)");
            let Ok(values) = values else {
                return bad("a set needs (values)");
            };
            if !label_key(key) || !values.split(',').all(|v| label_name(v.trim(), true)) {
                return bad("bad key or value in a set");
            }
            continue;
        }
        let (key, value) = match ["==", "!=", "="].iter().find_map(|op| req.split_once(op)) {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (req, None),
        };
        if !label_key(key) || !value.is_none_or(|v| label_name(v, true)) {
            return bad("bad key or value");
        }
    }
    Ok(())
}

/// k8s.io/apimachinery `fields.ParseSelector`: comma-separated `k=v`, `k==v`, `k!=v`.
pub fn field_selector(text: &str) -> Result<(), String> {
    for req in text.split(',').filter(|r| !r.trim().is_empty()) {
        let Some((key, _)) = ["!=", "==", "="].iter().find_map(|op| req.split_once(op)) else {
            return Err(format!(
                "invalid selector: '{text}'; can't understand '{req}'"
            ));
        };
        if key.trim().is_empty() {
            return Err(format!("invalid selector: '{text}': empty field name"));
        }
    }
    Ok(())
}

/// Every `__meta_kubernetes_*` label the job's relabel rules read is one its role attaches.
pub fn check_meta_labels(job: &Value) -> Result<(), String> {
    let role = job["kubernetes_sd_configs"][0]["role"]
        .as_str()
        .unwrap_or_default();
    for rule in job["relabel_configs"].as_array().into_iter().flatten() {
        for label in rule["source_labels"].as_array().into_iter().flatten() {
            let label = label.as_str().unwrap_or_default();
            if !label.starts_with("__meta_kubernetes_") {
                continue;
            }
            let known = role == "pod"
                && (POD_META_LABELS.contains(&label)
                    || POD_META_PREFIXES.iter().any(|p| label.starts_with(p)));
            if !known {
                return Err(format!("role {role} attaches no {label}"));
            }
        }
    }
    Ok(())
}

/// The one job of a rendered `scrape_configs:` document.
pub fn the_job(document: &Value) -> &Value {
    let jobs = document["scrape_configs"]
        .as_array()
        .expect("scrape_configs list");
    assert_eq!(jobs.len(), 1, "{document:#}");
    &jobs[0]
}

/// `document` with its job's `kubernetes_sd_configs` replaced by `static_configs` (the targets
/// and labels the service discovery would have produced) and `set` keys added (scheme,
/// metrics_path, tls_config, intervals); every relabel rule is kept.
pub fn with_static_targets(
    document: &Value,
    static_configs: Value,
    set: &[(&str, Value)],
) -> Value {
    let mut doc = document.clone();
    let job = doc["scrape_configs"][0]
        .as_object_mut()
        .expect("a job mapping");
    assert!(
        job.remove("kubernetes_sd_configs").is_some(),
        "the job has no kubernetes_sd_configs to swap"
    );
    job.insert("static_configs".into(), static_configs);
    for (key, value) in set {
        job.insert((*key).to_string(), value.clone());
    }
    doc
}

/// The job of `document` (`render --scrape-config -o json`'s `scrape_config`) scraping cAdvisor
/// pod `pod` (namespace `cadvisor`, node `node-1`) through the API server's pod proxy at `target`
/// (`HOST:PORT`) with `cluster`'s admin certificate (written into `tls_dir`): the static target
/// the service discovery would have produced, every relabel rule kept, scraped every second.
pub fn pod_proxy_job(
    document: &Value,
    cluster: &super::fake_api::FakeCluster,
    tls_dir: &Path,
    target: &str,
    pod: &str,
) -> Value {
    let [ca, cert, key] = cluster.write_client_tls_files(tls_dir);
    with_static_targets(
        document,
        serde_json::json!([{"targets": [target],
            "labels": pod_target_labels("cadvisor", pod, "node-1", "http")}]),
        &[
            ("scheme", "https".into()),
            (
                "metrics_path",
                format!("/api/v1/namespaces/cadvisor/pods/{pod}:8080/proxy/metrics").into(),
            ),
            (
                "tls_config",
                serde_json::json!({"ca_file": ca, "cert_file": cert, "key_file": key}),
            ),
            // Quicker than 30s for the test; the rules are unchanged.
            ("scrape_interval", "1s".into()),
            ("scrape_timeout", "1s".into()),
        ],
    )
}

/// The labels `role: pod` gives the target of one cAdvisor pod (pod.go), for a static list.
pub fn pod_target_labels(namespace: &str, pod: &str, node: &str, port_name: &str) -> Value {
    let mut labels = Map::new();
    for (k, v) in [
        ("__meta_kubernetes_namespace", namespace),
        ("__meta_kubernetes_pod_name", pod),
        ("__meta_kubernetes_pod_node_name", node),
        ("__meta_kubernetes_pod_container_name", "cadvisor"),
        ("__meta_kubernetes_pod_container_port_name", port_name),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_ready", "true"),
    ] {
        labels.insert(k.into(), v.into());
    }
    Value::Object(labels)
}

pub fn promtool() -> Option<PathBuf> {
    real::tool_path("promtool")
}

pub fn require_promtool() -> bool {
    real::require(
        "promtool (apt-get install prometheus)",
        promtool().is_some(),
    )
}

pub fn require_prometheus() -> bool {
    require_promtool()
        && real::require(
            "prometheus (apt-get install prometheus)",
            real::tool_path("prometheus").is_some(),
        )
}

/// `promtool ARGS FILE` with `text` written to a temporary FILE named `name`.
pub fn promtool_on(args: &[&str], name: &str, text: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(name);
    std::fs::write(&file, text).expect("write");
    Command::new(promtool().expect("promtool"))
        .args(args)
        .arg(&file)
        .output()
        .expect("run promtool")
}

pub fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A real Prometheus (Debian's) on 127.0.0.1, with its own TSDB in a temporary directory;
/// killed (by its pid) when dropped.
pub struct RealPrometheus {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Serves https (its web config's `tls_server_config`).
    tls: bool,
    /// `--web.route-prefix` as a path without a trailing slash (`""`: `/`).
    route_prefix: String,
}

/// How a [`RealPrometheus`] serves its web endpoint.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// https with this certificate and key (`--web.config.file`, `tls_server_config`;
    /// prometheus.io/docs/prometheus/latest/configuration/https/).
    pub tls: Option<super::fake_api::tls::Pem>,
    /// `--web.route-prefix` (e.g. `/prom`).
    pub route_prefix: Option<String>,
}

impl RealPrometheus {
    /// Starts it on `config` (JSON is YAML) and waits until `/-/ready` answers 200.
    pub fn start(config: &Value) -> RealPrometheus {
        RealPrometheus::start_serving(config, &Web::default())
    }

    /// [`RealPrometheus::start`], serving its web endpoint as `web` says.
    pub fn start_serving(config: &Value, web: &Web) -> RealPrometheus {
        let dir = tempfile::Builder::new()
            .prefix("prometheus")
            .tempdir()
            .expect("tempdir");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, serde_json::to_string_pretty(config).expect("json")).expect("write");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let mut command = Command::new(real::tool_path("prometheus").expect("prometheus"));
        command
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=debug");
        if let Some(pem) = &web.tls {
            let (cert, key) = (dir.path().join("web.crt"), dir.path().join("web.key"));
            std::fs::write(&cert, &pem.cert).expect("write the certificate");
            std::fs::write(&key, &pem.key).expect("write the key");
            let web_config = dir.path().join("web.yml");
            let doc =
                serde_json::json!({"tls_server_config": {"cert_file": cert, "key_file": key}});
            std::fs::write(&web_config, doc.to_string()).expect("write the web config");
            command.arg(format!("--web.config.file={}", web_config.display()));
        }
        if let Some(prefix) = &web.route_prefix {
            command.arg(format!("--web.route-prefix={prefix}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let route_prefix = web
            .route_prefix
            .as_deref()
            .map(|p| {
                format!("/{}", p.trim_matches('/'))
                    .trim_end_matches('/')
                    .to_string()
            })
            .unwrap_or_default();
        let mut me = RealPrometheus {
            child,
            dir,
            port,
            tls: web.tls.is_some(),
            route_prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("prometheus exited ({status}) at start:\n{}", me.log());
            }
            if me.get("/-/ready").is_some_and(|(code, _)| code == 200) {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 30 s:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its base URL: scheme, address and route prefix.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{}", self.port, self.route_prefix)
    }

    /// `127.0.0.1:PORT`: what an endpoint of a Service in front of it holds.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An HTTP/1.0 GET on loopback under the route prefix (over TLS, unverified, when it
    /// serves https): status and body.
    pub fn get(&self, path_and_query: &str) -> Option<(u16, String)> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let request = format!(
            "GET {}{path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            self.route_prefix
        );
        let mut text = String::new();
        if self.tls {
            let config = std::sync::Arc::new(super::fake_api::tls::unverified_client_config());
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").ok()?;
            let connection = rustls::ClientConnection::new(config, name).ok()?;
            let mut tls = rustls::StreamOwned::new(connection, stream);
            tls.write_all(request.as_bytes()).ok()?;
            // Go closes without close_notify at times: keep what arrived.
            let mut bytes = Vec::new();
            let _ = tls.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        } else {
            let mut stream = stream;
            stream.write_all(request.as_bytes()).ok()?;
            stream.read_to_string(&mut text).ok()?;
        }
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    /// `/api/v1/query?query=EXPR`'s `data.result`.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        let (_, body) = self
            .get(&format!("/api/v1/query?query={}", encode(expr)))
            .expect("query answered");
        let doc: Value = serde_json::from_str(&body).unwrap_or_default();
        doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `expr` returns a series (or `timeout` passes).
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(expr);
            if !result.is_empty() || Instant::now() >= deadline {
                return result;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
