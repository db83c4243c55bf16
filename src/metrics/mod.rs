//! Streaming scanner for the Prometheus text format: which pods appear with
//! `container_label_io_kubernetes_pod_name`. Constant memory, gzip recognised. No I/O of its own.
//!
//! [`scan`] reads any [`std::io::Read`] (a file, stdin, an HTTP body bridged from async) through
//! a fixed 64 KiB buffer.
//!
//! gzip is recognised by its magic bytes `1f 8b` (RFC 1952 §2.3.1) whatever the file name or
//! `Content-Encoding`, and decompressed as it streams. Nothing per series is stored: only counters
//! and the (bounded) set of pods seen.

mod line;
mod lines;
mod pods;

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use serde::Serialize;

pub use lines::MAX_LINE;
pub use pods::{MAX_ENTRIES, PodSeen};

use lines::LineScanner;

/// The read buffer of [`scan`].
const READ_BUFFER: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read the metrics: {0}")]
    Read(#[source] io::Error),
    #[error(
        "the metrics look gzip-compressed (they start with 1f 8b) but do not decompress: {0}; \
         check that the file or response was saved completely"
    )]
    Gzip(#[source] io::Error),
}

/// The first malformed line, quoted so the user can find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedLine {
    /// 1-based line number in the (decompressed) text.
    pub line: u64,
    pub reason: String,
    /// The start of the line.
    pub excerpt: String,
}

/// What one scrape contains. Plain data; `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// The input was gzip-compressed.
    pub gzip: bool,
    /// Bytes read (compressed when `gzip`).
    pub input_bytes: u64,
    /// Bytes of text scanned (after decompression).
    pub text_bytes: u64,
    pub lines: u64,
    /// Sample lines.
    pub series: u64,
    /// Series with a non-empty `id` label (a cgroup: cAdvisor's container series).
    pub container_series: u64,
    /// Series with a non-empty `container_label_io_kubernetes_pod_name`: what `verify` needs.
    pub labelled_series: u64,
    /// Series with an `id` but no pod label in either format: what cAdvisor emits for cgroups it
    /// could not match to a containerd container.
    pub id_only_series: u64,
    /// Series with a non-empty `pod` label (the kubelet's `/metrics/cadvisor` format).
    pub kubelet_labelled_series: u64,
    /// Pods named by `container_label_io_kubernetes_pod_{namespace,name}`, with the names from
    /// `container_label_io_kubernetes_container_name`.
    pub pods: Vec<PodSeen>,
    /// Pods named by the kubelet's `namespace`, `pod` and `container` labels.
    pub pods_kubelet_format: Vec<PodSeen>,
    /// More pods than [`MAX_ENTRIES`] were seen; the lists hold the first ones in order.
    pub pods_truncated: bool,
    pub malformed_lines: u64,
    pub first_malformed: Option<MalformedLine>,
    /// Lines longer than [`MAX_LINE`] bytes, skipped.
    pub overlong_lines: u64,
}

/// What a report says about the pod labels, for the human summary and the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// At least one series carries a non-empty `container_label_io_kubernetes_pod_name`.
    Labelled,
    /// Container series exist but none names a pod: cAdvisor's containerd factory did not
    /// register (it cannot reach the socket), so every cgroup went to the raw factory.
    IdOnly,
    /// Only the kubelet's `pod`/`namespace`/`container` labels: this is `/metrics/cadvisor`
    /// of a kubelet, not a cAdvisor's `/metrics`.
    KubeletFormat,
    /// Series, but none with an `id` label: not cAdvisor metrics.
    NoContainerSeries,
    /// No series at all (empty, or not the exposition format).
    Empty,
}

impl ScanReport {
    /// `verify`'s criterion: at least one series with a non-empty pod label.
    pub fn passed(&self) -> bool {
        self.labelled_series > 0
    }

    pub fn verdict(&self) -> Verdict {
        if self.labelled_series > 0 {
            Verdict::Labelled
        } else if self.kubelet_labelled_series > 0 {
            Verdict::KubeletFormat
        } else if self.id_only_series > 0 {
            Verdict::IdOnly
        } else if self.series > 0 {
            Verdict::NoContainerSeries
        } else {
            Verdict::Empty
        }
    }
}

/// Scans a whole stream through a fixed buffer. gzip is recognised and decompressed.
///
/// The first two bytes decide: gzip's magic goes through [`MultiGzDecoder`] (every member of a
/// concatenated stream), anything else is scanned as text straight from the read buffer.
pub fn scan<R: Read>(reader: R) -> Result<ScanReport, ScanError> {
    let mut counted = Counted {
        inner: reader,
        bytes: 0,
        failed: false,
    };
    // The first two bytes, fewer only at the end of the stream (a reader may return one byte
    // at a time).
    let mut head = Vec::with_capacity(GZIP_MAGIC.len());
    (&mut counted)
        .take(GZIP_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(ScanError::Read)?;
    let gzip = head == GZIP_MAGIC;
    let mut lines = LineScanner::default();
    let mut input = BufReader::with_capacity(READ_BUFFER, head.as_slice().chain(&mut counted));
    if gzip {
        let mut decoder = MultiGzDecoder::new(input);
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lines.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The source's own failure is a read error, not a corrupt stream.
                Err(e) if decoder.get_ref().get_ref().get_ref().1.failed => {
                    return Err(ScanError::Read(e));
                }
                Err(e) => return Err(ScanError::Gzip(e)),
            }
        }
    } else {
        loop {
            let buf = match input.fill_buf() {
                Ok([]) => break,
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ScanError::Read(e)),
            };
            lines.feed(buf);
            let n = buf.len();
            input.consume(n);
        }
    }
    let mut report = lines.finish();
    report.gzip = gzip;
    report.input_bytes = counted.bytes;
    Ok(report)
}

/// Counts the bytes read from the source and remembers whether it failed.
struct Counted<R> {
    inner: R,
    bytes: u64,
    failed: bool,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed = e.kind() != io::ErrorKind::Interrupted;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
