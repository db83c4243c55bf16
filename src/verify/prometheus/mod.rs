//! `verify --prometheus`: the last hop. Does the Prometheus the user looks at scrape cAdvisor on
//! every node, and does a query by the relabelled `pod`/`namespace`/`container` labels return a
//! series for a pod the kubelet reports?
//!
//! The cluster gives what to expect (the DaemonSet's pods and nodes, and through the node proxy a
//! pod the kubelet reports); Prometheus' HTTP API ([`api`]) gives what it sees, at a base URL or
//! through the API server's service proxy ([`Endpoint::ServiceProxy`], for a Prometheus found in
//! the cluster); [`judge`] decides, purely. Prometheus needs a scrape interval (30s) to see a
//! new target, so a verdict that may still change is retried until the timeout.

pub mod api;
pub mod judge;
pub mod operator;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

pub use api::{ApiError, Endpoint};
pub use judge::{Expected, NodeTarget, Reason, Subject};

use crate::cluster::{Cluster, ClusterError, proxy, rollout};
use crate::error::ExitCode;
use crate::metrics;

/// The longest one API request may take (within the overall timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    pub endpoint: Endpoint,
    /// Where cAdvisor's DaemonSet is.
    pub namespace: String,
    pub daemonset: String,
    /// The job label of our series: `cadvisor` for the ServiceMonitor (named after the Service)
    /// and for the scrape job alike.
    pub job: String,
    pub timeout: Duration,
    /// The pod to query; `None`: one the kubelet reports.
    pub subject: Option<Subject>,
    /// Stop at the first API error instead of retrying until the timeout (install's last step:
    /// a Prometheus that cannot be asked is a note there, not a wait).
    pub give_up_when_unreadable: bool,
}

impl PrometheusOptions {
    pub fn new(endpoint: Endpoint, namespace: &str, daemonset: &str, timeout: Duration) -> Self {
        PrometheusOptions {
            endpoint,
            namespace: namespace.to_string(),
            daemonset: daemonset.to_string(),
            job: crate::plan::scrape::JOB_NAME.to_string(),
            timeout,
            subject: None,
            give_up_when_unreadable: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Which Prometheus to ask is not clear (`auto` with none or several).
    #[error("{0}")]
    Choice(String),
}

/// What Prometheus showed, judged.
#[derive(Debug, Clone, Serialize)]
pub struct PrometheusVerification {
    pub ok: bool,
    pub endpoint: Endpoint,
    pub job: String,
    /// The pod queried by its relabelled labels (`None`: any pod).
    pub subject: Option<Subject>,
    /// The query by the relabelled labels.
    pub query: String,
    /// Series it returned.
    pub series: usize,
    pub reason: Option<Reason>,
    /// What is wrong and what to change, when not `ok`.
    pub message: Option<String>,
    pub nodes: Vec<NodeTarget>,
    pub attempts: u32,
    pub elapsed_seconds: f64,
}

impl PrometheusVerification {
    pub fn exit_code(&self) -> ExitCode {
        if self.ok {
            ExitCode::Success
        } else {
            ExitCode::Verification
        }
    }
}

/// Asks Prometheus until it shows what we expect, a cause that waiting cannot change is found,
/// or `opts.timeout` passes. An API that never answered is an error (it proves nothing).
pub async fn verify(
    cluster: &Cluster,
    opts: &PrometheusOptions,
    mut on_progress: impl FnMut(&str),
) -> Result<PrometheusVerification, PrometheusError> {
    let started = Instant::now();
    let deadline = crate::deadline::deadline_after(opts.timeout);
    let mut expected: Vec<Expected> = rollout::daemonset_pods_as(
        cluster,
        &opts.namespace,
        &opts.daemonset,
        crate::cluster::pages::PAGE,
        |pod| expected_of(&pod),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();
    expected.sort_by(|a, b| a.node.cmp(&b.node));
    let subject = match &opts.subject {
        Some(s) => Some(s.clone()),
        None => {
            // Bounded like everything else: a silent kubelet must not hold us past the timeout.
            tokio::time::timeout_at(
                deadline,
                kubelet_subject(cluster, &opts.namespace, &expected),
            )
            .await
            .unwrap_or(None)
        }
    };
    let queries = judge::queries(&opts.job, subject.as_ref());
    let verification = |judgement: judge::Judgement, series, attempts| PrometheusVerification {
        ok: judgement.passed,
        endpoint: opts.endpoint.clone(),
        job: opts.job.clone(),
        subject: subject.clone(),
        query: queries[0].clone(),
        series,
        reason: judgement.reason,
        message: judgement.message,
        nodes: judgement.nodes,
        attempts,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    };
    if expected.is_empty() {
        let message = format!(
            "DaemonSet {}/{} has no running pod: nothing for Prometheus to scrape",
            opts.namespace, opts.daemonset
        );
        let judgement = judge::Judgement {
            passed: false,
            reason: None,
            message: Some(message),
            nodes: Vec::new(),
        };
        return Ok(verification(judgement, 0, 0));
    }
    let mut backoff = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        attempts += 1;
        on_progress(&format!(
            "asking Prometheus at {} (attempt {attempts})",
            opts.endpoint.describe()
        ));
        let now = tokio::time::Instant::now();
        let api = api::Api {
            endpoint: &opts.endpoint,
            cluster: Some(cluster),
            timeout: deadline
                .saturating_duration_since(now)
                .clamp(Duration::from_secs(1), REQUEST_TIMEOUT),
        };
        let observed = observe(&api, opts, &expected, subject.as_ref(), &queries).await;
        let out_of_time = tokio::time::Instant::now() >= deadline;
        match observed {
            Ok((judgement, series)) => {
                let settled = judgement.passed
                    || judgement.reason.is_some_and(|r| !r.may_pass_later())
                    || out_of_time;
                if settled {
                    return Ok(verification(judgement, series, attempts));
                }
            }
            Err(e) if out_of_time || opts.give_up_when_unreadable => return Err(e.into()),
            Err(e) => tracing::debug!("Prometheus not readable yet: {e}"),
        }
        let now = tokio::time::Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(backoff.min(deadline.saturating_duration_since(now))) => {}
            _ = tokio::signal::ctrl_c() => {
                return Err(ClusterError::Interrupted { by: "Ctrl-C", doing: "asking Prometheus".to_string() }.into());
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One look: the targets, then (when all are up) the queries.
async fn observe(
    api: &api::Api<'_>,
    opts: &PrometheusOptions,
    expected: &[Expected],
    subject: Option<&Subject>,
    queries: &[String; 3],
) -> Result<(judge::Judgement, usize), ApiError> {
    let targets = api.targets().await?;
    let all_up = judge::node_targets(&opts.job, expected, &targets)
        .iter()
        .all(|n| n.health == "up");
    let mut result = judge::QueryResult::default();
    if all_up {
        result.relabelled = api.query(&queries[0]).await?.len();
        if result.relabelled == 0 {
            result.unrelabelled = api.query(&queries[1]).await?.len();
            result.in_job = api.query(&queries[2]).await?.len();
        }
    }
    let judgement = judge::judge(&opts.job, expected, &targets, subject, &result);
    Ok((judgement, result.relabelled))
}

/// A running pod of the DaemonSet as Prometheus should see it; `None` for one terminating or
/// not running.
fn expected_of(p: &Pod) -> Option<Expected> {
    if p.metadata.deletion_timestamp.is_some()
        || p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running")
    {
        return None;
    }
    Some(Expected {
        node: p.spec.as_ref()?.node_name.clone()?,
        pod: p.metadata.name.clone()?,
        ip: p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
    })
}

/// How many nodes' kubelets are asked for a pod to query, at most.
const SUBJECT_NODES: usize = 3;

/// A pod with a container that the kubelet reports on one of our nodes (its
/// `/metrics/cadvisor`, the first [`SUBJECT_NODES`] nodes), preferring workloads over
/// cAdvisor's own pods. `None` when no kubelet answers: any pod-labelled series will do then.
async fn kubelet_subject(
    cluster: &Cluster,
    our_namespace: &str,
    expected: &[Expected],
) -> Option<Subject> {
    let mut fallback = None;
    for e in expected.iter().take(SUBJECT_NODES) {
        let path = proxy::node_cadvisor_path(&e.node);
        let Ok(Ok(report)) = proxy::stream_to(cluster, &path, |r| metrics::scan(r)).await else {
            continue;
        };
        for p in &report.pods_kubelet_format {
            let Some(container) = p.containers.first() else {
                continue;
            };
            let subject = Subject {
                namespace: p.namespace.clone(),
                pod: p.pod.clone(),
                container: container.clone(),
            };
            if p.namespace != our_namespace {
                return Some(subject);
            }
            fallback.get_or_insert(subject);
        }
    }
    fallback
}
