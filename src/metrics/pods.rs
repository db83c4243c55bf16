//! The set of pods (namespace, pod) and their container names seen in a scrape, bounded so that
//! a hostile or absurd payload cannot grow memory without limit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

/// At most this many pods plus container names are kept (about 10 MB at the longest names);
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

/// Hash tables keyed by bytes the scanner builds itself (an index and a name): a multiplicative
/// hash eight bytes at a time (Fibonacci hashing, as rustc's FxHasher), several times cheaper
/// than std's SipHash on every series of a scrape. Not collision-resistant, and need not be: a
/// table holds at most [`MAX_ENTRIES`] keys, so crafted collisions cost at most that many
/// comparisons per lookup on a bounded input, never memory.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word) ^ bytes.len() as u64).wrapping_mul(K);
        self.0 = h;
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and its tag from the high ones.
        self.0 ^ (self.0 >> 32)
    }
}

type FxBuild = BuildHasherDefault<Fx>;

/// Container names of one pod, sorted (raw bytes: label values need not be UTF-8).
type Names = BTreeSet<Vec<u8>>;

/// Namespaces, pods and container names, each interned once: a pod is keyed by its namespace's
/// index and its name, a container by its pod's index and its name.
#[derive(Debug, Default)]
pub(super) struct PodSet {
    namespaces: HashMap<Box<[u8]>, u32, FxBuild>,
    pods: HashMap<Box<[u8]>, u32, FxBuild>,
    containers: HashSet<Box<[u8]>, FxBuild>,
    entries: usize,
    pub truncated: bool,
    key: Vec<u8>,
}

impl PodSet {
    /// Records a pod and, when non-empty, a container name (sandboxes have none).
    pub fn insert(&mut self, namespace: &[u8], pod: &[u8], container: &[u8]) {
        let (namespace, pod, container) = (cut(namespace), cut(pod), cut(container));
        let room = MAX_ENTRIES.saturating_sub(self.entries);
        let ns = match self.namespaces.get(namespace) {
            Some(&ns) => ns,
            None if room >= 2 => {
                let ns = self.namespaces.len() as u32;
                self.namespaces.insert(namespace.into(), ns);
                ns
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        self.key.clear();
        self.key.extend_from_slice(&ns.to_le_bytes());
        self.key.extend_from_slice(pod);
        let index = match self.pods.get(self.key.as_slice()) {
            Some(&index) => index,
            None if room >= 2 => {
                let index = self.pods.len() as u32;
                self.entries += 1;
                self.pods.insert(self.key.as_slice().into(), index);
                index
            }
            None => {
                self.truncated = true;
                return;
            }
        };
        if container.is_empty() {
            return;
        }
        self.key.clear();
        self.key.extend_from_slice(&index.to_le_bytes());
        self.key.extend_from_slice(container);
        if self.containers.contains(self.key.as_slice()) {
            return;
        }
        if self.entries < MAX_ENTRIES {
            self.entries += 1;
            self.containers.insert(self.key.as_slice().into());
        } else {
            self.truncated = true;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pods.len()
    }

    /// Sorted by namespace, then pod; container names sorted.
    pub fn into_sorted(self) -> Vec<PodSeen> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut namespaces = vec![Box::<[u8]>::default(); self.namespaces.len()];
        for (name, index) in self.namespaces {
            namespaces[index as usize] = name;
        }
        let split = |key: &[u8]| -> (usize, Vec<u8>) {
            let (index, name) = key.split_at(4);
            let mut word = [0u8; 4];
            word.copy_from_slice(index);
            (u32::from_le_bytes(word) as usize, name.to_vec())
        };
        // Pod index → (namespace, name, containers).
        let mut pods: Vec<(Box<[u8]>, Vec<u8>, Names)> = vec![Default::default(); self.pods.len()];
        for (key, index) in &self.pods {
            let (ns, name) = split(key);
            pods[*index as usize].0 = namespaces[ns].clone();
            pods[*index as usize].1 = name;
        }
        for key in &self.containers {
            let (index, name) = split(key);
            pods[index].2.insert(name);
        }
        // Sorted as bytes, as the names were seen (two names may read the same once lossily
        // decoded).
        let sorted: BTreeMap<(Box<[u8]>, Vec<u8>), Names> = pods
            .into_iter()
            .map(|(ns, pod, containers)| ((ns, pod), containers))
            .collect();
        sorted
            .into_iter()
            .map(|((namespace, pod), containers)| PodSeen {
                namespace: text(&namespace),
                pod: text(&pod),
                containers: containers.iter().map(|c| text(c)).collect(),
            })
            .collect()
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
