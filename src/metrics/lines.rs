//! Splits a byte stream into lines and tallies each one: the plain-text half of the scanner.
//!
//! Input arrives in chunks of any size. Complete lines are parsed where they lie in the chunk;
//! only a line cut by a chunk boundary is copied, into a carry buffer of at most
//! [`MAX_LINE`] bytes. A longer line is counted and skipped up to its newline, so memory stays
//! bounded whatever the input.
//!
//! cAdvisor repeats the label set of every container in every metric family, so a label set
//! already parsed is looked up (a bounded cache, compared byte for byte) and only the value and
//! timestamp after it are checked: with a few hundred containers that brings the scanner to
//! grep's speed. With thousands of containers, or label sets that never repeat, every line is
//! parsed; then the pod values it names are recognised as raw bytes seen before
//! ([`Recorded`], following cAdvisor's order of containers), so a series costs one parse and
//! no hashing in the common case.
//!
//! Every line is validated in full. Skipping the lines that carry none of the labels the report
//! counts (`id`, the pod, namespace and container labels of either format) would spare nothing
//! on cAdvisor's output: every series of its container families carries `id` (counted in
//! `container_series` and `id_only_series`), so such lines are the few `machine_*` and
//! `cadvisor_version_info` series (1 line in 445,000 of the benchmark's *real* file).

use memchr::{memchr, memchr_iter};

use super::line::{self, Escapes, Label, Labels, Line, RawValue};
use super::pods::{PodSet, Recorded};
use super::{MalformedLine, ScanReport};

/// The longest line kept. cAdvisor lines are a few hundred bytes to a few KB (more with many
/// `container_label_*` names from the union effect); 1 MiB leaves a wide margin.
pub const MAX_LINE: usize = 1 << 20;

/// How much of a malformed line the report quotes.
const EXCERPT: usize = 120;

#[derive(Debug, Default)]
pub(super) struct LineScanner {
    carry: Vec<u8>,
    /// Inside a line longer than [`MAX_LINE`]: drop bytes up to the next newline.
    skipping: bool,
    text_bytes: u64,
    lines: u64,
    series: u64,
    container_series: u64,
    labelled_series: u64,
    id_only_series: u64,
    kubelet_labelled_series: u64,
    malformed_lines: u64,
    first_malformed: Option<MalformedLine>,
    overlong_lines: u64,
    pods: PodSet,
    kubelet_pods: PodSet,
    /// What `pods` and `kubelet_pods` already hold, by raw values.
    recorded: [Recorded; 2],
    scratch: [Vec<u8>; 3],
    seen: SeenSets,
}

/// What a label set says, all that counting a series needs.
#[derive(Debug, Clone, Copy)]
struct Seen {
    has_id: bool,
    cadvisor_pod: bool,
    kubelet_pod: bool,
}

/// Label sets already parsed, direct-mapped by a hash of a few of their words; a slot holds the
/// whole set, compared byte for byte, so a collision only costs a parse. Slots keep their
/// buffers, so after the first few thousand sets nothing is allocated.
///
/// A scrape whose label sets do not repeat within the cache's reach (sets that never repeat, or
/// tens of thousands of containers per family) would pay a lookup and a copy per line for
/// nothing: when fewer than one lookup in eight hits over [`SEEN_WINDOW`] lookups, the cache
/// rests for [`SEEN_REST`] lines, then tries again.
#[derive(Debug, Default)]
struct SeenSets {
    /// An empty buffer is a vacant slot (a label set has at least its braces).
    slots: Vec<(Vec<u8>, Seen)>,
    lookups: u32,
    hits: u32,
    /// Lines left before the cache is used again.
    resting: u32,
}

/// Slots (an even number: two ways), and the longest set kept: at most 8 MB.
const SEEN_SLOTS: usize = 4096;
const SEEN_MAX_SET: usize = 2048;
const SEEN_WINDOW: u32 = 4096;
const SEEN_REST: u32 = 60_000;

const NO_SEEN: Seen = Seen {
    has_id: false,
    cadvisor_pod: false,
    kubelet_pod: false,
};

impl SeenSets {
    /// Whether to use the cache for this line.
    #[inline]
    fn active(&mut self) -> bool {
        if self.resting == 0 {
            return true;
        }
        self.resting -= 1;
        false
    }

    /// Two ways per set: a set may sit in its slot or in the slot's neighbour.
    fn get(&mut self, set: &[u8]) -> Option<Seen> {
        let slot = seen_slot(set);
        let found = [slot, slot ^ 1]
            .into_iter()
            .find_map(|i| match self.slots.get(i)? {
                (kept, seen) if kept.as_slice() == set => Some(*seen),
                _ => None,
            });
        self.lookups += 1;
        self.hits += u32::from(found.is_some());
        if self.lookups == SEEN_WINDOW {
            if self.hits < SEEN_WINDOW / 8 {
                self.resting = SEEN_REST;
            }
            self.lookups = 0;
            self.hits = 0;
        }
        found
    }

    fn put(&mut self, set: &[u8], seen: Seen) {
        if set.len() > SEEN_MAX_SET {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SEEN_SLOTS, || (Vec::new(), NO_SEEN));
        }
        // The new set takes the first way; the one there moves to the second, evicting the
        // oldest, whose buffer takes the new set.
        let slot = seen_slot(set);
        if !self.slots[slot].0.is_empty() {
            self.slots.swap(slot, slot ^ 1);
        }
        let (kept, kept_seen) = &mut self.slots[slot];
        kept.clear();
        kept.extend_from_slice(set);
        *kept_seen = seen;
    }
}

/// Hashes the length and five words: the last three (cAdvisor's `name`, the container ID; the
/// kubelet's `pod`) and three inner ones (the kubelet's `container`, `id`).
fn seen_slot(set: &[u8]) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let n = set.len();
    let mut h = (n as u64).wrapping_mul(K);
    let mut mix = |word: u64| {
        h = (h ^ word).wrapping_mul(K);
        h ^= h >> 29;
    };
    if n >= 32 {
        for at in [n - 8, n - 16, n - 24, n / 4, n / 2, n - n / 4 - 8] {
            let word = set[at..].first_chunk::<8>().copied().unwrap_or_default();
            mix(u64::from_le_bytes(word));
        }
    } else {
        for &b in set {
            mix(u64::from(b));
        }
    }
    (h >> 32) as usize % SEEN_SLOTS
}

impl LineScanner {
    /// Scans the next chunk of text.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.text_bytes += data.len() as u64;
        if self.skipping {
            match memchr(b'\n', data) {
                None => return,
                Some(pos) => {
                    self.skipping = false;
                    data = &data[pos + 1..];
                }
            }
        }
        if !self.carry.is_empty() {
            match memchr(b'\n', data) {
                None => {
                    self.carry_tail(data);
                    return;
                }
                Some(pos) => {
                    if self.carry.len() + pos > MAX_LINE {
                        self.overlong();
                    } else {
                        let mut carry = std::mem::take(&mut self.carry);
                        carry.extend_from_slice(&data[..pos]);
                        self.line(&carry);
                        carry.clear();
                        self.carry = carry;
                    }
                    self.carry.clear();
                    data = &data[pos + 1..];
                }
            }
        }
        let mut start = 0;
        for pos in memchr_iter(b'\n', data) {
            self.line(&data[start..pos]);
            start = pos + 1;
        }
        self.carry_tail(&data[start..]);
    }

    /// Keeps the start of an unfinished line, or gives up on it when it is too long.
    fn carry_tail(&mut self, tail: &[u8]) {
        if tail.is_empty() {
            return;
        }
        if self.carry.len() + tail.len() > MAX_LINE {
            self.carry = Vec::new();
            self.skipping = true;
            self.overlong();
        } else {
            self.carry.extend_from_slice(tail);
        }
    }

    fn overlong(&mut self) {
        self.lines += 1;
        self.overlong_lines += 1;
    }

    fn line(&mut self, text: &[u8]) {
        self.lines += 1;
        // Every metric family repeats the label sets of the same containers: a label set seen
        // before is not parsed again (its pods are already recorded), only what follows it.
        let shape = line::shape(text);
        let cached = shape.is_some() && self.seen.active();
        if let Some(shape) = &shape
            && cached
            && let Some(seen) = self.seen.get(shape.label_set)
        {
            match line::check_tail(shape.line, shape.tail) {
                Ok(()) => self.count(seen),
                Err(reason) => self.malformed(text, reason),
            }
            return;
        }
        let mut labels = Labels::default();
        if let Some(shape) = &shape
            && let Some(escapes) = line::fast_label_set(shape.label_set, &mut labels)
            && line::check_tail(shape.line, shape.tail).is_ok()
        {
            let seen = self.sample(&labels, escapes);
            if cached {
                self.seen.put(shape.label_set, seen);
            }
            return;
        }
        match line::parse(text) {
            Ok(Line::Skip) => {}
            Ok(Line::Sample(labels)) => {
                let seen = self.sample(&labels, Escapes::Maybe);
                if let Some(shape) = shape
                    && cached
                {
                    self.seen.put(shape.label_set, seen);
                }
            }
            Err(reason) => self.malformed(text, reason),
        }
    }

    fn malformed(&mut self, text: &[u8], reason: line::Malformed) {
        self.malformed_lines += 1;
        if self.first_malformed.is_none() {
            let excerpt = &text[..text.len().min(EXCERPT)];
            self.first_malformed = Some(MalformedLine {
                line: self.lines,
                reason: reason.to_string(),
                excerpt: String::from_utf8_lossy(excerpt).into_owned(),
            });
        }
    }

    /// Counts one series from what its labels say.
    fn count(&mut self, seen: Seen) {
        self.series += 1;
        if seen.has_id {
            self.container_series += 1;
            if !seen.cadvisor_pod && !seen.kubelet_pod {
                self.id_only_series += 1;
            }
        }
        if seen.cadvisor_pod {
            self.labelled_series += 1;
        }
        if seen.kubelet_pod {
            self.kubelet_labelled_series += 1;
        }
    }

    /// Counts a freshly parsed series and records its pods.
    fn sample(&mut self, labels: &Labels<'_>, escapes: Escapes) -> Seen {
        let cadvisor = labels.get(Label::CadvisorPod);
        let kubelet = labels.get(Label::KubeletPod);
        let seen = Seen {
            has_id: labels.get(Label::Id).is_some(),
            cadvisor_pod: cadvisor.is_some(),
            kubelet_pod: kubelet.is_some(),
        };
        self.count(seen);
        if let Some(pod) = cadvisor {
            Self::record(
                &mut self.pods,
                &mut self.recorded[0],
                &mut self.scratch,
                escapes,
                labels.get(Label::CadvisorNamespace),
                pod,
                labels.get(Label::CadvisorContainer),
            );
        }
        if let Some(pod) = kubelet {
            Self::record(
                &mut self.kubelet_pods,
                &mut self.recorded[1],
                &mut self.scratch,
                escapes,
                labels.get(Label::KubeletNamespace),
                pod,
                labels.get(Label::KubeletContainer),
            );
        }
        seen
    }

    /// Adds a pod and container to `set`, unless `recorded` says it holds them already (the
    /// same raw values unescape to the same names, and inserting names already held changes
    /// nothing) or the set is full.
    fn record(
        set: &mut PodSet,
        recorded: &mut Recorded,
        scratch: &mut [Vec<u8>; 3],
        escapes: Escapes,
        namespace: Option<RawValue<'_>>,
        pod: RawValue<'_>,
        container: Option<RawValue<'_>>,
    ) {
        if set.is_full() {
            return;
        }
        fn raw<'a>(value: Option<RawValue<'a>>) -> &'a [u8] {
            value.map_or(&[], |v| v.bytes)
        }
        if recorded.contains([raw(namespace), pod.bytes, raw(container)]) {
            return;
        }
        let [ns_buf, pod_buf, container_buf] = scratch;
        let ns = text_of(namespace, ns_buf, escapes);
        let pod = text_of(Some(pod), pod_buf, escapes);
        let container = text_of(container, container_buf, escapes);
        set.insert(ns, pod, container);
        recorded.remember_last();
    }

    pub fn finish(mut self) -> ScanReport {
        if !self.skipping && !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.line(&carry);
        }
        ScanReport {
            gzip: false,
            input_bytes: self.text_bytes,
            text_bytes: self.text_bytes,
            lines: self.lines,
            series: self.series,
            container_series: self.container_series,
            labelled_series: self.labelled_series,
            id_only_series: self.id_only_series,
            kubelet_labelled_series: self.kubelet_labelled_series,
            pods_truncated: self.pods.truncated || self.kubelet_pods.truncated,
            pods: self.pods.into_sorted(),
            pods_kubelet_format: self.kubelet_pods.into_sorted(),
            malformed_lines: self.malformed_lines,
            first_malformed: self.first_malformed,
            overlong_lines: self.overlong_lines,
        }
    }
}

/// A value's text, unescaped into `buf` only when it holds escapes (not looked for when its
/// label set holds none).
fn text_of<'a>(value: Option<RawValue<'a>>, buf: &'a mut Vec<u8>, escapes: Escapes) -> &'a [u8] {
    match value {
        None => &[],
        Some(raw) if escapes == Escapes::None || memchr(b'\\', raw.bytes).is_none() => raw.bytes,
        Some(raw) => {
            raw.unescape_into(buf);
            buf
        }
    }
}
