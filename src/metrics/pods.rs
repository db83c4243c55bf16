//! The set of pods (namespace, pod) and their container names seen in a scrape, bounded so that
//! a hostile or absurd payload cannot grow memory without limit.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// At most this many pods plus container names are kept (about 5 MB at the longest names);
/// beyond it the set is marked truncated. A node runs at most a few hundred pods (the kubelet's
/// default `maxPods` is 110).
pub const MAX_ENTRIES: usize = 20_000;

/// Names are cut to this many bytes: Kubernetes object names are at most 253 characters
/// (DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// A pod seen in the metrics, with the container names that appeared with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PodSeen {
    pub namespace: String,
    pub pod: String,
    pub containers: Vec<String>,
}

/// Pod name → container names, per namespace (raw bytes: label values need not be UTF-8).
type Pods = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

#[derive(Debug, Default)]
pub(super) struct PodSet {
    by_namespace: BTreeMap<Vec<u8>, Pods>,
    entries: usize,
    pub truncated: bool,
    /// The last triple inserted: consecutive series usually belong to the same container.
    last: (Vec<u8>, Vec<u8>, Vec<u8>),
}

impl PodSet {
    /// Records a pod and, when non-empty, a container name (sandboxes have none).
    pub fn insert(&mut self, namespace: &[u8], pod: &[u8], container: &[u8]) {
        let (namespace, pod, container) = (cut(namespace), cut(pod), cut(container));
        if self.last.0 == namespace && self.last.1 == pod && self.last.2 == container {
            return;
        }
        self.remember(namespace, pod, container);
        let room = MAX_ENTRIES.saturating_sub(self.entries);
        let pods = match self.by_namespace.get_mut(namespace) {
            Some(pods) => pods,
            None if room >= 2 => self.by_namespace.entry(namespace.to_vec()).or_default(),
            None => {
                self.truncated = true;
                return;
            }
        };
        let containers = match pods.get_mut(pod) {
            Some(containers) => containers,
            None if room >= 2 => {
                self.entries += 1;
                pods.entry(pod.to_vec()).or_default()
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        if container.is_empty() || containers.contains(container) {
            return;
        }
        if self.entries < MAX_ENTRIES {
            self.entries += 1;
            containers.insert(container.to_vec());
        } else {
            self.truncated = true;
        }
    }

    fn remember(&mut self, namespace: &[u8], pod: &[u8], container: &[u8]) {
        for (slot, value) in [
            (&mut self.last.0, namespace),
            (&mut self.last.1, pod),
            (&mut self.last.2, container),
        ] {
            slot.clear();
            slot.extend_from_slice(value);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeMap::len).sum()
    }

    /// Sorted by namespace, then pod; container names sorted.
    pub fn into_sorted(self) -> Vec<PodSeen> {
        let text = |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let mut out = Vec::new();
        for (namespace, pods) in self.by_namespace {
            let namespace = text(namespace);
            for (pod, containers) in pods {
                out.push(PodSeen {
                    namespace: namespace.clone(),
                    pod: text(pod),
                    containers: containers.into_iter().map(text).collect(),
                });
            }
        }
        out
    }
}

fn cut(name: &[u8]) -> &[u8] {
    &name[..name.len().min(MAX_NAME)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_collect_their_containers_sorted() {
        let mut set = PodSet::default();
        set.insert(b"default", b"web-1", b"nginx");
        set.insert(b"default", b"web-1", b"nginx");
        set.insert(b"default", b"web-1", b"");
        set.insert(b"default", b"web-1", b"sidecar");
        set.insert(b"kube-system", b"coredns-1", b"coredns");
        set.insert(b"default", b"api-1", b"app");
        assert_eq!(set.len(), 3);
        let pods = set.into_sorted();
        assert_eq!(
            pods.iter()
                .map(|p| (p.namespace.as_str(), p.pod.as_str()))
                .collect::<Vec<_>>(),
            [
                ("default", "api-1"),
                ("default", "web-1"),
                ("kube-system", "coredns-1")
            ]
        );
        assert_eq!(pods[1].containers, ["nginx", "sidecar"]);
    }

    #[test]
    fn the_set_is_bounded_and_says_so() {
        let mut set = PodSet::default();
        for i in 0..MAX_ENTRIES + 10 {
            set.insert(b"ns", format!("pod-{i}").as_bytes(), b"c");
        }
        assert!(set.truncated);
        assert!(set.entries <= MAX_ENTRIES);
        let long = vec![b'x'; 10_000];
        let mut set = PodSet::default();
        set.insert(b"ns", &long, b"c");
        assert_eq!(set.into_sorted()[0].pod.len(), MAX_NAME);
    }
}
