//! Nodes → groups → one plan per group. Pure.
//!
//! Nodes whose runtime socket is the same (as mounted: the host directory and the socket file)
//! and whose cgroup driver gives the same `--raw_cgroup_prefix_whitelist` share a group; each
//! group gets one DaemonSet. One group is today's single `cadvisor` DaemonSet, unchanged (no
//! node affinity). Several: the group the live `cadvisor` DaemonSet already serves (else the
//! group of the node the command runs on, else the largest) keeps the name `cadvisor`; the others
//! are `cadvisor-<layout hash>`, a hash of the layout, so a group keeps its name whatever nodes
//! join or leave. Each is pinned to its nodes by required node affinity on
//! `kubernetes.io/hostname`, or, with `--label-nodes` (the user's consent to label nodes), on
//! our node label [`GROUP_LABEL`]`=<layout hash>`, which install sets on each node; the Service
//! selects them all (they share the pod labels).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::preset as preset_facts;
use super::{NAME, Plan, PlanError, PlanOptions};
use crate::host::{CgroupDriver, DistroKind, HostFacts, RuntimeKind};

/// The label that tells the pods of one group's DaemonSet apart (its selector), on every
/// DaemonSet but `cadvisor` (whose selector is immutable once applied).
pub const LAYOUT_LABEL: &str = "cadvisor-setup/layout";

/// The node label `install --label-nodes` sets on every node of a cluster with several groups:
/// the value is the node's group's layout hash. Under the prefix of our other labels and
/// annotations (`cadvisor-setup/…`).
pub const GROUP_LABEL: &str = "cadvisor-setup/group";

/// One node as the grouping needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: String,
    /// Its `kubernetes.io/hostname` label value.
    pub hostname: String,
    pub runtime: RuntimeKind,
    /// Host path of its runtime socket; `None` when unknown (the node is left out, with a warning).
    pub socket: Option<PathBuf>,
    pub cgroup_driver: Option<CgroupDriver>,
    pub distribution: DistroKind,
}

/// Nodes that share a layout, and the DaemonSet that serves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The DaemonSet's name.
    pub name: String,
    /// Short hash of the layout (runtime, socket, cgroup prefix).
    pub layout: String,
    pub runtime: RuntimeKind,
    pub socket: PathBuf,
    /// `--raw_cgroup_prefix_whitelist`, the flag the cgroup driver decides.
    pub raw_cgroup_prefix: String,
    pub cgroup_driver: Option<CgroupDriver>,
    /// The distribution most of its nodes run.
    pub distribution: DistroKind,
    pub nodes: Vec<String>,
    /// The nodes' `kubernetes.io/hostname` values, for the node affinity.
    pub hostnames: Vec<String>,
    /// The node this command runs on is in this group.
    pub this_host: bool,
}

/// The flag value the cgroup driver decides (an unknown driver keeps `/kubepods`, which matches
/// both shapes; see `plan::make`).
pub fn raw_cgroup_prefix(driver: Option<CgroupDriver>) -> &'static str {
    match driver {
        Some(CgroupDriver::Systemd) => "/kubepods.slice",
        Some(CgroupDriver::Cgroupfs) | None => "/kubepods",
    }
}

/// FNV-1a, 32 bits as 8 hex digits: short, stable across runs and versions (no std hasher).
fn layout_hash(runtime: RuntimeKind, socket: &Path, prefix: &str) -> String {
    let text = format!("{runtime:?}|{}|{prefix}", socket.display());
    let h = text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{h:08x}")
}

/// The groups of `members`, the `cadvisor` one first, then by name; and the nodes left out
/// (no socket known). `this_host` names the node the command runs on; `serving` is the socket
/// the live `cadvisor` DaemonSet mounts, if any (so a rerun does not move the name).
pub fn group(
    members: &[Member],
    this_host: Option<&str>,
    serving: Option<&Path>,
) -> (Vec<Group>, Vec<String>) {
    let mut by_key: BTreeMap<(String, PathBuf, &'static str), Vec<&Member>> = BTreeMap::new();
    let mut left_out = Vec::new();
    for m in members {
        match &m.socket {
            Some(socket) => by_key
                .entry((
                    format!("{:?}", m.runtime),
                    socket.clone(),
                    raw_cgroup_prefix(m.cgroup_driver),
                ))
                .or_default()
                .push(m),
            None => left_out.push(m.node.clone()),
        }
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|((_, socket, prefix), mut ms)| {
            ms.sort_by(|a, b| a.node.cmp(&b.node));
            let runtime = ms[0].runtime;
            let mut kinds: BTreeMap<DistroKind, usize> = BTreeMap::new();
            for m in &ms {
                *kinds.entry(m.distribution).or_default() += 1;
            }
            let distribution = kinds
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map_or(DistroKind::Unknown, |(k, _)| *k);
            Group {
                name: String::new(),
                layout: layout_hash(runtime, &socket, prefix),
                runtime,
                raw_cgroup_prefix: prefix.to_string(),
                cgroup_driver: ms.iter().find_map(|m| m.cgroup_driver),
                distribution,
                nodes: ms.iter().map(|m| m.node.clone()).collect(),
                hostnames: ms.iter().map(|m| m.hostname.clone()).collect(),
                this_host: this_host.is_some_and(|h| ms.iter().any(|m| m.node == h)),
                socket,
            }
        })
        .collect();
    // Which group keeps the name `cadvisor`: the one the live `cadvisor` already serves (a
    // rerun, from whichever machine, moves no pod), else this host's, else the largest; ties
    // by layout hash.
    let rank = |g: &Group| {
        (
            serving.is_some_and(|s| s == g.socket),
            g.this_host,
            g.nodes.len(),
            std::cmp::Reverse(g.layout.clone()),
        )
    };
    let main = groups
        .iter()
        .enumerate()
        .max_by_key(|(_, g)| rank(g))
        .map(|(i, _)| i);
    for (i, g) in groups.iter_mut().enumerate() {
        g.name = if Some(i) == main {
            NAME.to_string()
        } else {
            format!("{NAME}-{}", g.layout)
        };
    }
    groups.sort_by(|a, b| (a.name != NAME, &a.name).cmp(&(b.name != NAME, &b.name)));
    (groups, left_out)
}

/// One plan per group, `cadvisor`'s first. The group holding this host plans from `host` (its
/// detected facts, exactly as a single-node install does); the others from their node facts.
/// With one group the plan is exactly [`super::make`]'s: no affinity, no extra label. With
/// several and `label_nodes`, each DaemonSet's node affinity matches [`GROUP_LABEL`] instead
/// of the hostnames (which stay in the plan, for people and for older template overrides).
pub fn plans(
    groups: &[Group],
    host: Option<&HostFacts>,
    opts: &PlanOptions,
    label_nodes: bool,
) -> Result<Vec<Plan>, PlanError> {
    let mut out = Vec::new();
    for g in groups {
        let facts = match host {
            Some(h) if g.this_host => h.clone(),
            _ => facts_of(g),
        };
        let mut plan = super::make(&facts, opts)?;
        if groups.len() > 1 {
            for hostname in &g.hostnames {
                crate::validate::label_value("node label kubernetes.io/hostname", hostname)?;
            }
            plan.daemonset.name = g.name.clone();
            plan.daemonset.hostnames = g.hostnames.clone();
            if label_nodes {
                plan.daemonset.node_label = Some(super::NodeLabel {
                    key: GROUP_LABEL.to_string(),
                    value: g.layout.clone(),
                });
            }
            if g.name != NAME {
                plan.labels
                    .insert(LAYOUT_LABEL.to_string(), g.layout.clone());
                plan.selector
                    .insert(LAYOUT_LABEL.to_string(), g.layout.clone());
            }
        }
        out.push(plan);
    }
    Ok(out)
}

/// `--label-nodes`: the value of [`GROUP_LABEL`] each node should carry, by node name. Only
/// with several groups (one group needs no pinning, so no label).
pub fn wanted_labels(groups: &[Group]) -> BTreeMap<String, String> {
    if groups.len() < 2 {
        return BTreeMap::new();
    }
    groups
        .iter()
        .flat_map(|g| g.nodes.iter().map(|n| (n.clone(), g.layout.clone())))
        .collect()
}

/// A group's facts as detection would have found them on one of its nodes.
pub fn facts_of(g: &Group) -> HostFacts {
    let mut facts = preset_facts(g.distribution);
    facts.runtime.kind = g.runtime;
    facts.runtime.socket = Some(g.socket.clone());
    facts.cgroup.driver = g.cgroup_driver;
    facts.cgroup.driver_source = None;
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use CgroupDriver::{Cgroupfs, Systemd};
    use DistroKind::{Kubeadm, Microk8s};

    fn m(node: &str, socket: &str, driver: Option<CgroupDriver>, kind: DistroKind) -> Member {
        Member {
            node: node.into(),
            hostname: node.into(),
            runtime: RuntimeKind::Containerd,
            socket: Some(socket.into()),
            cgroup_driver: driver,
            distribution: kind,
        }
    }

    const MK8S: &str = "/var/snap/microk8s/common/run/containerd.sock";
    const DEFAULT: &str = "/run/containerd/containerd.sock";

    #[test]
    fn one_layout_is_one_group_named_cadvisor() {
        let members = [
            m("a", MK8S, Some(Cgroupfs), Microk8s),
            m("b", MK8S, None, Microk8s),
        ];
        let (groups, left) = group(&members, None, None);
        assert!(left.is_empty());
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].name, "cadvisor");
        assert_eq!(groups[0].nodes, ["a", "b"]);
    }

    #[test]
    fn socket_and_cgroup_flag_split_groups_and_names_are_stable() {
        let members = [
            m("mk-1", MK8S, Some(Cgroupfs), Microk8s),
            m("mk-2", MK8S, Some(Cgroupfs), Microk8s),
            m("kadm", DEFAULT, Some(Systemd), Kubeadm),
            m("kadm-fs", DEFAULT, Some(Cgroupfs), Kubeadm),
        ];
        let (groups, _) = group(&members, None, None);
        assert_eq!(groups.len(), 3);
        // The largest keeps `cadvisor`.
        assert_eq!(groups[0].name, "cadvisor");
        assert_eq!(groups[0].nodes, ["mk-1", "mk-2"]);
        for g in &groups[1..] {
            assert_eq!(g.name, format!("cadvisor-{}", g.layout));
            assert_eq!(g.layout.len(), 8);
        }
        // A node joining another group changes no name; this host's group takes `cadvisor`.
        let mut more = members.to_vec();
        more.push(m("kadm-2", DEFAULT, Some(Systemd), Kubeadm));
        let (again, _) = group(&more, None, Some(Path::new(MK8S)));
        let names = |gs: &[Group]| gs.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&again), names(&groups));
        let (from_kadm, _) = group(&members, Some("kadm"), None);
        assert_eq!(from_kadm[0].name, "cadvisor");
        assert_eq!(from_kadm[0].nodes, ["kadm"]);
        // Once installed, a rerun from another node keeps `cadvisor` where it is.
        let (rerun, _) = group(&members, Some("kadm"), Some(Path::new(MK8S)));
        assert_eq!(rerun[0].name, "cadvisor");
        assert_eq!(rerun[0].nodes, ["mk-1", "mk-2"]);
        // Same input, same output, whatever the order of the nodes.
        let mut reversed = members.to_vec();
        reversed.reverse();
        assert_eq!(group(&reversed, None, None).0, groups);
    }

    #[test]
    fn nodes_without_a_socket_are_left_out() {
        let mut lost = m("x", MK8S, None, DistroKind::Unknown);
        lost.socket = None;
        let (groups, left) = group(&[lost, m("a", MK8S, None, Microk8s)], None, None);
        assert_eq!(left, ["x"]);
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn one_group_plans_exactly_as_a_single_node_and_several_are_pinned() {
        let opts = PlanOptions::default();
        let host = preset_facts(Microk8s);
        let one = [m("a", MK8S, Some(Cgroupfs), Microk8s)];
        let (groups, _) = group(&one, Some("a"), None);
        let plans = plans(&groups, Some(&host), &opts, false).unwrap();
        assert_eq!(plans, vec![super::super::make(&host, &opts).unwrap()]);
        // Consent to label nodes changes nothing for one group.
        let labelled = super::plans(&groups, Some(&host), &opts, true).unwrap();
        assert_eq!(labelled, plans);
        assert!(wanted_labels(&groups).is_empty());

        let mixed = [one[0].clone(), m("k", DEFAULT, Some(Systemd), Kubeadm)];
        let (groups, _) = group(&mixed, Some("a"), None);
        let plans = super::plans(&groups, Some(&host), &opts, false).unwrap();
        assert_eq!(plans[0].daemonset.name, "cadvisor");
        assert!(plans.iter().all(|p| p.daemonset.node_label.is_none()));
        assert_eq!(plans[0].daemonset.hostnames, ["a"]);
        assert_eq!(
            plans[0].selector.len(),
            1,
            "cadvisor's selector never changes"
        );
        assert_eq!(plans[1].daemonset.name, groups[1].name);
        assert_eq!(plans[1].daemonset.hostnames, ["k"]);
        assert_eq!(plans[1].selector[LAYOUT_LABEL], groups[1].layout);
        assert_eq!(plans[1].runtime.host_socket, DEFAULT);
        assert!(
            plans[1]
                .args
                .contains(&"--raw_cgroup_prefix_whitelist=/kubepods.slice".to_string())
        );

        // With consent: each DaemonSet matches its group's label; every node gets its value.
        let labelled = super::plans(&groups, Some(&host), &opts, true).unwrap();
        for (p, g) in labelled.iter().zip(&groups) {
            let label = p.daemonset.node_label.as_ref().expect("node label");
            assert_eq!((label.key.as_str(), &label.value), (GROUP_LABEL, &g.layout));
            assert_eq!(p.daemonset.hostnames, g.hostnames);
        }
        let wanted = wanted_labels(&groups);
        assert_eq!(wanted["a"], groups[0].layout);
        assert_eq!(wanted["k"], groups[1].layout);
    }
}
