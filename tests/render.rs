//! Rendering tier: plan → templates → manifests, through the library and the real binary.
//!
//! Snapshots of every distro preset, typed parsing with k8s-openapi, the `--containerd` path
//! resolved back through volumeMounts and hostPath volumes to the host socket, property tests,
//! injection attempts, and the ecosystem checks (`kubernetes-validate --strict`, `kubectl kustomize`).

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use cadvisor_setup::host::{DistroKind, HostFacts};
use cadvisor_setup::plan::{self, PlanOptions};
use cadvisor_setup::render::{self, Manifests};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};

const PRESETS: [(&str, DistroKind); 6] = [
    ("microk8s", DistroKind::Microk8s),
    ("k3s", DistroKind::K3s),
    ("rke2", DistroKind::Rke2),
    ("k0s", DistroKind::K0s),
    ("k8s-snap", DistroKind::K8sSnap),
    ("kubeadm", DistroKind::Kubeadm),
];

fn bin() -> Command {
    let mut cmd = Command::cargo_bin("cadvisor-setup").expect("binary");
    // The user's environment must not change what the tests render.
    for (key, _) in std::env::vars() {
        if key.starts_with("CADVISOR_SETUP_") && key != "CADVISOR_SETUP_REQUIRE_REAL" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cadvisor-setup <args>` and returns stdout; panics with stderr on failure.
fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("run cadvisor-setup");
    assert!(
        out.status.success(),
        "cadvisor-setup {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn render_lib(facts: &HostFacts, opts: &PlanOptions) -> Manifests {
    let plan = plan::make(facts, opts).expect("plan");
    render::manifests(&plan, None).expect("render")
}

/// Every document of a multi-document YAML stream, as JSON values.
fn parse_stream(yaml: &str) -> Vec<serde_json::Value> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).expect("valid YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn kind_of(object: &serde_json::Value) -> &str {
    object["kind"].as_str().expect("kind")
}

/// Parses an object into its k8s-openapi type and checks that nothing was lost on the way
/// (an unknown or misspelt field would be dropped by the typed round trip).
fn typed<T>(object: &serde_json::Value) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let value: T = serde_json::from_value(object.clone()).unwrap_or_else(|e| {
        panic!(
            "{} does not parse into its k8s-openapi type: {e}",
            kind_of(object)
        )
    });
    let back = serde_json::to_value(&value).expect("serialise");
    assert_eq!(
        &back,
        object,
        "{} changes in a typed round trip (unknown field?)",
        kind_of(object)
    );
    value
}

/// Checks every object of a rendering against k8s-openapi; returns the DaemonSet.
fn check_typed(objects: &[serde_json::Value]) -> DaemonSet {
    let mut daemonset = None;
    for object in objects {
        match kind_of(object) {
            "Namespace" => {
                typed::<Namespace>(object);
            }
            "ServiceAccount" => {
                let sa = typed::<ServiceAccount>(object);
                assert_eq!(sa.automount_service_account_token, Some(false));
            }
            "Service" => {
                typed::<Service>(object);
            }
            "DaemonSet" => daemonset = Some(typed::<DaemonSet>(object)),
            "ServiceMonitor" => {
                assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
            }
            "ConfigMap" => {
                // The Grafana dashboard: JSON text under one key.
                let cm = typed::<ConfigMap>(object);
                let data = cm.data.unwrap_or_default();
                assert_eq!(data.len(), 1);
                for text in data.values() {
                    serde_json::from_str::<serde_json::Value>(text).expect("dashboard JSON");
                }
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    daemonset.expect("a DaemonSet")
}

fn container_args(ds: &DaemonSet) -> Vec<String> {
    let spec = ds.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    pod.containers[0].args.clone().unwrap_or_default()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
}

/// What cAdvisor will dial, as a host path: the `--containerd` argument resolved through the
/// container's volumeMounts (longest mountPath prefix) and the pod's hostPath volumes.
fn resolve_containerd(ds: &DaemonSet) -> PathBuf {
    let args = container_args(ds);
    let in_pod = flag(&args, "--containerd").expect("--containerd");
    assert!(!in_pod.contains("://"), "plain path expected: {in_pod}");
    let pod = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod");
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    let mount = mounts
        .iter()
        .filter(|m| Path::new(in_pod).starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .unwrap_or_else(|| panic!("no volumeMount covers {in_pod}"));
    assert_eq!(mount.read_only, Some(true), "runtime mount is read-only");
    let volume = pod
        .volumes
        .as_ref()
        .and_then(|v| v.iter().find(|v| v.name == mount.name))
        .expect("volume of the mount");
    let host_dir = &volume.host_path.as_ref().expect("hostPath volume").path;
    let rel = Path::new(in_pod)
        .strip_prefix(&mount.mount_path)
        .expect("prefix");
    Path::new(host_dir).join(rel)
}

mod presets {
    use super::*;

    #[test]
    fn every_preset_matches_its_snapshot() {
        for (name, _) in PRESETS {
            let yaml = run_ok(&["render", "--distro", name]);
            insta::assert_snapshot!(format!("preset_{name}"), yaml);
        }
    }

    #[test]
    fn binary_output_is_the_library_rendering() {
        for (name, kind) in PRESETS {
            let yaml = run_ok(&["render", "--distro", name]);
            let lib = render_lib(&plan::preset(kind), &PlanOptions::default());
            assert_eq!(yaml, lib.to_yaml(), "{name}");
        }
    }

    #[test]
    fn every_document_parses_into_k8s_openapi_types() {
        for (name, _) in PRESETS {
            for extra in [
                &[][..],
                &["--privileged"][..],
                &["--service-monitor", "always"][..],
            ] {
                let mut args = vec!["render", "--distro", name];
                args.extend_from_slice(extra);
                let objects = parse_stream(&run_ok(&args));
                let ds = check_typed(&objects);
                let pod = ds
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .expect("pod");
                assert_eq!(pod.automount_service_account_token, Some(false));
                assert_eq!(pod.host_network, None, "no hostNetwork");
                let c = &pod.containers[0];
                assert!(
                    c.ports.iter().flatten().all(|p| p.host_port.is_none()),
                    "no hostPort"
                );
                assert!(c.liveness_probe.is_some() && c.readiness_probe.is_some());
                let sc = c.security_context.as_ref().expect("securityContext");
                let privileged = extra.contains(&"--privileged");
                assert_eq!(sc.privileged, Some(privileged), "{name} {extra:?}");
                let kmsg = pod
                    .volumes
                    .iter()
                    .flatten()
                    .any(|v| v.host_path.as_ref().is_some_and(|h| h.path == "/dev/kmsg"));
                assert_eq!(kmsg, privileged, "/dev/kmsg only when privileged");
                if !privileged {
                    assert_eq!(sc.allow_privilege_escalation, Some(false));
                    assert_eq!(sc.read_only_root_filesystem, Some(true));
                    assert_eq!(
                        sc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
                        Some("RuntimeDefault")
                    );
                }
                let sm = objects.iter().any(|o| kind_of(o) == "ServiceMonitor");
                assert_eq!(sm, extra.contains(&"always"), "{name} {extra:?}");
            }
        }
    }

    #[test]
    fn containerd_flag_resolves_to_the_preset_socket() {
        for (name, kind) in PRESETS {
            let facts = plan::preset(kind);
            let objects = parse_stream(&run_ok(&["render", "--distro", name]));
            let ds = check_typed(&objects);
            assert_eq!(
                Some(resolve_containerd(&ds)),
                facts.runtime.socket,
                "{name}: --containerd does not reach the host socket"
            );
        }
    }

    #[test]
    fn microk8s_custom_address_socket_is_mounted_and_resolves() {
        // A MicroK8s whose args/containerd has `--address ${SNAP_COMMON}/run/custom/cd.sock`.
        let socket = "/var/snap/microk8s/common/run/custom/cd.sock";
        let objects = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "microk8s",
            "--containerd-socket",
            socket,
        ]));
        let ds = check_typed(&objects);
        assert_eq!(resolve_containerd(&ds), PathBuf::from(socket));
        let pod = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod");
        let dirs: Vec<&str> = pod
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.host_path.as_ref().map(|h| h.path.as_str()))
            .collect();
        assert!(
            dirs.contains(&"/var/snap/microk8s/common/run/custom"),
            "{dirs:?}"
        );
    }

    #[test]
    fn flags_are_the_resource_saving_set_and_the_whitelist_has_no_spaces() {
        for (name, _) in PRESETS {
            let objects = parse_stream(&run_ok(&[
                "render",
                "--distro",
                name,
                "--extra-label",
                "io.kubernetes.pod.uid,team",
            ]));
            let args = container_args(&check_typed(&objects));
            let wl = flag(&args, "--whitelisted_container_labels").expect("whitelist");
            assert!(!wl.contains(char::is_whitespace), "{name}: {wl:?}");
            assert_eq!(
                wl,
                "io.kubernetes.container.name,io.kubernetes.pod.name,io.kubernetes.pod.namespace,io.kubernetes.pod.uid,team"
            );
            assert_eq!(flag(&args, "--store_container_labels"), Some("false"));
            assert_eq!(flag(&args, "--housekeeping_interval"), Some("10s"));
            assert_eq!(flag(&args, "--max_housekeeping_interval"), Some("15s"));
            assert_eq!(
                flag(&args, "--event_storage_event_limit"),
                Some("default=0")
            );
            let metrics = flag(&args, "--enable_metrics").expect("enable_metrics");
            for expensive in ["percpu", "disk", "tcp", "udp", "advtcp", "sched"] {
                assert!(
                    !metrics.split(',').any(|m| m == expensive),
                    "{name}: {expensive} in {metrics}"
                );
            }
            assert_eq!(flag(&args, "--containerd-namespace"), Some("k8s.io"));
            let prefix = flag(&args, "--raw_cgroup_prefix_whitelist").expect("prefix");
            let expected = match name {
                "microk8s" | "k0s" | "k8s-snap" => "/kubepods",
                _ => "/kubepods.slice",
            };
            assert_eq!(prefix, expected, "{name}");
        }
    }

    #[test]
    fn namespace_is_privileged_for_pod_security_and_everything_is_labelled() {
        let objects = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "microk8s",
            "--service-monitor",
            "always",
            "-n",
            "monitoring",
        ]));
        for object in &objects {
            let labels = &object["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], "cadvisor");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "cadvisor-setup");
            if kind_of(object) != "Namespace" {
                assert_eq!(object["metadata"]["namespace"], "monitoring");
            }
        }
        let ns = objects
            .iter()
            .find(|o| kind_of(o) == "Namespace")
            .expect("ns");
        assert_eq!(ns["metadata"]["name"], "monitoring");
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let ds = objects
            .iter()
            .find(|o| kind_of(o) == "DaemonSet")
            .expect("ds");
        let pod_labels = &ds["spec"]["template"]["metadata"]["labels"];
        assert_eq!(pod_labels["app.kubernetes.io/managed-by"], "cadvisor-setup");
        let sm = objects
            .iter()
            .find(|o| kind_of(o) == "ServiceMonitor")
            .expect("sm");
        let relabel = &sm["spec"]["endpoints"][0]["metricRelabelings"];
        let pairs: Vec<(String, String)> = relabel
            .as_array()
            .expect("metricRelabelings")
            .iter()
            .map(|r| {
                (
                    r["sourceLabels"][0].as_str().unwrap_or("").to_string(),
                    r["targetLabel"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        for (source, target) in [
            ("container_label_io_kubernetes_pod_name", "pod"),
            ("container_label_io_kubernetes_pod_namespace", "namespace"),
            ("container_label_io_kubernetes_container_name", "container"),
        ] {
            assert!(
                pairs.contains(&(source.to_string(), target.to_string())),
                "{pairs:?}"
            );
        }
    }
}

mod cli {
    use super::*;

    #[test]
    fn json_output_is_one_document_with_the_objects() {
        let out = run_ok(&["-o", "json", "render", "--distro", "k3s"]);
        let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["changed"], false);
        let objects = doc["manifests"].as_array().expect("manifests");
        let lib = render_lib(&plan::preset(DistroKind::K3s), &PlanOptions::default());
        assert_eq!(objects, &lib.objects());
    }

    #[test]
    fn out_dir_writes_one_file_per_object_and_a_kustomization() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("cadvisor");
        let stdout = run_ok(&[
            "render",
            "--distro",
            "microk8s",
            "--service-monitor",
            "always",
            "--out-dir",
            out.to_str().expect("utf-8"),
        ]);
        assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
        let mut files: Vec<String> = std::fs::read_dir(&out)
            .expect("out dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "daemonset.yaml",
                "kustomization.yaml",
                "namespace.yaml",
                "service.yaml",
                "serviceaccount.yaml",
                "servicemonitor.yaml"
            ]
        );
    }

    #[test]
    fn without_distro_on_a_host_without_runtime_is_exit_3_naming_the_flag() {
        let root = support::host_root::HostRootDir::new();
        let out = bin()
            .args(["render", "--host-root"])
            .arg(root.path())
            .env("HOME", root.path().join("home"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("--containerd-socket"), "{stderr}");
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn injection_attempts_are_refused_with_exit_2() {
        let attempts: [(&[&str], &str); 9] = [
            (
                &["--namespace", "cadvisor\nkind: Secret"],
                "invalid --namespace",
            ),
            (&["--namespace", "Cadvisor"], "DNS-1123"),
            (
                &["--image", "ghcr.io/google/cadvisor:0.60.5\"\nx: y"],
                "invalid --image",
            ),
            (&["--image", "{{ plan }}"], "template delimiter"),
            (&["--extra-label", "a'b"], "invalid --extra-label"),
            (
                &["--cpu-request", "100m\n  evil: 1"],
                "invalid --cpu-request",
            ),
            (&["--memory-limit", "1Gi}}"], "invalid --memory-limit"),
            (&["--metrics", "cpu,{%raw%}"], "invalid --metrics"),
            (
                &["--containerd-socket", "/run/x.sock\n- /etc"],
                "invalid --containerd-socket",
            ),
        ];
        for (extra, message) in attempts {
            let mut args = vec!["render", "--distro", "microk8s"];
            args.extend_from_slice(extra);
            let out = bin().args(&args).output().expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
            assert!(stderr.contains(message), "{extra:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{extra:?}: nothing rendered");
        }
    }

    #[test]
    fn injection_in_json_mode_is_one_error_document() {
        let out = bin()
            .args(["-o", "json", "render", "--distro", "k0s", "-n", "a\"b"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 2);
    }

    #[test]
    fn template_overrides_by_file_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let builtin = render::OBJECT_TEMPLATES
            .iter()
            .find(|(n, _)| *n == "service.yaml.j2")
            .expect("service template")
            .1;
        // An override that switches the Service to ClusterIP.
        std::fs::write(
            dir.path().join("service.yaml.j2"),
            builtin.replace("{% if plan.service.headless %}", "{% if false %}"),
        )
        .expect("write");
        let templates = dir.path().to_str().expect("utf-8");
        let objects = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "kubeadm",
            "--templates",
            templates,
        ]));
        let svc = objects
            .iter()
            .find(|o| kind_of(o) == "Service")
            .expect("svc");
        assert!(svc["spec"].get("clusterIP").is_none(), "{svc}");
        check_typed(&objects);

        // An empty override switches an object off.
        std::fs::write(dir.path().join("service.yaml.j2"), "{# no Service #}\n").expect("write");
        let objects = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "kubeadm",
            "--templates",
            templates,
        ]));
        assert!(!objects.iter().any(|o| kind_of(o) == "Service"));

        // An override that prints a value unquoted is refused.
        std::fs::write(
            dir.path().join("service.yaml.j2"),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ plan.name }}\n",
        )
        .expect("write");
        let out = bin()
            .args(["render", "--distro", "kubeadm", "--templates", templates])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("without `| q`"), "{stderr}");

        // A misspelt template name is refused, naming the known ones.
        std::fs::remove_file(dir.path().join("service.yaml.j2")).expect("rm");
        std::fs::write(dir.path().join("deamonset.yaml.j2"), "").expect("write");
        let out = bin()
            .args(["render", "--distro", "kubeadm", "--templates", templates])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("daemonset.yaml.j2"), "{stderr}");
    }
}

mod properties {
    use super::*;
    use cadvisor_setup::commands::Error;
    use cadvisor_setup::error::ExitCode;
    use cadvisor_setup::validate::KNOWN_METRICS;
    use cadvisor_setup::values;
    use proptest::prelude::*;

    /// A generated value the generator made valid.
    fn valid<T: std::str::FromStr>(text: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        text.parse().expect("the generator makes valid values")
    }

    fn distro() -> impl Strategy<Value = DistroKind> {
        prop::sample::select(PRESETS.iter().map(|(_, k)| *k).collect::<Vec<_>>())
    }

    fn image() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "",
                "ghcr.io/",
                "localhost:5000/",
                "registry.example.com/",
            ]),
            "[a-z0-9]{1,8}([._-][a-z0-9]{1,8})?(/[a-z0-9]{1,8}){0,2}",
            prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        )
            .prop_map(|(host, path, tag)| match tag {
                Some(tag) => format!("{host}{path}:{tag}"),
                None => format!("{host}{path}"),
            })
    }

    fn options() -> impl Strategy<Value = PlanOptions> {
        (
            "[a-z]([a-z0-9-]{0,40}[a-z0-9])?",
            image(),
            prop::option::of(prop::sample::subsequence(KNOWN_METRICS.to_vec(), 1..6)),
            prop::collection::vec("[a-z][a-z0-9./_-]{0,20}[a-z0-9]", 0..3),
            prop::option::of("[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}"),
            (1u32..2000, 0u32..2000, 1u32..4096, 0u32..4096),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    namespace,
                    image,
                    metrics,
                    extra_labels,
                    cns,
                    (cpu, cpu_up, mem, mem_up),
                    privileged,
                    sm,
                )| {
                    PlanOptions {
                        namespace: valid(&namespace),
                        image: valid(&image),
                        metrics: metrics.map(|m| m.into_iter().map(valid).collect()),
                        extra_labels: extra_labels.iter().map(|l| valid(l)).collect(),
                        containerd_namespace: cns.map(|c| valid(&c)),
                        cpu_request: Some(valid(&format!("{cpu}m"))),
                        cpu_limit: Some(valid(&format!("{}m", cpu + cpu_up))),
                        memory_request: Some(valid(&format!("{mem}Mi"))),
                        memory_limit: Some(valid(&format!("{}Mi", mem + mem_up))),
                        privileged,
                        service_monitor: sm,
                        // The dashboard rides along with the ServiceMonitor here.
                        grafana_dashboard: sm,
                        ..PlanOptions::default()
                    }
                },
            )
    }

    /// Something that must never reach a template.
    fn poison() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "\n",
                "\r\n",
                "\"",
                "'",
                "`",
                "\\",
                "{{",
                "}}",
                "{%",
                "%}",
                "{#",
                " ",
                "\t",
                "\u{0}",
                ": x\n  y",
                "\n---\nkind: Secret",
            ])
            .prop_map(str::to_string),
            "[\n\"'{}]{1,4}".prop_filter("dangerous", |s| {
                s.contains(['\n', '"', '\'']) || s.contains("{{") || s.contains("}}")
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn any_valid_option_set_renders_parseable_typed_yaml(kind in distro(), opts in options()) {
            let facts = plan::preset(kind);
            let manifests = render_lib(&facts, &opts);
            let objects = parse_stream(&manifests.to_yaml());
            prop_assert_eq!(&objects, &manifests.objects());
            let ds = check_typed(&objects);
            prop_assert_eq!(Some(resolve_containerd(&ds)), facts.runtime.socket);
            prop_assert_eq!(
                objects.iter().any(|o| kind_of(o) == "ServiceMonitor"),
                opts.service_monitor
            );
        }

        #[test]
        fn any_poisoned_value_is_refused_with_exit_2(
            kind in distro(),
            opts in options(),
            field in 0usize..9,
            bad in poison(),
            at in any::<prop::sample::Index>(),
        ) {
            // Every value is refused where it is parsed into its type (`values`); the host's
            // socket, a fact, where the plan is made.
            let mut facts = plan::preset(kind);
            let poison = |value: &str| {
                let mut value = value.to_string();
                let i = at.index(value.len() + 1);
                let i = (0..=i).rev().find(|i| value.is_char_boundary(*i)).unwrap_or(0);
                value.insert_str(i, &bad);
                value
            };
            let err = match field {
                0 => values::Namespace::parse("--namespace", &poison(&opts.namespace)).err(),
                1 => values::Image::parse("--image", &poison(&opts.image)).err(),
                2 => values::ContainerLabel::parse("--extra-label", &poison("io.kubernetes.pod.uid")).err(),
                3 => values::CpuQuantity::parse("--cpu-request", &poison("100m")).err(),
                4 => values::MemoryQuantity::parse("--memory-limit", &poison("500Mi")).err(),
                5 => values::ContainerdNamespace::parse("--containerd-namespace", &poison("k8s.io")).err(),
                6 => values::MetricGroup::parse("--metrics", &poison("cpu")).err(),
                7 => {
                    let socket = facts.runtime.socket.take().map(|p| p.display().to_string()).unwrap_or_default();
                    facts.runtime.socket = Some(poison(&socket).into());
                    plan::make(&facts, &opts).err()
                }
                _ => values::CpuQuantity::parse("--cpu-limit", &poison("500m")).err(),
            };
            let err = err.expect("poisoned value accepted");
            let shown = err.to_string();
            prop_assert_eq!(Error::from(err).exit_code(), ExitCode::Usage, "{}", shown);
        }

        #[test]
        fn bad_dns_names_are_refused(name in "([A-Z_.][a-z]{0,5}|-[a-z]{1,5}|[a-z]{1,5}-|[a-z]{64,70})") {
            let err = values::Namespace::parse("--namespace", &name).expect_err("accepted");
            prop_assert_eq!(Error::from(err).exit_code(), ExitCode::Usage);
        }
    }
}

/// `render` without `--distro` on temporary host roots with a real containerd at the
/// distribution's socket: what the DaemonSet dials is exactly what detection found.
mod host_root {
    use super::*;
    use support::containerd::Containerd;
    use support::host_root::{HostRootDir, MICROK8S_SOCKET};
    use support::real;

    fn on_host(root: &Path, command: &[&str]) -> std::process::Output {
        bin()
            .arg("--host-root")
            .arg(root)
            .args(command)
            .env("HOME", root.join("home"))
            .env_remove("KUBECONFIG")
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("run cadvisor-setup")
    }

    /// Renders for the host root and checks `--containerd` against `detect`'s socket.
    fn render_matches_detection(root: &Path, socket: &str) {
        let out = on_host(root, &["-o", "json", "detect", "--no-cluster"]);
        let detected: serde_json::Value = serde_json::from_slice(&out.stdout).expect("detect JSON");
        assert_eq!(detected["runtime"]["socket"], socket, "{detected:#}");

        let out = on_host(root, &["render"]);
        assert!(
            out.status.success(),
            "render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objects = parse_stream(&String::from_utf8_lossy(&out.stdout));
        let ds = check_typed(&objects);
        assert_eq!(resolve_containerd(&ds), PathBuf::from(socket));
        let args = container_args(&ds);
        assert_eq!(flag(&args, "--containerd-namespace"), Some("k8s.io"));
        let annotations = ds.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations
                .get("cadvisor-setup/distribution")
                .map(String::as_str),
            Some("microk8s")
        );
    }

    #[test]
    fn microk8s_host_root_renders_the_detected_socket() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("web", "web-0", "default", "web");
        render_matches_detection(root.path(), MICROK8S_SOCKET);
    }

    #[test]
    fn microk8s_custom_address_host_root_renders_the_detected_socket() {
        if !real::require_containerd() {
            return;
        }
        let custom = "/var/snap/microk8s/common/run/alt/ctd.sock";
        let root = HostRootDir::new();
        root.microk8s("v1.34.1", "classic", "8000");
        root.write(
            "/var/snap/microk8s/current/args/kubelet",
            "--root-dir=${SNAP_COMMON}/var/lib/kubelet\n",
        );
        root.write(
            "/var/snap/microk8s/current/args/containerd",
            "--config ${SNAP_DATA}/args/containerd.toml\n--address ${SNAP_COMMON}/run/alt/ctd.sock\n",
        );
        let ctd = Containerd::start(root.path(), custom);
        ctd.run_pod_container("web", "web-0", "default", "web");
        render_matches_detection(root.path(), custom);
    }
}

mod ecosystem {
    use super::*;
    use support::real;

    /// `kubernetes-validate` on PATH, or in the venv scripts/test.sh installs it into.
    pub(super) fn kubernetes_validate() -> Option<PathBuf> {
        if let Ok(path) = which::which("kubernetes-validate") {
            return Some(path);
        }
        let venv = std::env::var_os("CADVISOR_SETUP_VENV")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".cache/cadvisor-setup/venv"))
            })?;
        let path = venv.join("bin/kubernetes-validate");
        path.is_file().then_some(path)
    }

    fn render_to(dir: &Path, extra: &[&str]) {
        let mut args = vec!["render", "--out-dir", dir.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        run_ok(&args);
    }

    #[test]
    fn kubernetes_validate_strict_passes_for_1_28_and_1_37() {
        let validator = kubernetes_validate();
        if !real::require(
            "kubernetes-validate (pip install kubernetes-validate; scripts/test.sh installs it)",
            validator.is_some(),
        ) {
            return;
        }
        let validator = validator.expect("checked");
        // Every preset, plain and privileged, in one tree; then one validator run per
        // Kubernetes version over all the files (a Python start costs ~0.5 s, so 2 runs, not 24).
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (name, _) in PRESETS {
            for extra in [&[][..], &["--privileged", "--grafana-dashboard"][..]] {
                let sub = format!("{name}{}", extra.concat());
                let mut args = vec!["--distro", name];
                args.extend_from_slice(extra);
                render_to(&dir.path().join(&sub), &args);
                for file in [
                    "namespace.yaml",
                    "serviceaccount.yaml",
                    "daemonset.yaml",
                    "service.yaml",
                ] {
                    files.push(format!("{sub}/{file}"));
                }
                if !extra.is_empty() {
                    // The Grafana dashboard's ConfigMap.
                    files.push(format!("{sub}/configmap.yaml"));
                }
            }
        }
        validate_strict(&validator, dir.path(), &files);
    }

    #[test]
    fn kubectl_kustomize_accepts_out_dir_and_yields_the_same_objects() {
        if !real::require(
            "kubectl (for kubectl kustomize)",
            real::have_tool("kubectl"),
        ) {
            return;
        }
        for (name, kind) in PRESETS {
            let dir = tempfile::tempdir().expect("tempdir");
            render_to(
                dir.path(),
                &["--distro", name, "--service-monitor", "always"],
            );
            let out = std::process::Command::new("kubectl")
                .arg("kustomize")
                .arg(dir.path())
                .output()
                .expect("run kubectl kustomize");
            assert!(
                out.status.success(),
                "{name}: kubectl kustomize failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let built = parse_stream(&String::from_utf8_lossy(&out.stdout));
            let opts = PlanOptions {
                service_monitor: true,
                ..PlanOptions::default()
            };
            let expected = render_lib(&plan::preset(kind), &opts).objects();
            let key = |o: &serde_json::Value| format!("{}/{}", kind_of(o), o["metadata"]["name"]);
            let mut built_sorted = built.clone();
            built_sorted.sort_by_key(key);
            let mut expected_sorted = expected.clone();
            expected_sorted.sort_by_key(key);
            assert_eq!(built_sorted, expected_sorted, "{name}");
        }
    }
}

/// Snapshots of `render`'s report around the manifests: the JSON envelope for a preset (the
/// manifests themselves are the `presets` snapshots, so here they are listed by kind and name),
/// and `--out-dir` in JSON and for people. Volatile values go through
/// `support::snapshot::normalise`.
/// Several node groups (`plan::groups`): one DaemonSet each, pinned by hostname, valid for the
/// API server.
mod groups {
    use super::*;
    use cadvisor_setup::host::{CgroupDriver, RuntimeKind};
    use cadvisor_setup::plan::groups::{self, LAYOUT_LABEL, Member};

    fn member(node: &str, socket: &str, driver: CgroupDriver, kind: DistroKind) -> Member {
        Member {
            node: node.into(),
            hostname: node.into(),
            runtime: RuntimeKind::Containerd,
            socket: Some(socket.into()),
            cgroup_driver: Some(driver),
            distribution: kind,
        }
    }

    /// Two MicroK8s nodes and a kubeadm node, rendered from their node facts.
    fn mixed() -> Manifests {
        mixed_with(false)
    }

    /// [`mixed`], the DaemonSets selecting nodes by our node label with `label_nodes`.
    fn mixed_with(label_nodes: bool) -> Manifests {
        let members = [
            member(
                "mk-1",
                "/var/snap/microk8s/common/run/containerd.sock",
                CgroupDriver::Cgroupfs,
                DistroKind::Microk8s,
            ),
            member(
                "mk-2",
                "/var/snap/microk8s/common/run/containerd.sock",
                CgroupDriver::Cgroupfs,
                DistroKind::Microk8s,
            ),
            member(
                "kadm-1",
                "/run/containerd/containerd.sock",
                CgroupDriver::Systemd,
                DistroKind::Kubeadm,
            ),
        ];
        let (found, left_out) = groups::group(&members, None, None);
        assert!(left_out.is_empty());
        let plans =
            groups::plans(&found, None, &PlanOptions::default(), label_nodes).expect("plans");
        render::manifests_for_groups(&plans, None).expect("render")
    }

    /// The required node affinity's one expression: key, operator, values.
    fn affinity_expression(ds: &DaemonSet) -> (String, String, Vec<String>) {
        let affinity = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .expect("required node affinity");
        assert_eq!(affinity.node_selector_terms.len(), 1);
        let exprs = affinity.node_selector_terms[0]
            .match_expressions
            .clone()
            .expect("expressions");
        assert_eq!(exprs.len(), 1);
        let e = &exprs[0];
        (
            e.key.clone(),
            e.operator.clone(),
            e.values.clone().unwrap_or_default(),
        )
    }

    #[test]
    fn with_label_nodes_each_group_selects_its_node_label_instead_of_hostnames() {
        let labelled = mixed_with(true);
        let plain = mixed();
        let dss = |m: &Manifests| -> Vec<DaemonSet> {
            m.objects()
                .iter()
                .filter(|o| kind_of(o) == "DaemonSet")
                .map(typed::<DaemonSet>)
                .collect()
        };
        let (labelled, plain) = (dss(&labelled), dss(&plain));
        assert_eq!(labelled.len(), 2);
        let mut values = Vec::new();
        for (l, p) in labelled.iter().zip(&plain) {
            let (key, op, vals) = affinity_expression(l);
            assert_eq!((key.as_str(), op.as_str()), ("cadvisor-setup/group", "In"));
            assert_eq!(vals.len(), 1, "{vals:?}");
            assert!(
                vals[0].len() == 8 && vals[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "{vals:?}"
            );
            values.push(vals[0].clone());
            // Nothing else differs: the same pods, mounts and selector.
            let mut l = serde_json::to_value(l).expect("json");
            let mut p = serde_json::to_value(p).expect("json");
            for v in [&mut l, &mut p] {
                v["spec"]["template"]["spec"]["affinity"] = serde_json::Value::Null;
            }
            assert_eq!(l, p);
        }
        assert_ne!(values[0], values[1]);
        // The group DaemonSet's value is its layout hash (its name's suffix).
        let group = labelled[1].metadata.name.clone().expect("name");
        assert_eq!(group, format!("cadvisor-{}", values[1]));
    }

    fn pinned(ds: &DaemonSet) -> Vec<String> {
        let (key, operator, values) = affinity_expression(ds);
        assert_eq!(
            (key.as_str(), operator.as_str()),
            ("kubernetes.io/hostname", "In")
        );
        values
    }

    #[test]
    fn two_groups_are_two_typed_daemonsets_pinned_to_their_nodes() {
        let manifests = mixed();
        let objects = manifests.objects();
        let kinds: Vec<&str> = objects.iter().map(kind_of).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "DaemonSet",
                "DaemonSet",
                "Service"
            ]
        );
        let dss: Vec<DaemonSet> = objects
            .iter()
            .filter(|o| kind_of(o) == "DaemonSet")
            .map(typed::<DaemonSet>)
            .collect();
        assert_eq!(dss[0].metadata.name.as_deref(), Some("cadvisor"));
        assert_eq!(pinned(&dss[0]), ["mk-1", "mk-2"]);
        let group = dss[1].metadata.name.clone().expect("name");
        assert!(group.starts_with("cadvisor-"), "{group}");
        assert_eq!(pinned(&dss[1]), ["kadm-1"]);
        assert_eq!(
            resolve_containerd(&dss[1]),
            PathBuf::from("/run/containerd/containerd.sock")
        );
        // The group's pods carry its layout label, and its selector tells them apart from
        // `cadvisor`'s; both keep the Service's label.
        let selector = |ds: &DaemonSet| {
            ds.spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.clone())
                .unwrap_or_default()
        };
        assert!(selector(&dss[1]).contains_key(LAYOUT_LABEL));
        assert!(!selector(&dss[0]).contains_key(LAYOUT_LABEL));
        let svc = typed::<Service>(&objects[4]);
        let svc_selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
        for ds in &dss {
            let labels = ds
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            for (k, v) in &svc_selector {
                assert_eq!(
                    labels.get(k),
                    Some(v),
                    "the Service selects every group's pods"
                );
            }
        }
        // `--out-dir` writes the group's DaemonSet to a file of its own.
        let names = manifests.file_names();
        assert!(names.contains(&"daemonset.yaml".to_string()));
        assert!(
            names.contains(&format!("daemonset-{group}.yaml")),
            "{names:?}"
        );
    }

    #[test]
    fn two_groups_pass_kubernetes_validate_strict() {
        let validator = ecosystem::kubernetes_validate();
        if !support::real::require(
            "kubernetes-validate (pip install kubernetes-validate; scripts/test.sh installs it)",
            validator.is_some(),
        ) {
            return;
        }
        let validator = validator.expect("checked");
        for label_nodes in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let written =
                render::write_out_dir(&mixed_with(label_nodes), dir.path(), None).expect("write");
            let files: Vec<String> = written
                .iter()
                .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().to_string()))
                .filter(|f| f != "kustomization.yaml")
                .collect();
            assert_eq!(files.len(), 5, "{files:?}");
            validate_strict(&validator, dir.path(), &files);
        }
    }
}

mod report_snapshots {
    use super::*;
    use support::snapshot;

    /// `manifests` reduced to `Kind namespace/name`.
    fn listed(json: &str) -> String {
        let mut doc: serde_json::Value = serde_json::from_str(json).expect("JSON");
        let names: Vec<String> = doc["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| {
                let meta = &m["metadata"];
                match meta["namespace"].as_str() {
                    Some(ns) => format!(
                        "{} {ns}/{}",
                        m["kind"].as_str().unwrap_or("?"),
                        meta["name"].as_str().unwrap_or("?")
                    ),
                    None => format!(
                        "{} {}",
                        m["kind"].as_str().unwrap_or("?"),
                        meta["name"].as_str().unwrap_or("?")
                    ),
                }
            })
            .collect();
        doc["manifests"] = serde_json::json!(names);
        serde_json::to_string_pretty(&doc).expect("JSON")
    }

    #[test]
    fn preset_json_envelope() {
        let out = bin()
            .args(["render", "--distro", "microk8s", "-o", "json"])
            .output()
            .expect("render");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let full: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let lib = render_lib(&plan::preset(DistroKind::Microk8s), &PlanOptions::default());
        assert_eq!(full["manifests"].as_array(), Some(&lib.objects()));
        insta::assert_snapshot!("render_preset_json", listed(&snapshot::json(&out, &[])));
    }

    #[test]
    fn out_dir_json_and_human() {
        let dir = tempfile::tempdir().expect("tempdir");
        let known = [(dir.path().to_str().expect("utf-8"), "[OUT_PARENT]")];
        let out_dir = dir.path().join("json");
        let out = bin()
            .args(["render", "--distro", "k3s", "-o", "json", "--out-dir"])
            .arg(&out_dir)
            .output()
            .expect("render");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        insta::assert_snapshot!("render_out_dir_json", listed(&snapshot::json(&out, &known)));
        let out_dir = dir.path().join("human");
        let out = bin()
            .args(["render", "--distro", "k3s", "--out-dir"])
            .arg(&out_dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("render");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        insta::assert_snapshot!("render_out_dir_human", snapshot::human(&out, &known));
    }

    #[test]
    fn scrape_config_human_and_json() {
        let out = bin()
            .args(["render", "--scrape-config"])
            .env("NO_COLOR", "1")
            .output()
            .expect("render");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        insta::assert_snapshot!("render_scrape_config_human", snapshot::human(&out, &[]));
        let out = bin()
            .args(["render", "--scrape-config", "-o", "json"])
            .output()
            .expect("render");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        insta::assert_snapshot!("render_scrape_config_json", snapshot::json(&out, &[]));
    }
}

/// `render --scrape-config`: the plain-Prometheus job. Its Kubernetes service discovery is
/// checked against upstream's rules (Debian's promtool lacks it); the same job with the
/// discovery swapped for a static target list, every relabel rule kept, goes through the real
/// `promtool check config`.
mod prometheus {
    use super::*;
    use serde_json::{Value, json};
    use support::prometheus::{
        check_kubernetes_sd, check_meta_labels, field_selector, label_selector, output_text,
        pod_target_labels, promtool_on, require_promtool, the_job, with_static_targets,
    };

    fn scrape_config(extra: &[&str]) -> Value {
        let mut args = vec!["render", "--scrape-config", "-o", "json"];
        args.extend_from_slice(extra);
        let report: Value = serde_json::from_str(&run_ok(&args)).expect("one JSON document");
        report["scrape_config"].clone()
    }

    /// (source label, target label) of each `replace` rule.
    fn pairs(rules: &Value, source: &str, target: &str) -> Vec<(String, String)> {
        rules
            .as_array()
            .expect("a list of rules")
            .iter()
            .map(|r| {
                assert_eq!(r["action"], "replace", "{r}");
                (
                    r[source][0].as_str().expect("one source label").to_string(),
                    r[target].as_str().expect("a target label").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_job_discovers_our_pods_in_our_namespace_only_by_upstreams_rules() {
        let doc = scrape_config(&["--namespace", "monitoring"]);
        let job = the_job(&doc);
        assert_eq!(job["job_name"], "cadvisor");
        let sds = job["kubernetes_sd_configs"]
            .as_array()
            .expect("kubernetes_sd_configs");
        assert_eq!(sds.len(), 1, "{job:#}");
        let sd = &sds[0];
        check_kubernetes_sd(sd).unwrap_or_else(|e| panic!("{e}:\n{sd:#}"));
        check_meta_labels(job).unwrap_or_else(|e| panic!("{e}:\n{job:#}"));
        assert_eq!(sd["role"], "pod");
        assert_eq!(sd["namespaces"], json!({"names": ["monitoring"]}));
        // The DaemonSet's own selector, so no other pod of the namespace is scraped.
        let manifests = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "microk8s",
            "-n",
            "monitoring",
        ]));
        let ds = manifests
            .iter()
            .find(|d| d["kind"] == "DaemonSet")
            .expect("DaemonSet");
        let selector: Vec<String> = ds["spec"]["selector"]["matchLabels"]
            .as_object()
            .expect("matchLabels")
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().expect("string")))
            .collect();
        assert_eq!(sd["selectors"][0]["label"], selector.join(","));
        assert_eq!(sd["selectors"][0]["role"], "pod");
        // The target is the container port the DaemonSet names `http`.
        let port = &ds["spec"]["template"]["spec"]["containers"][0]["ports"][0];
        let keep = &job["relabel_configs"][0];
        assert_eq!(keep["action"], "keep");
        assert_eq!(
            keep["source_labels"][0],
            "__meta_kubernetes_pod_container_port_name"
        );
        assert_eq!(keep["regex"], port["name"]);
        // A deliberate choice, explained in the output.
        assert_eq!(job["honor_timestamps"], false);
        let yaml = run_ok(&["render", "--scrape-config"]);
        assert!(yaml.contains("honor_timestamps: false"), "{yaml}");
        assert!(yaml.contains("stale"), "the choice is explained:\n{yaml}");
    }

    #[test]
    fn the_upstream_rules_refuse_what_prometheus_refuses() {
        let good = json!({"role": "pod", "namespaces": {"names": ["cadvisor"]},
            "selectors": [{"role": "pod", "label": "app.kubernetes.io/name=cadvisor", "field": "status.phase=Running"}]});
        check_kubernetes_sd(&good).expect("the good one");
        let endpoints = json!({"role": "endpoints", "selectors": [{"role": "service", "label": "a=b"}, {"role": "pod", "label": "c in (d,e),!f"}]});
        check_kubernetes_sd(&endpoints).expect("endpoints may select services and pods");
        for (bad, why) in [
            (json!({"namespaces": {"names": ["x"]}}), "role missing"),
            (json!({"role": "pods"}), "unknown Kubernetes SD role"),
            (
                json!({"role": "pod", "selectors": [{"role": "service", "label": "a=b"}]}),
                "pod role supports only pod selectors",
            ),
            (
                json!({"role": "endpoints", "selectors": [{"role": "pod"}, {"role": "pod"}]}),
                "duplicated selector role",
            ),
            (
                json!({"role": "pod", "selectors": [{"role": "pod", "label": "a=b=c d"}]}),
                "label selector",
            ),
            (
                json!({"role": "pod", "selectors": [{"role": "pod", "field": "status.phase"}]}),
                "can't understand",
            ),
            (
                json!({"role": "pod", "namespaces": {"name": ["x"]}}),
                "field name not found",
            ),
            (
                json!({"role": "pod", "namespaces": {"names": ["Not_A_Namespace"]}}),
                "not a namespace name",
            ),
            (json!({"role": "pod", "tls_config": {}}), "api_server"),
            (
                json!({"role": "pod", "relabel_configs": []}),
                "field relabel_configs not found",
            ),
        ] {
            let err = check_kubernetes_sd(&bad).expect_err(&bad.to_string());
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(label_selector("app.kubernetes.io/name=cadvisor,tier!=x").is_ok());
        assert!(label_selector("-bad=x").is_err());
        assert!(field_selector("status.phase!=Failed,spec.nodeName=n").is_ok());
        let job = json!({"kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [{"source_labels": ["__meta_kubernetes_service_name"]}]});
        assert!(
            check_meta_labels(&job).is_err(),
            "role pod attaches no service labels"
        );
    }

    #[test]
    fn the_metric_relabelling_is_the_service_monitors() {
        let doc = scrape_config(&[]);
        let job = the_job(&doc);
        let manifests = parse_stream(&run_ok(&[
            "render",
            "--distro",
            "microk8s",
            "--service-monitor",
            "always",
        ]));
        let sm = manifests
            .iter()
            .find(|d| d["kind"] == "ServiceMonitor")
            .expect("ServiceMonitor");
        let endpoint = &sm["spec"]["endpoints"][0];
        let ours = pairs(
            &job["metric_relabel_configs"],
            "source_labels",
            "target_label",
        );
        assert_eq!(
            ours,
            pairs(
                &endpoint["metricRelabelings"],
                "sourceLabels",
                "targetLabel"
            )
        );
        for target in ["pod", "namespace", "container"] {
            assert!(
                ours.iter()
                    .any(|(s, t)| t == target && s.starts_with("container_label_io_kubernetes_")),
                "{ours:?}"
            );
        }
        // The target relabelling too (node), and never pod/namespace/container on the target:
        // the container labels exist only after the scrape.
        let targets = pairs(
            &job["relabel_configs"].as_array().expect("rules")[1..]
                .to_vec()
                .into(),
            "source_labels",
            "target_label",
        );
        assert_eq!(
            targets,
            pairs(&endpoint["relabelings"], "sourceLabels", "targetLabel")
        );
        assert!(
            targets
                .iter()
                .all(|(s, _)| !s.starts_with("container_label_"))
        );
        assert_eq!(endpoint["interval"], job["scrape_interval"]);
    }

    /// The job with static targets where the discovery was: what Prometheus 2.42 can load.
    fn swapped(doc: &Value) -> Value {
        with_static_targets(
            doc,
            json!([{"targets": ["10.1.0.7:8080"], "labels": pod_target_labels("cadvisor", "cadvisor-x2x9q", "node-1", "http")}]),
            &[],
        )
    }

    #[test]
    fn promtool_check_config_passes_with_the_discovery_swapped_for_static_targets() {
        if !require_promtool() {
            return;
        }
        for ns in ["cadvisor", "monitoring"] {
            let doc = swapped(&scrape_config(&["--namespace", ns]));
            let job = the_job(&doc);
            assert!(
                job["relabel_configs"]
                    .as_array()
                    .is_some_and(|r| r.len() >= 2)
            );
            assert_eq!(
                job["metric_relabel_configs"].as_array().map(Vec::len),
                Some(3)
            );
            let out = promtool_on(&["check", "config"], "prometheus.yml", &doc.to_string());
            assert!(out.status.success(), "{}\n{doc:#}", output_text(&out));
        }
        // The YAML as printed (comments and all) is valid YAML of the same document.
        let yaml = run_ok(&["render", "--scrape-config"]);
        let printed: Value = serde_saphyr::from_str(&yaml).expect("YAML");
        assert_eq!(printed, scrape_config(&[]));
    }

    #[test]
    fn promtool_really_checks_the_relabel_rules() {
        if !require_promtool() {
            return;
        }
        let mut doc = swapped(&scrape_config(&[]));
        doc["scrape_configs"][0]["metric_relabel_configs"][0]["regex"] = json!("(unclosed");
        let out = promtool_on(&["check", "config"], "prometheus.yml", &doc.to_string());
        assert!(!out.status.success(), "{}", output_text(&out));
        let mut doc = swapped(&scrape_config(&[]));
        doc["scrape_configs"][0]["relabel_configs"][1]["action"] = json!("copy");
        let out = promtool_on(&["check", "config"], "prometheus.yml", &doc.to_string());
        assert!(!out.status.success(), "{}", output_text(&out));
    }

    #[test]
    fn scrape_config_needs_no_host_and_refuses_out_dir_and_bad_namespaces() {
        // No host facts: an empty host root renders the job all the same.
        let root = tempfile::tempdir().expect("tempdir");
        let out = bin()
            .args([
                "--host-root",
                root.path().to_str().expect("utf-8"),
                "render",
                "--scrape-config",
            ])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = bin()
            .args(["render", "--scrape-config", "--out-dir", "x"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let out = bin()
            .args(["render", "--scrape-config", "-n", "Bad_NS"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
    }
}

/// `--grafana-dashboard`: a ConfigMap for Grafana's sidecar whose every PromQL expression the
/// real `promtool check rules` accepts (each wrapped as a recording rule, with Grafana's
/// variables replaced as Grafana does before it sends a query).
mod dashboard {
    use super::*;
    use serde_json::{Value, json};
    use support::prometheus::{output_text, promtool_on, require_promtool};

    /// The dashboard JSON out of the rendered ConfigMap.
    fn dashboard(extra: &[&str]) -> (Value, Value) {
        let mut args = vec!["render", "--distro", "microk8s"];
        args.extend_from_slice(extra);
        let docs = parse_stream(&run_ok(&args));
        let cm = docs
            .into_iter()
            .find(|d| d["kind"] == "ConfigMap")
            .expect("the dashboard ConfigMap");
        let data = cm["data"].as_object().expect("data");
        assert_eq!(data.len(), 1, "{cm:#}");
        let text = data
            .values()
            .next()
            .and_then(Value::as_str)
            .expect("JSON text");
        (
            cm.clone(),
            serde_json::from_str(text).expect("the dashboard is JSON"),
        )
    }

    /// Every query of the dashboard: panel targets, and the selector inside each
    /// `label_values(SELECTOR, label)` variable query.
    fn queries(dash: &Value) -> Vec<String> {
        let mut out: Vec<String> = dash["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
            .map(|t| t["expr"].as_str().expect("expr").to_string())
            .collect();
        for var in dash["templating"]["list"].as_array().expect("variables") {
            if var["type"] == "query" {
                let q = var["query"]["query"].as_str().expect("variable query");
                let inner = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.rsplit_once(','))
                    .map(|(sel, _)| sel.to_string())
                    .expect("label_values(selector, label)");
                out.push(inner);
            }
        }
        out
    }

    /// What Grafana sends: `$__rate_interval` becomes a duration, a multi-value variable with
    /// "All" becomes its allValue.
    fn interpolated(expr: &str) -> String {
        expr.replace("$__rate_interval", "1m")
            .replace("$namespace", ".+")
            .replace("$pod", ".+")
    }

    fn rules(exprs: &[String]) -> String {
        let rules: Vec<Value> = exprs
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"record": format!("cadvisor_setup:dashboard_query_{i}"), "expr": e}))
            .collect();
        json!({"groups": [{"name": "cadvisor-setup-dashboard", "rules": rules}]}).to_string()
    }

    #[test]
    fn the_config_map_carries_the_sidecar_label_and_is_off_unless_asked() {
        let (cm, dash) = dashboard(&["--grafana-dashboard", "on"]);
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        assert_eq!(
            cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "cadvisor-setup"
        );
        assert_eq!(cm["metadata"]["namespace"], "cadvisor");
        let titles: Vec<&str> = dash["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .map(|p| p["title"].as_str().expect("title"))
            .collect();
        for topic in ["CPU", "Memory working set", "Network", "Filesystem"] {
            assert!(titles.iter().any(|t| t.contains(topic)), "{titles:?}");
        }
        // Without the flag (render cannot see a sidecar) and with `never`/`off`: no ConfigMap.
        for extra in [
            &[][..],
            &["--grafana-dashboard", "never"],
            &["--grafana-dashboard", "off"],
        ] {
            let mut args = vec!["render", "--distro", "microk8s"];
            args.extend_from_slice(extra);
            assert!(
                !parse_stream(&run_ok(&args))
                    .iter()
                    .any(|d| d["kind"] == "ConfigMap"),
                "{extra:?}"
            );
        }
        assert!(
            parse_stream(&run_ok(&[
                "render",
                "--distro",
                "microk8s",
                "--grafana-dashboard",
                "always"
            ]))
            .iter()
            .any(|d| d["kind"] == "ConfigMap")
        );
    }

    #[test]
    fn every_query_uses_our_job_and_the_relabelled_labels_only() {
        let (_, dash) = dashboard(&["--grafana-dashboard"]);
        let queries = queries(&dash);
        assert!(queries.len() >= 8, "{queries:?}");
        for q in &queries {
            assert!(q.contains(r#"job="cadvisor""#), "{q}");
            assert!(!q.contains("container_label_"), "{q}");
        }
        let all = queries.join("\n");
        for metric in [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_network_receive_bytes_total",
            "container_fs_reads_bytes_total",
        ] {
            assert!(all.contains(metric), "{metric}");
        }
        // Per pod and container (network: per pod, it is reported on the pod's sandbox).
        assert!(all.contains("by (namespace, pod, container)"), "{all}");
        assert!(all.contains("by (namespace, pod)"), "{all}");
    }

    #[test]
    fn promtool_check_rules_accepts_every_query() {
        if !require_promtool() {
            return;
        }
        let (_, dash) = dashboard(&["--grafana-dashboard"]);
        let exprs: Vec<String> = queries(&dash).iter().map(|q| interpolated(q)).collect();
        let out = promtool_on(&["check", "rules"], "dashboard.rules.yml", &rules(&exprs));
        let text = output_text(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(&format!("SUCCESS: {} rules found", exprs.len())),
            "{text}"
        );
        // And promtool does refuse a broken query (the check is real).
        let broken = vec![exprs[0].replacen(')', "", 1)];
        let out = promtool_on(&["check", "rules"], "broken.rules.yml", &rules(&broken));
        assert!(!out.status.success(), "{}", output_text(&out));
    }
}

/// `kubernetes-validate --strict` on `files` (in `dir`) for Kubernetes 1.28 and 1.37: every file
/// passes, and each is named as validated (not skipped for an unknown kind).
fn validate_strict(validator: &std::path::Path, dir: &std::path::Path, files: &[String]) {
    for version in ["1.28.0", "1.37.0"] {
        let out = std::process::Command::new(validator)
            .current_dir(dir)
            .args(["-k", version, "--strict"])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "k8s {version}: {text}");
        for file in files {
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("{file} passed for resource"))),
                "k8s {version}: {file} not validated: {text}"
            );
        }
    }
}
