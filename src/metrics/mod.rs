//! Streaming scanner for the Prometheus text format: which pods appear with
//! `container_label_io_kubernetes_pod_name`. Constant memory, gzip recognised. No I/O of its own.
//!
//! Two ways in, one report out:
//! - [`scan`] reads any [`std::io::Read`] (a file, stdin) through a fixed 64 KiB buffer;
//! - [`Scanner`] is pushed chunks as they arrive (an HTTP body) and [`Scanner::finish`]ed.
//!
//! gzip is recognised by its magic bytes `1f 8b` (RFC 1952 §2.3.1) whatever the file name or
//! `Content-Encoding`, and decompressed as it streams. Nothing per series is stored: only counters
//! and the (bounded) set of pods seen.

mod line;
mod lines;
mod pods;

use std::io::{self, Read, Write};

use flate2::write::MultiGzDecoder;
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
pub fn scan<R: Read>(mut reader: R) -> Result<ScanReport, ScanError> {
    let mut scanner = Scanner::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ScanError::Read(e)),
        };
        scanner.feed(&buf[..n])?;
    }
    scanner.finish()
}

/// The push form of [`scan`]: feed chunks as they arrive, then [`finish`](Scanner::finish).
#[derive(Debug)]
pub struct Scanner {
    sink: Sink,
    input_bytes: u64,
}

#[derive(Debug)]
enum Sink {
    /// Fewer than two bytes seen: gzip or not is still open.
    Undecided(Box<LineScanner>, Vec<u8>),
    Plain(Box<LineScanner>),
    Gzip(Box<MultiGzDecoder<LineScanner>>),
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Self {
        Scanner {
            sink: Sink::Undecided(Box::default(), Vec::with_capacity(2)),
            input_bytes: 0,
        }
    }

    /// Scans the next chunk (compressed or not, as the first two bytes said).
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ScanError> {
        self.input_bytes += data.len() as u64;
        match &mut self.sink {
            Sink::Plain(lines) => {
                lines.feed(data);
                Ok(())
            }
            Sink::Gzip(decoder) => decoder.write_all(data).map_err(ScanError::Gzip),
            Sink::Undecided(_, head) => {
                let need = 2 - head.len();
                let (first, rest) = data.split_at(need.min(data.len()));
                head.extend_from_slice(first);
                if head.len() < 2 {
                    return Ok(());
                }
                self.decide()?;
                self.feed_decided(rest)
            }
        }
    }

    /// Leaves `Undecided` once two bytes are known, replaying them into the chosen sink.
    fn decide(&mut self) -> Result<(), ScanError> {
        let sink = std::mem::replace(&mut self.sink, Sink::Plain(Box::default()));
        let Sink::Undecided(lines, head) = sink else {
            self.sink = sink;
            return Ok(());
        };
        if head[..] == GZIP_MAGIC {
            let mut decoder = MultiGzDecoder::new(*lines);
            decoder.write_all(&head).map_err(ScanError::Gzip)?;
            self.sink = Sink::Gzip(Box::new(decoder));
        } else {
            let mut lines = lines;
            lines.feed(&head);
            self.sink = Sink::Plain(lines);
        }
        Ok(())
    }

    fn feed_decided(&mut self, data: &[u8]) -> Result<(), ScanError> {
        match &mut self.sink {
            Sink::Plain(lines) => lines.feed(data),
            Sink::Gzip(decoder) => decoder.write_all(data).map_err(ScanError::Gzip)?,
            Sink::Undecided(..) => {}
        }
        Ok(())
    }

    /// Ends the stream: scans a last line without a newline and checks the gzip trailer.
    pub fn finish(self) -> Result<ScanReport, ScanError> {
        let (lines, gzip) = match self.sink {
            Sink::Undecided(mut lines, head) => {
                lines.feed(&head);
                (*lines, false)
            }
            Sink::Plain(lines) => (*lines, false),
            Sink::Gzip(decoder) => (decoder.finish().map_err(ScanError::Gzip)?, true),
        };
        let mut report = lines.finish();
        report.gzip = gzip;
        report.input_bytes = self.input_bytes;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
