//! The few protobuf request bodies kubectl's typed clients send (`kubectl create namespace`,
//! `create configmap`, `create serviceaccount`), decoded to JSON. The envelope is `k8s\0` then a
//! `runtime.Unknown` (kubernetes/kubernetes: staging/src/k8s.io/apimachinery/pkg/runtime/
//! generated.proto, pkg/apis/meta/v1/generated.proto, api/core/v1/generated.proto).

use std::collections::HashMap;

use prost::Message;
use serde_json::{Map, Value, json};

#[derive(Clone, PartialEq, prost::Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ObjectMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "3")]
    namespace: String,
    #[prost(map = "string, string", tag = "11")]
    labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "12")]
    annotations: HashMap<String, String>,
}

/// Namespace, ServiceAccount and ConfigMap all start with `metadata = 1`.
#[derive(Clone, PartialEq, prost::Message)]
struct WithMeta {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(map = "string, string", tag = "2")]
    data: HashMap<String, String>,
}

fn meta_json(m: Option<ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    for (k, v) in [
        ("name", m.name),
        ("generateName", m.generate_name),
        ("namespace", m.namespace),
    ] {
        if !v.is_empty() {
            out.insert(k.into(), json!(v));
        }
    }
    if !m.labels.is_empty() {
        out.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        out.insert("annotations".into(), json!(m.annotations));
    }
    Value::Object(out)
}

pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("protobuf body without the k8s envelope")?;
    let unknown = Unknown::decode(inner).map_err(|e| e.to_string())?;
    let tm = unknown.type_meta.unwrap_or_default();
    let mut obj = match tm.kind.as_str() {
        "Namespace" | "ServiceAccount" => {
            let o = WithMeta::decode(unknown.raw.as_slice()).map_err(|e| e.to_string())?;
            json!({"metadata": meta_json(o.metadata)})
        }
        "ConfigMap" => {
            let o = ConfigMap::decode(unknown.raw.as_slice()).map_err(|e| e.to_string())?;
            let mut v = json!({"metadata": meta_json(o.metadata)});
            if !o.data.is_empty() {
                v["data"] = json!(o.data);
            }
            v
        }
        other => {
            return Err(format!(
                "protobuf bodies of kind {other:?} are not decoded here"
            ));
        }
    };
    obj["apiVersion"] = json!(tm.api_version);
    obj["kind"] = json!(tm.kind);
    Ok(obj)
}
