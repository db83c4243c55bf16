//! Waits for a DaemonSet rollout by watching it (no polling), like `kubectl rollout status`.
//!
//! Completion is kubectl's rule for DaemonSets (kubernetes/kubectl
//! `pkg/polymorphichelpers/rollout_status.go`, `DaemonSetStatusViewer`): the controller observed
//! the current generation, every desired pod is updated, and every desired pod is available.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::watch_object;
use serde::Serialize;

use super::{Cluster, ClusterError, classify};

/// The counters the progress line shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The controller has seen the latest spec.
    pub observed: bool,
}

impl Progress {
    pub fn of(ds: &DaemonSet) -> Progress {
        let generation = ds.metadata.generation.unwrap_or(0);
        let status = ds.status.clone().unwrap_or_default();
        Progress {
            desired: status.desired_number_scheduled,
            updated: status.updated_number_scheduled.unwrap_or(0),
            ready: status.number_ready,
            available: status.number_available.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0) >= generation,
        }
    }

    /// kubectl's DaemonSet rollout rule.
    pub fn complete(&self) -> bool {
        self.observed && self.updated >= self.desired && self.available >= self.desired
    }

    /// `2/3 nodes ready`, or what is still awaited.
    pub fn message(&self) -> String {
        if !self.observed {
            "waiting for the DaemonSet controller to observe the new spec".to_string()
        } else if self.updated < self.desired {
            format!(
                "{}/{} pods updated, {}/{} nodes ready",
                self.updated, self.desired, self.ready, self.desired
            )
        } else {
            format!("{}/{} nodes ready", self.available, self.desired)
        }
    }
}

/// A finished rollout.
#[derive(Debug, Clone, Serialize)]
pub struct Rollout {
    pub namespace: String,
    pub name: String,
    pub progress: Progress,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// When the completing watch event arrived (for the ready → verify latency).
    #[serde(skip)]
    pub ready_at: Instant,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why a rollout did not finish: the last counters and each failing pod's reason.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutFailure {
    pub namespace: String,
    pub name: String,
    pub timeout_seconds: u64,
    pub progress: Progress,
    pub pods: Vec<PodProblem>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodProblem {
    pub pod: String,
    pub node: Option<String>,
    pub phase: Option<String>,
    /// e.g. `ImagePullBackOff`, `CrashLoopBackOff`, `Pending`.
    pub reason: String,
    pub message: Option<String>,
    pub restarts: i32,
    /// Recent events about the pod (`Reason: message`), oldest first.
    pub events: Vec<String>,
}

impl std::fmt::Display for RolloutFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DaemonSet {}/{} did not finish rolling out within {}s ({})",
            self.namespace,
            self.name,
            self.timeout_seconds,
            self.progress.message()
        )?;
        for pod in &self.pods {
            write!(f, "\n  pod {}", pod.pod)?;
            if let Some(node) = &pod.node {
                write!(f, " on node {node}")?;
            }
            write!(f, ": {}", pod.reason)?;
            if let Some(message) = &pod.message {
                write!(f, " ({message})")?;
            }
            if pod.restarts > 0 {
                write!(f, ", {} restarts", pod.restarts)?;
            }
            for event in &pod.events {
                write!(f, "\n    event: {event}")?;
            }
        }
        if let Some(e) = &self.last_error {
            write!(f, "\n  last API error while watching: {e}")?;
        }
        let hint = if self.pods.iter().any(|p| p.reason.contains("ImagePull")) {
            "check the --image name and that the node can pull it (or pre-load it: `microk8s ctr image import`)"
        } else if self.pods.iter().any(|p| p.reason == "CrashLoopBackOff") {
            "read the pod log: kubectl logs -n NAMESPACE POD --previous"
        } else {
            "raise --timeout if the nodes are just slow, or inspect: kubectl describe daemonset -n NAMESPACE NAME"
        };
        write!(f, "\n  next: {hint}")
    }
}

/// Watches the DaemonSet until kubectl's completion rule holds, calling `on_progress` on every
/// change. Ctrl-C ends the wait with [`ClusterError::Interrupted`]; the timeout with
/// [`ClusterError::Rollout`] naming each failing pod and its reason.
pub async fn wait(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    timeout: Duration,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Rollout, ClusterError> {
    let started = Instant::now();
    let api: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), namespace);
    // After an error the watcher re-lists with kube's default backoff (exponential from 800 ms,
    // jittered, at most 30 s; kube-runtime `DefaultBackoff`), while the deadline and Ctrl-C
    // stay live.
    let mut stream = std::pin::pin!(watch_object(api, name).default_backoff());
    let deadline = tokio::time::sleep_until(crate::deadline::deadline_after(timeout));
    tokio::pin!(deadline);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut last = Progress::default();
    let mut last_error: Option<String> = None;
    // Set while the API server has not answered at all: then the timeout is exit 4, not 5.
    let mut unreachable: Option<ClusterError> = None;
    let mut seen = false;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(Some(ds))) => {
                    seen = true;
                    unreachable = None;
                    last = Progress::of(&ds);
                    on_progress(&last);
                    if last.complete() {
                        return Ok(Rollout {
                            namespace: namespace.to_string(),
                            name: name.to_string(),
                            progress: last,
                            elapsed: started.elapsed(),
                            ready_at: Instant::now(),
                        });
                    }
                }
                Some(Ok(None)) => {
                    return Err(ClusterError::Gone {
                        object: format!("DaemonSet {namespace}/{name}"),
                        doing: "waiting for its rollout".to_string(),
                    });
                }
                Some(Err(e)) => {
                    // The watcher re-lists after errors (with the backoff); credentials and
                    // permissions will not heal, so those end the wait at once.
                    let text = e.to_string();
                    if let Some(cause) = kube_error(e) {
                        let classified = classify(&cluster.server, cause);
                        if matches!(classified, ClusterError::Forbidden { .. } | ClusterError::Unauthorized { .. }) {
                            return Err(classified);
                        }
                        if !seen && matches!(classified, ClusterError::Unreachable { .. }) {
                            unreachable = Some(classified);
                        }
                    }
                    tracing::debug!("watch error (retrying): {text}");
                    last_error = Some(text);
                }
                None => {
                    last_error = Some("the watch ended".to_string());
                    break;
                }
            },
            _ = &mut deadline => break,
            _ = &mut interrupt => {
                return Err(ClusterError::Interrupted {
                    by: "Ctrl-C",
                    doing: format!("waiting for DaemonSet {namespace}/{name} to roll out ({})", last.message()),
                });
            }
        }
    }
    if let Some(e) = unreachable {
        return Err(e);
    }
    let pods = failing_pods(cluster, namespace, name)
        .await
        .unwrap_or_default();
    Err(ClusterError::Rollout(Box::new(RolloutFailure {
        namespace: namespace.to_string(),
        name: name.to_string(),
        timeout_seconds: timeout.as_secs(),
        progress: last,
        pods,
        last_error,
    })))
}

fn kube_error(e: kube::runtime::watcher::Error) -> Option<kube::Error> {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => Some(e),
        W::WatchError(status) => Some(kube::Error::Api(status)),
        _ => None,
    }
}

/// Failing pods whose events are read (the first, by name); the others are listed with their
/// reason alone, so a rollout failing on hundreds of nodes costs a bounded number of requests.
const PODS_WITH_EVENTS: usize = 10;
/// Events read per pod, at most: one page, whatever the namespace holds.
const EVENTS_PER_POD: u32 = 100;

/// The DaemonSet's pods that are not ready, each with its reason and, for the first
/// [`PODS_WITH_EVENTS`], its recent events.
pub async fn failing_pods(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Vec<PodProblem>, ClusterError> {
    let mut problems: Vec<PodProblem> =
        daemonset_pods_as(cluster, namespace, name, super::pages::PAGE, |pod| {
            problem_of(&pod)
        })
        .await?
        .into_iter()
        .flatten()
        .collect();
    problems.sort_by(|a, b| a.pod.cmp(&b.pod));
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    for problem in problems.iter_mut().take(PODS_WITH_EVENTS) {
        // Only this pod's events, one bounded page (kubernetes.io "Field Selectors": events
        // support `involvedObject.kind` and `involvedObject.name`).
        let params = ListParams::default()
            .fields(&format!(
                "involvedObject.kind=Pod,involvedObject.name={}",
                problem.pod
            ))
            .limit(EVENTS_PER_POD);
        let mut mine = events
            .list(&params)
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        // Oldest first; events within the same second keep the order they were written in.
        mine.sort_by_key(|e| {
            (
                e.last_timestamp.as_ref().map(|t| t.0),
                e.metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse::<u64>().ok()),
            )
        });
        problem.events = mine
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("").trim()
                )
            })
            .collect();
    }
    Ok(problems)
}

/// The pods selected by the DaemonSet's `spec.selector.matchLabels` and controlled by it,
/// `page` per request, each reduced by `reduce` as its page arrives.
pub async fn daemonset_pods_as<T>(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    page: u32,
    reduce: impl Fn(Pod) -> T,
) -> Result<Vec<T>, ClusterError> {
    let dss: Api<DaemonSet> = Api::namespaced(cluster.client.clone(), namespace);
    let ds = cluster
        .ask(dss.get_opt(name))
        .await?
        .ok_or_else(|| ClusterError::NotFound {
            object: format!("DaemonSet {namespace}/{name}"),
            hint: "is cAdvisor installed? pass --namespace/--daemonset for an install made by hand"
                .to_string(),
        })?;
    let selector = selector_of(&ds);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    // `cadvisor`'s selector also matches the pods of the other node groups' DaemonSets (its
    // selector is immutable, theirs add a label); the controller reference tells whose a pod
    // is, as the DaemonSet controller itself decides (kubernetes/kubernetes:
    // pkg/controller/daemon/daemon_controller.go `getDaemonPods` claims only pods it controls
    // or orphans).
    let uid = ds.metadata.uid.clone();
    let params = ListParams::default().labels(&selector);
    let pods = cluster
        .ask(super::pages::list_reduced(&pods, &params, page, |pod| {
            controlled_by(&pod, uid.as_deref()).then(|| reduce(pod))
        }))
        .await?;
    Ok(pods.into_iter().flatten().collect())
}

/// Whether `pod` is controlled by the object with `uid` (or by nothing at all).
fn controlled_by(pod: &Pod, uid: Option<&str>) -> bool {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match (controller, uid) {
        (None, _) | (_, None) => true,
        (Some(o), Some(uid)) => o.uid == uid,
    }
}

/// `k=v,k2=v2` from `spec.selector.matchLabels`.
pub fn selector_of(ds: &DaemonSet) -> String {
    let labels: BTreeMap<String, String> = ds
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a pod is not ready, or `None` when it is.
pub fn problem_of(pod: &Pod) -> Option<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec_node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if ready {
        return None;
    }
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let restarts = statuses.iter().map(|c| c.restart_count).sum();
    let mut reason = None;
    let mut message = None;
    for cs in &statuses {
        if let Some(state) = &cs.state {
            if let Some(waiting) = &state.waiting {
                reason = waiting.reason.clone();
                message = waiting.message.clone();
            } else if let Some(terminated) = &state.terminated {
                reason = terminated.reason.clone().or(Some("Terminated".to_string()));
                message = terminated.message.clone();
            } else if state.running.is_some() && reason.is_none() {
                reason = Some("Running, not ready (readiness probe failing?)".to_string());
            }
        }
        if reason.is_some()
            && reason.as_deref() != Some("Running, not ready (readiness probe failing?)")
        {
            break;
        }
    }
    let reason = reason
        .or_else(|| status.reason.clone())
        .or_else(|| status.phase.clone())
        .unwrap_or_else(|| "Pending".to_string());
    Some(PodProblem {
        pod: name,
        node: spec_node,
        phase: status.phase.clone(),
        reason,
        message: message.or(status.message.clone()),
        restarts,
        events: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(generation: i64, observed: i64, desired: i32, updated: i32, available: i32) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cadvisor", "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "cadvisor"}},
                     "template": {"metadata": {}, "spec": {"containers": []}}},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "currentNumberScheduled": desired, "numberMisscheduled": 0,
                       "updatedNumberScheduled": updated, "numberAvailable": available,
                       "numberReady": available}
        }))
        .unwrap()
    }

    #[test]
    fn completion_follows_kubectl() {
        assert!(Progress::of(&ds(2, 2, 2, 2, 2)).complete());
        // Controller has not seen the new spec yet.
        assert!(!Progress::of(&ds(3, 2, 2, 2, 2)).complete());
        // Old pods still running.
        assert!(!Progress::of(&ds(2, 2, 2, 1, 2)).complete());
        // Updated but not available.
        assert!(!Progress::of(&ds(2, 2, 2, 2, 1)).complete());
        assert_eq!(
            Progress::of(&ds(2, 2, 3, 3, 2)).message(),
            "2/3 nodes ready"
        );
        assert_eq!(selector_of(&ds(1, 1, 1, 1, 1)), "app=cadvisor");
    }

    #[test]
    fn waiting_reason_is_reported() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cadvisor-x"},
            "spec": {"nodeName": "n1", "containers": []},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
              "containerStatuses": [{"name": "cadvisor", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}
        }))
        .unwrap();
        let p = problem_of(&pod).unwrap();
        assert_eq!(p.reason, "ImagePullBackOff");
        assert_eq!(p.node.as_deref(), Some("n1"));
    }
}
