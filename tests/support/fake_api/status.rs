//! `metav1.Status` error bodies, worded as the real API server words them
//! (kubernetes/kubernetes: staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go,
//! plugin/pkg/auth/authorizer/rbac for the Forbidden sentence).

use serde_json::{Value, json};

use super::resources::Resource;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let Some(d) = details {
            body["details"] = d;
        }
        ApiError { code, body }
    }

    pub fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn details(res: &Resource, name: &str) -> Value {
    let mut d = json!({"kind": res.plural});
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    d
}

fn subject(res: &Resource, name: &str) -> String {
    if name.is_empty() {
        res.qualified()
    } else {
        format!("{} \"{}\"", res.qualified(), name)
    }
}

pub fn not_found(res: &Resource, name: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{} not found", subject(res, name)),
        Some(details(res, name)),
    )
}

pub fn already_exists(res: &Resource, name: &str) -> ApiError {
    ApiError::new(
        409,
        "AlreadyExists",
        format!("{} already exists", subject(res, name)),
        Some(details(res, name)),
    )
}

/// Optimistic-concurrency conflict (a stale `metadata.resourceVersion`).
pub fn stale(res: &Resource, name: &str) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            res.qualified(),
            name
        ),
        Some(details(res, name)),
    )
}

/// A delete precondition (uid or resourceVersion) that the object no longer meets
/// (k8s.io/apiserver `storage.Preconditions.Check`, a Conflict by `InterpretDeleteError`).
pub fn precondition_failed(
    res: &Resource,
    name: &str,
    what: &str,
    wanted: &str,
    have: &str,
) -> ApiError {
    ApiError::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {}: Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {have}",
            subject(res, name)
        ),
        Some(details(res, name)),
    )
}

/// Server-side apply conflicts: `causes` are `(manager description, field path)`.
pub fn apply_conflict(causes: &[(String, String)]) -> ApiError {
    let message = if causes.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            causes[0].0, causes[0].1
        )
    } else {
        let mut managers: Vec<&String> = causes.iter().map(|c| &c.0).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in causes.iter().filter(|c| &c.0 == m) {
                lines.push(format!("- {}", c.1));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            causes.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = causes
        .iter()
        .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": f}))
        .collect();
    ApiError::new(409, "Conflict", message, Some(json!({"causes": causes})))
}

/// RBAC's denial: `daemonsets.apps "cadvisor" is forbidden: User "admin" cannot patch resource
/// "daemonsets" in API group "apps" in the namespace "cadvisor"`.
pub fn forbidden(
    res: &Resource,
    sub: Option<&str>,
    name: &str,
    user: &str,
    verb: &str,
    namespace: Option<&str>,
) -> ApiError {
    let resource = match sub {
        Some(s) => format!("{}/{}", res.plural, s),
        None => res.plural.to_string(),
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    ApiError::new(
        403,
        "Forbidden",
        format!(
            "{} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
            subject(res, name),
            res.group
        ),
        Some(details(res, name)),
    )
}

/// Pod Security admission's denial: `pods "x" is forbidden: violates PodSecurity
/// "baseline:latest": hostPath volumes (volume "sys")` (pod-security-admission/admission).
pub fn pod_security_forbidden(name: &str, reason: &str) -> ApiError {
    ApiError::new(
        403,
        "Forbidden",
        format!("pods \"{name}\" is forbidden: {reason}"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized".to_string(), None)
}

pub fn bad_request(message: String) -> ApiError {
    ApiError::new(400, "BadRequest", message, None)
}

/// `Kind.group` as `schema.GroupKind.String()` writes it (`ConfigMap`, `DaemonSet.apps`).
fn qualified_kind(res: &Resource) -> String {
    if res.group.is_empty() {
        res.kind.to_string()
    } else {
        format!("{}.{}", res.kind, res.group)
    }
}

/// 422 for one field error, `message` as `field.Error.Error()` writes it (`FIELD: Invalid
/// value: ...` or `FIELD: Required value: ...`). As k8s.io/apimachinery `errors.NewInvalid`:
/// the details name the kind (not the resource) and carry the field error as a cause, which
/// kubectl prints ("The ConfigMap \"m\" is invalid: metadata.uid: ...").
pub fn invalid(res: &Resource, name: &str, message: String) -> ApiError {
    let mut d = details(res, name);
    d["kind"] = json!(res.kind);
    if let Some((field, body)) = message.split_once(": ") {
        let reason = if body.starts_with("Required value") {
            "FieldValueRequired"
        } else {
            "FieldValueInvalid"
        };
        d["causes"] = json!([{"reason": reason, "message": body, "field": field}]);
    }
    ApiError::new(
        422,
        "Invalid",
        format!("{} \"{}\" is invalid: {message}", qualified_kind(res), name),
        Some(d),
    )
}

pub fn unsupported_media(content_type: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
        ),
        None,
    )
}

pub fn method_not_allowed(message: String) -> ApiError {
    ApiError::new(405, "MethodNotAllowed", message, None)
}

pub fn page_not_found() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource".to_string(),
        Some(json!({})),
    )
}

pub fn service_unavailable(message: String) -> ApiError {
    ApiError::new(503, "ServiceUnavailable", message, None)
}

pub fn internal(message: String) -> ApiError {
    ApiError::new(500, "InternalError", message, None)
}
