//! The object store: JSON objects keyed by (resource, namespace, name), one global
//! resourceVersion counter (as etcd's revision), and the full event history so a watch from any
//! resourceVersion replays what it missed before going live.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::resources::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    /// `Resource::qualified()`.
    pub resource: String,
    pub kind: EventType,
    pub object: Value,
}

type Key = (String, String, String);

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Arc<Event>>,
    tx: broadcast::Sender<Arc<Event>>,
    uid_counter: u64,
}

pub fn ns_of(obj: &Value) -> String {
    obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(16384);
        Store {
            objects: BTreeMap::new(),
            rv: 100,
            history: Vec::new(),
            tx,
            uid_counter: 0,
        }
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// A fresh UUID-shaped uid.
    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let seed = self.uid_counter;
        let pid = u64::from(std::process::id());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let a = mix(seed ^ nanos);
        let b = mix(a ^ pid.rotate_left(17) ^ seed);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a as u16) & 0x0fff,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    pub fn get(&self, res: &Resource, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(res.qualified(), ns.to_string(), name.to_string()))
    }

    /// Objects of `res`, in one namespace or all (`None`), sorted by namespace then name.
    pub fn list(&self, res: &Resource, ns: Option<&str>) -> Vec<Value> {
        self.iter(res, ns).cloned().collect()
    }

    /// [`Store::list`] without copies, for the controllers' frequent reads: a range of the
    /// map's key order (resource, namespace, name), not a pass over every object of every kind
    /// (thousands of events beside hundreds of pods in scripts/bench/scale.sh).
    pub fn iter<'a>(
        &'a self,
        res: &Resource,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let q = res.qualified();
        let start = (q.clone(), ns.unwrap_or_default().to_string(), String::new());
        self.objects
            .range(start..)
            .take_while(move |((r, n, _), _)| *r == q && ns.is_none_or(|want| want == n))
            .map(|(_, v)| v)
    }

    fn emit(&mut self, res: &Resource, kind: EventType, object: Value) {
        let event = Arc::new(Event {
            rv: self.rv,
            resource: res.qualified(),
            kind,
            object,
        });
        self.history.push(event.clone());
        let _ = self.tx.send(event);
    }

    /// Stores a new or changed object under a new resourceVersion and tells the watchers.
    pub fn put(&mut self, res: &Resource, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = (res.qualified(), ns_of(&obj), name_of(&obj));
        let kind = if self.objects.contains_key(&key) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.objects.insert(key, obj.clone());
        self.emit(res, kind, obj.clone());
        obj
    }

    pub fn remove(&mut self, res: &Resource, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .remove(&(res.qualified(), ns.to_string(), name.to_string()))?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(res, EventType::Deleted, obj.clone());
        Some(obj)
    }

    /// Events after `rv` for `resource`, and a receiver for what comes next; taken together
    /// under the store's lock, so nothing falls between them.
    pub fn subscribe(
        &self,
        resource: &str,
        rv: u64,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let start = self.history.partition_point(|e| e.rv <= rv);
        let backlog = self.history[start..]
            .iter()
            .filter(|e| e.resource == resource)
            .cloned()
            .collect();
        (backlog, self.tx.subscribe())
    }

    /// A receiver of every event (the controller's trigger).
    pub fn receiver(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.objects.iter().map(|((r, _, _), v)| (r.as_str(), v))
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
