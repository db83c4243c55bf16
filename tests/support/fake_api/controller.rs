//! The control plane's and the kubelets' share of the work: Node objects for the simulated nodes,
//! the DaemonSet controller (one pod per node, rolling update with maxUnavailable, status as
//! kubernetes/kubernetes: pkg/controller/daemon computes it), and each pod's life on its node
//! (Pending → Running/Ready, or ImagePullBackOff / CrashLoopBackOff with their Events).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::apply;
use super::cadvisor;
use super::server;
use super::store::{name_of, now, ns_of, uid_of};
use super::{PodRuntime, SimNode, State, resource};

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Kubernetes' `rand.String` alphabet (no vowels, no confusable digits).
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = COUNTER.fetch_add(1, Ordering::SeqCst)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `controller-revision-hash` of a pod template (stable for equal templates).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = fnv(&template.to_string());
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn node_object(n: &SimNode) -> Value {
    let mut labels = json!({});
    for (k, v) in n.node_labels() {
        labels[k] = json!(v);
    }
    let mut annotations = json!({
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true"
    });
    for (k, v) in &n.annotations {
        annotations[k] = json!(v);
    }
    let t = now();
    let cond = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": t, "lastTransitionTime": t})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": labels,
            "annotations": annotations
        },
        "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": n.internal_ip},
                {"type": "Hostname", "address": n.name}
            ],
            "allocatable": {"cpu": "2", "ephemeral-storage": "19475088Ki", "hugepages-2Mi": "0", "memory": "24522228Ki", "pods": "110"},
            "capacity": {"cpu": "2", "ephemeral-storage": "20523664Ki", "hugepages-2Mi": "0", "memory": "24624628Ki", "pods": "110"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": n.arch,
                "bootID": "5f1c1a7e-0000-4000-8000-000000000001",
                "containerRuntimeVersion": n.container_runtime_version,
                "kernelVersion": "6.1.0-27-amd64",
                "kubeProxyVersion": n.kubelet_version,
                "kubeletVersion": n.kubelet_version,
                "machineID": "0123456789abcdef0123456789abcdef",
                "operatingSystem": n.os,
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": "00000000-0000-0000-0000-000000000001"
            }
        }
    })
}

/// Namespaces every cluster has, and the nodes.
pub fn seed(state: &Arc<State>) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = server::create(
            state,
            resource("namespaces"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            "kube-apiserver",
            false,
        );
    }
    for n in state.nodes() {
        register_node(state, &n);
    }
    set_crds(state, state.crds());
}

/// The kubelet of `n` registers its Node object.
pub fn register_node(state: &Arc<State>, n: &SimNode) {
    let _ = server::create(state, resource("nodes"), node_object(n), "kubelet", false);
}

/// Installs or removes the Prometheus operator's ServiceMonitor CRD (object and served API).
pub fn set_crds(state: &Arc<State>, installed: bool) {
    let crds = resource("customresourcedefinitions");
    let crd = super::resources::servicemonitor_crd();
    if installed {
        let _ = server::create(state, crds, crd, "kubectl-create", false);
    } else {
        let _ = server::delete(state, crds, "", &name_of(&crd), None, None);
    }
    state.crds.store(installed, Ordering::SeqCst);
}

pub async fn run(state: Arc<State>) {
    let mut rx = state.store().receiver();
    // The DaemonSet controller's two passes read only the store and the simulated nodes, and
    // every change they make is a store write: after a pass that wrote nothing, the same pass on
    // the same store revision and the same nodes would write nothing again, so it waits for one
    // of them to change (a pass every 25 ms over hundreds of pods otherwise: scale.sh).
    let mut reconciled: Option<(u64, u64)> = None;
    let mut counted: Option<(u64, u64)> = None;
    // Likewise the kubelets, once every pod on a simulated node runs without crashing: only a
    // pod waiting to start or crash-looping has a transition due with time alone.
    let mut kubelets_idle: Option<(u64, u64)> = None;
    let mut quotas: Option<(u64, u64)> = None;
    loop {
        tokio::select! {
            r = rx.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
        unless_settled(&state, &mut reconciled, reconcile_daemonsets);
        let before = revision(&state);
        if kubelets_idle != Some(before) {
            let idle = pods_lifecycle(&state).await;
            kubelets_idle = idle.then_some(before);
        }
        unless_settled(&state, &mut counted, daemonset_status);
        if !state.failures.quota_controller_stopped() {
            unless_settled(&state, &mut quotas, quota_status);
        }
    }
}

/// The resource quota controller's status sync (kubernetes/kubernetes
/// pkg/controller/resourcequota `syncResourceQuota`): `status.hard` becomes `spec.hard`, and
/// `status.used` each counted kind's objects in the namespace (`count/<plural>[.<group>]`).
/// Quota admission enforces only what `status.hard` holds.
fn quota_status(state: &Arc<State>) {
    let quotas = resource("resourcequotas");
    let live: Vec<Value> = state.store().iter(quotas, None).cloned().collect();
    for quota in live {
        let ns = ns_of(&quota);
        let hard = quota["spec"]["hard"].clone();
        let mut used = serde_json::Map::new();
        for key in hard.as_object().into_iter().flatten().map(|(k, _)| k) {
            let counted = key.strip_prefix("count/").unwrap_or(key);
            let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
            let Some(res) = super::resources::RESOURCES
                .iter()
                .find(|r| r.plural == plural && r.group == group)
            else {
                continue;
            };
            let n = state.store().iter(res, Some(&ns)).count();
            used.insert(key.clone(), json!(n.to_string()));
        }
        let status = json!({"hard": hard, "used": used});
        if quota["status"] == status {
            continue;
        }
        let mut store = state.store();
        let Some(current) = store.get(quotas, &ns, &name_of(&quota)).cloned() else {
            continue;
        };
        if current["metadata"]["uid"] != quota["metadata"]["uid"] {
            continue;
        }
        let mut new = current.clone();
        new["status"] = status;
        apply::record_update(
            Some(&current),
            &mut new,
            "kube-controller-manager",
            Some("status"),
            &now(),
        );
        store.put(quotas, new);
    }
}

/// The store's revision and the count of changes to the simulated nodes.
fn revision(state: &Arc<State>) -> (u64, u64) {
    (state.store().rv(), state.nodes_version())
}

/// Runs `pass` unless the store's revision and the nodes are what they were before the last
/// run of it that changed nothing; remembers whether this one did.
fn unless_settled(state: &Arc<State>, settled: &mut Option<(u64, u64)>, pass: fn(&Arc<State>)) {
    let before = revision(state);
    if *settled == Some(before) {
        return;
    }
    pass(state);
    let wrote = state.store().rv() != before.0;
    *settled = (!wrote).then_some(before);
}

fn terminating(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_string()
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Every stored Node's labels, by node name.
type NodeLabels = std::collections::HashMap<String, Vec<(String, String)>>;

fn stored_node_labels(state: &Arc<State>) -> NodeLabels {
    state
        .store()
        .iter(resource("nodes"), None)
        .map(|n| {
            let labels = n["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (name_of(n), labels)
        })
        .collect()
}

/// Whether the DaemonSet's pod template may run on `node`: its `nodeSelector` and its required
/// node affinity (`nodeSelectorTerms` are ORed, the expressions of a term ANDed; operators In,
/// NotIn, Exists, DoesNotExist on the node's labels), as the DaemonSet controller checks with
/// the scheduler's predicates (kubernetes/kubernetes: pkg/controller/daemon/daemon_controller.go
/// `NodeShouldRunDaemonPod`, component-helpers/scheduling/corev1/nodeaffinity).
///
/// The labels are the Node object's as stored (what `kubectl label` or a server-side apply
/// changed), as the controller reads them from its Node informer; a simulated node whose Node
/// object is missing falls back to the labels its kubelet would register.
fn node_selected(ds: &Value, node: &SimNode, stored: &NodeLabels) -> bool {
    let registered;
    let labels: &[(String, String)] = match stored.get(&node.name) {
        Some(l) => l,
        None => {
            registered = node.node_labels();
            &registered
        }
    };
    let label = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    };
    let pod = &ds["spec"]["template"]["spec"];
    if let Some(sel) = pod["nodeSelector"].as_object()
        && !sel.iter().all(|(k, v)| label(k) == v.as_str())
    {
        return false;
    }
    let required =
        &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    let Some(terms) = required["nodeSelectorTerms"].as_array() else {
        return true;
    };
    terms.iter().any(|term| {
        let exprs = term["matchExpressions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !exprs.is_empty()
            && exprs.iter().all(|e| {
                let key = e["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = e["values"]
                    .as_array()
                    .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let have = label(key);
                match e["operator"].as_str() {
                    Some("In") => have.is_some_and(|v| values.contains(&v)),
                    Some("NotIn") => !have.is_some_and(|v| values.contains(&v)),
                    Some("Exists") => have.is_some(),
                    Some("DoesNotExist") => have.is_none(),
                    _ => false,
                }
            })
    })
}

/// `maxUnavailable` as a number of pods, as the DaemonSet controller scales it: a percentage of
/// the desired pods rounded *up* (kubernetes/kubernetes: pkg/controller/daemon/util/
/// daemonset_util.go `UnavailableCount`, `intstrutil.GetScaledValueFromIntOrPercent(..., true)`),
/// and 1 when that comes to 0 with no surge (pkg/controller/daemon/update.go
/// `updatedDesiredNodeCounts`; the fake has no maxSurge). Default 1 (apps/v1 defaults).
pub fn max_unavailable(ds: &Value, desired: usize) -> usize {
    let v = &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"];
    let n = match v {
        Value::Number(n) => n.as_u64().unwrap_or(1) as usize,
        Value::String(s) if s.ends_with('%') => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (desired * pct).div_ceil(100)
        }
        _ => 1,
    };
    n.max(1)
}

fn new_pod(ds: &Value, node: &SimNode, hash: &str) -> Value {
    let template = &ds["spec"]["template"];
    let ds_name = name_of(ds);
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["controller-revision-hash"] = json!(hash);
    labels["pod-template-generation"] = json!(
        ds["metadata"]["generation"]
            .as_i64()
            .unwrap_or(1)
            .to_string()
    );
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!(node.name);
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node.name]}]}]
    });
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        if !tolerations.iter().any(|t| t["key"] == key) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    spec["tolerations"] = json!(tolerations);
    let sa = spec["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(sa);
    spec["serviceAccount"] = json!(sa);
    spec["priority"] = json!(0);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    let qos = if spec["containers"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["resources"].as_object().is_some_and(|r| !r.is_empty()))
    }) {
        "Burstable"
    } else {
        "BestEffort"
    };
    let mut meta = json!({
        "name": format!("{ds_name}-{}", random_suffix(5)),
        "generateName": format!("{ds_name}-"),
        "namespace": ns_of(ds),
        "labels": labels,
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds_name, "uid": uid_of(ds),
            "controller": true, "blockOwnerDeletion": true
        }]
    });
    if template["metadata"]["annotations"].is_object() {
        meta["annotations"] = template["metadata"]["annotations"].clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": "Pending",
            "qosClass": qos,
            "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}]
        }
    })
}

/// What the DaemonSet controller reads of a pod that is not terminating and has a controller:
/// read in place under the store's lock instead of copying each pod object, as every pass reads
/// every pod (hundreds in scripts/bench/scale.sh).
struct PodSummary {
    ns: String,
    name: String,
    /// The uids of its controller owner references (`controller: true`).
    controllers: Vec<String>,
    node: Option<String>,
    /// Its `controller-revision-hash` label.
    hash: Option<String>,
    ready: bool,
}

impl PodSummary {
    fn owned_by(&self, uid: &str) -> bool {
        self.controllers.iter().any(|c| c == uid)
    }
}

/// The DaemonSets (copied: a few) and a summary of each pod one may own, read together.
fn daemonsets_and_pods(state: &Arc<State>) -> (Vec<Value>, Vec<PodSummary>) {
    let store = state.store();
    let pods = store
        .iter(resource("pods"), None)
        .filter(|p| !terminating(p))
        .filter_map(|p| {
            let controllers: Vec<String> = p["metadata"]["ownerReferences"]
                .as_array()?
                .iter()
                .filter(|o| o["controller"] == true)
                .filter_map(|o| o["uid"].as_str().map(str::to_string))
                .collect();
            (!controllers.is_empty()).then(|| PodSummary {
                ns: ns_of(p),
                name: name_of(p),
                controllers,
                node: p["spec"]["nodeName"].as_str().map(str::to_string),
                hash: p["metadata"]["labels"]["controller-revision-hash"]
                    .as_str()
                    .map(str::to_string),
                ready: pod_ready(p),
            })
        })
        .collect();
    (store.list(resource("daemonsets"), None), pods)
}

/// One pass of the DaemonSet controller: create missing pods, replace outdated ones within
/// `maxUnavailable`.
fn reconcile_daemonsets(state: &Arc<State>) {
    let (daemonsets, pods) = daemonsets_and_pods(state);
    let stored = stored_node_labels(state);
    for ds in daemonsets {
        if ds["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let hash = template_hash(&ds["spec"]["template"]);
        let uid = uid_of(&ds);
        let owned: Vec<&PodSummary> = pods.iter().filter(|p| p.owned_by(&uid)).collect();
        let all_nodes = state.nodes();
        let nodes: Vec<&SimNode> = all_nodes
            .iter()
            .filter(|n| node_selected(&ds, n, &stored))
            .collect();
        let rolling = ds["spec"]["updateStrategy"]["type"] != "OnDelete";
        let mut unavailable = 0;
        let mut outdated: Vec<(&SimNode, &PodSummary)> = Vec::new();
        // The first owned pod on each node (one pass: hundreds of simulated nodes).
        let mut first_on: std::collections::HashMap<&str, &PodSummary> = Default::default();
        for p in &owned {
            if let Some(node) = p.node.as_deref() {
                first_on.entry(node).or_insert(*p);
            }
        }
        let node_names: std::collections::HashSet<&str> =
            nodes.iter().map(|n| n.name.as_str()).collect();
        for node in &nodes {
            match first_on.get(node.name.as_str()) {
                None => {
                    create_pod(state, &ds, node, &hash);
                    unavailable += 1;
                }
                Some(p) => {
                    let current = p.hash.as_deref() == Some(hash.as_str());
                    if !p.ready {
                        unavailable += 1;
                    }
                    if !current && rolling {
                        outdated.push((node, p));
                    }
                }
            }
        }
        // Pods on nodes that no longer match go.
        for p in &owned {
            if !p.node.as_deref().is_some_and(|n| node_names.contains(n)) {
                delete_pod(state, &ds, &p.ns, &p.name);
            }
        }
        let budget = max_unavailable(&ds, nodes.len());
        for (node, old) in outdated {
            let old_ready = old.ready;
            if old_ready && unavailable >= budget {
                break;
            }
            delete_pod(state, &ds, &old.ns, &old.name);
            create_pod(state, &ds, node, &hash);
            if old_ready {
                unavailable += 1;
            }
        }
    }
}

fn create_pod(state: &Arc<State>, ds: &Value, node: &SimNode, hash: &str) {
    let pod = new_pod(ds, node, hash);
    let created = server::create(
        state,
        resource("pods"),
        pod,
        "kube-controller-manager",
        false,
    );
    // A refused pod (Pod Security admission) is a FailedCreate warning on the DaemonSet, and no
    // pod (kubernetes/kubernetes: pkg/controller/daemon, "FailedCreate" via the event recorder).
    if let Err(refused) = &created {
        event(
            state,
            ds,
            None,
            "Warning",
            "FailedCreate",
            &format!("Error creating: {}", refused.message()),
            "daemonset-controller",
            None,
        );
    }
    if let Ok(created) = created {
        state.pods().insert(
            uid_of(&created),
            PodRuntime {
                created: Instant::now(),
                started: None,
                registration: None,
                restarts: 0,
                last_restart: None,
                failed_pull: false,
                crashing: false,
            },
        );
        event(
            state,
            ds,
            None,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {}", name_of(&created)),
            "daemonset-controller",
            None,
        );
        event(
            state,
            &created,
            None,
            "Normal",
            "Scheduled",
            &format!(
                "Successfully assigned {}/{} to {}",
                ns_of(&created),
                name_of(&created),
                node.name
            ),
            "default-scheduler",
            None,
        );
    }
}

fn delete_pod(state: &Arc<State>, ds: &Value, ns: &str, name: &str) {
    if server::delete(state, resource("pods"), ns, name, None, None).is_ok() {
        event(
            state,
            ds,
            None,
            "Normal",
            "SuccessfulDelete",
            &format!("Deleted pod: {name}"),
            "daemonset-controller",
            None,
        );
    }
}

/// Records (or counts again) an Event about `obj`.
/// Several kubelet events about one pod's container, in order: (type, reason, message).
fn kubelet_events(
    state: &Arc<State>,
    pod: &Value,
    field_path: &str,
    host: Option<&str>,
    events: &[(&str, &str, &str)],
) {
    for (ty, reason, message) in events {
        event(
            state,
            pod,
            Some(field_path),
            ty,
            reason,
            message,
            "kubelet",
            host,
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub fn event(
    state: &Arc<State>,
    obj: &Value,
    field_path: Option<&str>,
    ty: &str,
    reason: &str,
    message: &str,
    component: &str,
    host: Option<&str>,
) {
    let ns = ns_of(obj);
    let events = resource("events");
    // Searched in place, not over a cloned list: hundreds of simulated pods make thousands of
    // events (scripts/bench/scale.sh).
    let uid = uid_of(obj);
    let existing = state
        .store()
        .iter(events, Some(&ns))
        .find(|e| {
            e["involvedObject"]["uid"] == uid.as_str()
                && e["reason"] == reason
                && e["message"] == message
        })
        .cloned();
    let t = now();
    if let Some(mut e) = existing {
        e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
        e["lastTimestamp"] = json!(t);
        state.store().put(events, e);
        return;
    }
    let mut involved = json!({
        "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": name_of(obj),
        "namespace": ns, "uid": uid_of(obj), "resourceVersion": obj["metadata"]["resourceVersion"],
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    let mut source = json!({"component": component});
    if let Some(h) = host {
        source["host"] = json!(h);
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{:x}", name_of(obj), fnv(&format!("{}{reason}{message}{t}", uid_of(obj))) >> 8), "namespace": ns},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": ty,
        "source": source,
        "count": 1,
        "firstTimestamp": t,
        "lastTimestamp": t,
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": host.unwrap_or_default(),
    });
    let _ = server::create(state, events, ev, component, false);
}

fn container_name(pod: &Value) -> String {
    pod["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap_or("main")
        .to_string()
}

fn write_status(state: &Arc<State>, pod: &Value, status: Value) {
    let mut store = state.store();
    let pods = resource("pods");
    let Some(live) = store.get(pods, &ns_of(pod), &name_of(pod)).cloned() else {
        return;
    };
    if live["metadata"]["uid"] != pod["metadata"]["uid"] {
        return;
    }
    let mut new = live.clone();
    new["status"] = status;
    if new == live {
        return;
    }
    apply::record_update(Some(&live), &mut new, "kubelet", Some("status"), &now());
    store.put(pods, new);
}

fn pod_ip(pod: &Value) -> String {
    format!("10.1.0.{}", 2 + fnv(&uid_of(pod)) % 250)
}

fn container_statuses(
    pod: &Value,
    state_json: Value,
    ready: bool,
    restarts: u32,
    last: Option<Value>,
) -> Value {
    let c = &pod["spec"]["containers"][0];
    let image = c["image"].as_str().unwrap_or_default();
    let running = state_json.get("running").is_some();
    let mut s = json!({
        "name": container_name(pod),
        "image": image,
        "imageID": if running { format!("{image}@sha256:{:064x}", fnv(image)) } else { String::new() },
        "ready": ready,
        "restartCount": restarts,
        "started": running,
        "state": state_json,
        "lastState": last.unwrap_or(json!({})),
    });
    if running {
        s["containerID"] = json!(format!(
            "containerd://{:016x}{:016x}{:016x}{:016x}",
            fnv(&uid_of(pod)),
            fnv(image),
            fnv(&name_of(pod)),
            restarts
        ));
    }
    json!([s])
}

fn conditions(ready: bool, initialized: bool) -> Value {
    let t = now();
    let b = |v: bool| if v { "True" } else { "False" };
    let mut ready_c = json!({"type": "Ready", "status": b(ready), "lastProbeTime": null, "lastTransitionTime": t});
    let mut cready = json!({"type": "ContainersReady", "status": b(ready), "lastProbeTime": null, "lastTransitionTime": t});
    if !ready {
        for c in [&mut ready_c, &mut cready] {
            c["reason"] = json!("ContainersNotReady");
        }
    }
    json!([
        {"type": "PodReadyToStartContainers", "status": b(initialized), "lastProbeTime": null, "lastTransitionTime": t},
        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": t},
        ready_c,
        cready,
        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": t}
    ])
}

/// Marks pods mirrored from a node's containerd: the simulated kubelet leaves them alone.
const MIRRORED: &str = "fake-api.cadvisor-setup/mirrored";

/// See `FakeCluster::mirror_workload_pods`.
pub async fn mirror_workload_pods(state: &Arc<State>) -> usize {
    let mut created = 0;
    for node in &state.nodes() {
        let Ok(containers) =
            super::containerd::list(&node.real_socket(), "k8s.io", Duration::from_secs(3)).await
        else {
            continue;
        };
        let mut pods: std::collections::BTreeMap<
            (String, String),
            Vec<&super::containerd::CtrContainer>,
        > = Default::default();
        for c in &containers {
            let (Some(name), Some(ns)) = (
                c.labels.get("io.kubernetes.pod.name"),
                c.labels.get("io.kubernetes.pod.namespace"),
            ) else {
                continue;
            };
            if c.labels.contains_key("io.kubernetes.container.name") {
                pods.entry((ns.clone(), name.clone())).or_default().push(c);
            }
        }
        for ((ns, name), cs) in pods {
            let t = now();
            let containers: Vec<Value> = cs
                .iter()
                .map(
                    |c| json!({"name": c.labels["io.kubernetes.container.name"], "image": c.image}),
                )
                .collect();
            let statuses: Vec<Value> = cs
                .iter()
                .map(|c| {
                    json!({
                        "name": c.labels["io.kubernetes.container.name"], "image": c.image,
                        "imageID": "", "containerID": format!("containerd://{}", c.id),
                        "ready": true, "started": true, "restartCount": 0,
                        "state": {"running": {"startedAt": t}}
                    })
                })
                .collect();
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "annotations": {MIRRORED: "true"}},
                "spec": {"nodeName": node.name, "containers": containers},
                "status": {
                    "phase": "Running", "hostIP": node.internal_ip, "startTime": t,
                    "podIP": format!("10.1.0.{}", 2 + fnv(&name) % 250),
                    "conditions": conditions(true, true), "containerStatuses": statuses,
                    "qosClass": "BestEffort"
                }
            });
            if server::create_as(state, "kubelet", pod).is_ok() {
                created += 1;
            }
        }
    }
    created
}

/// The pods a kubelet has something to do for now, copied with their runtime: those whose start
/// delay has passed and that have not started (unless their image pull already failed and still
/// fails), and crash-looping ones whose next restart is due. Read in place under the store's
/// lock: every pass (each 25 ms) looks at every pod, and hundreds of them (scripts/bench/scale.sh)
/// are Running with nothing to do. A pod seen for the first time gets its runtime entry here.
/// Also whether the kubelets are idle: no such pod waits to start or crash-loops.
fn pods_due(
    state: &Arc<State>,
    failures: &super::FailureState,
) -> (Vec<(Value, PodRuntime)>, bool) {
    let store = state.store();
    let nodes = state.nodes.read().unwrap_or_else(|e| e.into_inner());
    let names: std::collections::HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut table = state.pods();
    let mut due = Vec::new();
    let mut idle = true;
    for pod in store.iter(resource("pods"), None) {
        if !pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| names.contains(n))
        {
            continue;
        }
        if terminating(pod) || pod["metadata"]["annotations"][MIRRORED] == "true" {
            continue;
        }
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        if !table.contains_key(uid) {
            table.insert(
                uid.to_string(),
                PodRuntime {
                    created: Instant::now(),
                    started: None,
                    registration: None,
                    restarts: 0,
                    last_restart: None,
                    failed_pull: false,
                    crashing: false,
                },
            );
        }
        let Some(rt) = table.get(uid) else { continue };
        idle &= rt.started.is_some() && !rt.crashing;
        let now_due = if rt.started.is_none() {
            rt.created.elapsed() >= failures.pod_start_delay
                && !(failures.image_pull && rt.failed_pull)
        } else {
            rt.crashing
                && rt
                    .last_restart
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(400))
        };
        if now_due {
            due.push((pod.clone(), rt.clone()));
        }
    }
    (due, idle)
}

/// The kubelets: start pods whose delay has passed, or fail them as the switches say. Returns
/// whether they were idle (see [`pods_due`]), which this pass left unchanged.
async fn pods_lifecycle(state: &Arc<State>) -> bool {
    let failures = state.failures.snapshot();
    let (due, idle) = pods_due(state, &failures);
    for (pod, rt) in due {
        let Some(node) = pod["spec"]["nodeName"].as_str().and_then(|n| state.node(n)) else {
            continue;
        };
        let uid = uid_of(&pod);
        let cname = container_name(&pod);
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let field_path = format!("spec.containers{{{cname}}}");
        let host_ip = node.internal_ip.clone();
        let base_status = |phase: &str, ready: bool, statuses: Value| {
            let mut s = json!({
                "phase": phase,
                "conditions": conditions(ready, phase == "Running"),
                "hostIP": host_ip,
                "hostIPs": [{"ip": host_ip}],
                "qosClass": pod["status"]["qosClass"],
                "startTime": pod["metadata"]["creationTimestamp"],
                "containerStatuses": statuses,
            });
            if phase == "Running" {
                let ip = pod_ip(&pod);
                s["podIP"] = json!(ip);
                s["podIPs"] = json!([{"ip": ip}]);
            }
            s
        };
        if rt.started.is_none() {
            if rt.created.elapsed() < failures.pod_start_delay {
                continue;
            }
            if failures.image_pull {
                if !rt.failed_pull {
                    let waiting = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}});
                    write_status(
                        state,
                        &pod,
                        base_status(
                            "Pending",
                            false,
                            container_statuses(&pod, waiting, false, 0, None),
                        ),
                    );
                    let host = Some(node.name.as_str());
                    kubelet_events(
                        state,
                        &pod,
                        &field_path,
                        host,
                        &[
                            ("Normal", "Pulling", &format!("Pulling image \"{image}\"")),
                            (
                                "Warning",
                                "Failed",
                                &format!(
                                    "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
                                ),
                            ),
                            ("Warning", "Failed", "Error: ErrImagePull"),
                            (
                                "Normal",
                                "BackOff",
                                &format!("Back-off pulling image \"{image}\""),
                            ),
                            ("Warning", "Failed", "Error: ImagePullBackOff"),
                        ],
                    );
                    if let Some(p) = state.pods().get_mut(&uid) {
                        p.failed_pull = true;
                    }
                }
                continue;
            }
            // The kubelet sets up the volumes first; a failed hostPath type check keeps the
            // pod in ContainerCreating, retried on every pass.
            if let Err(why) = cadvisor::check_host_paths(&pod, &node) {
                let waiting = json!({"waiting": {"reason": "ContainerCreating"}});
                write_status(
                    state,
                    &pod,
                    base_status(
                        "Pending",
                        false,
                        container_statuses(&pod, waiting, false, 0, None),
                    ),
                );
                event(
                    state,
                    &pod,
                    None,
                    "Warning",
                    "FailedMount",
                    &why,
                    "kubelet",
                    Some(node.name.as_str()),
                );
                continue;
            }
            // The container starts: cAdvisor registers its factories once, now.
            let registration = cadvisor::register(state, &pod, &node).await;
            let started_at = now();
            {
                let mut table = state.pods();
                if let Some(p) = table.get_mut(&uid) {
                    p.started = Some(Instant::now());
                    p.registration = Some(registration);
                    p.crashing = failures.crash_loop;
                    p.failed_pull = false;
                }
            }
            let host = Some(node.name.as_str());
            kubelet_events(
                state,
                &pod,
                &field_path,
                host,
                &[
                    (
                        "Normal",
                        "Pulled",
                        &format!("Container image \"{image}\" already present on machine"),
                    ),
                    ("Normal", "Created", &format!("Created container: {cname}")),
                    ("Normal", "Started", &format!("Started container {cname}")),
                ],
            );
            if failures.crash_loop {
                crash(state, &pod, &node, &base_status, 1);
            } else {
                let running = json!({"running": {"startedAt": started_at}});
                write_status(
                    state,
                    &pod,
                    base_status(
                        "Running",
                        true,
                        container_statuses(&pod, running, true, 0, None),
                    ),
                );
            }
            continue;
        }
        if rt.crashing {
            let due = rt
                .last_restart
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(400));
            if due {
                crash(state, &pod, &node, &base_status, rt.restarts + 1);
            }
        }
    }
    idle
}

fn crash(
    state: &Arc<State>,
    pod: &Value,
    node: &SimNode,
    base_status: &dyn Fn(&str, bool, Value) -> Value,
    restarts: u32,
) {
    let cname = container_name(pod);
    let uid = uid_of(pod);
    let t = now();
    let waiting = json!({"waiting": {"reason": "CrashLoopBackOff",
        "message": format!("back-off 10s restarting failed container={cname} pod={}_{}({uid})", name_of(pod), ns_of(pod))}});
    let last = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": t, "finishedAt": t,
        "containerID": format!("containerd://{:064x}", fnv(&format!("{uid}{restarts}")))}});
    write_status(
        state,
        pod,
        base_status(
            "Running",
            false,
            container_statuses(pod, waiting, false, restarts, Some(last)),
        ),
    );
    if let Some(p) = state.pods().get_mut(&uid) {
        p.restarts = restarts;
        p.last_restart = Some(Instant::now());
    }
    event(
        state,
        pod,
        Some(&format!("spec.containers{{{cname}}}")),
        "Warning",
        "BackOff",
        &format!(
            "Back-off restarting failed container {cname} in pod {}_{}({uid})",
            name_of(pod),
            ns_of(pod)
        ),
        "kubelet",
        Some(&node.name),
    );
}

/// DaemonSet status as the controller's `updateDaemonSetStatus` computes it.
fn daemonset_status(state: &Arc<State>) {
    let dss = resource("daemonsets");
    let (daemonsets, pods) = daemonsets_and_pods(state);
    let stored = stored_node_labels(state);
    for ds in daemonsets {
        let hash = template_hash(&ds["spec"]["template"]);
        let uid = uid_of(&ds);
        let all_nodes = state.nodes();
        let nodes: Vec<&SimNode> = all_nodes
            .iter()
            .filter(|n| node_selected(&ds, n, &stored))
            .collect();
        let owned: Vec<&PodSummary> = pods.iter().filter(|p| p.owned_by(&uid)).collect();
        let desired = nodes.len() as i64;
        let mut current = 0;
        let mut updated = 0;
        let mut ready = 0;
        let mut misscheduled = 0;
        let node_names: std::collections::HashSet<&str> =
            nodes.iter().map(|n| n.name.as_str()).collect();
        for p in &owned {
            let on_desired_node = p.node.as_deref().is_some_and(|n| node_names.contains(n));
            if !on_desired_node {
                misscheduled += 1;
                continue;
            }
            current += 1;
            if p.hash.as_deref() == Some(hash.as_str()) {
                updated += 1;
            }
            if p.ready {
                ready += 1;
            }
        }
        let available = ready;
        let mut status = json!({
            "currentNumberScheduled": current,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "observedGeneration": ds["metadata"]["generation"],
        });
        // omitempty fields, as the real JSON leaves them out when zero.
        if updated > 0 {
            status["updatedNumberScheduled"] = json!(updated);
        }
        if available > 0 {
            status["numberAvailable"] = json!(available);
        }
        if desired - available > 0 {
            status["numberUnavailable"] = json!(desired - available);
        }
        if ds["status"] == status {
            continue;
        }
        let mut store = state.store();
        let Some(live) = store.get(dss, &ns_of(&ds), &name_of(&ds)).cloned() else {
            continue;
        };
        if live["metadata"]["uid"] != ds["metadata"]["uid"] || live["spec"] != ds["spec"] {
            continue;
        }
        let mut new = live.clone();
        new["status"] = status;
        apply::record_update(
            Some(&live),
            &mut new,
            "kube-controller-manager",
            Some("status"),
            &now(),
        );
        store.put(dss, new);
    }
}
