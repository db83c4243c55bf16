//! Server-side printing (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), which
//! `kubectl get` asks for; columns as the real printers' (kubernetes/kubernetes:
//! pkg/printers/internalversion/printers.go).

use serde_json::{Value, json};

use super::resources::Resource;

fn age(obj: &Value) -> String {
    let Some(ts) = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    let secs = (k8s_openapi::jiff::Timestamp::now().as_second() - ts.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn col(name: &str, ty: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": 0})
}

/// A column kubectl shows only with `-o wide`.
fn wide(name: &str) -> Value {
    let mut c = col(name, "string");
    c["priority"] = json!(1);
    c
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses.iter().map(|s| int(&s["restartCount"])).sum();
    let reason = statuses
        .iter()
        .find_map(|s| s["state"]["waiting"]["reason"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            if pod["metadata"]["deletionTimestamp"].is_string() {
                "Terminating".into()
            } else {
                pod["status"]["phase"]
                    .as_str()
                    .unwrap_or("Pending")
                    .to_string()
            }
        });
    vec![
        json!(pod["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(pod)),
        json!(pod["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(pod["spec"]["nodeName"].as_str().unwrap_or("<none>")),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn node_cells(node: &Value) -> Vec<Value> {
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .is_some_and(|c| c["status"] == "True");
    vec![
        json!(node["metadata"]["name"]),
        json!(if ready { "Ready" } else { "NotReady" }),
        json!("<none>"),
        json!(age(node)),
        json!(node["status"]["nodeInfo"]["kubeletVersion"]),
        json!(node["status"]["addresses"][0]["address"]),
        json!("<none>"),
        json!(node["status"]["nodeInfo"]["osImage"]),
        json!(node["status"]["nodeInfo"]["kernelVersion"]),
        json!(node["status"]["nodeInfo"]["containerRuntimeVersion"]),
    ]
}

fn ds_cells(ds: &Value) -> Vec<Value> {
    let s = &ds["status"];
    let selector = ds["spec"]["template"]["spec"]["nodeSelector"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(ds["metadata"]["name"]),
        json!(int(&s["desiredNumberScheduled"])),
        json!(int(&s["currentNumberScheduled"])),
        json!(int(&s["numberReady"])),
        json!(int(&s["updatedNumberScheduled"])),
        json!(int(&s["numberAvailable"])),
        json!(selector),
        json!(age(ds)),
    ]
}

/// Computes one row's cells.
type Cells = fn(&Value) -> Vec<Value>;

pub fn table(res: &Resource, items: &[Value], rv: u64) -> Value {
    let (columns, cells): (Vec<Value>, Cells) = match res.kind {
        "Pod" => (
            vec![
                col("Name", "string"),
                col("Ready", "string"),
                col("Status", "string"),
                col("Restarts", "string"),
                col("Age", "string"),
                wide("IP"),
                wide("Node"),
                wide("Nominated Node"),
                wide("Readiness Gates"),
            ],
            pod_cells,
        ),
        "Node" => (
            vec![
                col("Name", "string"),
                col("Status", "string"),
                col("Roles", "string"),
                col("Age", "string"),
                col("Version", "string"),
                wide("Internal-IP"),
                wide("External-IP"),
                wide("OS-Image"),
                wide("Kernel-Version"),
                wide("Container-Runtime"),
            ],
            node_cells,
        ),
        "DaemonSet" => (
            vec![
                col("Name", "string"),
                col("Desired", "integer"),
                col("Current", "integer"),
                col("Ready", "integer"),
                col("Up-to-date", "integer"),
                col("Available", "integer"),
                col("Node Selector", "string"),
                col("Age", "string"),
            ],
            ds_cells,
        ),
        "Namespace" => (
            vec![
                col("Name", "string"),
                col("Status", "string"),
                col("Age", "string"),
            ],
            |o| {
                vec![
                    json!(o["metadata"]["name"]),
                    json!(o["status"]["phase"]),
                    json!(age(o)),
                ]
            },
        ),
        "Event" => (
            vec![
                col("Last Seen", "string"),
                col("Type", "string"),
                col("Reason", "string"),
                col("Object", "string"),
                col("Message", "string"),
            ],
            |e| {
                let kind = e["involvedObject"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                vec![
                    json!(age(e)),
                    json!(e["type"]),
                    json!(e["reason"]),
                    json!(format!(
                        "{kind}/{}",
                        e["involvedObject"]["name"].as_str().unwrap_or_default()
                    )),
                    json!(e["message"]),
                ]
            },
        ),
        _ => (vec![col("Name", "string"), col("Age", "string")], |o| {
            vec![json!(o["metadata"]["name"]), json!(age(o))]
        }),
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": cells(o),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}
