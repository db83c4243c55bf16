//! Scanner tests: fixed payloads in both label formats, then properties over generated payloads
//! (escaped values, random label orders, gzip vs plain, chunk boundaries).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;

use super::*;

/// cAdvisor with the containerd factory registered: a labelled nginx container, its sandbox
/// (no container name), and the union effect's empty values on the system slice and root.
const LABELLED: &str = r#"# HELP cadvisor_version_info A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.
# TYPE cadvisor_version_info gauge
cadvisor_version_info{cadvisorRevision="1b2c3d",cadvisorVersion="v0.60.5",dockerVersion="",kernelVersion="6.8.0",osVersion="Alpine Linux v3.23"} 1
# HELP container_memory_working_set_bytes Current working set in bytes.
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container_label_io_cri_containerd_kind="container",container_label_io_kubernetes_container_name="nginx",container_label_io_kubernetes_pod_name="loki-gateway-66c8f46897-2m445",container_label_io_kubernetes_pod_namespace="loki",id="/kubepods/besteffort/pod1f/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",image="docker.io/library/nginx:1.27",name="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} 1.2345e+07 1784000000000
container_memory_working_set_bytes{container_label_io_cri_containerd_kind="sandbox",container_label_io_kubernetes_container_name="",container_label_io_kubernetes_pod_name="loki-gateway-66c8f46897-2m445",container_label_io_kubernetes_pod_namespace="loki",id="/kubepods/besteffort/pod1f/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",image="registry.k8s.io/pause:3.10",name="fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"} 409600 1784000000000
container_memory_working_set_bytes{container_label_io_cri_containerd_kind="",container_label_io_kubernetes_container_name="",container_label_io_kubernetes_pod_name="",container_label_io_kubernetes_pod_namespace="",id="/system.slice/containerd.service",image="",name=""} 5.6e+07 1784000000000
container_memory_working_set_bytes{container_label_io_cri_containerd_kind="",container_label_io_kubernetes_container_name="",container_label_io_kubernetes_pod_name="",container_label_io_kubernetes_pod_namespace="",id="/",image="",name=""} 1.1e+09 1784000000000
"#;

/// The same cAdvisor when it cannot reach containerd: every cgroup through the raw factory.
const ID_ONLY: &str = r#"# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{cpu="total",id="/",image="",name=""} 1234.5 1784000000000
container_cpu_usage_seconds_total{cpu="total",id="/kubepods/besteffort/pod1f/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",image="",name=""} 3.25 1784000000000
container_cpu_usage_seconds_total{cpu="total",id="/system.slice/containerd.service",image="",name=""} 88 1784000000000
"#;

/// The kubelet's `/metrics/cadvisor`: `pod`, `namespace`, `container`.
const KUBELET: &str = r#"# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} 1234.5 1784000000000
container_cpu_usage_seconds_total{container="nginx",cpu="total",id="/kubepods/besteffort/pod1f/0123",image="docker.io/library/nginx:1.27",name="0123",namespace="loki",pod="loki-gateway-66c8f46897-2m445"} 3.25 1784000000000
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/besteffort/pod1f",image="",name="",namespace="loki",pod="loki-gateway-66c8f46897-2m445"} 3.3 1784000000000
"#;

fn scan_str(text: &str) -> ScanReport {
    scan(text.as_bytes()).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A reader that returns at most a few bytes per call, cycling through `sizes`.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Fields that legitimately differ between a plain and a gzip scan of the same text.
fn without_transport(mut report: ScanReport) -> ScanReport {
    report.gzip = false;
    report.input_bytes = 0;
    report
}

#[test]
fn labelled_cadvisor_metrics_pass_with_their_pods() {
    let report = scan_str(LABELLED);
    assert!(report.passed());
    assert_eq!(report.verdict(), Verdict::Labelled);
    assert_eq!(report.series, 5);
    assert_eq!(report.container_series, 4);
    assert_eq!(report.labelled_series, 2);
    assert_eq!(report.id_only_series, 2);
    assert_eq!(report.kubelet_labelled_series, 0);
    assert_eq!(
        report.pods,
        [PodSeen {
            namespace: "loki".into(),
            pod: "loki-gateway-66c8f46897-2m445".into(),
            containers: vec!["nginx".into()],
        }]
    );
    assert_eq!(report.malformed_lines, 0);
    assert_eq!(report.lines, 9);
    assert_eq!(report.text_bytes, LABELLED.len() as u64);
}

#[test]
fn id_only_metrics_fail_with_the_containerd_diagnosis() {
    let report = scan_str(ID_ONLY);
    assert!(!report.passed());
    assert_eq!(report.verdict(), Verdict::IdOnly);
    assert_eq!(report.id_only_series, 3);
    assert!(report.pods.is_empty());
}

#[test]
fn kubelet_format_gives_the_baseline_pods() {
    let report = scan_str(KUBELET);
    assert!(!report.passed());
    assert_eq!(report.verdict(), Verdict::KubeletFormat);
    assert_eq!(report.kubelet_labelled_series, 2);
    assert_eq!(report.id_only_series, 1);
    assert_eq!(report.pods_kubelet_format.len(), 1);
    assert_eq!(report.pods_kubelet_format[0].containers, ["nginx"]);
}

#[test]
fn other_verdicts() {
    assert_eq!(scan_str("").verdict(), Verdict::Empty);
    assert_eq!(
        scan_str("<html>not metrics</html>\n").verdict(),
        Verdict::Empty
    );
    assert_eq!(
        scan_str("go_goroutines 12\n").verdict(),
        Verdict::NoContainerSeries
    );
}

#[test]
fn malformed_lines_are_counted_and_the_first_is_quoted() {
    let report = scan_str("m 1\nm{a=\"x} 2\nm{ 3\nok{id=\"/\"} 4\n");
    assert_eq!(report.series, 2);
    assert_eq!(report.malformed_lines, 2);
    let first = report.first_malformed.unwrap();
    assert_eq!(first.line, 2);
    assert!(first.excerpt.starts_with("m{a=\"x} 2"), "{first:?}");
}

#[test]
fn last_line_without_newline_and_crlf_count() {
    let text = LABELLED.replace('\n', "\r\n");
    let report = scan_str(text.trim_end());
    assert_eq!(report.series, 5);
    assert_eq!(report.labelled_series, 2);
    assert_eq!(report.malformed_lines, 0);
}

#[test]
fn gzip_is_recognised_by_its_magic_bytes() {
    let compressed = gzip(LABELLED.as_bytes());
    let report = scan(&compressed[..]).unwrap();
    assert!(report.gzip);
    assert_eq!(report.input_bytes, compressed.len() as u64);
    assert_eq!(
        without_transport(report),
        without_transport(scan_str(LABELLED))
    );
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let mut both = gzip(LABELLED.as_bytes());
    both.extend(gzip(KUBELET.as_bytes()));
    let report = scan(&both[..]).unwrap();
    assert_eq!(report.labelled_series, 2);
    assert_eq!(report.kubelet_labelled_series, 2);
}

#[test]
fn truncated_or_corrupt_gzip_is_an_error() {
    let compressed = gzip(LABELLED.as_bytes());
    let truncated = &compressed[..compressed.len() - 5];
    assert!(matches!(scan(truncated), Err(ScanError::Gzip(_))));
    let mut corrupt = compressed.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    assert!(scan(&corrupt[..]).is_err());
}

/// A source that fails after its data: the failure is the source's, not a corrupt stream.
struct Failing<'a>(&'a [u8]);

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_failing_source_is_a_read_error_plain_or_gzip() {
    let compressed = gzip(LABELLED.as_bytes());
    let half = &compressed[..compressed.len() / 2];
    assert!(matches!(scan(Failing(half)), Err(ScanError::Read(_))));
    assert!(matches!(
        scan(Failing(LABELLED.as_bytes())),
        Err(ScanError::Read(_))
    ));
}

#[test]
fn one_byte_inputs_decide_nothing_early() {
    assert_eq!(scan_str("\u{1f}").malformed_lines, 1);
    assert_eq!(scan_str("m").malformed_lines, 1);
    // One byte cannot be gzip (a member is at least 18 bytes): it is scanned as text.
    let report = scan(&gzip(b"m{id=\"/\"} 1\n")[..1]).unwrap();
    assert!(!report.gzip);
    assert_eq!((report.input_bytes, report.malformed_lines), (1, 1));
    // gzip arriving a byte at a time is still recognised.
    let compressed = gzip(LABELLED.as_bytes());
    let trickle = Trickle {
        data: &compressed,
        sizes: vec![1],
        turn: 0,
    };
    let report = scan(trickle).unwrap();
    assert!(report.gzip && report.labelled_series > 0);
    assert_eq!(report.input_bytes, compressed.len() as u64);
    // Two bytes of magic and nothing else is a truncated gzip stream.
    assert!(matches!(scan(&[0x1f, 0x8b][..]), Err(ScanError::Gzip(_))));
}

#[test]
fn an_overlong_line_is_skipped_in_bounded_memory() {
    let mut text = String::from("before{id=\"/\"} 1\n");
    text.push_str("huge{id=\"");
    text.push_str(&"x".repeat(MAX_LINE + 10));
    text.push_str("\"} 1\nafter{container_label_io_kubernetes_pod_name=\"p\",id=\"/x\"} 2\n");
    for sizes in [vec![READ_BUFFER], vec![7, 3, 1]] {
        let report = scan(Trickle {
            data: text.as_bytes(),
            sizes,
            turn: 0,
        })
        .unwrap();
        assert_eq!(report.overlong_lines, 1);
        assert_eq!(report.series, 2);
        assert_eq!(report.labelled_series, 1);
        assert_eq!(report.lines, 3);
    }
    // Overlong without any newline at all, and an overlong last line.
    let report = scan_str(&"y".repeat(MAX_LINE * 2 + 3));
    assert_eq!((report.overlong_lines, report.lines), (1, 1));
}

#[test]
fn a_label_set_seen_before_is_counted_again_and_what_follows_it_checked() {
    let set = r#"{container_label_io_kubernetes_pod_name="p",container_label_io_kubernetes_pod_namespace="ns",id="/x"}"#;
    let text =
        format!("a{set} 1\nb{set} 2 1784000000000\nc{set} oops\nd{set}\t3\r\ne{set} 4 5 6\n");
    let report = scan_str(&text);
    assert_eq!(
        (
            report.series,
            report.labelled_series,
            report.container_series
        ),
        (3, 3, 3)
    );
    assert_eq!(report.malformed_lines, 2);
    let first = report.first_malformed.unwrap();
    assert_eq!(
        (first.line, first.reason.as_str()),
        (3, "the sample value is not a number (nor NaN, +Inf, -Inf)")
    );
    assert_eq!(report.pods.len(), 1);
}

#[test]
fn more_label_sets_than_the_cache_holds_are_still_counted_exactly() {
    // 6000 distinct sets in three families: the cache evicts, and every count stays exact.
    let mut text = String::new();
    for family in ["a", "b", "c"] {
        for i in 0..6000 {
            let pod = if i % 3 == 0 {
                String::new()
            } else {
                format!("pod-{}", i % 500)
            };
            text.push_str(&format!(
                "{family}{{container_label_io_kubernetes_pod_name=\"{pod}\",container_label_io_kubernetes_pod_namespace=\"ns\",id=\"/c/{i}\",name=\"{i:064}\"}} {i} 1784000000000\n"
            ));
        }
    }
    let report = scan_str(&text);
    assert_eq!(report.series, 18_000);
    assert_eq!(report.container_series, 18_000);
    assert_eq!(report.labelled_series, 12_000);
    assert_eq!(report.id_only_series, 6_000);
    assert_eq!(report.pods.len(), 500);
}

#[test]
fn label_sets_that_never_repeat_are_counted_exactly_and_pods_stay_bounded() {
    // 40,000 series, each its own container and every third its own pod: the cache of label
    // sets finds nothing and rests, malformed lines and a repeating tail are still seen, and
    // the pod set keeps the first pods and says it is truncated.
    let mut text = String::new();
    for i in 0..40_000 {
        let extra = "x".repeat(i % 90);
        text.push_str(&format!(
            "m{{container_label_io_kubernetes_container_name=\"c{}\",container_label_io_kubernetes_pod_name=\"pod-{:05}\",container_label_io_kubernetes_pod_namespace=\"ns-{}\",extra=\"{extra}\",id=\"/k/{i}\"}} {i}{}\n",
            i % 3,
            i / 3,
            i / 3 % 7,
            if i % 2 == 0 { " 1784000000000" } else { "" }
        ));
        if i == 30_000 {
            text.push_str("m{pod=\"unterminated} 1\n");
        }
    }
    for _ in 0..10_000 {
        text.push_str("m{container_label_io_kubernetes_pod_name=\"pod-00000\",id=\"/k/0\"} 1\n");
    }
    let report = scan_str(&text);
    assert_eq!(report.series, 50_000);
    assert_eq!(report.labelled_series, 50_000);
    assert_eq!(report.malformed_lines, 1);
    assert_eq!(
        report.first_malformed.as_ref().map(|m| m.line),
        Some(30_002)
    );
    assert!(report.pods_truncated);
    let kept: usize = report.pods.iter().map(|p| 1 + p.containers.len()).sum();
    assert!(kept <= MAX_ENTRIES, "{kept}");
    assert!(
        report
            .pods
            .iter()
            .any(|p| p.pod == "pod-00000" && p.containers == ["c0", "c1", "c2"])
    );
    assert!(!report.pods.iter().any(|p| p.pod == "pod-13332"));
}

#[test]
fn report_serialises_with_stable_names() {
    let value = serde_json::to_value(scan_str(LABELLED)).unwrap();
    for key in [
        "series",
        "container_series",
        "labelled_series",
        "id_only_series",
        "kubelet_labelled_series",
        "pods",
        "pods_kubelet_format",
        "gzip",
        "malformed_lines",
    ] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    assert_eq!(value["pods"][0]["namespace"], "loki");
}

// ---- properties ------------------------------------------------------------------------------

/// One generated series: the interesting labels (empty = absent, as the union effect writes
/// them) and noise labels, in a generated order.
#[derive(Debug, Clone)]
struct Series {
    labels: Vec<(String, String)>,
    value: &'static str,
    timestamp: Option<i64>,
    /// `# HELP` and `# TYPE` lines come before this series.
    comment_before: bool,
}

const INTERESTING: [&str; 7] = [
    "id",
    "container_label_io_kubernetes_pod_name",
    "container_label_io_kubernetes_pod_namespace",
    "container_label_io_kubernetes_container_name",
    "pod",
    "namespace",
    "container",
];

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(series: &[Series]) -> String {
    render_family(series, "m")
}

fn render_family(series: &[Series], family: &str) -> String {
    let mut out = String::new();
    for s in series {
        if s.comment_before {
            out.push_str(&format!(
                "# HELP {family} Help with \\\\ and \\n escapes and {{braces=\"x\"}}.\n# TYPE {family} gauge\n"
            ));
        }
        out.push_str(family);
        out.push('{');
        let parts: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        out.push_str(&parts.join(","));
        out.push_str("} ");
        out.push_str(s.value);
        if let Some(ts) = s.timestamp {
            out.push_str(&format!(" {ts}"));
        }
        out.push('\n');
    }
    out
}

type Pods = BTreeMap<(String, String), BTreeSet<String>>;

/// What the scanner must report, computed from the model rather than from text.
fn expected(series: &[Series]) -> (u64, u64, u64, u64, u64, Pods, Pods) {
    let (mut container, mut labelled, mut id_only, mut kubelet) = (0, 0, 0, 0);
    let (mut pods, mut kpods) = (Pods::new(), Pods::new());
    for s in series {
        let get = |name: &str| {
            s.labels
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (id, cpod, kpod) = (get("id"), get(INTERESTING[1]), get("pod"));
        if !id.is_empty() {
            container += 1;
            if cpod.is_empty() && kpod.is_empty() {
                id_only += 1;
            }
        }
        if !cpod.is_empty() {
            labelled += 1;
            let entry = pods.entry((get(INTERESTING[2]), cpod)).or_default();
            let c = get(INTERESTING[3]);
            if !c.is_empty() {
                entry.insert(c);
            }
        }
        if !kpod.is_empty() {
            kubelet += 1;
            let entry = kpods.entry((get("namespace"), kpod)).or_default();
            let c = get("container");
            if !c.is_empty() {
                entry.insert(c);
            }
        }
    }
    (
        series.len() as u64,
        container,
        labelled,
        id_only,
        kubelet,
        pods,
        kpods,
    )
}

fn as_map(pods: &[PodSeen]) -> Pods {
    pods.iter()
        .map(|p| {
            (
                (p.namespace.clone(), p.pod.clone()),
                p.containers.iter().cloned().collect(),
            )
        })
        .collect()
}

fn series_strategy() -> impl Strategy<Value = Series> {
    // Values full of the characters that break naive parsers: quotes, backslashes, newlines,
    // commas, braces, equals signs, spaces, `#`, and non-ASCII.
    let value = prop_oneof![
        2 => Just(String::new()),
        5 => "[a-z0-9\"\\\\\n,={}# .é/-]{1,12}",
    ];
    let interesting = proptest::collection::vec(value.clone(), INTERESTING.len());
    let noise = proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", value), 0..4);
    let sample = prop_oneof![
        Just("NaN"),
        Just("+Inf"),
        Just("-Inf"),
        Just("1.5e+07"),
        Just("42"),
        Just("-0.25")
    ];
    (
        interesting,
        noise,
        sample,
        proptest::option::of(any::<i64>()),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(values, noise, value, timestamp, comment_before, order_seed)| {
                let mut labels: Vec<(String, String)> = INTERESTING
                    .iter()
                    .map(|k| k.to_string())
                    .zip(values)
                    .collect();
                // Noise labels never reuse an interesting name (that would be a duplicate).
                labels.extend(
                    noise
                        .into_iter()
                        .filter(|(k, _)| !INTERESTING.contains(&k.as_str())),
                );
                // A deterministic shuffle from the seed: labels in any order.
                let mut seed = order_seed | 1;
                for i in (1..labels.len()).rev() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    labels.swap(i, (seed % (i as u64 + 1)) as usize);
                }
                Series {
                    labels,
                    value,
                    timestamp,
                    comment_before,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn generated_payloads_are_counted_exactly(series in proptest::collection::vec(series_strategy(), 0..40)) {
        // Two families with the same label sets, as cAdvisor writes them: the second one is
        // counted from the scanner's cache of label sets.
        let text = render(&series) + &render_family(&series, "container_other_total");
        let report = scan(text.as_bytes()).unwrap();
        let (total, container, labelled, id_only, kubelet, pods, kpods) = expected(&series);
        prop_assert_eq!(report.malformed_lines, 0, "{:?}", report.first_malformed);
        prop_assert_eq!(report.series, 2 * total);
        prop_assert_eq!(report.container_series, 2 * container);
        prop_assert_eq!(report.labelled_series, 2 * labelled);
        prop_assert_eq!(report.id_only_series, 2 * id_only);
        prop_assert_eq!(report.kubelet_labelled_series, 2 * kubelet);
        prop_assert_eq!(as_map(&report.pods), pods);
        prop_assert_eq!(as_map(&report.pods_kubelet_format), kpods);
    }

    #[test]
    fn gzip_and_chunking_do_not_change_the_report(
        series in proptest::collection::vec(series_strategy(), 0..25),
        sizes in proptest::collection::vec(1usize..=7, 1..8),
        compress in any::<bool>(),
    ) {
        let text = render(&series);
        let whole = without_transport(scan(text.as_bytes()).unwrap());
        let input = if compress { gzip(text.as_bytes()) } else { text.into_bytes() };
        let trickled = scan(Trickle { data: &input, sizes, turn: 0 }).unwrap();
        prop_assert_eq!(trickled.gzip, compress);
        prop_assert_eq!(trickled.input_bytes, input.len() as u64);
        prop_assert_eq!(without_transport(trickled), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = scan(&data[..]);
    }
}
