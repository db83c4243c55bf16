//! One line of the Prometheus text exposition format, parsed in place (no allocation).
//!
//! Format: <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>
//! (prometheus/common `expfmt/text_parse.go` is the reference parser):
//!
//! ```text
//! # HELP name text            # TYPE name counter           (comments, skipped)
//! name{label="value",...} 1.5e+07 1784000000000           (value, optional ms timestamp)
//! {"utf8.name",label="v"} NaN                              (quoted names, format 1.0.0)
//! ```
//!
//! Label values escape `\\`, `\"` and `\n`. cAdvisor emits every label name of its union on every
//! series, with `""` where a container lacks the label (google/cadvisor `lib/metrics/prometheus.go`),
//! so an empty value means "absent" for every label this module cares about.

use memchr::{memchr, memchr_iter, memchr3, memrchr};

/// The labels the scanner looks at. cAdvisor's own `/metrics` names pods through the sanitised
/// container labels; the kubelet's `/metrics/cadvisor` uses `pod`, `namespace` and `container`
/// (kubernetes/kubernetes `pkg/kubelet/server/server.go` `containerPrometheusLabelsFunc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Id,
    CadvisorPod,
    CadvisorNamespace,
    CadvisorContainer,
    KubeletPod,
    KubeletNamespace,
    KubeletContainer,
}

const LABEL_COUNT: usize = 7;

impl Label {
    /// Called for every label of every fresh series: the length decides first (most names
    /// have none of these lengths), then one compare.
    #[inline(always)]
    fn of(name: &[u8]) -> Option<Label> {
        // `io.kubernetes.pod.name` etc. after cAdvisor's sanitizeLabelName ([^a-zA-Z0-9_] → `_`).
        let (label, expected): (Label, &[u8]) = match name.len() {
            2 => (Label::Id, b"id"),
            3 => (Label::KubeletPod, b"pod"),
            9 if name[0] == b'n' => (Label::KubeletNamespace, b"namespace"),
            9 => (Label::KubeletContainer, b"container"),
            38 => (
                Label::CadvisorPod,
                b"container_label_io_kubernetes_pod_name",
            ),
            43 => (
                Label::CadvisorNamespace,
                b"container_label_io_kubernetes_pod_namespace",
            ),
            44 => (
                Label::CadvisorContainer,
                b"container_label_io_kubernetes_container_name",
            ),
            _ => return None,
        };
        same(name, expected).then_some(label)
    }
}

/// `a == b`, eight bytes at a time and inline: the names and values compared per series are
/// 2 to 60 bytes, where a call to `memcmp` costs more than the compare. The last word is read
/// from the end (overlapping the one before), so the end, where `container_label_*` names
/// differ, is compared first.
#[inline(always)]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        return true;
    }
    let word = |s: &[u8], at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let last = a.len() - 8;
    if word(a, last) != word(b, last) {
        return false;
    }
    let mut at = 0;
    while at < last {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    true
}

/// A label value as it appears on the line, escapes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawValue<'a> {
    pub bytes: &'a [u8],
}

impl RawValue<'_> {
    /// The value with `\\`, `\"` and `\n` resolved, written into `out` (cleared first).
    pub fn unescape_into(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut rest = self.bytes;
        while let Some(pos) = memchr::memchr(b'\\', rest) {
            out.extend_from_slice(&rest[..pos]);
            match rest.get(pos + 1) {
                Some(b'n') => out.push(b'\n'),
                Some(&c @ (b'\\' | b'"')) => out.push(c),
                // Not a valid escape: keep it as written (the parser is lenient, not a validator).
                Some(&c) => out.extend_from_slice(&[b'\\', c]),
                None => out.push(b'\\'),
            }
            rest = rest.get(pos + 2..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }
}

/// The interesting labels of one sample line; only non-empty values are kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Labels<'a> {
    values: [Option<RawValue<'a>>; LABEL_COUNT],
}

impl<'a> Labels<'a> {
    #[inline]
    pub fn get(&self, label: Label) -> Option<RawValue<'a>> {
        self.values[label as usize]
    }

    #[inline]
    fn set(&mut self, label: Label, bytes: &'a [u8]) {
        // A later duplicate wins, as in the reference parser; an empty value clears it.
        self.values[label as usize] = if bytes.is_empty() {
            None
        } else {
            Some(RawValue { bytes })
        };
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Line<'a> {
    /// Blank, or a `#` comment (`# HELP`, `# TYPE` or free text).
    Skip,
    Sample(Labels<'a>),
}

/// Why a line is not valid exposition format.
pub(super) type Malformed = &'static str;

/// Parses one line (without its `\n`; a trailing `\r` is tolerated).
///
/// Built for speed on cAdvisor's long lines: the label set is walked from quote to quote
/// ([`Quotes`]) instead of byte by byte. The text between two quoted values
/// is `,name=`, so names are cut out, not scanned; name characters are not validated (the
/// scanner counts what it can read; it is not a linter).
pub(super) fn parse(line: &[u8]) -> Result<Line<'_>, Malformed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut i = skip_blanks(line, 0);
    match line.get(i) {
        None | Some(b'#') => return Ok(Line::Skip),
        Some(&c) if c != b'{' && !NAME_START[c as usize] => {
            return Err("expected a metric name");
        }
        _ => {}
    }
    let name_end = memchr3(b'{', b' ', b'\t', &line[i..]).map_or(line.len(), |p| i + p);
    let mut have_name = name_end > i;
    i = skip_blanks(line, name_end);
    let mut labels = Labels::default();
    if line.get(i) == Some(&b'{') {
        i = parse_label_set(line, i + 1, &mut labels, &mut have_name)?;
        i = skip_blanks(line, i);
    }
    if !have_name {
        return Err("expected a metric name");
    }
    check_tail(line, i)?;
    Ok(Line::Sample(labels))
}

/// A sample line of the usual shape, `name{labels} value [timestamp]`, split without parsing
/// the labels: what [`super::lines`] looks up in its cache of label sets already parsed.
pub(super) struct Shape<'a> {
    /// The line without a trailing `\r`.
    pub line: &'a [u8],
    /// From `{` to the last `}` of the line, both included.
    pub label_set: &'a [u8],
    /// Where the value starts (after the `}`).
    pub tail: usize,
}

/// The [`Shape`] of a line whose name starts right away and runs up to `{`; `None` for every
/// other line (comments, blank lines, no labels, unusual spacing), which [`parse`] handles.
///
/// When [`parse`] accepts such a line, its label set ends at the line's last `}` (a value or a
/// timestamp holds no `}`), so equal `label_set` bytes always parse to the same labels.
#[inline]
pub(super) fn shape(line: &[u8]) -> Option<Shape<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !NAME_START[usize::from(*line.first()?)] {
        return None;
    }
    let open = memchr3(b'{', b' ', b'\t', line)?;
    if line[open] != b'{' {
        return None;
    }
    let close = memrchr(b'}', line).filter(|&close| close > open)?;
    Some(Shape {
        line,
        label_set: &line[open..=close],
        tail: close + 1,
    })
}

/// The labels of a [`Shape`]'s `label_set` in the common form, `{name="value",...}` with no
/// blanks around names, no quoted names and each value followed by `,` or the end; `None` for
/// anything else, which [`parse`] then decides (so an odd or malformed line costs a second
/// look, never a different answer).
///
/// Equal to what [`parse`] finds whenever it returns `Some`: [`parse`] cuts the text between a
/// value's closing quote and the next opening quote as `,` (after the first value), then
/// `name=`, and ends the set at a `}` where a name would start; here a name may not start with
/// `}` or a blank, may not end with a blank, and the set ends only at its last byte, which
/// [`shape`] found to be the line's last `}`. A backslash escapes the next byte inside a value
/// (an odd run escapes a quote, as in `Quotes::find`); one outside a value is left to
/// [`parse`].
#[inline]
pub(super) fn fast_label_set<'a>(label_set: &'a [u8], labels: &mut Labels<'a>) -> Option<Escapes> {
    let inner = label_set.get(1..label_set.len().checked_sub(1)?)?;
    if inner.is_empty() {
        return Some(Escapes::None);
    }
    let mut escapes = Escapes::None;
    let mut specials = Specials::new(inner);
    // Where the current name starts.
    let mut item = 0;
    loop {
        let open = specials.next()?;
        if inner[open] != b'"' || open < item + 2 || inner[open - 1] != b'=' {
            return None;
        }
        let name = &inner[item..open - 1];
        match (name.first(), name.last()) {
            (Some(&first), Some(&last)) if !is_blank(first) && first != b'}' && !is_blank(last) => {
            }
            _ => return None,
        }
        // The closing quote: the first one not escaped by the backslash before it.
        let mut escaped_until = open + 1;
        let close = loop {
            let p = specials.next()?;
            if p < escaped_until {
                continue;
            }
            if inner[p] == b'\\' {
                escapes = Escapes::Maybe;
                escaped_until = p + 2;
                continue;
            }
            break p;
        };
        if let Some(label) = Label::of(name) {
            labels.set(label, &inner[open + 1..close]);
        }
        match inner.get(close + 1) {
            None => return Some(escapes),
            Some(b',') if close + 2 == inner.len() => return Some(escapes),
            Some(b',') => item = close + 2,
            Some(_) => return None,
        }
    }
}

/// Whether the values of a label set may hold escapes (`Maybe` when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escapes {
    None,
    Maybe,
}

/// The positions of `"` and `\` in a label set, in order, found 64 bytes at a time: one mask
/// per block (vector compares), then one bit per hit. A label set holds a quote
/// every 10 to 30 bytes, where a fresh search per hit costs more than the block's mask.
struct Specials<'a> {
    data: &'a [u8],
    /// Start of the block `mask` describes.
    base: usize,
    mask: u64,
}

impl<'a> Specials<'a> {
    #[inline]
    fn new(data: &'a [u8]) -> Self {
        Specials {
            data,
            base: 0,
            mask: block_mask(data),
        }
    }

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.base += 64;
            if self.base >= self.data.len() {
                return None;
            }
            self.mask = block_mask(&self.data[self.base..]);
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.base + bit)
    }
}

/// Bit `i` set when byte `i` of the first 64 of `data` is `"` or `\`.
#[inline]
fn block_mask(data: &[u8]) -> u64 {
    match data.first_chunk::<64>() {
        Some(block) => mask64(block),
        None => {
            let mut block = [0u8; 64];
            block[..data.len()].copy_from_slice(data);
            mask64(&block)
        }
    }
}

/// Sixteen bytes at a time with SSE2, part of every x86-64 processor (so no detection at run
/// time). The bytes go in as two words; one compare per byte value, one `pmovmskb` per 16
/// bytes: about a fifth less CPU for the whole scan than the SWAR form below on the benchmark's
/// files (`scripts/bench/verify.sh`), which LLVM does not turn into vector code by itself.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn mask64(block: &[u8; 64]) -> u64 {
    // SAFETY: this is compiled only where SSE2 is enabled for the whole build (the cfg above;
    // it is in the x86-64 baseline), so the CPU running it has it;
    // the intrinsics take values, not pointers.
    unsafe { mask64_sse2(block) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn mask64_sse2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let mut mask = 0u64;
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let (lo, hi) = chunk.split_at(8);
        let word = |half: &[u8]| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(half);
            i64::from_le_bytes(bytes)
        };
        let v = _mm_set_epi64x(word(hi), word(lo));
        let hits = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        // The mask is 16 bits, in the low half of the i32.
        mask |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * i);
    }
    mask
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn mask64(block: &[u8; 64]) -> u64 {
    mask64_swar(block)
}

/// Eight bytes at a time in a `u64` (SWAR, no vector instructions needed: the other
/// architectures' path, and the reference the tests hold the SSE2 path to): a byte equal to `"`
/// or `\\` gets its high bit set exactly (the `(x & 0x7f..) + 0x7f..` form never carries across
/// bytes, so no false hits), and the eight high bits are gathered into eight mask bits by one
/// multiplication (bit 7 of byte `j` lands on bit `56 + j`; no two partial products share a bit,
/// so nothing carries).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
#[inline]
fn mask64_swar(block: &[u8; 64]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const QUOTE: u64 = 0x2222_2222_2222_2222;
    const BACKSLASH: u64 = 0x5c5c_5c5c_5c5c_5c5c;
    const GATHER: u64 = 0x0102_0408_1020_4080;
    #[inline]
    fn zero_bytes(x: u64) -> u64 {
        !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
    }
    let mut mask = 0u64;
    for (i, word) in block.chunks_exact(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let x = u64::from_le_bytes(bytes);
        let high = zero_bytes(x ^ QUOTE) | zero_bytes(x ^ BACKSLASH);
        mask |= ((high >> 7).wrapping_mul(GATHER) >> 56) << (8 * i);
    }
    mask
}

/// Checks what follows the labels: blanks, a value, optionally a timestamp, blanks.
#[inline]
pub(super) fn check_tail(line: &[u8], mut i: usize) -> Result<(), Malformed> {
    if is_plain_tail(&line[i.min(line.len())..]) {
        return Ok(());
    }
    i = skip_blanks(line, i);
    let value_end = scan_token(line, i);
    if value_end == i {
        return Err("expected a sample value after the metric name and labels");
    }
    if !is_float(&line[i..value_end]) {
        return Err("the sample value is not a number (nor NaN, +Inf, -Inf)");
    }
    i = skip_blanks(line, value_end);
    let ts_end = scan_token(line, i);
    if ts_end > i {
        if !is_timestamp(&line[i..ts_end]) {
            return Err("the timestamp is not an integer number of milliseconds");
        }
        i = skip_blanks(line, ts_end);
    }
    if i < line.len() {
        return Err("unexpected text after the value and timestamp");
    }
    Ok(())
}

/// Parses `name="value",...}` starting just after `{`; returns the index after `}`.
fn parse_label_set<'a>(
    line: &'a [u8],
    start: usize,
    labels: &mut Labels<'a>,
    have_name: &mut bool,
) -> Result<usize, Malformed> {
    let mut quotes = Quotes::new(line, start);
    let mut pos = start;
    let mut first = true;
    loop {
        // Between items: `,` (except before the first), then `name=` up to the value's `"`, or
        // the `"` of a quoted name, or the closing `}`.
        let quote = quotes.peek();
        let seg_end = quote.unwrap_or(line.len());
        let mut seg = trim_start(&line[pos..seg_end]);
        if !first {
            match seg.first() {
                Some(b',') => seg = trim_start(&seg[1..]),
                Some(b'}') => {}
                _ => return Err("expected `,` or `}` after a label value"),
            }
        }
        if seg.first() == Some(&b'}') {
            return Ok(seg_end - seg.len() + 1);
        }
        first = false;
        let Some(open) = quotes.next() else {
            return Err(if seg.is_empty() {
                "the label set has no closing `}`"
            } else if memchr(b'=', seg).is_some() {
                "a label value must be in double quotes"
            } else {
                "expected `=` after a label name"
            });
        };
        let name = if seg.is_empty() {
            // A quoted name: `"label.name"="v"`, or `"metric.name"` as an item of its own.
            let (quoted, close) = read_quoted(line, open, &mut quotes)?;
            let after_end = quotes.peek().unwrap_or(line.len());
            let after = trim_start(&line[close + 1..after_end]);
            if after.first() != Some(&b'=') {
                if *have_name {
                    return Err("expected `=` after a label name");
                }
                *have_name = true;
                pos = close + 1;
                continue;
            }
            if !trim_start(&after[1..]).is_empty() {
                return Err("a label value must be in double quotes");
            }
            let Some(value_open) = quotes.next() else {
                return Err("a label value must be in double quotes");
            };
            let (value, close) = read_quoted(line, value_open, &mut quotes)?;
            if let Some(label) = Label::of(quoted) {
                labels.set(label, value);
            }
            pos = close + 1;
            continue;
        } else {
            let Some(before_eq) = trim_end(seg).strip_suffix(b"=") else {
                return Err(if memchr(b'=', seg).is_some() {
                    "a label value must be in double quotes"
                } else {
                    "expected `=` after a label name"
                });
            };
            trim_end(before_eq)
        };
        if name.is_empty() {
            return Err("expected a label name");
        }
        let (value, close) = read_quoted(line, open, &mut quotes)?;
        if let Some(label) = Label::of(name) {
            labels.set(label, value);
        }
        pos = close + 1;
    }
}

/// Reads a quoted string whose `"` is at `open`; returns its raw bytes and the index of the
/// closing `"`.
#[inline]
fn read_quoted<'a>(
    line: &'a [u8],
    open: usize,
    quotes: &mut Quotes<'_>,
) -> Result<(&'a [u8], usize), Malformed> {
    match quotes.next() {
        Some(close) => Ok((&line[open + 1..close], close)),
        None => Err("a quoted label value has no closing `\"`"),
    }
}

/// The unescaped `"` of a line, in order. One [`memchr_iter`] per label set: cAdvisor lines hold
/// two quotes per label, every 20 to 30 bytes, and the iterator finds them with SIMD without a
/// fresh search per hit.
struct Quotes<'a> {
    line: &'a [u8],
    start: usize,
    raw: memchr::Memchr<'a>,
    peeked: Option<Option<usize>>,
}

impl<'a> Quotes<'a> {
    fn new(line: &'a [u8], start: usize) -> Self {
        Quotes {
            line,
            start,
            raw: memchr_iter(b'"', line.get(start..).unwrap_or_default()),
            peeked: None,
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<usize> {
        if self.peeked.is_none() {
            self.peeked = Some(self.find());
        }
        self.peeked.flatten()
    }

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self.peeked.take() {
            Some(peeked) => peeked,
            None => self.find(),
        }
    }

    /// The next `"` not escaped by an odd run of backslashes.
    #[inline]
    fn find(&mut self) -> Option<usize> {
        loop {
            let p = self.raw_next()?;
            if p == 0 || self.line[p - 1] != b'\\' {
                return Some(p);
            }
            let run = self.line[..p]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if run % 2 == 0 {
                return Some(p);
            }
        }
    }

    #[inline]
    fn raw_next(&mut self) -> Option<usize> {
        self.raw.next().map(|p| p + self.start)
    }
}

/// Characters that may start a metric name: `[a-zA-Z_:]`.
const NAME_START: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphabetic() || b == b'_' || b == b':';
        c += 1;
    }
    table
};

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_blank(b)).count();
    &s[n..]
}

#[inline]
fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rev().take_while(|&&b| is_blank(b)).count();
    &s[..s.len() - n]
}

#[inline]
fn skip_blanks(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && is_blank(line[i]) {
        i += 1;
    }
    i
}

#[inline]
fn scan_token(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && !is_blank(line[i]) {
        i += 1;
    }
    i
}

/// The common case in one pass: ` <decimal>` or ` <decimal> <milliseconds>`, single spaces.
#[inline]
fn is_plain_tail(tail: &[u8]) -> bool {
    let Some(rest) = tail.strip_prefix(b" ") else {
        return false;
    };
    // The forms Prometheus writes for special values (all of which `is_float` accepts).
    let plain =
        |value: &[u8]| is_plain_decimal(value) || matches!(value, b"NaN" | b"+Inf" | b"-Inf");
    match rest.iter().position(|&b| b == b' ') {
        None => plain(rest),
        Some(p) => {
            let timestamp = &rest[p + 1..];
            plain(&rest[..p]) && !timestamp.is_empty() && timestamp.iter().all(u8::is_ascii_digit)
        }
    }
}

/// Go's `strconv.ParseFloat` forms that exposition uses: decimals, exponents, `NaN`, `±Inf`.
#[inline]
fn is_float(token: &[u8]) -> bool {
    if is_plain_decimal(token) {
        return true;
    }
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    if text.parse::<f64>().is_ok() {
        return true;
    }
    matches!(
        text.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "+inf" | "-inf" | "infinity" | "+infinity" | "-infinity"
    )
}

/// `[+-]?digits[.digits][(e|E)[+-]?digits]` (or `.digits`), checked without allocating: the
/// common case, tried before the general parse.
#[inline]
fn is_plain_decimal(t: &[u8]) -> bool {
    fn digits(t: &[u8], mut i: usize) -> usize {
        while i < t.len() && t[i].is_ascii_digit() {
            i += 1;
        }
        i
    }
    let mut i = usize::from(matches!(t.first(), Some(b'+' | b'-')));
    let int_end = digits(t, i);
    let mut mantissa = int_end - i;
    i = int_end;
    if t.get(i) == Some(&b'.') {
        let frac_end = digits(t, i + 1);
        mantissa += frac_end - i - 1;
        i = frac_end;
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits(t, i);
        if exp_end == i {
            return false;
        }
        i = exp_end;
    }
    i == t.len()
}

#[inline]
fn is_timestamp(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Labels<'_> {
        match parse(line.as_bytes()) {
            Ok(Line::Sample(labels)) => labels,
            other => panic!("{line:?} should be a sample, got {other:?}"),
        }
    }

    fn value(labels: &Labels<'_>, label: Label) -> Option<String> {
        labels.get(label).map(|raw| {
            let mut out = Vec::new();
            raw.unescape_into(&mut out);
            String::from_utf8(out).unwrap()
        })
    }

    #[test]
    fn cadvisor_container_series_with_timestamp() {
        let labels = sample(
            r#"container_memory_working_set_bytes{container_label_io_kubernetes_container_name="nginx",container_label_io_kubernetes_pod_name="nginx-7c5ddbdf54-x2x9q",container_label_io_kubernetes_pod_namespace="default",id="/kubepods.slice/cri-containerd-0a.scope",image="docker.io/library/nginx:latest",name="0a"} 1.2345e+07 1784000000000"#,
        );
        assert_eq!(
            value(&labels, Label::CadvisorPod).as_deref(),
            Some("nginx-7c5ddbdf54-x2x9q")
        );
        assert_eq!(
            value(&labels, Label::CadvisorNamespace).as_deref(),
            Some("default")
        );
        assert_eq!(
            value(&labels, Label::CadvisorContainer).as_deref(),
            Some("nginx")
        );
        assert_eq!(
            value(&labels, Label::Id).as_deref(),
            Some("/kubepods.slice/cri-containerd-0a.scope")
        );
        assert_eq!(value(&labels, Label::KubeletPod), None);
    }

    #[test]
    fn union_effect_empty_values_count_as_absent() {
        let labels = sample(
            r#"container_cpu_usage_seconds_total{container_label_io_kubernetes_pod_name="",cpu="total",id="/system.slice/containerd.service"} 12.5"#,
        );
        assert_eq!(value(&labels, Label::CadvisorPod), None);
        assert_eq!(
            value(&labels, Label::Id).as_deref(),
            Some("/system.slice/containerd.service")
        );
    }

    #[test]
    fn escapes_in_values_do_not_end_the_value() {
        let labels = sample(r#"m{a="x\"y,id=\"fake\"",id="/real\\path",pod="line\nbreak"} 1"#);
        assert_eq!(value(&labels, Label::Id).as_deref(), Some("/real\\path"));
        assert_eq!(
            value(&labels, Label::KubeletPod).as_deref(),
            Some("line\nbreak")
        );
    }

    #[test]
    fn special_values_blanks_and_trailing_comma() {
        for line in [
            "m NaN",
            "m +Inf",
            "m -Inf 1784000000000",
            "m{} 1",
            "m { a = \"b\" , } 0",
            "m{a=\"b\",}\t3\t-5",
            "  m 1  ",
            "m 1\r",
            "{\"utf8.metric\",pod=\"p\"} 1",
            "m{\"quoted.label\"=\"v\"} 1",
        ] {
            assert!(
                matches!(parse(line.as_bytes()), Ok(Line::Sample(_))),
                "{line:?} should parse"
            );
        }
        assert_eq!(
            value(&sample("{\"utf8.metric\",pod=\"p\"} 1"), Label::KubeletPod).as_deref(),
            Some("p")
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        for line in [
            "",
            "   ",
            "# HELP m Help text with \"quotes\".",
            "# TYPE m gauge",
            "#",
        ] {
            assert!(matches!(parse(line.as_bytes()), Ok(Line::Skip)), "{line:?}");
        }
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, why) in [
            ("m{a=\"b\" 1", "`,` or `}`"),
            ("m{a=\"b 1", "closing `\"`"),
            ("m{a=b} 1", "double quotes"),
            ("m{a} 1", "`=`"),
            ("m", "sample value"),
            ("m one", "not a number"),
            ("m 1 12.5", "timestamp"),
            ("m 1 2 3", "unexpected text"),
            ("{a=\"b\"} 1", "metric name"),
            ("m{", "closing `}`"),
            ("m{a=\"b\\", "closing `\"`"),
        ] {
            match parse(line.as_bytes()) {
                Err(reason) => assert!(reason.contains(why), "{line:?}: {reason}"),
                Ok(_) => panic!("{line:?} should be malformed"),
            }
        }
    }

    #[test]
    fn escaped_quotes_are_skipped() {
        // An escaped backslash before a quote is not an escape.
        let line = format!(r#"{}"a\"b\\"c""#, "x".repeat(70));
        let mut quotes = Quotes::new(line.as_bytes(), 0);
        let found: Vec<usize> = std::iter::from_fn(|| quotes.next()).collect();
        assert_eq!(found, [70, 77, 79]);
    }

    /// What the scanner does with a line: the fast path when it answers, else [`parse`].
    fn fast(line: &str) -> Option<Labels<'_>> {
        let shape = shape(line.as_bytes())?;
        let mut labels = Labels::default();
        fast_label_set(shape.label_set, &mut labels)?;
        check_tail(shape.line, shape.tail).ok()?;
        Some(labels)
    }

    #[test]
    fn the_fast_path_reads_what_parse_reads() {
        let long = format!(
            r#"m{{{}pod="p\"q",namespace="n\\",container="c\n",id="/x"}} 1 2"#,
            (0..40)
                .map(|i| format!("l{i}=\"{}\",", "v".repeat(i)))
                .collect::<String>()
        );
        for line in [
            r#"container_memory_rss{container_label_io_kubernetes_container_name="nginx",container_label_io_kubernetes_pod_name="web-1",container_label_io_kubernetes_pod_namespace="default",id="/kubepods/a",image="",name=""} 1.5e+07 1784000000000"#,
            r#"m{} 1"#,
            r#"m{a="b",} 1"#,
            r#"m{a="",pod=""} 1"#,
            r#"m{pod="a\"b,id=\"fake\"",id="/real"} 1"#,
            r#"m{pod="ends in a backslash\\",id="x\\\\"} 1"#,
            r#"m{pod="{braces} and = and , inside"} 1"#,
            r#"m{,pod="lenient name"} 1"#,
            r#"m{a=b="c",pod="p"} 1"#,
            r#"m{a}b="c",pod="p"} 1"#,
            r#"m{pod="p"} NaN"#,
            long.as_str(),
        ] {
            let labels = fast(line).unwrap_or_else(|| panic!("{line:?}: no fast path"));
            assert_eq!(labels, sample(line), "{line:?}");
        }
        // Values straddling 64-byte blocks, every offset.
        for pad in 0..130 {
            let line = format!(r#"m{{a="{}",pod="x\"y",id="z"}} 1"#, "-".repeat(pad));
            assert_eq!(fast(&line), Some(sample(&line)), "{line:?}");
        }
    }

    #[test]
    fn the_fast_path_leaves_unusual_and_malformed_sets_to_parse() {
        for line in [
            r#"m{ a="b"} 1"#,
            r#"m{a ="b"} 1"#,
            r#"m{a= "b"} 1"#,
            r#"m{a="b" ,c="d"} 1"#,
            r#"m{"quoted.name"="v"} 1"#,
            r#"m{a\b="c"} 1"#,
            r#"m{a="b"}c="d"} 1"#,
            r#"m{a="b",}c="d"} 1"#,
            r#"m{a="b"c="d"} 1"#,
            r#"m{a="b} 1"#,
            r#"m{a=b} 1"#,
            r#"m{="b"} 1"#,
            r#"m{a} 1"#,
            r#"m{a="b"} 1 }"#,
        ] {
            assert_eq!(fast(line), None, "{line:?}");
        }
    }

    proptest::proptest! {
        /// Whenever the fast path answers, `parse` accepts the line with the same labels.
        #[test]
        fn the_fast_path_agrees_with_parse(
            items in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "pod", "namespace", "container", "id", "x",
                        "container_label_io_kubernetes_pod_name", " pod", "pod ", "}a", ",b",
                        "a=b", "\"q\"", "",
                    ]),
                    "[a-z\"\\\\,={} ]{0,6}",
                    proptest::sample::select(vec!["\"", "", "\\\""]),
                    proptest::sample::select(vec![",", "", " ,", ",,", "}"]),
                ),
                0..6,
            ),
            tail in proptest::sample::select(vec![" 1", " 1 2", "\t1", " x", " 1 }", ""]),
        ) {
            let mut line = String::from("m{");
            for (name, value, close, sep) in &items {
                line.push_str(&format!("{name}=\"{value}{close}{sep}"));
            }
            line.push('}');
            line.push_str(tail);
            if let Some(labels) = fast(&line) {
                match parse(line.as_bytes()) {
                    Ok(Line::Sample(parsed)) => proptest::prop_assert_eq!(labels, parsed, "{:?}", line),
                    other => proptest::prop_assert!(false, "{line:?}: fast path read it, parse says {other:?}"),
                }
            }
        }
    }

    proptest::proptest! {
        /// The block mask marks exactly the quotes and backslashes.
        #[test]
        fn the_block_mask_marks_quotes_and_backslashes(
            block in proptest::collection::vec(
                proptest::sample::select(vec![b'"', b'\\', b'a', b'=', 0x22 ^ 0x80, 0x5c ^ 0x80, 0]),
                64,
            ),
        ) {
            let block: [u8; 64] = block.try_into().unwrap();
            let expected = block
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'"' || b == b'\\')
                .fold(0u64, |mask, (i, _)| mask | 1 << i);
            proptest::prop_assert_eq!(mask64(&block), expected);
            proptest::prop_assert_eq!(mask64_swar(&block), expected);
        }

        /// `same` is `==`, at every length and wherever the first difference lies.
        #[test]
        fn same_is_equality(a in proptest::collection::vec(0u8..3, 0..40), flip in proptest::option::of(0usize..40)) {
            let mut b = a.clone();
            if let Some(at) = flip.filter(|&at| at < b.len()) {
                b[at] ^= 1;
            }
            proptest::prop_assert_eq!(same(&a, &b), a == b);
            proptest::prop_assert_eq!(same(&a, &b[..b.len().saturating_sub(1)]), a.len() == b.len().saturating_sub(1) && a[..] == b[..a.len().min(b.len())]);
        }
    }

    #[test]
    fn invalid_escapes_are_kept_verbatim() {
        let raw = RawValue {
            bytes: br"a\tb\\c\",
        };
        let mut out = Vec::new();
        raw.unescape_into(&mut out);
        assert_eq!(out, b"a\\tb\\c\\");
    }
}
