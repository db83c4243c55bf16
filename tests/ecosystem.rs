//! Tier 4: the automation examples against the real tools (cloud-init's schema validator,
//! ansible-core, bash/zsh/fish for completions), and the real playbook against the simulated
//! cluster (`ansible_run`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

mod cloud_init {
    use super::*;

    fn schema(file: &Path) -> std::process::Output {
        let tool = support::real::tool_path("cloud-init").unwrap_or_else(|| "cloud-init".into());
        Command::new(tool)
            .args(["schema", "--config-file"])
            .arg(file)
            .output()
            .unwrap()
    }

    #[test]
    fn the_example_user_data_passes_cloud_init_schema() {
        let available = support::real::tool_path("cloud-init").is_some();
        if !support::real::require("cloud-init (apt-get install cloud-init)", available) {
            return;
        }
        let out = schema(&repo("scripts/cloud-init/user-data.yaml"));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cloud-init schema failed:\n{text}");
        assert!(text.contains("Valid cloud-config"), "{text}");
    }

    #[test]
    fn the_validator_really_rejects_a_broken_copy() {
        let available = support::real::tool_path("cloud-init").is_some();
        if !support::real::require("cloud-init (apt-get install cloud-init)", available) {
            return;
        }
        let good = std::fs::read_to_string(repo("scripts/cloud-init/user-data.yaml")).unwrap();
        let broken = good.replace("runcmd:\n", "runcmd: oops\nbroken_runcmd:\n");
        assert_ne!(good, broken, "the example lost its runcmd section");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("user-data.yaml");
        std::fs::write(&file, broken).unwrap();
        let out = schema(&file);
        assert!(
            !out.status.success(),
            "a runcmd that is not a list must fail the schema"
        );
    }

    #[test]
    fn the_user_data_runs_cadvisor_setup_unattended_after_microk8s_is_ready() {
        let text = std::fs::read_to_string(repo("scripts/cloud-init/user-data.yaml")).unwrap();
        let wait = text.find("--wait-ready").expect("waits for MicroK8s");
        let run = text
            .find("cadvisor-setup install --yes")
            .expect("runs install --yes");
        assert!(wait < run, "install must run after microk8s is ready");
        assert!(text.starts_with("#cloud-config"));
    }
}

mod ansible {
    use super::*;

    #[test]
    fn the_playbook_passes_ansible_syntax_check() {
        let tool = support::real::tool_path("ansible-playbook");
        if !support::real::require(
            "ansible-playbook (pip install ansible-core)",
            tool.is_some(),
        ) {
            return;
        }
        let out = Command::new(tool.unwrap())
            .args(["-i", "localhost,", "--syntax-check"])
            .arg(repo("scripts/ansible/playbook.yml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The real ansible-core playbook (scripts/ansible/) against the simulated cluster: a MicroK8s node
/// whose host root runs a real containerd with the Loki gateway's nginx container.
mod ansible_run {
    use super::*;
    use serde_json::{Value, json};
    use support::containerd::Containerd;
    use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};
    use support::host_root::{HostRootDir, MICROK8S_SOCKET};
    use support::real;

    /// The interpreter in the playbook tool's shebang (the venv's python): without
    /// `ansible_python_interpreter`, discovery may pick a missing pyenv shim (test-recipes §10).
    fn interpreter(playbook: &Path) -> PathBuf {
        let text = std::fs::read_to_string(playbook).unwrap_or_default();
        text.lines()
            .next()
            .and_then(|l| l.strip_prefix("#!"))
            .map(|l| PathBuf::from(l.split_whitespace().next().unwrap_or("python3")))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
    }

    struct Run {
        code: i32,
        stdout: String,
        stderr: String,
    }

    impl Run {
        /// The result line of the task whose name contains `task` (`changed`, `ok`, `skipping`...).
        fn task(&self, task: &str) -> String {
            let section = self
                .stdout
                .split("TASK [")
                .find(|s| s.lines().next().is_some_and(|l| l.contains(task)))
                .unwrap_or_else(|| panic!("no task `{task}`:\n{}", self.stdout));
            section
                .lines()
                .skip(1)
                .find_map(|l| l.split_once(": [localhost]").map(|(state, _)| state.trim()))
                .unwrap_or_else(|| panic!("no result for `{task}`:\n{}", self.stdout))
                .to_string()
        }

        /// `changed=N` of the play recap.
        fn recap_changed(&self) -> u32 {
            self.stdout
                .lines()
                .filter(|l| l.starts_with("localhost"))
                .find_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("changed="))
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or_else(|| panic!("no recap:\n{}", self.stdout))
        }
    }

    impl std::fmt::Display for Run {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "exit {}\n--- stdout\n{}\n--- stderr\n{}",
                self.code, self.stdout, self.stderr
            )
        }
    }

    fn playbook(tool: &Path, vars: &Path, check: bool) -> Run {
        let mut cmd = Command::new(tool);
        cmd.env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOST_KEY_CHECKING", "0")
            .env("ANSIBLE_LOCAL_TEMP", vars.with_file_name("ansible-tmp"))
            .args(["-i", "localhost,", "-c", "local", "-e"])
            .arg(format!(
                "ansible_python_interpreter={}",
                interpreter(tool).display()
            ))
            .arg("-e")
            .arg(format!("@{}", vars.display()))
            .arg(repo("scripts/ansible/playbook.yml"));
        if check {
            cmd.arg("--check");
        }
        let out = cmd.output().expect("run ansible-playbook");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    fn image(cluster: &FakeCluster) -> Value {
        cluster
            .get("DaemonSet", "cadvisor", "cadvisor")
            .expect("DaemonSet")["spec"]["template"]["spec"]["containers"][0]["image"]
            .clone()
    }

    #[test]
    fn first_run_changes_second_is_idempotent_and_check_mode_changes_nothing() {
        if !real::require_containerd() {
            return;
        }
        let tool = real::tool_path("ansible-playbook");
        if !real::require(
            "ansible-playbook (pip install ansible-core)",
            tool.is_some(),
        ) {
            return;
        }
        let tool = tool.expect("checked");
        let root = HostRootDir::new();
        root.microk8s("v1.33.4", "classic", "8000");
        let containerd = Containerd::start(root.path(), MICROK8S_SOCKET);
        containerd.run_pod_container("c0", "loki-gateway-66c8f46897-2m445", "loki", "nginx");
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
            "node-1",
            root.path(),
        )]));

        let dir = tempfile::tempdir().expect("tempdir");
        let vars_file = dir.path().join("vars.json");
        let mut vars = json!({
            "cadvisor_setup_hosts": "localhost",
            "cadvisor_setup_become": false,
            "cadvisor_setup_binary_src": env!("CARGO_BIN_EXE_cadvisor-setup"),
            "cadvisor_setup_binary": dir.path().join("cadvisor-setup"),
            "cadvisor_setup_timeout": "60s",
            "cadvisor_setup_environment": {
                "CADVISOR_SETUP_KUBECONFIG": cluster.kubeconfig_path(),
                "CADVISOR_SETUP_HOST_ROOT": root.path(),
            },
        });
        std::fs::write(&vars_file, vars.to_string()).expect("write vars");

        let first = playbook(&tool, &vars_file, false);
        assert_eq!(first.code, 0, "{first}");
        assert_eq!(
            first.task("Install, wait for the rollout"),
            "changed",
            "{first}"
        );
        assert_eq!(
            first.task("Put the cadvisor-setup binary"),
            "changed",
            "{first}"
        );
        assert!(first.recap_changed() > 0, "{first}");
        assert_eq!(image(&cluster), "ghcr.io/google/cadvisor:0.60.5");
        let rv = cluster
            .get("DaemonSet", "cadvisor", "cadvisor")
            .expect("ds")["metadata"]["resourceVersion"]
            .clone();

        let second = playbook(&tool, &vars_file, false);
        assert_eq!(second.code, 0, "{second}");
        assert_eq!(
            second.task("Install, wait for the rollout"),
            "ok",
            "{second}"
        );
        assert_eq!(
            second.task("Put the cadvisor-setup binary"),
            "ok",
            "{second}"
        );
        assert_eq!(second.recap_changed(), 0, "{second}");
        assert_eq!(
            cluster
                .get("DaemonSet", "cadvisor", "cadvisor")
                .expect("ds")["metadata"]["resourceVersion"],
            rv
        );

        // --check with a new image: reports the change (server-side dry run), changes nothing.
        vars["cadvisor_setup_image"] = json!("ghcr.io/google/cadvisor:0.60.4");
        std::fs::write(&vars_file, vars.to_string()).expect("write vars");
        let check = playbook(&tool, &vars_file, true);
        assert_eq!(check.code, 0, "{check}");
        assert_eq!(
            check.task("Install, wait for the rollout"),
            "changed",
            "{check}"
        );
        assert!(check.stdout.contains("would change"), "{check}");
        assert_eq!(image(&cluster), "ghcr.io/google/cadvisor:0.60.5");
        assert_eq!(
            cluster
                .get("DaemonSet", "cadvisor", "cadvisor")
                .expect("ds")["metadata"]["resourceVersion"],
            rv
        );

        // A failing run (API down) fails the task, from the exit code.
        cluster.failures().set_api_down(true);
        let port = cluster.port();
        assert!(cluster.wait_until(std::time::Duration::from_secs(10), |_| {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        }));
        let down = playbook(&tool, &vars_file, false);
        assert_ne!(down.code, 0, "{down}");
        assert!(down.stdout.contains("failed=1"), "{down}");
    }
}

/// `--help` answers a first-time user's questions; `completions` produce real shell scripts.
mod help_and_completions {
    use super::*;
    use clap::CommandFactory;

    fn bin() -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cadvisor-setup"));
        cmd.env_remove("NO_COLOR");
        cmd
    }

    fn stdout_of(args: &[&str]) -> String {
        let out = bin().args(args).output().expect("run cadvisor-setup");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Options that are one-off paths for one run, so no environment variable.
    const NO_ENV: &[&str] = &[
        "out_dir",
        "scrape_config",
        "metrics_url",
        "metrics_file",
        "verbose",
        "shell",
    ];

    #[test]
    fn every_flag_has_help_and_an_environment_variable() {
        let cli = cadvisor_setup::cli::Cli::command();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(help.len() > 10, "{} --{id} has no help", sub.get_name());
                // verify's --prometheus is a source like --metrics-url (a URL is no value for
                // install's --prometheus, which has CADVISOR_SETUP_PROMETHEUS).
                let verify_source = sub.get_name() == "verify" && id == "prometheus";
                if !NO_ENV.contains(&id) && !verify_source {
                    let env = arg.get_env().map(|e| e.to_string_lossy().to_string());
                    assert!(
                        env.as_deref()
                            .is_some_and(|e| e.starts_with("CADVISOR_SETUP_")),
                        "{} --{id} has no CADVISOR_SETUP_ variable",
                        sub.get_name()
                    );
                }
            }
        }
    }

    #[test]
    fn help_shows_defaults_environment_and_exit_codes() {
        for sub in [
            &[][..],
            &["install"],
            &["detect"],
            &["verify"],
            &["uninstall"],
        ] {
            let mut args = sub.to_vec();
            args.push("--help");
            let help = stdout_of(&args);
            assert!(help.contains("EXIT CODES:"), "{args:?}:\n{help}");
            assert!(help.contains("7  conflict"), "{args:?}:\n{help}");
        }
        let help = stdout_of(&["install", "--help"]);
        for needle in [
            "[env: CADVISOR_SETUP_NAMESPACE=]",
            "[default: cadvisor]",
            "[default: 5m]",
            "ghcr.io/google/cadvisor:",
            "Cancel applies nothing and exits 2",
            "--yes",
        ] {
            assert!(
                help.contains(needle),
                "install --help lacks {needle}:\n{help}"
            );
        }
    }

    #[test]
    fn bash_completion_is_valid_bash() {
        if !support::real::require("bash", support::real::have_tool("bash")) {
            return;
        }
        let script = stdout_of(&["completions", "bash"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cadvisor-setup.bash");
        std::fs::write(&file, &script).expect("write");
        let out = Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .expect("bash -n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Loaded in a real bash, it registers the completion function.
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && complete -p cadvisor-setup",
                file.display()
            ))
            .output()
            .expect("bash");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("cadvisor-setup"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn zsh_and_fish_completions_name_every_subcommand() {
        for shell in ["zsh", "fish"] {
            let script = stdout_of(&["completions", shell]);
            for sub in [
                "detect",
                "render",
                "install",
                "verify",
                "status",
                "uninstall",
            ] {
                assert!(script.contains(sub), "{shell} completion lacks {sub}");
            }
            assert!(script.contains("containerd-socket"), "{shell}");
        }
        assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef cadvisor-setup"));
        assert!(stdout_of(&["completions", "fish"]).contains("complete -c cadvisor-setup"));
    }
}

/// A real Prometheus (Debian's 2.42) scraping the simulated cAdvisor's real metrics through the
/// fake API server's pod proxy (https, the kubeconfig's client certificate), with the job
/// `render --scrape-config` prints: its Kubernetes discovery swapped for the static target the
/// discovery would find, every relabel rule kept. Then `verify --prometheus URL` judges it.
mod prometheus_real {
    use super::*;
    use serde_json::{Value, json};
    use std::time::Duration;
    use support::containerd::Containerd;
    use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};
    use support::host_root::{HostRootDir, MICROK8S_SOCKET};
    use support::prometheus::{RealPrometheus, pod_proxy_job, require_prometheus};
    use support::real;

    const POD: &str = "loki-gateway-66c8f46897-2m445";

    struct World {
        root: HostRootDir,
        _containerd: Containerd,
        cluster: FakeCluster,
        tls: tempfile::TempDir,
    }

    impl World {
        fn run(&self, args: &[&str]) -> std::process::Output {
            let mut cmd = assert_cmd::Command::cargo_bin("cadvisor-setup").expect("binary");
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("NO_COLOR", "1")
                .arg("--host-root")
                .arg(self.root.path())
                .arg("--kubeconfig")
                .arg(self.cluster.kubeconfig_path())
                .args(args)
                .timeout(Duration::from_secs(120));
            cmd.output().expect("run cadvisor-setup")
        }

        /// The job as `render --scrape-config` prints it, with the static target of our one
        /// cAdvisor pod reached through the API server's pod proxy.
        fn job(&self, target: &str, pod: &str) -> Value {
            let out = self.run(&["render", "--scrape-config", "-o", "json"]);
            assert!(out.status.success(), "{}", text(&out));
            let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            pod_proxy_job(
                &doc["scrape_config"],
                &self.cluster,
                self.tls.path(),
                target,
                pod,
            )
        }
    }

    fn text(out: &std::process::Output) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn world() -> Option<World> {
        if !real::require_containerd() || !require_prometheus() {
            return None;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.33.4", "classic", "8000");
        let containerd = Containerd::start(root.path(), MICROK8S_SOCKET);
        containerd.run_pod_container("c0", POD, "loki", "nginx");
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
            "node-1",
            root.path(),
        )]));
        Some(World {
            root,
            _containerd: containerd,
            cluster,
            tls: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn verify(w: &World, prometheus: &RealPrometheus, timeout: &str) -> (i32, Value) {
        let out = w.run(&[
            "verify",
            "--prometheus",
            &prometheus.url(),
            "--timeout",
            timeout,
            "-o",
            "json",
        ]);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out), prometheus.log()));
        (out.status.code().unwrap_or(-1), report)
    }

    #[test]
    fn the_loki_gateway_is_queried_by_pod_namespace_and_container_and_each_fault_is_named() {
        let Some(w) = world() else { return };
        let out = w.run(&["install", "--yes", "--timeout", "60s", "-o", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let pod = w
            .cluster
            .first_pod_name("cadvisor")
            .expect("a cAdvisor pod");
        let api = format!("127.0.0.1:{}", w.cluster.port());

        let good = w.job(&api, &pod);
        let mut unrelabelled = good.clone();
        unrelabelled["scrape_configs"][0]
            .as_object_mut()
            .expect("job")
            .remove("metric_relabel_configs");
        // Nothing listens there: what a NetworkPolicy or a wrong port looks like to Prometheus.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let down = w.job(&closed.to_string(), &pod);
        // Started together: each needs a scrape or two before it can be judged.
        let prometheus = [good, unrelabelled, down].map(|c| RealPrometheus::start(&c));

        // The user's query, answered by the real Prometheus.
        let series = prometheus[0].wait_for(
            &format!(
                r#"container_memory_working_set_bytes{{namespace="loki",pod="{POD}",container="nginx"}}"#
            ),
            Duration::from_secs(30),
        );
        assert_eq!(series.len(), 1, "{}", prometheus[0].log());
        assert_eq!(series[0]["metric"]["job"], "cadvisor");
        assert_eq!(series[0]["metric"]["node"], "node-1");

        // The dashboard's CPU and memory panels, as Grafana sends them, find the pod too.
        let dashboard: Value =
            serde_json::from_str(cadvisor_setup::plan::dashboard::DASHBOARD_JSON).expect("JSON");
        for title in ["CPU per container", "Memory working set per container"] {
            let panel = dashboard["panels"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["title"] == title))
                .expect("panel");
            let expr = panel["targets"][0]["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".+")
                .replace("$pod", ".+");
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let found = loop {
                let result = prometheus[0].query(&expr);
                let found = result
                    .iter()
                    .any(|s| s["metric"]["pod"] == POD && s["metric"]["container"] == "nginx");
                if found || std::time::Instant::now() > deadline {
                    break found;
                }
                std::thread::sleep(Duration::from_millis(300));
            };
            assert!(found, "{title}: {expr}\n{}", prometheus[0].log());
        }

        let (code, report) = verify(&w, &prometheus[0], "60s");
        assert_eq!(code, 0, "{report:#}");
        let p = &report["prometheus"];
        assert_eq!(p["ok"], true);
        assert_eq!(
            p["subject"],
            json!({"namespace": "loki", "pod": POD, "container": "nginx"}),
            "the pod the kubelet reports"
        );
        assert_eq!(p["nodes"][0]["node"], "node-1");
        assert_eq!(p["nodes"][0]["health"], "up");
        assert!(p["series"].as_u64().is_some_and(|n| n >= 1), "{report:#}");

        // The Prometheus Operator's Prometheus, found through the API and asked through the API
        // server's service proxy (its governing Service prometheus-operated, port web).
        w.cluster.set_prometheus_operator(true);
        let stack = "kube-prom-stack-kube-prome-prometheus";
        w.cluster.create(
            "helm",
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": stack, "namespace": "observability"},
                "spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kube-prom-stack"}},
                    "serviceMonitorNamespaceSelector": {}}}),
        );
        w.cluster.create(
            "prometheus-operator",
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "prometheus-operated", "namespace": "observability"},
                "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": "prometheus"},
                    "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]}}),
        );
        w.cluster.set_service_backend(
            "observability",
            "prometheus-operated",
            Some(&prometheus[0].url()),
        );
        for choice in ["auto", &format!("observability/{stack}")] {
            w.cluster.clear_requests();
            let out = w.run(&[
                "verify",
                "--prometheus",
                choice,
                "--timeout",
                "30s",
                "-o",
                "json",
            ]);
            assert_eq!(out.status.code(), Some(0), "{choice}: {}", text(&out));
            let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let endpoint = &report["prometheus"]["endpoint"];
            assert_eq!(endpoint["kind"], "service-proxy", "{report:#}");
            assert_eq!(endpoint["service"], "prometheus-operated");
            assert_eq!(report["prometheus"]["series"], 1, "{report:#}");
            // auto uses the object it listed; a name is read (GET) instead of listing them all.
            let reads: Vec<String> = w
                .cluster
                .requests()
                .into_iter()
                .filter(|r| r.path.contains("/prometheuses"))
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            let wanted = if choice == "auto" {
                "GET /apis/monitoring.coreos.com/v1/prometheuses".to_string()
            } else {
                format!(
                    "GET /apis/monitoring.coreos.com/v1/namespaces/observability/prometheuses/{stack}"
                )
            };
            assert_eq!(reads, [wanted], "{choice}");
        }
        // Two of them: auto does not guess (exit 3, naming both).
        w.cluster.create(
            "helm",
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": "k8s", "namespace": "monitoring"}, "spec": {}}),
        );
        let out = w.run(&["verify", "--prometheus", "auto", "--timeout", "5s"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("monitoring/k8s") && stderr.contains(stack),
            "{stderr}"
        );

        // Without the metric relabelling the series have no `pod`: named as such, exit 6.
        let (code, report) = verify(&w, &prometheus[1], "60s");
        assert_eq!(code, 6, "{report:#}");
        assert_eq!(
            report["prometheus"]["reason"], "not-relabelled",
            "{report:#}"
        );
        assert!(
            report["message"]
                .as_str()
                .is_some_and(|m| m.contains("metric relabelling")),
            "{report:#}"
        );

        // The same two for people.
        let known = [(pod.as_str(), "[CADVISOR_POD]")];
        for (name, p) in [
            ("verify_prometheus_pass_human", &prometheus[0]),
            ("verify_prometheus_not_relabelled_human", &prometheus[1]),
        ] {
            let out = w.run(&["verify", "--prometheus", &p.url(), "--timeout", "60s"]);
            insta::assert_snapshot!(name, support::snapshot::human(&out, &known));
        }

        // A target Prometheus cannot reach: down, with the network policy or the port named.
        let (code, report) = verify(&w, &prometheus[2], "8s");
        assert_eq!(code, 6, "{report:#}");
        assert_eq!(report["prometheus"]["reason"], "target-down", "{report:#}");
        let message = report["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("NetworkPolicy") && message.contains("port"),
            "{message}"
        );
        assert!(
            report["prometheus"]["nodes"][0]["last_error"].is_string(),
            "{report:#}"
        );
    }

    #[test]
    fn a_prometheus_without_our_job_is_a_missing_target() {
        let Some(w) = world() else { return };
        let out = w.run(&["install", "--yes", "--timeout", "60s", "--no-verify"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let other = json!({"scrape_configs": [{"job_name": "prometheus",
            "static_configs": [{"targets": ["127.0.0.1:1"]}]}]});
        let prometheus = RealPrometheus::start(&other);
        let (code, report) = verify(&w, &prometheus, "3s");
        assert_eq!(code, 6, "{report:#}");
        assert_eq!(
            report["prometheus"]["reason"], "target-missing",
            "{report:#}"
        );
        assert!(
            report["message"]
                .as_str()
                .is_some_and(|m| m.contains("serviceMonitorSelector")),
            "{report:#}"
        );
        // Unreachable Prometheus: nothing proven, exit 1 naming the URL; a bad URL is exit 2.
        let out = w.run(&[
            "verify",
            "--prometheus",
            "http://127.0.0.1:1",
            "--timeout",
            "2s",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"),
            "{}",
            text(&out)
        );
        let out = w.run(&["verify", "--prometheus", "127.0.0.1:9090"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        // auto without the Prometheus Operator: nothing to ask, exit 3 saying to give a URL.
        let out = w.run(&["verify", "--prometheus", "auto", "--timeout", "2s"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("URL"),
            "{}",
            text(&out)
        );
    }

    /// `--grafana-dashboard auto`: on when Grafana's sidecar label is in use in the cluster; the
    /// ConfigMap is ours, so uninstall removes it and keeps the user's.
    #[test]
    fn the_dashboard_follows_the_sidecar_label_and_uninstall_takes_only_ours() {
        let Some(w) = world() else { return };
        let ours = || w.cluster.get("ConfigMap", "cadvisor", "cadvisor-dashboard");
        let out = w.run(&["install", "--yes", "--timeout", "60s", "--no-verify"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(ours().is_none(), "no sidecar, no dashboard");
        // kube-prometheus-stack's Grafana: its own dashboards carry the sidecar label.
        w.cluster.create(
            "helm",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-prom-stack-k8s-resources-pod", "namespace": "observability",
                    "labels": {"grafana_dashboard": "1", "app": "kube-prometheus-stack-grafana"}},
                "data": {"k8s-resources-pod.json": "{}"}}),
        );
        let out = w.run(&["install", "--yes", "--timeout", "60s", "--no-verify"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let cm = ours().expect("the dashboard ConfigMap");
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        assert_eq!(
            cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "cadvisor-setup"
        );
        // Uninstall removes ours (it carries our labels and field manager), not the user's.
        let out = w.run(&["uninstall", "--yes", "--timeout", "60s"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(ours().is_none(), "uninstall removes our dashboard");
        assert!(
            w.cluster
                .get(
                    "ConfigMap",
                    "observability",
                    "kube-prom-stack-k8s-resources-pod"
                )
                .is_some(),
            "the user's dashboard stays"
        );
    }

    /// Install's last step: with a Prometheus chosen (the observability addon's), it asks that
    /// Prometheus through the API server, apart from the cAdvisor check. One that cannot be
    /// asked is a note (the install stands); one that scrapes us passes the loki-gateway query.
    #[test]
    fn install_asks_the_chosen_prometheus_last() {
        let Some(w) = world() else { return };
        let stack = "kube-prom-stack-kube-prome-prometheus";
        w.cluster.set_prometheus_operator(true);
        w.cluster.create(
            "helm",
            json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": stack, "namespace": "observability"},
                "spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kube-prom-stack"}},
                    "serviceMonitorNamespaceSelector": {}}}),
        );
        w.cluster.create(
            "prometheus-operator",
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "prometheus-operated", "namespace": "observability"},
                "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": "prometheus"},
                    "ports": [{"name": "web", "port": 9090, "targetPort": "web"}]}}),
        );
        let install = || {
            let out = w.run(&[
                "install",
                "--yes",
                "--timeout",
                "60s",
                "--network-policy",
                "never",
                "-o",
                "json",
            ]);
            let report: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
            (out.status.code(), report)
        };
        // Prometheus' pods are not there (no endpoints): a note, and the install stands.
        let (code, report) = install();
        assert_eq!(code, Some(0), "{report:#}");
        assert_eq!(
            report["prometheus"]["chosen"],
            format!("observability/{stack}")
        );
        assert!(
            report.get("prometheus_verification").is_none(),
            "{report:#}"
        );
        let note = report["prometheus_note"].as_str().unwrap_or_default();
        assert!(
            note.contains("could not ask Prometheus") && note.contains("verify --prometheus"),
            "{report:#}"
        );

        // Now a real Prometheus behind prometheus-operated scrapes our pod: the rerun asks it.
        let pod = w
            .cluster
            .first_pod_name("cadvisor")
            .expect("a cAdvisor pod");
        let prometheus =
            RealPrometheus::start(&w.job(&format!("127.0.0.1:{}", w.cluster.port()), &pod));
        w.cluster.set_service_backend(
            "observability",
            "prometheus-operated",
            Some(&prometheus.url()),
        );
        let (code, report) = install();
        assert_eq!(code, Some(0), "{report:#}\n{}", prometheus.log());
        assert_eq!(report["changed"], false, "an unchanged rerun");
        let p = &report["prometheus_verification"];
        assert_eq!(p["ok"], true, "{report:#}");
        assert_eq!(p["subject"]["pod"], POD);
        assert_eq!(p["endpoint"]["kind"], "service-proxy");
        assert!(report.get("prometheus_note").is_none(), "{report:#}");
    }
}
