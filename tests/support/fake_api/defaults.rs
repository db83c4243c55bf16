//! The API server's defaulting (kubernetes/kubernetes: pkg/apis/core/v1/defaults.go,
//! pkg/apis/apps/v1/defaults.go), for the fields the tests and kubectl look at. Defaulted fields
//! belong to no manager, so re-applying a configuration without them is a no-op.

use serde_json::{Value, json};

fn default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(value);
    }
}

pub fn pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                container(c);
            }
        }
    }
    if let Some(vs) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vs {
            if let Some(hp) = v.get_mut("hostPath") {
                default(hp, "type", json!(""));
            }
        }
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default().to_string();
    let tag_latest = match image
        .rsplit_once('/')
        .map_or(image.as_str(), |(_, last)| last)
        .split_once(':')
    {
        None => !image.contains('@'),
        Some((_, tag)) => tag == "latest",
    };
    default(
        c,
        "imagePullPolicy",
        json!(if tag_latest { "Always" } else { "IfNotPresent" }),
    );
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            default(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet") {
                default(h, "scheme", json!("HTTP"));
            }
        }
    }
}

pub fn apply(kind: &str, obj: &mut Value, service_ip: impl FnOnce() -> String) {
    match kind {
        "DaemonSet" => {
            let spec = &mut obj["spec"];
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            if spec["updateStrategy"]["type"] == "RollingUpdate" {
                default(
                    &mut spec["updateStrategy"],
                    "rollingUpdate",
                    json!({"maxUnavailable": 1, "maxSurge": 0}),
                );
            }
            if spec["template"]["spec"].is_object() {
                pod_spec(&mut spec["template"]["spec"]);
            }
        }
        "Pod" if obj["spec"].is_object() => {
            pod_spec(&mut obj["spec"]);
            default(&mut obj["spec"], "enableServiceLinks", json!(true));
        }
        "Service" => {
            let spec = &mut obj["spec"];
            if !spec.is_object() {
                *spec = json!({});
            }
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            if spec.get("clusterIP").is_none() {
                let ip = service_ip();
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            default(spec, "ipFamilies", json!(["IPv4"]));
            default(spec, "ipFamilyPolicy", json!("SingleStack"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    default(p, "protocol", json!("TCP"));
                    let port = p["port"].clone();
                    default(p, "targetPort", port);
                }
            }
        }
        "Namespace" => {
            let name = obj["metadata"]["name"].clone();
            default(&mut obj["metadata"], "labels", json!({}));
            default(
                &mut obj["metadata"]["labels"],
                "kubernetes.io/metadata.name",
                name,
            );
            default(obj, "spec", json!({"finalizers": ["kubernetes"]}));
            default(obj, "status", json!({"phase": "Active"}));
        }
        _ => {}
    }
}
