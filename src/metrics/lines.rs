//! Splits a byte stream into lines and tallies each one: the plain-text half of the scanner.
//!
//! Input arrives in chunks of any size. Complete lines are parsed where they lie in the chunk;
//! only a line cut by a chunk boundary is copied, into a carry buffer of at most
//! [`MAX_LINE`] bytes. A longer line is counted and skipped up to its newline, so memory stays
//! bounded whatever the input.

use std::io;

use memchr::{memchr, memchr_iter};

use super::line::{self, Label, Labels, Line, RawValue};
use super::pods::PodSet;
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
    scratch: [Vec<u8>; 3],
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
        match line::parse(text) {
            Ok(Line::Skip) => {}
            Ok(Line::Sample(labels)) => self.sample(&labels),
            Err(reason) => {
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
        }
    }

    fn sample(&mut self, labels: &Labels<'_>) {
        self.series += 1;
        let has_id = labels.get(Label::Id).is_some();
        let cadvisor = labels.get(Label::CadvisorPod);
        let kubelet = labels.get(Label::KubeletPod);
        if has_id {
            self.container_series += 1;
            if cadvisor.is_none() && kubelet.is_none() {
                self.id_only_series += 1;
            }
        }
        if let Some(pod) = cadvisor {
            self.labelled_series += 1;
            let (namespace, container) = (
                labels.get(Label::CadvisorNamespace),
                labels.get(Label::CadvisorContainer),
            );
            Self::record(&mut self.pods, &mut self.scratch, namespace, pod, container);
        }
        if let Some(pod) = kubelet {
            self.kubelet_labelled_series += 1;
            let (namespace, container) = (
                labels.get(Label::KubeletNamespace),
                labels.get(Label::KubeletContainer),
            );
            Self::record(
                &mut self.kubelet_pods,
                &mut self.scratch,
                namespace,
                pod,
                container,
            );
        }
    }

    fn record(
        set: &mut PodSet,
        scratch: &mut [Vec<u8>; 3],
        namespace: Option<RawValue<'_>>,
        pod: RawValue<'_>,
        container: Option<RawValue<'_>>,
    ) {
        let [ns_buf, pod_buf, container_buf] = scratch;
        let ns = text_of(namespace, ns_buf);
        let pod = text_of(Some(pod), pod_buf);
        let container = text_of(container, container_buf);
        set.insert(ns, pod, container);
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

/// A value's text, unescaped into `buf` only when it holds escapes.
fn text_of<'a>(value: Option<RawValue<'a>>, buf: &'a mut Vec<u8>) -> &'a [u8] {
    match value {
        None => &[],
        Some(raw) if !raw.escaped => raw.bytes,
        Some(raw) => {
            raw.unescape_into(buf);
            buf
        }
    }
}

/// Lets the gzip decoder write decompressed text straight into the scanner.
impl io::Write for LineScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
