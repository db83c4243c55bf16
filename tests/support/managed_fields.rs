//! Reading `metadata.managedFields` of an object the fake API server holds: who wrote what
//! (kubernetes.io "Server-Side Apply", "Field management").

use serde_json::Value;

/// The manager of every entry, in order.
pub fn managers(object: &Value) -> Vec<String> {
    entries(object)
        .filter_map(|e| e["manager"].as_str())
        .map(str::to_string)
        .collect()
}

/// The managers that own `metadata.labels[key]`, in order.
pub fn label_owners(object: &Value, key: &str) -> Vec<String> {
    let field = format!("f:{key}");
    entries(object)
        .filter(|e| {
            e["fieldsV1"]["f:metadata"]["f:labels"]
                .get(&field)
                .is_some()
        })
        .filter_map(|e| e["manager"].as_str())
        .map(str::to_string)
        .collect()
}

fn entries(object: &Value) -> impl Iterator<Item = &Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
}
