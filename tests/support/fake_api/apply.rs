//! Field ownership and server-side apply, simplified from kubernetes-sigs/structured-merge-diff
//! (as the API server uses it, staging/src/k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager):
//!
//! - a manager owns a set of field paths, stored in `metadata.managedFields` as `FieldsV1`
//!   (`f:<field>`, `k:{"name":"x"}` for items of associative lists, `.` for the item itself);
//! - apply merges the applied configuration into the live object; fields the applier owned
//!   before and no longer applies are removed unless another manager owns them;
//! - applying a value that differs from the live value of a field another manager owns is a
//!   conflict (409 with `FieldManagerConflict` causes) unless `force`, which takes ownership;
//! - a non-apply write (create, update, merge patch) makes its manager own the fields it changed,
//!   taking them from the others without conflict;
//! - nothing changed means nothing written (same resourceVersion, same generation).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::status::{self, ApiError};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Field(String),
    /// Canonical JSON object of the item's key fields, e.g. `{"name":"cadvisor"}`.
    Key(String),
}

pub type FieldPath = Vec<Elem>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Key fields of the associative lists we know (the `patchMergeKey`/`listMapKey` of the
/// Kubernetes types); every other list is atomic.
fn list_keys(field: &str, items: &[Value]) -> Option<&'static [&'static str]> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "ownerReferences" => Some(&["uid"]),
        "conditions" => Some(&["type"]),
        "ports" => {
            let first = items.first()?;
            if first.get("containerPort").is_some() {
                Some(&["containerPort", "protocol"])
            } else if first.get("port").is_some() {
                Some(&["port", "protocol"])
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Structs the Kubernetes types mark `+structType=atomic` (a `LabelSelector`).
fn atomic_struct(field: &str, v: &Value) -> bool {
    field == "selector" && (v.get("matchLabels").is_some() || v.get("matchExpressions").is_some())
}

fn key_of(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        let v = match item.get(*k) {
            Some(v) => v.clone(),
            None if *k == "protocol" => json!("TCP"),
            None => continue,
        };
        m.insert((*k).to_string(), v);
    }
    Value::Object(m).to_string()
}

fn last_field(path: &[Elem]) -> &str {
    match path.last() {
        Some(Elem::Field(f)) => f,
        _ => "",
    }
}

fn collect(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() && !atomic_struct(last_field(path), v) => {
            for (k, c) in m {
                path.push(Elem::Field(k.clone()));
                collect(c, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if let Some(keys) = list_keys(last_field(path), items) {
                for item in items {
                    path.push(Elem::Key(key_of(item, keys)));
                    out.insert(path.clone());
                    if let Value::Object(m) = item {
                        for (k, c) in m {
                            path.push(Elem::Field(k.clone()));
                            collect(c, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            } else {
                out.insert(path.clone());
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The fields a manager can own in `obj`: everything but identity, bookkeeping and status.
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut copy = obj.clone();
    if let Some(m) = copy.as_object_mut() {
        for k in ["apiVersion", "kind", "status"] {
            m.remove(k);
        }
    }
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "generateName",
        ] {
            meta.remove(k);
        }
        if meta.is_empty() {
            copy.as_object_mut().map(|m| m.remove("metadata"));
        }
    }
    let mut out = FieldSet::new();
    collect(&copy, &mut Vec::new(), &mut out);
    out.remove(&Vec::new());
    out
}

/// The fields of `obj.status` (what a status writer owns).
pub fn status_fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(s) = obj.get("status") {
        collect(s, &mut vec![Elem::Field("status".into())], &mut out);
    }
    out
}

pub fn get<'a>(v: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = v;
    let mut field = "";
    for e in path {
        match e {
            Elem::Field(f) => {
                cur = cur.get(f)?;
                field = f;
            }
            Elem::Key(k) => {
                let items = cur.as_array()?;
                let keys = list_keys(field, items)?;
                cur = items.iter().find(|it| key_of(it, keys) == *k)?;
                field = "";
            }
        }
    }
    Some(cur)
}

fn remove(v: &mut Value, path: &[Elem]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let field = last_field(parent_path).to_string();
    let Some(parent) = get_mut(v, parent_path) else {
        return;
    };
    match last {
        Elem::Field(f) => {
            if let Some(m) = parent.as_object_mut() {
                m.remove(f);
            }
        }
        Elem::Key(k) => {
            if let Some(items) = parent.as_array_mut() {
                let Some(keys) = list_keys(&field, items) else {
                    return;
                };
                items.retain(|it| key_of(it, keys) != *k);
            }
        }
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Elem]) -> Option<&'a mut Value> {
    let mut cur = v;
    let mut field = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                cur = cur.get_mut(f)?;
                field = f.clone();
            }
            Elem::Key(k) => {
                let items = cur.as_array_mut()?;
                let keys = list_keys(&field, items)?;
                cur = items.iter_mut().find(|it| key_of(it, keys) == *k)?;
                field.clear();
            }
        }
    }
    Some(cur)
}

/// structured-merge-diff's path string: `.spec.template.spec.containers[name="cadvisor"].image`.
pub fn path_string(path: &[Elem]) -> String {
    let mut s = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Elem::Key(k) => {
                let m: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
        }
    }
    s
}

/// Deep merge of an applied configuration (or a strategic merge patch without directives)
/// into `live`: maps merge, associative lists merge by key, everything else is replaced;
/// `null` deletes.
pub fn merge(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !atomic_struct(field, applied) => {
            for (k, av) in a {
                if k.starts_with('$') {
                    continue;
                }
                if av.is_null() {
                    l.remove(k);
                    continue;
                }
                match l.get_mut(k) {
                    Some(lv) => merge(lv, av, k),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if list_keys(field, a).is_some() => {
            let keys = list_keys(field, a).unwrap_or(&[]);
            for ai in a {
                let key = key_of(ai, keys);
                match l.iter_mut().find(|li| key_of(li, keys) == key) {
                    Some(li) => merge(li, ai, ""),
                    None => l.push(ai.clone()),
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = json!({});
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

// ---- managedFields ------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How the real server names a manager in a conflict (`printManager`).
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {sub:?}");
        }
        if self.operation == "Update" {
            s = format!("{s} using {} at {}", self.api_version, self.time);
        }
        s
    }
}

fn elem_key(e: &Elem) -> String {
    match e {
        Elem::Field(f) => format!("f:{f}"),
        Elem::Key(k) => format!("k:{k}"),
    }
}

pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = json!({});
    for p in set {
        let mut node = &mut root;
        for e in p {
            node = node
                .as_object_mut()
                .map(|m| m.entry(elem_key(e)).or_insert(json!({})))
                .expect("fieldsV1 nodes are objects");
        }
    }
    for p in set {
        let is_prefix = set
            .range(p.clone()..)
            .nth(1)
            .is_some_and(|next| next.len() > p.len() && next.starts_with(p));
        if is_prefix {
            let mut node = &mut root;
            for e in p {
                node = &mut node[elem_key(e)];
            }
            node["."] = json!({});
        }
    }
    root
}

fn from_fields_v1(node: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = node.as_object() else {
        return;
    };
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        let e = if let Some(f) = k.strip_prefix("f:") {
            Elem::Field(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            let canon = serde_json::from_str::<Value>(key)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| key.to_string());
            Elem::Key(canon)
        } else {
            Elem::Field(k.clone())
        };
        path.push(e);
        if child.as_object().is_none_or(|c| c.is_empty()) {
            out.insert(path.clone());
        } else {
            from_fields_v1(child, path, out);
        }
        path.pop();
    }
}

pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let mut fields = FieldSet::new();
            from_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut fields);
            Entry {
                manager: e["manager"].as_str().unwrap_or_default().to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                subresource: e["subresource"].as_str().map(str::to_string),
                fields,
            }
        })
        .collect()
}

pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (None: create). Returns the new
/// object (status and bookkeeping left to the caller); the applier's entry keeps its old time
/// so that an unchanged result compares equal to `live`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut config = applied.clone();
    if let Some(m) = config.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(k);
        }
    }
    let new_set = fields_of(&config);
    let Some(live) = live else {
        let mut obj = config;
        set_entries(
            &mut obj,
            &[Entry {
                manager: manager.to_string(),
                operation: "Apply".into(),
                api_version,
                time: now.to_string(),
                subresource: None,
                fields: new_set,
            }],
        );
        return Ok(obj);
    };

    let mut entries = entries(live);
    let mine = entries
        .iter()
        .position(|e| e.same_owner(manager, "Apply", None));

    // Conflicts: a leaf another manager owns whose live value differs from the applied one.
    let mut conflicts: Vec<(usize, FieldPath)> = Vec::new();
    for p in &new_set {
        if matches!(p.last(), Some(Elem::Key(_))) {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if Some(i) == mine || e.subresource.is_some() || !e.fields.contains(p) {
                continue;
            }
            if get(live, p) != get(&config, p) {
                conflicts.push((i, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let causes: Vec<(String, String)> = conflicts
                .iter()
                .map(|(i, p)| (entries[*i].describe(), path_string(p)))
                .collect();
            return Err(status::apply_conflict(&causes));
        }
        for (i, p) in &conflicts {
            entries[*i].fields.remove(p);
        }
    }

    let mut obj = live.clone();
    merge(&mut obj, &config, "");
    if let Some(i) = mine {
        let dropped: Vec<FieldPath> = entries[i].fields.difference(&new_set).cloned().collect();
        for p in dropped {
            let owned_elsewhere = entries
                .iter()
                .enumerate()
                .any(|(j, e)| j != i && e.fields.contains(&p));
            if !owned_elsewhere {
                remove(&mut obj, &p);
                // The structs that held only the dropped fields go too: structured-merge-diff's
                // field sets hold every path prefix, so the parents leave with their last child
                // (kubernetes-sigs/structured-merge-diff: fieldpath.Set, merge.Updater).
                for k in (1..p.len()).rev() {
                    let parent = &p[..k];
                    let empty = get(&obj, parent)
                        .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()));
                    let owned = new_set.contains(parent)
                        || entries.iter().any(|e| e.fields.contains(parent));
                    if !empty || owned || !matches!(parent.last(), Some(Elem::Field(_))) {
                        break;
                    }
                    remove(&mut obj, parent);
                }
            }
        }
    }
    match mine {
        Some(i) => {
            if entries[i].fields != new_set || entries[i].api_version != api_version {
                entries[i].time = now.to_string();
            }
            entries[i].fields = new_set;
            entries[i].api_version = api_version;
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version,
            time: now.to_string(),
            subresource: None,
            fields: new_set,
        }),
    }
    set_entries(&mut obj, &entries);
    Ok(obj)
}

/// Ownership after a non-apply write from `old` to `new` by `manager` (operation Update):
/// the manager takes the fields it set or changed; fields gone from the object leave every set.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let api_version = new["apiVersion"].as_str().unwrap_or_default().to_string();
    let mut entries = old.map(entries).unwrap_or_default();
    let new_fields = if subresource == Some("status") {
        status_fields_of(new)
    } else {
        fields_of(new)
    };
    let all_new = {
        let mut s = fields_of(new);
        s.extend(status_fields_of(new));
        s
    };
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| old.is_none_or(|o| get(o, p) != get(new, p)))
        .cloned()
        .collect();
    for e in entries.iter_mut() {
        e.fields.retain(|p| all_new.contains(p));
        if !e.same_owner(manager, "Update", subresource) {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_owner(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_string();
                e.api_version = api_version;
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: now.to_string(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    set_entries(new, &entries);
}
