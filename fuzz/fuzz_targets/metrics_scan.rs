//! `metrics_scan`: the streaming Prometheus-text scanner (`cadvisor_setup::metrics`).
//!
//! The input is the scrape itself (any bytes; seeds are real cAdvisor and kubelet payloads).
//! Invariants:
//! - nothing panics, whatever the bytes (plain text, or gzip that does not decompress);
//! - chunking invariance: reading the bytes whole, one byte at a time, in pseudo-random chunk
//!   sizes, or cut right before and after every line break gives the same result (the same
//!   report, or the same error);
//! - gzip invariance: the same text gzipped with flate2 (one member, or two members cut at an
//!   arbitrary point, fed in arbitrary chunks) gives the same report, except that `gzip` is set
//!   and `input_bytes` counts the compressed bytes;
//! - CRLF invariance: the same text with `\r\n` line ends gives the same report (bar the byte
//!   counts and a trailing `\r` in the quoted malformed line);
//! - the report is self-consistent: `text_bytes` is the input length, `lines` is the number of
//!   lines, every count is bounded by the one it refines (`id_only <= container <= series`,
//!   `series + malformed <= lines`), `first_malformed` is present exactly when a line was
//!   malformed and points at one of them with an excerpt of at most 120 characters, and pods are
//!   listed exactly when a series named one.
#![no_main]

use std::io::{Read, Write};

use cadvisor_setup::metrics::{MAX_ENTRIES, MAX_LINE, ScanReport, scan};
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

type Outcome = Result<ScanReport, String>;

/// A reader that hands out the chunks one `read` at a time, as a network body does (an empty
/// chunk cannot be handed out: a `read` of 0 bytes is the end of the input).
struct Chunks<'a> {
    chunks: Vec<&'a [u8]>,
    next: usize,
    pos: usize,
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.get(self.next) {
            if self.pos < chunk.len() {
                let n = out.len().min(chunk.len() - self.pos);
                out[..n].copy_from_slice(&chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.next += 1;
            self.pos = 0;
        }
        Ok(0)
    }
}

fn feed_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
    scan(Chunks {
        chunks,
        next: 0,
        pos: 0,
    })
    .map_err(|e| e.to_string())
}

fn whole(data: &[u8]) -> Outcome {
    feed_chunks([data])
}

/// FNV-1a, to seed the chunk sizes from the input itself (so seeds stay plain files).
fn seed_of(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Chunks of pseudo-random sizes in 1..=max, with an empty chunk now and then.
fn random_chunks(data: &[u8], mut state: u64, max: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 11 == 0 {
            out.push(&rest[..0]);
        }
        let n = ((state >> 8) % max + 1) as usize;
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Cut right before and right after every `\n`.
fn newline_chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut cuts = vec![0];
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            cuts.extend([i, i + 1]);
        }
    }
    cuts.push(data.len());
    cuts.dedup();
    cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn without_transport(mut report: ScanReport) -> ScanReport {
    report.gzip = false;
    report.input_bytes = 0;
    report.text_bytes = 0;
    report
}

fn check_consistent(data: &[u8], r: &ScanReport) {
    assert!(!r.gzip);
    assert_eq!(r.input_bytes, data.len() as u64);
    assert_eq!(r.text_bytes, data.len() as u64);
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let unterminated = u64::from(data.last().is_some_and(|&b| b != b'\n'));
    assert_eq!(r.lines, newlines + unterminated, "line count");
    assert!(r.series + r.malformed_lines <= r.lines, "{r:?}");
    assert!(r.container_series <= r.series, "{r:?}");
    assert!(r.labelled_series <= r.series, "{r:?}");
    assert!(r.kubelet_labelled_series <= r.series, "{r:?}");
    assert!(r.id_only_series <= r.container_series, "{r:?}");
    if data.len() <= MAX_LINE {
        assert_eq!(r.overlong_lines, 0, "no line here is overlong");
    }
    assert_eq!(r.first_malformed.is_some(), r.malformed_lines > 0, "{r:?}");
    if let Some(m) = &r.first_malformed {
        assert!(
            m.line >= 1 && m.line <= r.lines,
            "{m:?} of {} lines",
            r.lines
        );
        assert!(!m.reason.is_empty());
        assert!(m.excerpt.chars().count() <= 120, "{m:?}");
        let line = data.split(|&b| b == b'\n').nth(m.line as usize - 1);
        let line = line.expect("the malformed line exists");
        let expected = String::from_utf8_lossy(&line[..line.len().min(120)]);
        assert_eq!(m.excerpt, expected, "the excerpt quotes line {}", m.line);
    }
    if !r.pods_truncated {
        assert_eq!(r.labelled_series > 0, !r.pods.is_empty(), "{r:?}");
        assert_eq!(
            r.kubelet_labelled_series > 0,
            !r.pods_kubelet_format.is_empty(),
            "{r:?}"
        );
    }
    assert_eq!(r.passed(), r.labelled_series > 0);
    for pod in r.pods.iter().chain(&r.pods_kubelet_format) {
        assert!(
            !pod.pod.is_empty(),
            "an empty pod label means absent: {pod:?}"
        );
        assert!(pod.containers.iter().all(|c| !c.is_empty()), "{pod:?}");
    }
    assert!(r.pods.len() <= MAX_ENTRIES && r.pods_kubelet_format.len() <= MAX_ENTRIES);
}

fuzz_target!(|data: &[u8]| {
    let reference = whole(data);

    // Chunking invariance (gzip or not: the input decides).
    assert_eq!(
        scan(data).map_err(|e| e.to_string()),
        reference,
        "scan (Read)"
    );
    if data.len() <= 2048 {
        assert_eq!(feed_chunks(data.chunks(1)), reference, "one byte at a time");
    }
    let seed = seed_of(data) | 1;
    for (i, max) in [3u64, 17, 200].into_iter().enumerate() {
        let chunks = random_chunks(data, seed.rotate_left(i as u32 * 7) | 1, max);
        assert_eq!(
            feed_chunks(chunks.iter().copied()),
            reference,
            "chunks of at most {max} bytes: {:?}",
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        feed_chunks(newline_chunks(data)),
        reference,
        "cut at line breaks"
    );

    // From here on the input is text (gzip's magic bytes would make it a compressed input).
    if data.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let report = reference.expect("plain text always scans");
    check_consistent(data, &report);

    // gzip invariance: one member, and two members cut anywhere, in chunks.
    let compressed = gzip(data);
    let zipped = whole(&compressed).expect("flate2's gzip decompresses");
    assert!(zipped.gzip);
    assert_eq!(zipped.input_bytes, compressed.len() as u64);
    assert_eq!(zipped.text_bytes, data.len() as u64);
    assert_eq!(
        without_transport(zipped),
        without_transport(report.clone()),
        "gzip"
    );
    let cut = (seed % (data.len() as u64 + 1)) as usize;
    let mut members = gzip(&data[..cut]);
    members.extend(gzip(&data[cut..]));
    let chunks = random_chunks(&members, seed.rotate_left(29) | 1, 23);
    let zipped = feed_chunks(chunks.iter().copied()).expect("two gzip members decompress");
    assert_eq!(
        without_transport(zipped),
        without_transport(report.clone()),
        "two gzip members cut at {cut}, fed in chunks"
    );

    // CRLF invariance.
    if !data.contains(&b'\r') && data.contains(&b'\n') {
        let crlf: Vec<u8> = data.iter().fold(Vec::new(), |mut v, &b| {
            if b == b'\n' {
                v.push(b'\r');
            }
            v.push(b);
            v
        });
        let mut crlf_report = whole(&crlf).expect("plain text always scans");
        if let Some(m) = &mut crlf_report.first_malformed
            && m.excerpt.ends_with('\r')
        {
            m.excerpt.pop();
        }
        assert_eq!(
            without_transport(crlf_report),
            without_transport(report),
            "CRLF line ends"
        );
    }
});
