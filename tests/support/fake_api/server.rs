//! HTTPS serving and the REST surface: discovery, CRUD, list with selectors, watch, patch
//! (server-side apply, merge, strategic merge), status subresource, delete with propagation,
//! pods/log, pod and node proxies.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use rustls::pki_types::UnixTime;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::apply;
use super::cadvisor;
use super::defaults;
use super::resources::{self, Resource};
use super::status::{self, ApiError};
use super::store::{self, name_of, now, ns_of, uid_of};
use super::{RequestRecord, State};

// ---- serving ------------------------------------------------------------------------------

pub async fn serve(state: Arc<State>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut down = state.failures.down_receiver();
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut listener = Some(listener);
    loop {
        // Read the switch before every listening phase, not only on a change: a receiver counts
        // the value it subscribed to as seen, so `set_api_down(true)` called before this task
        // first ran would otherwise never be noticed.
        if *down.borrow_and_update() {
            listener = None;
            state.failures.acknowledge(false);
            while *down.borrow_and_update() {
                if down.changed().await.is_err() {
                    return;
                }
            }
        }
        let l = match listener.take() {
            Some(l) => l,
            // Back up: listen again on the same port.
            None => loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            },
        };
        state.failures.acknowledge(true);
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = l.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let state = state.clone();
                    conns.spawn(async move { connection(state, acceptor, tcp).await });
                }
                changed = down.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *down.borrow() {
                        break;
                    }
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(l);
        // Wait for the aborted connections to be gone, so a client's pooled connection is
        // refused too by the time the switch is acknowledged.
        conns.shutdown().await;
    }
}

async fn connection(
    state: Arc<State>,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let authenticated = match tls.get_ref().1.peer_certificates() {
        Some([end, rest @ ..]) => state
            .verifier
            .verify_client_cert(end, rest, UnixTime::now())
            .is_ok(),
        _ => false,
    };
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, authenticated, req).await) }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let _ = builder
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
}

// ---- helpers ------------------------------------------------------------------------------

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Audit-Id", "00000000-0000-0000-0000-000000000000")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn text_response(code: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.body)
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// The request context handlers need.
struct Ctx<'a> {
    state: &'a Arc<State>,
    method: Method,
    query: Query,
    content_type: String,
    user_agent: String,
    body: Bytes,
}

impl Ctx<'_> {
    /// `fieldManager`, or the user agent's first word as the real server defaults it.
    fn manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    fn body_json(&self) -> Result<Value, ApiError> {
        if self
            .content_type
            .starts_with("application/vnd.kubernetes.protobuf")
        {
            // Typed clients (`kubectl create namespace`) send protobuf: a few kinds are decoded.
            return super::protobuf::decode(&self.body).map_err(|why| {
                let mut e = status::unsupported_media(&self.content_type);
                e.body["message"] = json!(format!(
                    "the fake API server cannot decode this body: {why}"
                ));
                e
            });
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            return Ok(v);
        }
        let text = String::from_utf8_lossy(&self.body);
        serde_saphyr::from_str::<Value>(&text)
            .map_err(|e| status::bad_request(format!("error decoding request body: {e}")))
    }
}

// ---- routing ------------------------------------------------------------------------------

pub async fn handle(
    state: Arc<State>,
    authenticated: bool,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let user_agent = header(header::USER_AGENT);
    let content_type = header(header::CONTENT_TYPE);
    let accept = header(header::ACCEPT);
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(RequestRecord {
            at: Instant::now(),
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            user_agent: user_agent.clone(),
            content_type: content_type.clone(),
        });
    if !authenticated {
        return error_response(&status::unauthorized());
    }
    let body = match axum::body::to_bytes(Body::new(body), 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&status::bad_request(format!("reading body: {e}"))),
    };
    let ctx = Ctx {
        state: &state,
        method: parts.method.clone(),
        query: Query(query),
        content_type,
        user_agent,
        body,
    };
    match route(&ctx, &path, &accept).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route(ctx: &Ctx<'_>, path: &str, accept: &str) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let crds = ctx.state.crds();
    let server = format!("127.0.0.1:{}", ctx.state.port.load(Ordering::SeqCst));
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &resources::version())),
        ["healthz" | "livez" | "readyz"] => {
            Ok(text_response(200, "text/plain; charset=utf-8", "ok".into()))
        }
        ["api"] => Ok(json_response(200, &resources::api_versions(&server))),
        ["api", "v1"] => Ok(json_response(
            200,
            &resources::resource_list("", "v1", crds),
        )),
        ["apis"] => {
            let mut list = resources::api_group_list(crds);
            if ctx.state.failures.snapshot().aggregated_api_down
                && let Some(groups) = list["groups"].as_array_mut()
            {
                let gv = json!({"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"});
                groups.push(json!({"name": "metrics.k8s.io", "versions": [gv.clone()], "preferredVersion": gv}));
            }
            Ok(json_response(200, &list))
        }
        ["apis", "metrics.k8s.io", ..] if ctx.state.failures.snapshot().aggregated_api_down => {
            // kube-aggregator for an APIService whose service has no ready endpoint.
            Err(status::service_unavailable(
                "the server is currently unable to handle the request".into(),
            ))
        }
        ["apis", g, v] if resources::group_exists(g, v, crds) => {
            Ok(json_response(200, &resources::resource_list(g, v, crds)))
        }
        // An empty protobuf Document (kubectl asks only for protobuf): no schemas, so kubectl's
        // client-side validation has nothing to check and leaves it to the server.
        ["openapi", "v2"] => Ok(text_response(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            String::new(),
        )),
        ["openapi", "v3"] => Ok(json_response(200, &super::openapi::index(crds))),
        ["openapi", "v3", rest @ ..] => super::openapi::group_version(&rest.join("/"), crds)
            .map(|doc| json_response(200, &doc))
            .ok_or_else(status::page_not_found),
        ["api", "v1", rest @ ..] => resource_route(ctx, "", "v1", rest, accept).await,
        ["apis", g, v, rest @ ..] if resources::group_exists(g, v, crds) => {
            resource_route(ctx, g, v, rest, accept).await
        }
        _ => Err(status::page_not_found()),
    }
}

struct Target {
    res: &'static Resource,
    /// Namespace from the URL (None: cluster scope or all namespaces).
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    /// Path after the subresource (proxy).
    rest: Vec<String>,
}

fn parse_target(group: &str, version: &str, segs: &[&str], crds: bool) -> Result<Target, ApiError> {
    let find = |plural: &str| {
        resources::find(group, version, plural, crds).ok_or_else(status::page_not_found)
    };
    let (res, ns, tail) = match segs {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            let res = find(plural)?;
            if !res.namespaced {
                return Err(status::page_not_found());
            }
            (res, Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => (find(plural)?, None, tail),
        [] => return Err(status::page_not_found()),
    };
    let (name, sub, rest) = match tail {
        [] => (None, None, Vec::new()),
        [name] => (Some(name.to_string()), None, Vec::new()),
        [name, sub, rest @ ..] => {
            if !res.subresources.contains(sub) {
                return Err(status::page_not_found());
            }
            (
                Some(name.to_string()),
                Some(sub.to_string()),
                rest.iter().map(|s| s.to_string()).collect(),
            )
        }
    };
    if res.namespaced && ns.is_none() && name.is_some() {
        return Err(status::page_not_found());
    }
    Ok(Target {
        res,
        ns,
        name,
        sub,
        rest,
    })
}

fn rbac_verb(method: &Method, t: &Target, watch: bool) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("POST", true) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "get",
    }
}

async fn resource_route(
    ctx: &Ctx<'_>,
    group: &str,
    version: &str,
    segs: &[&str],
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let t = parse_target(group, version, segs, ctx.state.crds())?;
    let watch = ctx.query.flag("watch");
    let verb = rbac_verb(&ctx.method, &t, watch);
    let rbac_resource = match &t.sub {
        Some(s) => format!("{}/{}", t.res.plural, s),
        None => t.res.plural.to_string(),
    };
    if ctx.state.failures.is_forbidden(verb, &rbac_resource) {
        return Err(status::forbidden(
            t.res,
            t.sub.as_deref(),
            t.name.as_deref().unwrap_or_default(),
            &ctx.state.user,
            verb,
            t.ns.as_deref(),
        ));
    }
    let ns = t.ns.clone().unwrap_or_default();
    match (t.sub.as_deref(), t.name.as_deref(), ctx.method.as_str()) {
        (None, None, "GET") if watch => Ok(watch_response(ctx, &t, accept)),
        (None, None, "GET") => Ok(json_response(200, &list(ctx, &t, accept)?)),
        (None, None, "POST") => {
            let mut obj = ctx.body_json()?;
            if t.res.namespaced {
                if let Some(body_ns) = obj["metadata"]["namespace"].as_str()
                    && body_ns != ns
                {
                    return Err(status::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request".into(),
                        ));
                }
                obj["metadata"]["namespace"] = json!(ns);
            }
            let created = create(ctx.state, t.res, obj, &ctx.manager(), ctx.dry_run())?;
            Ok(json_response(201, &created))
        }
        (None, None, "DELETE") => {
            let items = list_objects(ctx, &t)?;
            for item in &items {
                delete(
                    ctx.state,
                    t.res,
                    &ns_of(item),
                    &name_of(item),
                    ctx.query.get("propagationPolicy"),
                    ctx.query
                        .get("gracePeriodSeconds")
                        .and_then(|g| g.parse().ok()),
                )?;
            }
            Ok(json_response(
                200,
                &list_body(t.res, items, ctx.state.store().rv()),
            ))
        }
        (None, Some(name), "GET") => {
            let store = ctx.state.store();
            let obj = store
                .get(t.res, &ns, name)
                .ok_or_else(|| status::not_found(t.res, name))?;
            if accept.contains("as=Table") {
                return Ok(json_response(
                    200,
                    &super::table::table(t.res, std::slice::from_ref(obj), store.rv()),
                ));
            }
            Ok(json_response(200, obj))
        }
        (sub @ (None | Some("status")), Some(name), "PUT") => {
            let obj = ctx.body_json()?;
            let (code, out) = update(ctx, t.res, &ns, name, sub, |_| Ok(obj.clone()))?;
            Ok(json_response(code, &out))
        }
        (sub @ (None | Some("status")), Some(name), "PATCH") => {
            let (code, out) = patch(ctx, t.res, &ns, name, sub)?;
            // Stored, then answered late (a slow etcd or admission webhook).
            let latency = ctx.state.failures.snapshot().patch_latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            Ok(json_response(code, &out))
        }
        (Some("status"), Some(name), "GET") => {
            let store = ctx.state.store();
            store
                .get(t.res, &ns, name)
                .map(|o| json_response(200, o))
                .ok_or_else(|| status::not_found(t.res, name))
        }
        (None, Some(name), "DELETE") => {
            let options = ctx.body_json().unwrap_or_default();
            let policy = ctx
                .query
                .get("propagationPolicy")
                .map(str::to_string)
                .or_else(|| options["propagationPolicy"].as_str().map(str::to_string));
            let grace = ctx
                .query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok())
                .or_else(|| options["gracePeriodSeconds"].as_i64());
            check_preconditions(ctx.state, t.res, &ns, name, &options["preconditions"])?;
            let out = delete(ctx.state, t.res, &ns, name, policy.as_deref(), grace)?;
            Ok(json_response(200, &out))
        }
        (Some("log"), Some(name), "GET") => {
            let pod = ctx
                .state
                .store()
                .get(t.res, &ns, name)
                .cloned()
                .ok_or_else(|| status::not_found(t.res, name))?;
            let text = cadvisor::pod_log(ctx.state, &pod, ctx.query.get("container"))?;
            Ok(text_response(200, "text/plain", text))
        }
        (Some("proxy"), Some(name), _) => {
            let rest = t.rest.join("/");
            let _in_flight = InFlight::enter(ctx.state);
            let latency = ctx.state.failures.snapshot().proxy_latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            match t.res.kind {
                "Pod" => {
                    let (code, ct, body) = cadvisor::pod_proxy(ctx.state, &ns, name, &rest).await?;
                    Ok(text_response(code, &ct, body))
                }
                "Node" => {
                    let (code, ct, body) = cadvisor::node_proxy(ctx.state, name, &rest).await?;
                    Ok(text_response(code, &ct, body))
                }
                "Service" => service_proxy(ctx, &ns, name, &rest).await,
                _ => Err(status::service_unavailable(format!(
                    "no endpoints available for service \"{name}\""
                ))),
            }
        }
        (_, _, m) => Err(status::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// `services/[scheme:]NAME[:PORT]/proxy/PATH?QUERY`: as the real API server, forwards to a ready
/// endpoint of an existing Service (kubernetes/kubernetes: pkg/registry/core/service/proxy.go),
/// here the backend the test registered; a Service without one is 503 "no endpoints available".
/// The scheme is the path's (`https:`, else http; Kubernetes API: "proxy" subresource,
/// `[scheme:]name[:port]`), and an https endpoint's certificate is not verified (kube-apiserver's
/// proxy transport: cmd/kube-apiserver/app/server.go `CreateProxyTransport`,
/// `InsecureSkipVerify: true`). So plain http to a TLS port gets what that server answers (Go's
/// 400 "Client sent an HTTP request to an HTTPS server."), and https to a plain port fails the
/// handshake (503 "error trying to reach service").
async fn service_proxy(
    ctx: &Ctx<'_>,
    ns: &str,
    target: &str,
    rest: &str,
) -> Result<Response<Body>, ApiError> {
    let parts: Vec<&str> = target.split(':').collect();
    let (scheme, service) = match parts.as_slice() {
        [s @ ("http" | "https"), n, ..] => (*s, *n),
        [n, ..] => ("http", *n),
        [] => ("http", target),
    };
    let res = resources::by_kind("v1", "Service").ok_or_else(status::page_not_found)?;
    if ctx.state.store().get(res, ns, service).is_none() {
        return Err(status::not_found(res, service));
    }
    let backend = ctx
        .state
        .service_backends
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&format!("{ns}/{service}"))
        .cloned()
        .ok_or_else(|| {
            status::service_unavailable(format!("no endpoints available for service \"{service}\""))
        })?;
    let query: Vec<String> = ctx
        .query
        .0
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let mut url = format!("{scheme}://{backend}/{rest}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let (code, content_type, body) = http_get(&url)
        .await
        .map_err(|e| status::service_unavailable(format!("error trying to reach service: {e}")))?;
    Ok(text_response(code, &content_type, body))
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One GET to a backend on loopback, http or https as `url` says (https unverified, as the
/// API server's proxy transport): status, content type and body as text.
async fn http_get(url: &str) -> Result<(u16, String, String), String> {
    use http_body_util::BodyExt;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(super::tls::unverified_client_config())
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<Bytes>>(connector);
    let response = tokio::time::timeout(Duration::from_secs(30), client.get(uri))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .to_string();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        code,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// Counts a proxy request in flight while it lives, and keeps the peak.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> InFlight<'a> {
        let now = state.proxy_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.proxy_peak.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.proxy_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---- list and selectors -------------------------------------------------------------------

/// Label selector terms: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`.
pub fn label_match(selector: &str, labels: &Value) -> bool {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push(cur);
    let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
    terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .all(|t| {
            if let Some((k, v)) = t.split_once("!=") {
                get(k) != Some(v.trim())
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                get(k) == Some(v.trim())
            } else if let Some((k, set)) = t.split_once(" notin ") {
                let set = parse_set(set);
                get(k).is_none_or(|v| !set.contains(&v.to_string()))
            } else if let Some((k, set)) = t.split_once(" in ") {
                let set = parse_set(set);
                get(k).is_some_and(|v| set.contains(&v.to_string()))
            } else if let Some(k) = t.strip_prefix('!') {
                get(k).is_none()
            } else {
                get(t).is_some()
            }
        })
}

fn parse_set(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|x| x.trim().to_string())
        .collect()
}

/// Field selector terms `path=v`, `path==v`, `path!=v` on dotted paths
/// (`metadata.name`, `spec.nodeName`, `involvedObject.name`, `status.phase`).
pub fn field_match(selector: &str, obj: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            let (path, want, negate) = if let Some((p, v)) = t.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                (p, v, false)
            } else {
                return false;
            };
            let mut cur = obj;
            for part in path.trim().split('.') {
                cur = &cur[part];
            }
            let have = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == want.trim()) != negate
        })
}

fn selected(query: &Query, obj: &Value) -> bool {
    query
        .get("labelSelector")
        .is_none_or(|s| label_match(s, &obj["metadata"]["labels"]))
        && query
            .get("fieldSelector")
            .is_none_or(|s| field_match(s, obj))
}

fn list_objects(ctx: &Ctx<'_>, t: &Target) -> Result<Vec<Value>, ApiError> {
    let store = ctx.state.store();
    Ok(store
        .iter(t.res, t.ns.as_deref())
        .filter(|o| selected(&ctx.query, o))
        .cloned()
        .collect())
}

fn list_body(res: &Resource, items: Vec<Value>, rv: u64) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            // Typed lists carry no kind/apiVersion per item; custom resources do.
            if !res.optional_crd
                && let Some(m) = o.as_object_mut()
            {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn list(ctx: &Ctx<'_>, t: &Target, accept: &str) -> Result<Value, ApiError> {
    // Pages as the API server serves them (kubernetes.io "API Concepts", "Retrieving large
    // results sets in chunks"): in key order, at most `limit` items, then an opaque `continue`
    // token that resumes after the last key, and `remainingItemCount`. Selected and paged in
    // place under the store's lock; only the page is copied (hundreds of pods, paged: scale.sh).
    let (items, rv, token, rest) = {
        let store = ctx.state.store();
        let mut keyed: Vec<(String, &Value)> = store
            .iter(t.res, t.ns.as_deref())
            .filter(|o| selected(&ctx.query, o))
            .map(|o| (format!("{}/{}", ns_of(o), name_of(o)), o))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(token) = ctx.query.get("continue").filter(|t| !t.is_empty()) {
            let after = hex_decode(token)
                .ok_or_else(|| status::bad_request(format!("invalid continue token {token:?}")))?;
            keyed.retain(|(k, _)| *k > after);
        }
        let limit = ctx
            .query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0);
        let rest = if limit > 0 && keyed.len() > limit {
            keyed.len() - limit
        } else {
            0
        };
        keyed.truncate(keyed.len() - rest);
        let token: Option<String> = keyed
            .last()
            .filter(|_| rest > 0)
            .map(|(k, _)| k.bytes().map(|b| format!("{b:02x}")).collect());
        let items: Vec<Value> = keyed.into_iter().map(|(_, o)| o.clone()).collect();
        (items, store.rv(), token, rest)
    };
    if let Some(ns) = t.ns.as_deref()
        && ctx.query.get("labelSelector").is_none_or(str::is_empty)
        && ctx.query.get("fieldSelector").is_none_or(str::is_empty)
        && let Some(object) = ctx.state.failures.due_after_list(t.res.plural, ns)
    {
        let outcome = create(ctx.state, t.res, object, "kubectl-create", false)
            .map(|o| name_of(&o).to_string())
            .map_err(|e| e.message());
        ctx.state.failures.record_created_after_list(outcome);
    }
    let mut body = if accept.contains("as=Table") {
        super::table::table(t.res, &items, rv)
    } else {
        list_body(t.res, items, rv)
    };
    if let Some(token) = token {
        body["metadata"]["continue"] = json!(token);
        body["metadata"]["remainingItemCount"] = json!(rest);
    }
    Ok(body)
}

fn hex_decode(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

// ---- watch --------------------------------------------------------------------------------

/// One watch event line; with `as_table` (kubectl get -w) the object is a one-row Table.
fn watch_line(kind: &str, object: &Value, as_table: Option<&'static Resource>) -> Bytes {
    let object = match as_table {
        Some(res) if kind != "BOOKMARK" => {
            super::table::table(res, std::slice::from_ref(object), store::rv_of(object))
        }
        _ => object.clone(),
    };
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch_response(ctx: &Ctx<'_>, t: &Target, accept: &str) -> Response<Body> {
    let state = ctx.state.clone();
    let res = t.res;
    let as_table = accept.contains("as=Table").then_some(res);
    let ns = t.ns.clone();
    let query = Query(ctx.query.0.clone());
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let bookmarks = query.flag("allowWatchBookmarks");
    let initial_events = query.flag("sendInitialEvents");
    let rv_param = query.get("resourceVersion").unwrap_or_default().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let matches =
        move |obj: &Value| ns.as_deref().is_none_or(|n| ns_of(obj) == n) && selected(&query, obj);
    let (initial, backlog, mut live, start_rv) = {
        let store = state.store();
        let current = store.rv();
        let from_rv: Option<u64> = rv_param.parse().ok().filter(|rv| *rv > 0);
        let synthetic = initial_events || from_rv.is_none();
        let initial: Vec<Value> = if synthetic {
            store
                .iter(res, None)
                .filter(|o| matches(o))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let since = if synthetic {
            current
        } else {
            from_rv.unwrap_or(current)
        };
        let (backlog, live) = store.subscribe(&res.qualified(), since);
        (initial, backlog, live, current)
    };
    let qualified = res.qualified();
    let kind = res.kind;
    let api_version = res.api_version();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rv = start_rv;
        for obj in initial {
            if tx
                .send(Ok(watch_line("ADDED", &obj, as_table)))
                .await
                .is_err()
            {
                return;
            }
        }
        if initial_events && bookmarks {
            let bm = json!({"kind": kind, "apiVersion": api_version, "metadata": {
                "resourceVersion": start_rv.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx
                .send(Ok(watch_line("BOOKMARK", &bm, as_table)))
                .await
                .is_err()
            {
                return;
            }
        }
        for ev in backlog {
            last_rv = ev.rv;
            if matches(&ev.object)
                && tx
                    .send(Ok(watch_line(ev.kind.as_str(), &ev.object, as_table)))
                    .await
                    .is_err()
            {
                return;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tick.tick() => {
                    if tx.is_closed() {
                        return;
                    }
                    if bookmarks {
                        let bm = json!({"kind": kind, "apiVersion": api_version,
                            "metadata": {"resourceVersion": last_rv.to_string()}});
                        if tx.send(Ok(watch_line("BOOKMARK", &bm, as_table))).await.is_err() {
                            return;
                        }
                    }
                }
                ev = live.recv() => {
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(_) => return,
                    };
                    if ev.rv <= last_rv {
                        continue;
                    }
                    last_rv = ev.rv;
                    if ev.resource != qualified || !matches(&ev.object) {
                        continue;
                    }
                    if tx.send(Ok(watch_line(ev.kind.as_str(), &ev.object, as_table))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

// ---- writes -------------------------------------------------------------------------------

fn check_kind(res: &Resource, obj: &Value) -> Result<(), ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(status::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            obj
        )));
    }
    if api_version != res.api_version() || kind != res.kind {
        return Err(status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        )));
    }
    Ok(())
}

/// The namespace must exist and not be terminating (the NamespaceLifecycle admission plugin).
fn check_namespace(state: &State, res: &Resource, ns: &str, name: &str) -> Result<(), ApiError> {
    if !res.namespaced {
        return Ok(());
    }
    let nsres = super::resource("namespaces");
    let store = state.store();
    match store.get(nsres, "", ns) {
        None => Err(status::not_found(nsres, ns)),
        Some(n) if n["status"]["phase"] == "Terminating" => Err(create_forbidden(
            state,
            res,
            ns,
            name,
            format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => {
            drop(store);
            admit_quota(state, res, ns, name)
        }
    }
}

/// An admission plugin's refusal of a create in `ns`: `configmaps "x" is forbidden: <reason>`.
fn create_forbidden(
    state: &State,
    res: &Resource,
    ns: &str,
    name: &str,
    reason: String,
) -> ApiError {
    let mut e = status::forbidden(res, None, name, &state.user, "create", Some(ns));
    let subject = if name.is_empty() {
        res.qualified()
    } else {
        format!("{} \"{name}\"", res.qualified())
    };
    e.body["message"] = json!(format!("{subject} is forbidden: {reason}"));
    e
}

/// Quota admission for object counts (k8s.io/apiserver `admission/plugin/resourcequota`, the
/// generic object count evaluator for `count/<resource>.<group>`, and the legacy `pods`,
/// `configmaps`, ... names of core kinds): a create that would take a namespace's count of that
/// kind past a ResourceQuota's `status.hard` is refused with 403 "exceeded quota". Only
/// `status.hard` counts, which the quota controller copies from `spec.hard`: a quota it has not
/// synced yet is not enforced. (The real one compares with `status.used`; this counts the store.)
fn admit_quota(state: &State, res: &Resource, ns: &str, name: &str) -> Result<(), ApiError> {
    let store = state.store();
    let keys = [
        format!("count/{}", res.qualified()),
        if res.group.is_empty() {
            res.plural.to_string()
        } else {
            String::new()
        },
    ];
    for quota in store.iter(super::resource("resourcequotas"), Some(ns)) {
        for key in keys.iter().filter(|k| !k.is_empty()) {
            let Some(hard) = quota["status"]["hard"][key.as_str()].as_str() else {
                continue;
            };
            let limit: usize = hard.parse().unwrap_or(usize::MAX);
            let used = store.iter(res, Some(ns)).count();
            if used + 1 > limit {
                return Err(create_forbidden(
                    state,
                    res,
                    ns,
                    name,
                    format!(
                        "exceeded quota: {}, requested: {key}=1, used: {key}={used}, limited: {key}={hard}",
                        name_of(quota)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Each `spec.hard` key of a ResourceQuota is validated as a qualified name: the part after `/`
/// at most 63 characters (kubernetes/kubernetes pkg/apis/core/validation
/// `ValidateResourceQuotaResourceName` → apimachinery `validation.IsQualifiedName`).
fn check_quota_keys(res: &Resource, name: &str, obj: &Value) -> Result<(), ApiError> {
    for key in obj["spec"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let part = key.rsplit('/').next().unwrap_or(key);
        if part.len() > 63 {
            return Err(status::invalid(
                res,
                name,
                format!(
                    "spec.hard[{key}]: Invalid value: \"{key}\": name part must be no more than 63 characters"
                ),
            ));
        }
    }
    Ok(())
}

/// Fills what the server owns on a new object: uid, creationTimestamp, generation, defaults.
fn finish_new(state: &State, res: &Resource, obj: &mut Value) {
    let uid = state.store().new_uid();
    obj["metadata"]["uid"] = json!(uid);
    obj["metadata"]["creationTimestamp"] = json!(now());
    if res.has_generation {
        obj["metadata"]["generation"] = json!(1);
    }
    let rv = state.store().rv();
    defaults::apply(res.kind, obj, || format!("10.152.183.{}", 10 + (rv % 240)));
    if res.has_status() && obj.get("status").is_none() && res.kind != "Namespace" {
        obj["status"] = json!({});
    }
}

fn generate_name(obj: &mut Value) {
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty)
        && let Some(prefix) = obj["metadata"]["generateName"].as_str()
    {
        let suffix: String = super::controller::random_suffix(5);
        obj["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
    }
}

pub fn create(
    state: &State,
    res: &'static Resource,
    mut obj: Value,
    manager: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_kind(res, &obj)?;
    generate_name(&mut obj);
    let name = name_of(&obj);
    if name.is_empty() {
        return Err(status::invalid(
            res,
            "",
            "metadata.name: Required value: name or generateName is required".into(),
        ));
    }
    let ns = ns_of(&obj);
    if res.plural == "resourcequotas" {
        check_quota_keys(res, &name, &obj)?;
    }
    check_namespace(state, res, &ns, &name)?;
    if state.store().get(res, &ns, &name).is_some() {
        return Err(status::already_exists(res, &name));
    }
    if res.kind == "Pod" {
        let namespace = state
            .store()
            .get(super::resource("namespaces"), "", &ns)
            .cloned()
            .unwrap_or(Value::Null);
        super::pod_security::admit(state, &namespace, &obj)?;
    }
    if let Some(meta) = obj["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            meta.remove(k);
        }
    }
    finish_new(state, res, &mut obj);
    apply::record_update(None, &mut obj, manager, None, &now());
    if dry_run {
        return Ok(obj);
    }
    let mut store = state.store();
    if store.get(res, &ns, &name).is_some() {
        return Err(status::already_exists(res, &name));
    }
    let stored = store.put(res, obj);
    drop(store);
    if res.kind == "Namespace" {
        seed_namespace(state, &name);
    }
    Ok(stored)
}

/// What Kubernetes' controllers put in every new namespace: the `kube-root-ca.crt` ConfigMap
/// (root-ca-cert-publisher) and the `default` ServiceAccount (serviceaccount-controller).
fn seed_namespace(state: &State, ns: &str) {
    let objects = [
        (
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "kube-root-ca.crt", "namespace": ns},
                   "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n(fake)\n-----END CERTIFICATE-----\n"}}),
        ),
        (
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": ns}}),
        ),
    ];
    for (plural, obj) in objects {
        let _ = create(
            state,
            super::resource(plural),
            obj,
            "kube-controller-manager",
            false,
        );
    }
}

/// Seeds an object as `manager` (creates its namespace first when missing).
pub fn create_as(state: &Arc<State>, manager: &str, obj: Value) -> Result<Value, ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let res = resources::by_kind(&api_version, &kind)
        .ok_or_else(|| status::bad_request(format!("unknown kind {api_version}/{kind}")))?;
    let ns = ns_of(&obj);
    if res.namespaced
        && state
            .store()
            .get(super::resource("namespaces"), "", &ns)
            .is_none()
    {
        create(
            state,
            super::resource("namespaces"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            manager,
            false,
        )?;
    }
    create(state, res, obj, manager, false)
}

/// Replaces the main resource or its status with what `change` makes of the live object,
/// keeping what the other part owns, with optimistic concurrency on `metadata.resourceVersion`.
fn update(
    ctx: &Ctx<'_>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    change: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<(u16, Value), ApiError> {
    let live = ctx
        .state
        .store()
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| status::not_found(res, name))?;
    let mut new = change(&live)?;
    check_kind(res, &new)?;
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && rv != live["metadata"]["resourceVersion"]
    {
        return Err(status::stale(res, name));
    }
    if name_of(&new) != name {
        return Err(status::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&new)
        )));
    }
    let manager = ctx.manager();
    let result = finalize_update(ctx.state, res, &live, &mut new, &manager, sub, true)?;
    if ctx.dry_run() {
        return Ok((200, result.0));
    }
    Ok((200, commit(ctx.state, res, &live, result)))
}

/// The server-owned parts of an updated object; returns it and whether it changed.
fn finalize_update(
    state: &State,
    res: &Resource,
    live: &Value,
    new: &mut Value,
    manager: &str,
    sub: Option<&str>,
    record: bool,
) -> Result<(Value, bool), ApiError> {
    // A workload's selector cannot change (kubernetes/kubernetes: pkg/apis/apps/validation,
    // ValidateDaemonSetUpdate: "field is immutable").
    if res.kind == "DaemonSet"
        && sub != Some("status")
        && !new["spec"]["selector"].is_null()
        && new["spec"]["selector"] != live["spec"]["selector"]
    {
        return Err(status::invalid(
            res,
            &name_of(live),
            format!(
                "spec.selector: Invalid value: {}: field is immutable",
                new["spec"]["selector"]
            ),
        ));
    }
    for k in [
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "deletionTimestamp",
    ] {
        new["metadata"][k] = live["metadata"][k].clone();
        if new["metadata"][k].is_null()
            && let Some(m) = new["metadata"].as_object_mut()
        {
            m.remove(k);
        }
    }
    new["metadata"]["namespace"] = live["metadata"]["namespace"].clone();
    if new["metadata"]["namespace"].is_null()
        && let Some(m) = new["metadata"].as_object_mut()
    {
        m.remove("namespace");
    }
    if sub == Some("status") {
        let status = new["status"].clone();
        *new = {
            let mut l = live.clone();
            l["status"] = status;
            l
        };
    } else if res.has_status() {
        new["status"] = live["status"].clone();
    }
    let rv = state.store().rv();
    defaults::apply(res.kind, new, || format!("10.152.183.{}", 10 + (rv % 240)));
    if record {
        // A non-empty managedFields in the request replaces the live one (how a client drops a
        // manager's entries); otherwise the live one is kept (k8s.io/apiserver fieldmanager:
        // decodeLiveOrNew).
        let mut base = live.clone();
        if new["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            base["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        }
        new["metadata"]["managedFields"] = base["metadata"]["managedFields"].clone();
        if new["metadata"]["managedFields"].is_null()
            && let Some(m) = new["metadata"].as_object_mut()
        {
            m.remove("managedFields");
        }
        apply::record_update(Some(&base), new, manager, sub, &now());
    }
    if res.has_generation && sub != Some("status") {
        let spec_changed = if res.optional_crd {
            strip_meta_status(live) != strip_meta_status(new)
        } else {
            live["spec"] != new["spec"]
        };
        if spec_changed {
            let g = live["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(g);
        }
    }
    let changed = *new != *live;
    Ok((new.clone(), changed))
}

fn strip_meta_status(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    c
}

fn commit(state: &State, res: &Resource, live: &Value, (obj, changed): (Value, bool)) -> Value {
    if !changed {
        return live.clone();
    }
    state.store().put(res, obj)
}

fn patch(
    ctx: &Ctx<'_>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    let ct = ctx
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    match ct.as_str() {
        "application/apply-patch+yaml" => server_side_apply(ctx, res, ns, name, sub),
        "application/merge-patch+json" => {
            let p = ctx.body_json()?;
            update(ctx, res, ns, name, sub, |live| {
                let mut v = live.clone();
                apply::merge_patch(&mut v, &p);
                Ok(v)
            })
        }
        "application/strategic-merge-patch+json" => {
            let p = ctx.body_json()?;
            update(ctx, res, ns, name, sub, |live| {
                let mut v = live.clone();
                apply::merge(&mut v, &p, "");
                Ok(v)
            })
        }
        "application/json-patch+json" => {
            let p = ctx.body_json()?;
            update(ctx, res, ns, name, sub, |live| json_patch(live, &p))
        }
        other => Err(status::unsupported_media(other)),
    }
}

fn json_patch(live: &Value, ops: &Value) -> Result<Value, ApiError> {
    let mut v = live.clone();
    for op in ops.as_array().cloned().unwrap_or_default() {
        let path = op["path"].as_str().unwrap_or_default();
        let pointer_parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let last = path
            .rsplit_once('/')
            .map(|(_, l)| l.replace("~1", "/").replace("~0", "~"))
            .unwrap_or_default();
        match op["op"].as_str().unwrap_or_default() {
            "add" | "replace" => {
                let parent = v.pointer_mut(pointer_parent).ok_or_else(|| {
                    status::bad_request(format!("jsonpatch: missing path {path}"))
                })?;
                match parent {
                    Value::Object(m) => {
                        m.insert(last, op["value"].clone());
                    }
                    Value::Array(a) => {
                        if last == "-" {
                            a.push(op["value"].clone());
                        } else if let Ok(i) = last.parse::<usize>() {
                            if op["op"] == "add" {
                                a.insert(i.min(a.len()), op["value"].clone());
                            } else if i < a.len() {
                                a[i] = op["value"].clone();
                            }
                        }
                    }
                    _ => return Err(status::bad_request(format!("jsonpatch: bad path {path}"))),
                }
            }
            "remove" => {
                if let Some(parent) = v.pointer_mut(pointer_parent) {
                    match parent {
                        Value::Object(m) => {
                            m.remove(&last);
                        }
                        Value::Array(a) => {
                            if let Ok(i) = last.parse::<usize>()
                                && i < a.len()
                            {
                                a.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
            }
            "test" => {
                if v.pointer(path) != Some(&op["value"]) {
                    return Err(status::bad_request(format!(
                        "jsonpatch test operation does not apply: {path}"
                    )));
                }
            }
            other => {
                return Err(status::bad_request(format!(
                    "jsonpatch: unsupported op {other}"
                )));
            }
        }
    }
    Ok(v)
}

fn server_side_apply(
    ctx: &Ctx<'_>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    sub: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    let manager = match ctx.query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            return Err(status::invalid(
                res,
                name,
                "fieldManager: Required value: is required for apply patch".into(),
            ));
        }
    };
    let force = ctx.query.flag("force");
    let mut applied = ctx.body_json()?;
    check_kind(res, &applied)?;
    if name_of(&applied) != name {
        return Err(status::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(&applied)
        )));
    }
    if res.namespaced {
        match applied["metadata"]["namespace"].as_str() {
            Some(body_ns) if body_ns != ns => {
                return Err(status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ))
            }
            _ => applied["metadata"]["namespace"] = json!(ns),
        }
    }
    if sub.is_none()
        && let Some(replacement) = ctx.state.failures.take_replacement(res.plural, ns, name)
    {
        let _ = delete(ctx.state, res, ns, name, None, None);
        let _ = create(ctx.state, res, replacement, "kubectl-create", false);
    }
    let time = now();
    let live = ctx.state.store().get(res, ns, name).cloned();
    // uid is immutable: an applied configuration naming another uid than the live object's is
    // refused after the merge (k8s.io/apiserver rest.BeforeUpdate → ValidateObjectMetaUpdate:
    // "metadata.uid: Invalid value: ...: field is immutable"); a create sets its own uid.
    if let (Some(live), Some(uid)) = (&live, applied["metadata"]["uid"].as_str())
        && !uid.is_empty()
        && live["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(status::invalid(
            res,
            name,
            format!("metadata.uid: Invalid value: \"{uid}\": field is immutable"),
        ));
    }
    let Some(live) = live else {
        if sub.is_some() {
            return Err(status::not_found(res, name));
        }
        check_namespace(ctx.state, res, ns, name)?;
        let mut obj = apply::apply(None, &applied, &manager, force, &time)?;
        finish_new(ctx.state, res, &mut obj);
        if ctx.dry_run() {
            return Ok((201, obj));
        }
        let mut store = ctx.state.store();
        if store.get(res, ns, name).is_some() {
            return Err(status::stale(res, name));
        }
        let stored = store.put(res, obj);
        drop(store);
        if res.kind == "Namespace" {
            seed_namespace(ctx.state, name);
        }
        return Ok((201, stored));
    };
    let mut obj = apply::apply(Some(&live), &applied, &manager, force, &time)?;
    // Keep the applier's entry time when nothing else changed, so a no-op compares equal.
    let result = finalize_update(ctx.state, res, &live, &mut obj, &manager, sub, false);
    let (mut obj, changed) = result?;
    if changed && obj["metadata"]["managedFields"] == live["metadata"]["managedFields"] {
        // Object changed but ownership did not: refresh the applier's time.
        let mut entries = apply::entries(&obj);
        for e in entries
            .iter_mut()
            .filter(|e| e.manager == manager && e.operation == "Apply")
        {
            e.time = time.clone();
        }
        apply::set_entries(&mut obj, &entries);
    }
    if ctx.dry_run() {
        return Ok((200, obj));
    }
    Ok((200, commit(ctx.state, res, &live, (obj, changed))))
}

// ---- delete -------------------------------------------------------------------------------

fn success_status(res: &Resource, obj: &Value) -> Value {
    let mut details = json!({"name": name_of(obj), "kind": res.plural, "uid": uid_of(obj)});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// DeleteOptions `preconditions`: the object must still have this uid and resourceVersion, else
/// 409 Conflict, as k8s.io/apiserver `storage.Preconditions.Check` ("Precondition failed: UID
/// in precondition: %v, UID in object meta: %v"), turned into a Conflict by
/// `storeerr.InterpretDeleteError`.
fn check_preconditions(
    state: &Arc<State>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    preconditions: &Value,
) -> Result<(), ApiError> {
    let store = state.store();
    let live = store
        .get(res, ns, name)
        .ok_or_else(|| status::not_found(res, name))?;
    let failed = |what: &str, wanted: &str, have: &str| {
        status::precondition_failed(res, name, what, wanted, have)
    };
    if let Some(uid) = preconditions["uid"].as_str() {
        let have = live["metadata"]["uid"].as_str().unwrap_or_default();
        if uid != have {
            return Err(failed("UID", uid, have));
        }
    }
    if let Some(rv) = preconditions["resourceVersion"].as_str() {
        let have = live["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if rv != have {
            return Err(failed("ResourceVersion", rv, have));
        }
    }
    Ok(())
}

/// Deletes an object. Namespaces go `Terminating` and disappear with their content shortly
/// after; other objects go at once, and (unless `Orphan`) so do the objects they own, as the
/// garbage collector does.
pub fn delete(
    state: &Arc<State>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    policy: Option<&str>,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    let mut store = state.store();
    let live = store
        .get(res, ns, name)
        .cloned()
        .ok_or_else(|| status::not_found(res, name))?;
    if res.kind == "Namespace" {
        if live["status"]["phase"] == "Terminating" {
            return Ok(live);
        }
        let mut obj = live.clone();
        obj["metadata"]["deletionTimestamp"] = json!(now());
        obj["status"]["phase"] = json!("Terminating");
        let out = store.put(res, obj);
        drop(store);
        let state = state.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // The namespace controller deletes the content; pods a kubelet runs terminate
            // gracefully, and the namespace stays Terminating until they are gone.
            {
                let mut store = state.store();
                let doomed: Vec<(String, Value)> = store
                    .all()
                    .filter(|(_, o)| ns_of(o) == name)
                    .map(|(r, o)| (r.to_string(), o.clone()))
                    .collect();
                for (r, o) in doomed {
                    if res_is_pod(&r) && on_sim_node(&state, &o) {
                        terminate_pod(&state, &mut store, &o);
                    } else if let Some(res) = resources::by_qualified(&r) {
                        store.remove(res, &name, &name_of(&o));
                    }
                }
            }
            let pods = super::resource("pods");
            while !state.store().list(pods, Some(&name)).is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            state
                .store()
                .remove(super::resource("namespaces"), "", &name);
        });
        return Ok(out);
    }
    if res.kind == "Pod" && grace != Some(0) && on_sim_node(state, &live) {
        return Ok(terminate_pod(state, &mut store, &live));
    }
    let removed = store.remove(res, ns, name).unwrap_or(live);
    if policy != Some("Orphan") {
        cascade(state, &mut store, &uid_of(&removed));
    }
    Ok(success_status(res, &removed))
}

fn on_sim_node(state: &State, pod: &Value) -> bool {
    pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| state.has_node(n))
}

/// Graceful deletion of a pod a simulated kubelet runs: `deletionTimestamp` now (kubectl shows
/// Terminating), gone once the kubelet has stopped it.
fn terminate_pod(state: &Arc<State>, store: &mut store::Store, pod: &Value) -> Value {
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return pod.clone();
    }
    let pods = super::resource("pods");
    let mut obj = pod.clone();
    obj["metadata"]["deletionTimestamp"] = json!(now());
    obj["metadata"]["deletionGracePeriodSeconds"] = json!(
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    );
    let out = store.put(pods, obj);
    let state = state.clone();
    let (ns, name, uid) = (ns_of(pod), name_of(pod), uid_of(pod));
    let since = Instant::now();
    tokio::spawn(async move {
        // The delay is read live, so a test can hold pods Terminating (a long delay) and then
        // release them (a short one) instead of racing a fixed delay.
        while since.elapsed() < state.failures.snapshot().pod_stop_delay {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut store = state.store();
        if store
            .get(pods, &ns, &name)
            .is_some_and(|p| uid_of(p) == uid)
        {
            store.remove(pods, &ns, &name);
        }
        drop(store);
        state.pods().remove(&uid);
    });
    out
}

fn cascade(state: &Arc<State>, store: &mut store::Store, owner_uid: &str) {
    let dependents: Vec<(String, Value)> = store
        .all()
        .filter(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid))
        })
        .map(|(r, o)| (r.to_string(), o.clone()))
        .collect();
    for (r, o) in dependents {
        if res_is_pod(&r) && on_sim_node(state, &o) {
            terminate_pod(state, store, &o);
            continue;
        }
        if let Some(res) = resources::by_qualified(&r)
            && let Some(gone) = store.remove(res, &ns_of(&o), &name_of(&o))
        {
            cascade(state, store, &uid_of(&gone));
        }
    }
}

fn res_is_pod(qualified: &str) -> bool {
    qualified == "pods"
}
