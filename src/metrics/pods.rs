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
    /// The namespace and pod of the last insert, and the pod's index (`None`: it was left out,
    /// for good: room never grows back). A pod's series come one after the other.
    last_namespace: Vec<u8>,
    last_pod: Vec<u8>,
    last_index: Option<u32>,
}

impl PodSet {
    /// Nothing can be added any more (every kind of entry needs room), and the set already
    /// says it is truncated: [`PodSet::insert`] would change nothing.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.truncated && self.entries >= MAX_ENTRIES
    }

    /// Records a pod and, when non-empty, a container name (sandboxes have none). True when
    /// everything given is now in the set (nothing was left out for want of room).
    pub fn insert(&mut self, namespace: &[u8], pod: &[u8], container: &[u8]) -> bool {
        let (namespace, pod, container) = (cut(namespace), cut(pod), cut(container));
        let index = if !self.last_pod.is_empty()
            && self.last_pod == pod
            && self.last_namespace == namespace
        {
            self.last_index
        } else {
            let index = self.insert_pod(namespace, pod);
            self.last_namespace.clear();
            self.last_namespace.extend_from_slice(namespace);
            self.last_pod.clear();
            self.last_pod.extend_from_slice(pod);
            self.last_index = index;
            index
        };
        let Some(index) = index else {
            self.truncated = true;
            return false;
        };
        if container.is_empty() {
            return true;
        }
        self.insert_container(index, container)
    }

    /// The index of a pod, added when there is room; `None` when it is left out.
    fn insert_pod(&mut self, namespace: &[u8], pod: &[u8]) -> Option<u32> {
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
                return None;
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
                return None;
            }
        };
        Some(index)
    }

    fn insert_container(&mut self, index: u32, container: &[u8]) -> bool {
        self.key.clear();
        self.key.extend_from_slice(&index.to_le_bytes());
        self.key.extend_from_slice(container);
        if self.containers.contains(self.key.as_slice()) {
            return true;
        }
        if self.entries < MAX_ENTRIES {
            self.entries += 1;
            self.containers.insert(self.key.as_slice().into());
            true
        } else {
            self.truncated = true;
            false
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

/// The raw values (escapes as written) of namespace, pod and container already given to a
/// [`PodSet`]: most series of a scrape name a container seen before, and recognising its raw
/// values spares the unescaping and the set's three lookups. Giving the set the same names
/// twice never changes it: the first time they were added, or left out for want of room, and
/// room never grows back.
///
/// cAdvisor lists the containers in the same order in every metric family (google/cadvisor
/// `lib/metrics/prometheus.go` collects each family over the same container list), so each key
/// remembers the key that followed it last time, and the next values are first compared with
/// that one: no hashing, one compare; a hash lookup finds the key when the order changes.
///
/// Bounded: at most [`MAX_ENTRIES`] keys of at most [`RECORDED_KEY`] bytes, [`RECORDED_BYTES`]
/// in all, kept twice (in order and in the index): about 5 MB at worst per set (a scan has two:
/// cAdvisor's and the kubelet's labels), a few tens of KB for a real node's few hundred
/// containers. Past that, lookups miss and the set does the work.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    /// The keys in the order first seen, back to back.
    arena: Vec<u8>,
    /// Where each key ends in `arena` (it starts where the one before ends).
    ends: Vec<u32>,
    /// For each key, the place of the key that came after it last time ([`NONE`]: not yet).
    follow: Vec<u32>,
    /// Key → its place in `ends`.
    index: HashMap<Box<[u8]>, u32, FxBuild>,
    /// The place of the last key looked up, when it was found or remembered.
    last: Option<u32>,
    /// The key of the last [`Recorded::contains`] that looked in the index: each part's
    /// length, then the part; empty when it did not.
    key: Vec<u8>,
    /// Index lookups and hits in the current window, and lookups left to skip.
    lookups: u32,
    hits: u32,
    resting: u32,
}

/// Whether `key` holds these parts.
#[inline]
fn key_is(mut key: &[u8], parts: [&[u8]; 3]) -> bool {
    for part in parts {
        let Some((len, rest)) = key.split_first_chunk::<4>() else {
            return false;
        };
        if u32::from_le_bytes(*len) as usize != part.len() {
            return false;
        }
        let Some((bytes, rest)) = rest.split_at_checked(part.len()) else {
            return false;
        };
        if !super::line::same(bytes, part) {
            return false;
        }
        key = rest;
    }
    key.is_empty()
}

/// The longest key kept: three names of [`MAX_NAME`] bytes and their lengths, with room for
/// escapes.
const RECORDED_KEY: usize = 1024;
/// All keys together, at most.
const RECORDED_BYTES: usize = 2 << 20;
const NONE: u32 = u32::MAX;
/// Once full, when fewer than one index lookup in eight hits over this many, the index rests
/// for [`RECORDED_REST`] lookups (the order is still followed).
const RECORDED_WINDOW: u32 = 4096;
const RECORDED_REST: u32 = 60_000;

impl Recorded {
    /// Whether these raw values were given to the set before.
    #[inline]
    pub fn contains(&mut self, parts: [&[u8]; 3]) -> bool {
        self.key.clear();
        if parts.iter().map(|p| p.len() + 4).sum::<usize>() > RECORDED_KEY {
            self.last = None;
            return false;
        }
        let expected = self
            .last
            .and_then(|last| self.follow.get(last as usize))
            .copied()
            .filter(|&next| next != NONE);
        if let Some(next) = expected
            && self.key_at(next).is_some_and(|key| key_is(key, parts))
        {
            self.last = Some(next);
            return true;
        }
        if self.resting > 0 {
            self.resting -= 1;
            self.last = None;
            return false;
        }
        for part in parts {
            // At most RECORDED_KEY bytes, so it fits.
            self.key
                .extend_from_slice(&(part.len() as u32).to_le_bytes());
            self.key.extend_from_slice(part);
        }
        let found = self.index.get(self.key.as_slice()).copied();
        self.lookups += 1;
        self.hits += u32::from(found.is_some());
        if self.lookups == RECORDED_WINDOW {
            // Full, and the values hardly ever repeat: the lookups only cost.
            if self.hits < RECORDED_WINDOW / 8 && self.ends.len() >= MAX_ENTRIES {
                self.resting = RECORDED_REST;
            }
            self.lookups = 0;
            self.hits = 0;
        }
        match found {
            Some(at) => {
                self.link(at);
                true
            }
            None => false,
        }
    }

    /// Remembers the values of the last [`Recorded::contains`], once given to the set.
    #[inline]
    pub fn remember_last(&mut self) {
        if self.key.is_empty()
            || self.ends.len() >= MAX_ENTRIES
            || self.arena.len() + self.key.len() > RECORDED_BYTES
        {
            self.last = None;
            return;
        }
        self.arena.extend_from_slice(&self.key);
        // At most RECORDED_BYTES and MAX_ENTRIES, so both fit.
        self.ends.push(self.arena.len() as u32);
        self.follow.push(NONE);
        let at = (self.ends.len() - 1) as u32;
        self.index.insert(self.key.as_slice().into(), at);
        self.link(at);
    }

    /// `at` came after the last key.
    fn link(&mut self, at: u32) {
        if let Some(last) = self.last
            && let Some(follow) = self.follow.get_mut(last as usize)
        {
            *follow = at;
        }
        self.last = Some(at);
    }

    fn key_at(&self, at: u32) -> Option<&[u8]> {
        let at = at as usize;
        let start = match at {
            0 => 0,
            n => *self.ends.get(n - 1)? as usize,
        };
        self.arena.get(start..*self.ends.get(at)? as usize)
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
    fn recorded_values_are_found_in_order_and_out_of_order() {
        let mut recorded = Recorded::default();
        let parts = |i: usize| [&b"ns"[..], format!("pod-{i}").into_bytes().leak(), b"c"];
        for i in 0..5 {
            assert!(!recorded.contains(parts(i)));
            recorded.remember_last();
        }
        // The same order (the links), then out of order (the index), then the order again.
        for i in [0, 1, 2, 3, 4, 3, 0, 4, 1, 2] {
            assert!(recorded.contains(parts(i)), "{i}");
        }
        assert!(!recorded.contains([b"ns", b"pod-1", b""]));
        assert!(
            !recorded.contains([b"ns", b"pod-1c", b""]),
            "the lengths tell the parts apart"
        );
        // Too long to keep: never found, never kept.
        let long = vec![b'x'; RECORDED_KEY];
        assert!(!recorded.contains([b"ns", &long, b"c"]));
        recorded.remember_last();
        assert!(!recorded.contains([b"ns", &long, b"c"]));
    }

    #[test]
    fn recorded_values_are_bounded() {
        let mut recorded = Recorded::default();
        for i in 0..MAX_ENTRIES + 10 {
            let pod = format!("pod-{i}");
            if !recorded.contains([b"ns", pod.as_bytes(), b"c"]) {
                recorded.remember_last();
            }
        }
        assert_eq!(recorded.ends.len(), MAX_ENTRIES);
        assert!(recorded.arena.len() <= RECORDED_BYTES);
        assert!(!recorded.contains([b"ns", format!("pod-{}", MAX_ENTRIES + 5).as_bytes(), b"c"]));
    }

    #[test]
    fn a_pod_left_out_stays_out_and_a_pod_kept_gains_containers() {
        let mut set = PodSet::default();
        for i in 0..MAX_ENTRIES - 1 {
            set.insert(b"ns", format!("pod-{i}").as_bytes(), b"");
        }
        // One entry of room: no new pod (it needs two), twice in a row.
        assert!(!set.insert(b"ns", b"new", b"c"));
        assert!(!set.insert(b"ns", b"new", b"d"));
        assert!(set.truncated);
        // A kept pod still gains a container, the last one.
        assert!(set.insert(b"ns", b"pod-0", b"c"));
        assert!(set.insert(b"ns", b"pod-0", b"c"));
        assert!(!set.insert(b"ns", b"pod-0", b"d"));
        assert!(set.is_full());
        let pods = set.into_sorted();
        assert!(pods.iter().all(|p| p.pod != "new"));
        assert_eq!(
            pods.iter().find(|p| p.pod == "pod-0").unwrap().containers,
            ["c"]
        );
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
