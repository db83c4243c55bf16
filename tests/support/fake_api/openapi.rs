//! Just enough OpenAPI v3 for kubectl: `kubectl apply` (validation `Strict`, its default) asks
//! `/openapi/v3` whether the server validates fields itself, by looking for a `fieldValidation`
//! query parameter on the PATCH operation of the object's kind
//! (kubernetes/kubernetes: staging/src/k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go).
//! When it does, kubectl validates nothing itself and needs no schemas.

use serde_json::{Value, json};

use super::resources::RESOURCES;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn index(crds: bool) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| crds || !r.optional_crd) {
        let p = gv_path(r.group, r.version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", p.len() * 7919)}),
        );
    }
    paths.insert(
        CRD_GV.to_string(),
        json!({"serverRelativeURL": format!("/openapi/v3/{CRD_GV}?hash=0C1D2E3F4A5B6C7D")}),
    );
    json!({"paths": paths})
}

/// Every real server serves apiextensions.k8s.io/v1; kubectl reads its CustomResourceDefinition
/// PATCH operation for kinds whose group/version it cannot find.
const CRD_GV: &str = "apis/apiextensions.k8s.io/v1";

/// The document for one group/version, or None when it is not served.
pub fn group_version(path: &str, crds: bool) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let query_params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .iter()
        .map(|n| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    for r in RESOURCES.iter().filter(|r| crds || !r.optional_crd) {
        if gv_path(r.group, r.version) != path {
            continue;
        }
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let item = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{path}/{}/{{name}}", r.plural)
        };
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", r.kind),
                "parameters": query_params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    if path == CRD_GV {
        let gvk = json!({"group": "apiextensions.k8s.io", "version": "v1", "kind": "CustomResourceDefinition"});
        paths.insert(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}".to_string(),
            json!({"patch": {
                "operationId": "patchApiextensionsV1CustomResourceDefinition",
                "parameters": query_params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
