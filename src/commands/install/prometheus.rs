//! `install`'s Prometheus step: choose the Prometheus that should scrape cAdvisor (`--prometheus`),
//! give our ServiceMonitor (and our own namespace) the labels its selectors need, and plan the
//! NetworkPolicy (`--network-policy`). Runs before the plan is made, after the cluster answered.

use serde::Serialize;

use super::super::Context;
use super::super::error::Failure;
use crate::cli::{NetworkPolicyMode, PrometheusChoice};
use crate::cluster::Cluster;
use crate::cluster::nodes::ClusterNode;
use crate::cluster::prometheus::{self, Instance};
use crate::error::ExitCode;
use crate::plan::{NetworkPolicyPlan, PlanOptions, PodPeer};
use crate::settings::InstallSettings;

/// What the step decided, for the report (`prometheus` in `install -o json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrometheusOutcome {
    /// Every Prometheus found, `namespace/name`; empty when the operator's API is not served.
    pub found: Vec<String>,
    /// The one chosen, `namespace/name`.
    pub chosen: Option<String>,
    /// Whether the chosen one will select our ServiceMonitor.
    pub selected: bool,
    /// Labels added to the ServiceMonitor and to our namespace for it.
    pub service_monitor_labels: std::collections::BTreeMap<String, String>,
    pub namespace_labels: std::collections::BTreeMap<String, String>,
    /// A NetworkPolicy is part of the plan.
    pub network_policy: bool,
    /// Why there is no integration, or why the chosen one cannot select us.
    pub note: Option<String>,
    /// The chosen one, when it selects us: install asks it afterwards.
    #[serde(skip)]
    pub scraper: Option<Instance>,
}

/// Chooses, labels and plans; sets `opts` accordingly. `monitoring`: what the operator's API
/// version serves (`resources::served`); `nodes`: the cluster's nodes when already read (listed
/// here otherwise, for a NetworkPolicy). An explicit `--prometheus NS/NAME` that
/// is absent or cannot select us, or several with no terminal to ask, is exit 3 with nothing
/// applied; with `auto`, a single Prometheus that cannot select us is a warning.
pub async fn step(
    ctx: &Context,
    cluster: &Cluster,
    args: &InstallSettings,
    opts: &mut PlanOptions,
    conversation: bool,
    monitoring: &[String],
    nodes: Option<&[ClusterNode]>,
) -> super::super::Result<PrometheusOutcome> {
    let mut outcome = PrometheusOutcome::default();
    let wants_service_monitor =
        args.resolved.service_monitor != crate::cli::ServiceMonitorMode::Never;
    let found = if args.prometheus == PrometheusChoice::None || !wants_service_monitor {
        None
    } else {
        prometheus::list_among(cluster, monitoring).await?
    };
    if let Some(found) = &found {
        outcome.found = found.instances.iter().map(Instance::id).collect();
        for unreadable in &found.unreadable {
            ctx.ui.warning(unreadable);
        }
    }
    let chosen = choose(
        ctx,
        &args.prometheus,
        found.as_ref(),
        conversation,
        &mut outcome,
    )?;
    if let Some(instance) = &chosen {
        outcome.chosen = Some(instance.id());
        let state = prometheus::namespace_state(cluster, &opts.namespace).await?;
        let ours = crate::plan::object_labels();
        match prometheus::target(instance, &ours, &opts.namespace, &state) {
            Ok(target) => {
                // A chosen Prometheus needs our ServiceMonitor (the operator's CRDs are there).
                opts.service_monitor = true;
                outcome.selected = true;
                outcome.scraper = Some(instance.clone());
                outcome.service_monitor_labels = target.service_monitor_labels.clone();
                outcome.namespace_labels = target.namespace_labels.clone();
                let added = |labels: &std::collections::BTreeMap<String, String>, what: &str| {
                    (!labels.is_empty()).then(|| {
                        let pairs: Vec<String> =
                            labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{what} labelled {}", pairs.join(","))
                    })
                };
                let how: Vec<String> = [
                    added(&target.service_monitor_labels, "ServiceMonitor"),
                    added(&target.namespace_labels, "namespace"),
                ]
                .into_iter()
                .flatten()
                .collect();
                ctx.ui.note(format!(
                    "Prometheus {} will scrape cAdvisor{}",
                    instance.id(),
                    if how.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", how.join("; "))
                    }
                ));
                opts.service_monitor_labels = target.service_monitor_labels;
                opts.namespace_labels = target.namespace_labels;
            }
            Err(unreachable) if args.prometheus == PrometheusChoice::Auto => {
                ctx.ui.warning(&unreachable);
                outcome.note = Some(unreachable.to_string());
            }
            Err(unreachable) => {
                return Failure::err(
                    ExitCode::Detection,
                    format!("{unreachable}\n  nothing was applied"),
                );
            }
        }
    }
    let peer = match (&chosen, outcome.selected) {
        (Some(instance), true) => Some(PodPeer {
            namespace: instance.namespace.clone(),
            pod_labels: prometheus::pod_labels(cluster, instance).await?,
        }),
        _ => None,
    };
    let wanted = match args.network_policy {
        NetworkPolicyMode::Never => false,
        NetworkPolicyMode::Always => true,
        NetworkPolicyMode::Auto => peer.is_some(),
    };
    if wanted {
        if peer.is_none() {
            ctx.ui.warning(
                "--network-policy always without a Prometheus: only the nodes may reach cAdvisor's port",
            );
        }
        opts.network_policy = Some(NetworkPolicyPlan {
            prometheus: peer,
            node_cidrs: match nodes {
                Some(nodes) => {
                    let cidrs: std::collections::BTreeSet<&String> =
                        nodes.iter().flat_map(|n| &n.source_cidrs).collect();
                    cidrs.into_iter().cloned().collect()
                }
                None => prometheus::node_cidrs(cluster).await?,
            },
        });
        outcome.network_policy = true;
    }
    Ok(outcome)
}

/// The Prometheus to integrate with, if any.
fn choose(
    ctx: &Context,
    choice: &PrometheusChoice,
    found: Option<&prometheus::Found>,
    conversation: bool,
    outcome: &mut PrometheusOutcome,
) -> super::super::Result<Option<Instance>> {
    let instances = found.map(|f| f.instances.as_slice()).unwrap_or_default();
    match choice {
        PrometheusChoice::None => Ok(None),
        PrometheusChoice::Named { namespace, name } => {
            let hit = instances
                .iter()
                .find(|i| &i.namespace == namespace && &i.name == name);
            match (found, hit) {
                (_, Some(i)) => Ok(Some(i.clone())),
                (None, None) => Failure::err(
                    ExitCode::Detection,
                    format!(
                        "--prometheus {namespace}/{name}: the cluster does not serve the Prometheus Operator's API (monitoring.coreos.com/v1 prometheuses); nothing was applied\n  install the operator, or pass --prometheus none"
                    ),
                ),
                (Some(_), None) => Failure::err(
                    ExitCode::Detection,
                    format!(
                        "--prometheus {namespace}/{name}: no such Prometheus (found: {}); nothing was applied",
                        list_or_none(instances)
                    ),
                ),
            }
        }
        PrometheusChoice::Auto => match instances {
            [] => {
                outcome.note = Some(match found {
                    None => "the Prometheus Operator's API is not served".to_string(),
                    Some(_) => "no Prometheus object in the cluster".to_string(),
                });
                Ok(None)
            }
            [one] => Ok(Some(one.clone())),
            several if conversation => {
                let ids: Vec<String> = several.iter().map(Instance::id).collect();
                Ok(crate::ui::prompts::select_prometheus(&ctx.ui, &ids)?
                    .map(|i| several[i].clone()))
            }
            several => Failure::err(
                ExitCode::Detection,
                format!(
                    "several Prometheus instances: {}; nothing was applied\n  choose one with --prometheus NAMESPACE/NAME, or --prometheus none",
                    list_or_none(several)
                ),
            ),
        },
    }
}

fn list_or_none(instances: &[Instance]) -> String {
    if instances.is_empty() {
        "none".to_string()
    } else {
        instances
            .iter()
            .map(Instance::id)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
