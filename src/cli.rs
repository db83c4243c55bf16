//! The user-facing contract: every command, flag, default and environment variable.
//!
//! Raw flags only (ripgrep's "low args"). Values that can also come from `--config answers.yaml`
//! are `Option`s here and get their defaults in [`crate::options`], which records where each value
//! came from (flag > env > file > detected default).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::ExitCode;
use crate::host::DistroKind;

const AFTER_HELP: &str = ExitCode::TABLE;

/// Make cAdvisor work on MicroK8s (and every node that hides containerd's socket).
///
/// cadvisor-setup finds the containerd socket the kubelet really uses, renders cAdvisor manifests
/// that mount it, applies them with server-side apply, waits for the rollout and proves that the
/// live metrics carry `container_label_io_kubernetes_pod_name`.
#[derive(Debug, Parser)]
#[command(name = "cadvisor-setup", version, about, long_about, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Read host files under DIR instead of `/` (the strict snap uses /var/lib/snapd/hostfs).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "CADVISOR_SETUP_HOST_ROOT"
    )]
    pub host_root: Option<PathBuf>,

    /// Output format: `human` for people, `json` for one JSON document on stdout (Ansible).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Human, env = "CADVISOR_SETUP_OUTPUT")]
    pub output: OutputFormat,

    /// Kubeconfig to use [default: $KUBECONFIG, ~/.kube/config, then the distribution's admin kubeconfig].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "CADVISOR_SETUP_KUBECONFIG"
    )]
    pub kubeconfig: Option<PathBuf>,

    /// Never prompt: every value comes from its flag, environment, --config file or detected
    /// default. install and uninstall need it when no terminal is attached.
    #[arg(short = 'y', long, global = true, env = "CADVISOR_SETUP_YES", value_parser = parse_switch)]
    pub yes: bool,

    /// YAML file of answers (keys are flag names, e.g. `namespace: monitoring`).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "CADVISOR_SETUP_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// More detail on stderr (-v: where each value came from, -vv: debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what this node runs: distribution, containerd socket, cgroups, kubelet, kubeconfig.
    ///
    /// Every socket candidate is probed for real (connect, containerd's Version RPC, kubelet
    /// containers in the `k8s.io` namespace). Exit 0 when one verified socket was found, 3 when
    /// none was or the choice is ambiguous.
    #[command(after_help = AFTER_HELP)]
    Detect(DetectArgs),

    /// Print the cAdvisor manifests for this node (or for `--distro`), without a cluster.
    #[command(after_help = AFTER_HELP)]
    Render(RenderArgs),

    /// Detect, render, apply (server-side), wait for the rollout and verify the labels.
    ///
    /// On a terminal (without --yes) it shows what it detected, asks for the values no flag,
    /// environment variable or --config file gave (namespace, image, metrics, privileged,
    /// ServiceMonitor), lets you pick the containerd socket when detection is ambiguous, shows the
    /// plan and asks: Apply, Show the YAML first, or Cancel. Cancel applies nothing and exits 2.
    ///
    /// With --yes (Ansible, cloud-init) it never asks; an ambiguous detection is exit 3 naming
    /// --containerd-socket. Without a terminal and without --yes it changes nothing and exits 2.
    /// Rerun it to upgrade (e.g. with a new --image); an unchanged rerun changes nothing.
    #[command(after_help = AFTER_HELP)]
    Install(InstallArgs),

    /// Check that cAdvisor's live metrics carry pod labels on every node (or one endpoint/file).
    #[command(after_help = AFTER_HELP)]
    Verify(VerifyArgs),

    /// Show what is installed: image, nodes ready, objects and their field manager.
    #[command(after_help = AFTER_HELP)]
    Status(StatusArgs),

    /// Delete exactly what `install` created and wait until it is gone.
    ///
    /// Only objects carrying app.kubernetes.io/managed-by=cadvisor-setup and written by the field
    /// manager cadvisor-setup; the namespace only when nothing else is left in it. Asks first on
    /// a terminal (declining deletes nothing, exit 2); --yes skips the question and is required
    /// without a terminal. Nothing left to delete is success.
    #[command(after_help = AFTER_HELP)]
    Uninstall(UninstallArgs),

    /// Print shell completions, e.g. `cadvisor-setup completions bash > /etc/bash_completion.d/cadvisor-setup`.
    #[command(after_help = AFTER_HELP)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct SocketArgs {
    /// containerd socket to use, as a host path; overrides detection.
    #[arg(long, value_name = "PATH", env = "CADVISOR_SETUP_CONTAINERD_SOCKET")]
    pub containerd_socket: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DetectArgs {
    #[command(flatten)]
    pub socket: SocketArgs,

    /// Do not contact the API server (host facts only).
    #[arg(long, env = "CADVISOR_SETUP_NO_CLUSTER", value_parser = parse_switch, conflicts_with = "cluster")]
    pub no_cluster: bool,

    /// Also show every node's facts through the API server (configz, nodeInfo, labels) and the
    /// node groups install would make (one DaemonSet per group).
    #[arg(long, env = "CADVISOR_SETUP_CLUSTER", value_parser = parse_switch)]
    pub cluster: bool,

    /// With --cluster: nodes whose configz is read at once, 1 to 256 [default: 16].
    #[arg(long, value_name = "N", value_parser = parse_parallel, env = "CADVISOR_SETUP_PARALLEL")]
    pub parallel: Option<usize>,
}

/// Everything the manifests depend on. All optional here: defaults come from detection or from
/// `--config`; `--help` shows the built-in defaults.
#[derive(Debug, Args, Clone, Default)]
pub struct PlanArgs {
    /// Namespace for cAdvisor [default: cadvisor].
    #[arg(short, long, value_name = "NAME", env = "CADVISOR_SETUP_NAMESPACE")]
    pub namespace: Option<String>,

    /// cAdvisor image [default: the pinned newest release, ghcr.io/google/cadvisor:0.60.5].
    #[arg(long, value_name = "IMAGE", env = "CADVISOR_SETUP_IMAGE")]
    pub image: Option<String>,

    /// Metric groups to enable, comma-separated [default: app,cpu,diskIO,memory,network,oom_event,process].
    #[arg(long, value_name = "LIST", env = "CADVISOR_SETUP_METRICS")]
    pub metrics: Option<String>,

    /// Extra container label to export besides the three io.kubernetes.* labels (repeatable).
    #[arg(
        long = "extra-label",
        value_name = "LABEL",
        env = "CADVISOR_SETUP_EXTRA_LABEL",
        value_delimiter = ','
    )]
    pub extra_labels: Vec<String>,

    /// containerd namespace holding the kubelet's containers [default: detected, k8s.io].
    #[arg(long, value_name = "NS", env = "CADVISOR_SETUP_CONTAINERD_NAMESPACE")]
    pub containerd_namespace: Option<String>,

    /// CPU request [default: 100m].
    #[arg(long, value_name = "QUANTITY", env = "CADVISOR_SETUP_CPU_REQUEST")]
    pub cpu_request: Option<String>,

    /// CPU limit [default: 500m].
    #[arg(long, value_name = "QUANTITY", env = "CADVISOR_SETUP_CPU_LIMIT")]
    pub cpu_limit: Option<String>,

    /// Memory request [default: 200Mi].
    #[arg(long, value_name = "QUANTITY", env = "CADVISOR_SETUP_MEMORY_REQUEST")]
    pub memory_request: Option<String>,

    /// Memory limit [default: 500Mi].
    #[arg(long, value_name = "QUANTITY", env = "CADVISOR_SETUP_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,

    /// Run cAdvisor privileged and mount /dev/kmsg for OOM events [default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", env = "CADVISOR_SETUP_PRIVILEGED", value_parser = parse_switch)]
    pub privileged: Option<bool>,

    /// Render a Prometheus Operator ServiceMonitor: auto (when its CRD exists), always, never [default: auto].
    #[arg(long, value_name = "WHEN", env = "CADVISOR_SETUP_SERVICE_MONITOR")]
    pub service_monitor: Option<ServiceMonitorMode>,

    /// Render a ConfigMap with a Grafana dashboard (CPU, memory, network, filesystem I/O per pod
    /// and container) for Grafana's dashboard sidecar: auto (when a ConfigMap labelled
    /// grafana_dashboard exists, i.e. the sidecar is in use), always (on), never (off)
    /// [default: auto].
    #[arg(
        long,
        value_name = "WHEN",
        num_args = 0..=1,
        default_missing_value = "always",
        env = "CADVISOR_SETUP_GRAFANA_DASHBOARD"
    )]
    pub grafana_dashboard: Option<GrafanaDashboardMode>,
}

/// `--grafana-dashboard`: like `--service-monitor`, and `on`/`off` for always/never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrafanaDashboardMode {
    Auto,
    #[value(alias = "on")]
    #[serde(alias = "on")]
    Always,
    #[value(alias = "off")]
    #[serde(alias = "off")]
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMonitorMode {
    Auto,
    Always,
    Never,
}

/// `--distro`: the distributions with a preset (all but `unknown`), named as detection names them.
impl ValueEnum for DistroKind {
    fn value_variants<'a>() -> &'a [Self] {
        use DistroKind::*;
        &[Microk8s, K3s, Rke2, K0s, K8sSnap, Kubeadm]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[derive(Debug, Args, Clone)]
pub struct RenderArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub socket: SocketArgs,

    /// Render for a distribution's defaults without reading this host.
    #[arg(long, value_name = "DISTRO", env = "CADVISOR_SETUP_DISTRO")]
    pub distro: Option<DistroKind>,

    /// Render from the live cluster's node facts (one DaemonSet per node group), without
    /// applying anything: for GitOps from a machine that is not a node.
    #[arg(long, conflicts_with = "distro", env = "CADVISOR_SETUP_CLUSTER", value_parser = parse_switch)]
    pub cluster: bool,

    /// With --cluster: nodes whose configz is read at once, 1 to 256 [default: 16].
    #[arg(long, value_name = "N", value_parser = parse_parallel, env = "CADVISOR_SETUP_PARALLEL")]
    pub parallel: Option<usize>,

    /// With --cluster and several node groups: select each group's nodes by the label
    /// cadvisor-setup/group=HASH (as `install --label-nodes` does) instead of their hostnames.
    /// render labels no node: it prints the labels to set.
    #[arg(long, env = "CADVISOR_SETUP_LABEL_NODES", value_parser = parse_switch)]
    pub label_nodes: bool,

    /// Write one file per object plus a kustomization.yaml into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Print a Prometheus scrape job for cAdvisor (Kubernetes service discovery of its pods,
    /// pod/namespace/container relabelling) instead of the manifests, for a Prometheus without
    /// the Prometheus Operator. Needs no host facts.
    #[arg(long, conflicts_with = "out_dir")]
    pub scrape_config: bool,

    /// Override the built-in templates with same-named files from DIR.
    #[arg(long, value_name = "DIR", env = "CADVISOR_SETUP_TEMPLATES")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct InstallArgs {
    #[command(flatten)]
    pub plan: PlanArgs,

    #[command(flatten)]
    pub socket: SocketArgs,

    /// Override the built-in templates with same-named files from DIR.
    #[arg(long, value_name = "DIR", env = "CADVISOR_SETUP_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// How long to wait for the rollout and the verification, e.g. 90s, 5m [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "CADVISOR_SETUP_TIMEOUT")]
    pub timeout: Option<std::time::Duration>,

    /// Take over fields owned by another field manager.
    #[arg(long, env = "CADVISOR_SETUP_FORCE", value_parser = parse_switch)]
    pub force: bool,

    /// Server-side dry run: show what would change, change nothing.
    #[arg(long, env = "CADVISOR_SETUP_DRY_RUN", value_parser = parse_switch)]
    pub dry_run: bool,

    /// Apply and wait, but skip the metrics verification.
    #[arg(long, env = "CADVISOR_SETUP_NO_VERIFY", value_parser = parse_switch)]
    pub no_verify: bool,

    /// With several node groups: label each node with its group (cadvisor-setup/group=HASH,
    /// server-side apply, only that label is ours) and select the nodes by that label instead of
    /// their hostnames, so a node that joins later with the label needs no manifest change.
    /// uninstall removes the label. Without it no node is ever labelled.
    #[arg(long, env = "CADVISOR_SETUP_LABEL_NODES", value_parser = parse_switch)]
    pub label_nodes: bool,

    /// Nodes verified at once, 1 to 256 [default: 16].
    #[arg(long, value_name = "N", value_parser = parse_parallel, env = "CADVISOR_SETUP_PARALLEL")]
    pub parallel: Option<usize>,

    /// The Prometheus Operator's Prometheus that should scrape cAdvisor: auto (the only one; asked
    /// on a terminal when there are several), NAMESPACE/NAME, or none [default: auto]. Our
    /// ServiceMonitor gets the labels its serviceMonitorSelector needs.
    #[arg(long, value_name = "WHICH", value_parser = parse_prometheus_choice, env = "CADVISOR_SETUP_PROMETHEUS")]
    pub prometheus: Option<PrometheusChoice>,

    /// A NetworkPolicy letting only the chosen Prometheus and the nodes reach cAdvisor's port:
    /// auto (when a Prometheus was chosen), always, never [default: auto].
    #[arg(long, value_name = "WHEN", env = "CADVISOR_SETUP_NETWORK_POLICY")]
    pub network_policy: Option<NetworkPolicyMode>,
}

pub use crate::cluster::prometheus::PrometheusChoice;

/// `auto`, `none` or `NAMESPACE/NAME` (both DNS-1123 names).
pub fn parse_prometheus_choice(text: &str) -> Result<PrometheusChoice, String> {
    let text = text.trim();
    match text {
        "auto" => Ok(PrometheusChoice::Auto),
        "none" => Ok(PrometheusChoice::None),
        _ => {
            let parsed = text.split_once('/').filter(|(ns, name)| {
                crate::validate::dns1123_label("namespace", ns).is_ok()
                    && crate::validate::dns1123_label("name", name).is_ok()
            });
            match parsed {
                Some((namespace, name)) => Ok(PrometheusChoice::Named {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }),
                None => Err(format!(
                    "`{text}` is not auto, none or NAMESPACE/NAME of a Prometheus (e.g. observability/kube-prom-stack-kube-prome-prometheus)"
                )),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPolicyMode {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args, Clone, Default)]
pub struct VerifyArgs {
    /// Namespace of cAdvisor's DaemonSet [default: the --config file's `namespace`, else cadvisor].
    #[arg(short, long, value_name = "NAME", env = "CADVISOR_SETUP_NAMESPACE")]
    pub namespace: Option<String>,

    /// Name of cAdvisor's DaemonSet (whoever installed it) [default: cadvisor].
    #[arg(long, value_name = "NAME", env = "CADVISOR_SETUP_DAEMONSET")]
    pub daemonset: Option<String>,

    /// Check one metrics endpoint directly, e.g. http://127.0.0.1:8080/metrics.
    #[arg(long, value_name = "URL", conflicts_with = "metrics_file")]
    pub metrics_url: Option<String>,

    /// Check a saved metrics file (`-` for stdin); gzip is recognised.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Check through Prometheus: our targets are up on every node and a query by the relabelled
    /// pod/namespace/container labels finds a pod the kubelet reports. URL is Prometheus' base
    /// URL (e.g. http://127.0.0.1:9090 after `kubectl port-forward`); auto (the only Prometheus
    /// Operator Prometheus) or NAMESPACE/NAME is reached through the API server's service proxy.
    #[arg(
        long,
        value_name = "URL|auto|NS/NAME",
        conflicts_with_all = ["metrics_url", "metrics_file"]
    )]
    pub prometheus: Option<String>,

    /// How long to keep trying, e.g. 30s [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "CADVISOR_SETUP_TIMEOUT")]
    pub timeout: Option<std::time::Duration>,

    /// Nodes verified at once, 1 to 256 [default: 16].
    #[arg(long, value_name = "N", value_parser = parse_parallel, env = "CADVISOR_SETUP_PARALLEL")]
    pub parallel: Option<usize>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {
    /// Namespace of cAdvisor's DaemonSet [default: the --config file's `namespace`, else cadvisor].
    #[arg(short, long, value_name = "NAME", env = "CADVISOR_SETUP_NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct UninstallArgs {
    /// Namespace cAdvisor was installed in [default: the --config file's `namespace`, else cadvisor].
    #[arg(short, long, value_name = "NAME", env = "CADVISOR_SETUP_NAMESPACE")]
    pub namespace: Option<String>,

    /// How long to wait for the objects to be gone [default: 2m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "CADVISOR_SETUP_TIMEOUT")]
    pub timeout: Option<std::time::Duration>,
}

/// The value of a switch's environment variable (`CADVISOR_SETUP_YES=true`, for every switch
/// alike): true or false (also 1/0, yes/no, on/off); anything else is a usage error rather than
/// silently true.
pub fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(
            "expected true or false (or 1/0, yes/no, on/off); check the flag's CADVISOR_SETUP_* environment variable"
                .to_string(),
        ),
    }
}

/// The most nodes `--parallel` verifies at once.
pub const MAX_PARALLEL: usize = 256;

/// `--parallel N`: a whole number from 1 to [`MAX_PARALLEL`].
pub fn parse_parallel(text: &str) -> Result<usize, String> {
    let text = text.trim();
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_PARALLEL).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of nodes from 1 to {MAX_PARALLEL}"
        )),
    }
}

/// `90s`, `5m`, `1h`, `250ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 90s, 5m, 1h)"))?;
    let secs = |k: u64| std::time::Duration::from_secs(n.saturating_mul(k));
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        _ => Err(format!(
            "`{text}` has an unknown unit `{unit}` (use ms, s, m or h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn parallel_is_a_whole_number_from_1_to_256() {
        assert_eq!(parse_parallel("1"), Ok(1));
        assert_eq!(parse_parallel("16"), Ok(16));
        assert_eq!(parse_parallel("256"), Ok(256));
        for bad in ["0", "257", "-1", "x", "", "1.5", "99999999999999999999999"] {
            assert!(parse_parallel(bad).is_err(), "{bad}");
        }
    }
}
