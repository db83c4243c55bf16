//! Raw flags (`cli`, ripgrep's low args) → one validated `Settings` per command (high args),
//! before any I/O but reading the `--config` file itself.
//!
//! Precedence for every command: flag > environment (`CADVISOR_SETUP_<FLAG>`, folded into the
//! flag by clap) > `--config answers.yaml` > built-in default. Every value is checked here, so a
//! bad one is exit 2 before a host file is read, a socket probed or the API server contacted.
//!
//! Which command reads which answers-file key (the file is shared by every command, so a key
//! one command does not read is ignored by it, and a key no command reads is refused):
//!
//! | key | detect | render | install | verify | status | uninstall |
//! |---|---|---|---|---|---|---|
//! | `containerd-socket` | ✓ | ✓ | ✓ | | | |
//! | `namespace` | | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | `image`, `metrics`, `extra-label`, `containerd-namespace`, `cpu-*`, `memory-*`, `privileged`, `service-monitor`, `grafana-dashboard` | | ✓ | ✓ | | | |
//! | `timeout` | | | ✓ | ✓ | | ✓ |
//! | `force` | | | ✓ | | | |
//! | `label-nodes` (also `label_nodes`) | | ✓ | ✓ | | | |
//! | `parallel` | | | ✓ | ✓ | | |
//! | `prometheus`, `network-policy` | | | ✓ | | | |

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{
    DetectArgs, InstallArgs, NetworkPolicyMode, PrometheusChoice, RenderArgs, ServiceMonitorMode,
    StatusArgs, UninstallArgs, VerifyArgs, parse_duration, parse_parallel, parse_prometheus_choice,
};
use crate::input::ReadError;
use crate::options::{Answers, FlagSources, OptionsError, Picker, Resolved, ValueSource};
use crate::plan::PlanError;
use crate::validate;

/// A value that is not valid, wherever it came from: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(#[from] PlanError),
    #[error(
        "{field} {path} is not an absolute host path (e.g. /var/snap/microk8s/common/run/containerd.sock)"
    )]
    RelativeSocket { field: &'static str, path: String },
    #[error(
        "--prometheus `{value}`: {reason}; give Prometheus' base URL (http://HOST:PORT), auto, or NAMESPACE/NAME of a Prometheus object"
    )]
    Prometheus { value: String, reason: String },
    #[error("{field} `{value}` (from {source_name}): {reason}")]
    Value {
        field: &'static str,
        value: String,
        source_name: ValueSource,
        reason: String,
    },
    #[error(
        "--prometheus {choice} asks for a ServiceMonitor and --service-monitor never forbids one; drop one of them"
    )]
    PrometheusWithoutServiceMonitor { choice: String },
    #[error(transparent)]
    Options(#[from] OptionsError),
}

pub use crate::values::{Namespace, ObjectName};

/// The containerd socket as an absolute, normalised host path (the first authority, over the kubelet and runtime configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPath(PathBuf);

impl SocketPath {
    pub fn parse(field: &'static str, path: &Path) -> Result<SocketPath, SettingsError> {
        let Some(text) = path.to_str() else {
            return Err(PlanError::Invalid {
                field,
                value: path.display().to_string(),
                reason: "is not valid UTF-8".to_string(),
            }
            .into());
        };
        if !path.is_absolute() {
            return Err(SettingsError::RelativeSocket {
                field,
                path: text.to_string(),
            });
        }
        validate::absolute_file_path(field, text)?;
        Ok(SocketPath(path.to_path_buf()))
    }

    pub fn into_path(self) -> PathBuf {
        self.0
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// `--kubeconfig` (or `CADVISOR_SETUP_KUBECONFIG`): an existing regular file of at most
/// `input::MAX_INPUT_BYTES`. A file we may not read (no permission) is left to kubeconfig
/// discovery, whose message says what to do (the MicroK8s group, sudo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigPath(PathBuf);

impl KubeconfigPath {
    pub fn parse(path: &Path) -> Result<KubeconfigPath, SettingsError> {
        let limit = crate::input::MAX_INPUT_BYTES;
        match crate::input::open_regular(path, limit, crate::input::Follow::Links) {
            Err(
                source @ (ReadError::NotRegular { .. }
                | ReadError::TooLarge { .. }
                | ReadError::NotFound { .. }),
            ) => Err(OptionsError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            }
            .into()),
            _ => Ok(KubeconfigPath(path.to_path_buf())),
        }
    }
}

/// Picks flag (or its environment variable) over the answers file over the default
/// ([`Picker`]), and keeps the values to show with their sources for `-v`.
struct Pick<'a> {
    picker: Picker<'a>,
    shown: Vec<(&'static str, String)>,
}

impl<'a> Pick<'a> {
    fn new(flags: &'a dyn FlagSources) -> Self {
        Pick {
            picker: Picker::new(flags),
            shown: Vec::new(),
        }
    }

    fn pick<T>(
        &mut self,
        name: &'static str,
        id: &str,
        flag: Option<T>,
        file: Option<T>,
        default: T,
    ) -> T {
        self.picker.pick(name, id, flag, file).unwrap_or(default)
    }

    fn show(&mut self, name: &'static str, value: impl fmt::Display) {
        self.shown.push((name, value.to_string()));
    }

    fn describe(&self) -> Vec<String> {
        self.shown
            .iter()
            .map(|(name, value)| format!("{name} = {value} ({})", self.picker.source(name)))
            .collect()
    }
}

/// An answers-file value read with its flag's parser; a bad one names the key.
fn from_file<T>(
    field: &'static str,
    text: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, SettingsError> {
    text.map(|text| {
        parse(&text).map_err(|reason| SettingsError::Value {
            field,
            value: text.clone(),
            source_name: ValueSource::File,
            reason,
        })
    })
    .transpose()
}

fn duration(
    pick: &mut Pick<'_>,
    flag: Option<Duration>,
    answers: &Answers,
    default: Duration,
) -> Result<Duration, SettingsError> {
    let file = from_file("timeout", answers.timeout.clone(), parse_duration)?;
    let value = pick.pick("timeout", "timeout", flag, file, default);
    pick.show("timeout", format!("{}s", value.as_secs_f64()));
    Ok(value)
}

/// `--parallel` or the answers file's `parallel`: nodes verified at once, 1 to
/// [`crate::cli::MAX_PARALLEL`] (clap already checked the flag with the same parser).
fn parallel(
    pick: &mut Pick<'_>,
    flag: Option<usize>,
    answers: &Answers,
) -> Result<usize, SettingsError> {
    let file = from_file(
        "parallel",
        answers.parallel.map(|n| n.to_string()),
        parse_parallel,
    )?;
    let value = pick.pick(
        "parallel",
        "parallel",
        flag,
        file,
        crate::verify::DEFAULT_CONCURRENCY,
    );
    pick.show("parallel", value);
    Ok(value)
}

fn namespace(
    pick: &mut Pick<'_>,
    flag: Option<&String>,
    answers: &Answers,
) -> Result<Namespace, SettingsError> {
    let value = pick.pick(
        "namespace",
        "namespace",
        flag.cloned(),
        answers.namespace.clone(),
        crate::plan::DEFAULT_NAMESPACE.to_string(),
    );
    pick.show("namespace", &value);
    Ok(Namespace::parse("--namespace", &value)?)
}

/// `--containerd-socket` or the answers file's `containerd-socket`: an absolute host path.
fn socket(
    pick: &mut Pick<'_>,
    flag: Option<&PathBuf>,
    answers: &Answers,
) -> Result<Option<SocketPath>, SettingsError> {
    let field = match flag {
        Some(_) => "--containerd-socket",
        None => "containerd-socket (answers file)",
    };
    let file = answers.containerd_socket.clone();
    let path = pick.picker.pick(
        "containerd-socket",
        "containerd_socket",
        flag.cloned(),
        file,
    );
    path.map(|p| SocketPath::parse(field, &p)).transpose()
}

pub struct DetectSettings {
    pub containerd_socket: Option<SocketPath>,
    pub no_cluster: bool,
    /// `--cluster`: every node's facts and the node groups.
    pub cluster: bool,
    /// `--cluster`: nodes whose configz is read at once.
    pub parallel: usize,
    pub describe: Vec<String>,
}

pub fn detect(
    args: &DetectArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<DetectSettings, SettingsError> {
    let mut pick = Pick::new(flags);
    let containerd_socket = socket(&mut pick, args.socket.containerd_socket.as_ref(), answers)?;
    match &containerd_socket {
        Some(s) => pick.show("containerd-socket", s.as_path().display()),
        None => pick.show("containerd-socket", "(detected)"),
    }
    let parallel = parallel(&mut pick, args.parallel, answers)?;
    Ok(DetectSettings {
        containerd_socket,
        no_cluster: args.no_cluster,
        cluster: args.cluster,
        parallel,
        describe: pick.describe(),
    })
}

/// Plan values for `render` and `install`: precedence applied ([`crate::options::resolve`]),
/// then every value checked ([`crate::plan::check_options`]: namespace, image reference,
/// quantities and request ≤ limit, metric groups, labels, containerd namespace) and the socket
/// an absolute host path.
fn resolved(
    plan: &crate::cli::PlanArgs,
    socket_flag: Option<&PathBuf>,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<Resolved, SettingsError> {
    let socket = socket(&mut Pick::new(flags), socket_flag, answers)?;
    let mut resolved = crate::options::resolve(plan, socket_flag, flags, answers)?;
    resolved.containerd_socket = socket.map(SocketPath::into_path);
    crate::plan::check_options(&resolved.plan)?;
    Ok(resolved)
}

pub struct RenderSettings {
    pub resolved: Resolved,
    pub distro: Option<crate::host::DistroKind>,
    /// `--cluster`: from the live cluster's node facts.
    pub cluster: bool,
    /// `--cluster`: nodes whose configz is read at once.
    pub parallel: usize,
    pub out_dir: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    /// `--scrape-config`: print the plain-Prometheus scrape job instead of the manifests.
    pub scrape_config: bool,
    /// `--label-nodes` (with `--cluster`): DaemonSets select their nodes by our node label.
    pub label_nodes: bool,
}

pub fn render(
    args: &RenderArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<RenderSettings, SettingsError> {
    Ok(RenderSettings {
        resolved: resolved(
            &args.plan,
            args.socket.containerd_socket.as_ref(),
            flags,
            answers,
        )?,
        distro: args.distro,
        cluster: args.cluster,
        parallel: parallel(&mut Pick::new(flags), args.parallel, answers)?,
        out_dir: args.out_dir.clone(),
        templates: args.templates.clone(),
        scrape_config: args.scrape_config,
        label_nodes: label_nodes(&mut Pick::new(flags), args.label_nodes, answers),
    })
}

pub struct InstallSettings {
    pub resolved: Resolved,
    pub templates: Option<PathBuf>,
    pub timeout: Duration,
    pub force: bool,
    pub dry_run: bool,
    pub no_verify: bool,
    /// Nodes verified at once.
    pub parallel: usize,
    pub prometheus: PrometheusChoice,
    pub network_policy: NetworkPolicyMode,
    /// `--label-nodes`: consent to label each node with its group (several groups only).
    pub label_nodes: bool,
    /// `timeout`, `force` and `parallel` lines for `-v` (the plan values describe themselves).
    pub describe: Vec<String>,
}

pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
pub const UNINSTALL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn install(
    args: &InstallArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<InstallSettings, SettingsError> {
    let resolved = resolved(
        &args.plan,
        args.socket.containerd_socket.as_ref(),
        flags,
        answers,
    )?;
    let mut pick = Pick::new(flags);
    let timeout = duration(&mut pick, args.timeout, answers, INSTALL_TIMEOUT)?;
    let force = pick.pick(
        "force",
        "force",
        pick.picker.given_switch("force", args.force).filter(|f| *f),
        answers.force,
        false,
    );
    pick.show("force", force);
    let label_nodes = label_nodes(&mut pick, args.label_nodes, answers);
    let parallel = parallel(&mut pick, args.parallel, answers)?;
    let file_choice = from_file(
        "prometheus",
        answers.prometheus.clone(),
        parse_prometheus_choice,
    )?;
    let prometheus = pick.pick(
        "prometheus",
        "prometheus",
        args.prometheus.clone(),
        file_choice,
        PrometheusChoice::Auto,
    );
    pick.show("prometheus", &prometheus);
    let explicit = matches!(prometheus, PrometheusChoice::Named { .. });
    if explicit && resolved.service_monitor == ServiceMonitorMode::Never {
        return Err(SettingsError::PrometheusWithoutServiceMonitor {
            choice: prometheus.to_string(),
        });
    }
    let network_policy = pick.pick(
        "network-policy",
        "network_policy",
        args.network_policy,
        answers.network_policy,
        NetworkPolicyMode::Auto,
    );
    pick.show(
        "network-policy",
        format!("{network_policy:?}").to_lowercase(),
    );
    Ok(InstallSettings {
        resolved,
        templates: args.templates.clone(),
        timeout,
        force,
        dry_run: args.dry_run,
        no_verify: args.no_verify,
        parallel,
        prometheus,
        network_policy,
        label_nodes,
        describe: pick.describe(),
    })
}

/// `--label-nodes` (or `CADVISOR_SETUP_LABEL_NODES`, checked by clap with
/// [`crate::cli::parse_switch`]) or the answers file's `label-nodes` (a YAML boolean, checked
/// when the file is read): the user's consent to label nodes. Off by default.
fn label_nodes(pick: &mut Pick<'_>, flag: bool, answers: &Answers) -> bool {
    let given = pick.picker.given_switch("label_nodes", flag);
    let value = pick.pick(
        "label-nodes",
        "label_nodes",
        given,
        answers.label_nodes,
        false,
    );
    pick.show("label-nodes", value);
    value
}

/// `verify --prometheus`: where Prometheus' API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrometheusTarget {
    /// A base URL, checked (http or https, with a host) before any I/O.
    Url(String),
    /// The Prometheus Operator's Prometheus: the only one (`auto`) or `NAMESPACE/NAME` (never
    /// `none`), through the API server's service proxy.
    Operator(PrometheusChoice),
}

impl PrometheusTarget {
    pub fn parse(value: &str) -> Result<PrometheusTarget, SettingsError> {
        let bad = |reason: String| SettingsError::Prometheus {
            value: value.to_string(),
            reason,
        };
        if !value.contains("://") {
            return match parse_prometheus_choice(value) {
                Ok(PrometheusChoice::None) => {
                    Err(bad("`none` leaves nothing to verify through".to_string()))
                }
                Ok(choice) => Ok(PrometheusTarget::Operator(choice)),
                // The choice's own message offers `none`, which verify refuses.
                Err(_) => Err(bad(
                    "neither a URL (no ://) nor NAMESPACE/NAME (two DNS-1123 labels)".to_string(),
                )),
            };
        }
        if value.contains('?') || value.contains('#') {
            return Err(bad("a base URL has no query or fragment".to_string()));
        }
        // Credentials in a URL would be printed in every report; none are sent either.
        let authority = value
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .unwrap_or("");
        if let Some((_, host)) = authority.rsplit_once('@') {
            // Not echoed: the message would put the password in a terminal or a CI log.
            let (scheme, rest) = value.split_once("://").unwrap_or(("http", value));
            let path = &rest[rest.find('/').unwrap_or(rest.len())..];
            return Err(SettingsError::Prometheus {
                value: format!("{scheme}://…@{host}{path}"),
                reason: "credentials in the URL are not supported".to_string(),
            });
        }
        // The reason alone: the fetcher's own advice is a cAdvisor /metrics URL.
        crate::verify::http::check_url(value).map_err(|e| match e {
            crate::verify::http::FetchError::BadUrl { reason, .. } => bad(reason),
            other => bad(other.to_string()),
        })?;
        Ok(PrometheusTarget::Url(value.to_string()))
    }
}

pub struct VerifySettings {
    pub namespace: Namespace,
    pub daemonset: ObjectName,
    pub metrics_url: Option<String>,
    pub metrics_file: Option<PathBuf>,
    pub prometheus: Option<PrometheusTarget>,
    pub timeout: Duration,
    /// Nodes verified at once.
    pub parallel: usize,
    pub describe: Vec<String>,
}

pub fn verify(
    args: &VerifyArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<VerifySettings, SettingsError> {
    let mut pick = Pick::new(flags);
    let namespace = namespace(&mut pick, args.namespace.as_ref(), answers)?;
    let daemonset = pick.pick(
        "daemonset",
        "daemonset",
        args.daemonset.clone(),
        None,
        crate::plan::NAME.to_string(),
    );
    pick.show("daemonset", &daemonset);
    let daemonset = ObjectName::parse("--daemonset", &daemonset)?;
    let timeout = duration(&mut pick, args.timeout, answers, VERIFY_TIMEOUT)?;
    let parallel = parallel(&mut pick, args.parallel, answers)?;
    Ok(VerifySettings {
        namespace,
        daemonset,
        metrics_url: args.metrics_url.clone(),
        metrics_file: args.metrics_file.clone(),
        prometheus: args
            .prometheus
            .as_deref()
            .map(PrometheusTarget::parse)
            .transpose()?,
        timeout,
        parallel,
        describe: pick.describe(),
    })
}

pub struct StatusSettings {
    pub namespace: Namespace,
    pub describe: Vec<String>,
}

pub fn status(
    args: &StatusArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<StatusSettings, SettingsError> {
    let mut pick = Pick::new(flags);
    let namespace = namespace(&mut pick, args.namespace.as_ref(), answers)?;
    Ok(StatusSettings {
        namespace,
        describe: pick.describe(),
    })
}

pub struct UninstallSettings {
    pub namespace: Namespace,
    pub timeout: Duration,
    pub describe: Vec<String>,
}

pub fn uninstall(
    args: &UninstallArgs,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<UninstallSettings, SettingsError> {
    let mut pick = Pick::new(flags);
    let namespace = namespace(&mut pick, args.namespace.as_ref(), answers)?;
    let timeout = duration(&mut pick, args.timeout, answers, UNINSTALL_TIMEOUT)?;
    Ok(UninstallSettings {
        namespace,
        timeout,
        describe: pick.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{PlanArgs, SocketArgs};
    use crate::options::NoFlags;

    fn answers(text: &str) -> Answers {
        Answers::parse(text).unwrap()
    }

    #[test]
    fn the_answers_namespace_reaches_verify_status_and_uninstall() {
        let a = answers("namespace: monitoring\ntimeout: 7m\n");
        let u = uninstall(&UninstallArgs::default(), &NoFlags, &a).unwrap();
        assert_eq!(u.namespace.as_str(), "monitoring");
        assert_eq!(u.timeout, Duration::from_secs(420));
        assert!(
            u.describe
                .contains(&"namespace = monitoring (config file)".to_string()),
            "{:?}",
            u.describe
        );
        let s = status(&StatusArgs::default(), &NoFlags, &a).unwrap();
        assert_eq!(s.namespace.as_str(), "monitoring");
        let v = verify(&VerifyArgs::default(), &NoFlags, &a).unwrap();
        assert_eq!(v.namespace.as_str(), "monitoring");
        assert_eq!(v.timeout, Duration::from_secs(420));
        // Without a file: the built-in defaults.
        let u = uninstall(&UninstallArgs::default(), &NoFlags, &Answers::default()).unwrap();
        assert_eq!(u.namespace.as_str(), "cadvisor");
        assert_eq!(u.timeout, UNINSTALL_TIMEOUT);
        // A flag beats the file.
        let u = uninstall(
            &UninstallArgs {
                namespace: Some("flagged".into()),
                timeout: Some(Duration::from_secs(1)),
            },
            &NoFlags,
            &a,
        )
        .unwrap();
        assert_eq!(u.namespace.as_str(), "flagged");
        assert_eq!(u.timeout, Duration::from_secs(1));
    }

    fn install_args(plan: PlanArgs, socket: Option<&str>) -> InstallArgs {
        InstallArgs {
            plan,
            socket: SocketArgs {
                containerd_socket: socket.map(PathBuf::from),
            },
            ..InstallArgs::default()
        }
    }

    /// `install` with no flag, reading `answers`.
    fn install_from(answers: &Answers) -> Result<InstallSettings, SettingsError> {
        install(&install_args(PlanArgs::default(), None), &NoFlags, answers)
    }

    #[test]
    fn label_nodes_is_off_unless_consented_by_flag_or_answers_file() {
        for (text, consent) in [
            ("", false),
            ("label-nodes: true\n", true),
            ("label_nodes: true\n", true),
            ("label-nodes: false\n", false),
        ] {
            let s = install_from(&answers(text)).unwrap();
            assert_eq!(s.label_nodes, consent, "{text:?}");
        }
        let args = InstallArgs {
            label_nodes: true,
            ..InstallArgs::default()
        };
        struct Given;
        impl FlagSources for Given {
            fn source_of(&self, id: &str) -> Option<ValueSource> {
                (id == "label_nodes").then_some(ValueSource::Flag)
            }
        }
        let s = install(&args, &Given, &answers("label-nodes: false\n")).unwrap();
        assert!(s.label_nodes, "the flag beats the file");
        assert!(
            s.describe
                .contains(&"label-nodes = true (flag)".to_string()),
            "{:?}",
            s.describe
        );
    }

    #[test]
    fn timeout_and_force_from_the_answers_file_are_honoured() {
        let s = install_from(&answers("timeout: 90s\nforce: true\n")).unwrap();
        assert_eq!(s.timeout, Duration::from_secs(90));
        assert!(s.force);
        let s = install_from(&Answers::default()).unwrap();
        assert_eq!(s.timeout, INSTALL_TIMEOUT);
        assert!(!s.force);
        let e = install_from(&answers("timeout: soon\n")).err().unwrap();
        assert!(e.to_string().contains("timeout `soon`"), "{e}");
    }

    #[test]
    fn parallel_comes_from_the_flag_or_the_answers_file_and_stays_in_range() {
        let verify_args = |parallel| VerifyArgs {
            parallel,
            ..VerifyArgs::default()
        };
        let v = verify(&verify_args(None), &NoFlags, &Answers::default()).unwrap();
        assert_eq!(v.parallel, crate::verify::DEFAULT_CONCURRENCY);
        let a = answers("parallel: 4\n");
        let v = verify(&verify_args(None), &NoFlags, &a).unwrap();
        assert_eq!(v.parallel, 4);
        assert!(
            v.describe
                .contains(&"parallel = 4 (config file)".to_string()),
            "{:?}",
            v.describe
        );
        let v = verify(&verify_args(Some(2)), &NoFlags, &a).unwrap();
        assert_eq!(v.parallel, 2);
        let s = install_from(&a).unwrap();
        assert_eq!(s.parallel, 4);
        for text in ["parallel: 0\n", "parallel: 257\n"] {
            let a = answers(text);
            let e = verify(&verify_args(None), &NoFlags, &a).err().unwrap();
            assert!(e.to_string().contains("from 1 to 256"), "{e}");
            assert!(install_from(&a).is_err(), "{text}");
        }
        for text in ["parallel: x\n", "parallel: -1\n"] {
            assert!(Answers::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn every_bad_value_is_refused_whatever_its_source() {
        let bad_flags = [
            PlanArgs {
                cpu_limit: Some("xyz".into()),
                ..PlanArgs::default()
            },
            PlanArgs {
                namespace: Some("Not_A_Label".into()),
                ..PlanArgs::default()
            },
            PlanArgs {
                image: Some("bad image".into()),
                ..PlanArgs::default()
            },
            PlanArgs {
                memory_request: Some("2Gi".into()),
                memory_limit: Some("1Gi".into()),
                ..PlanArgs::default()
            },
        ];
        for plan in bad_flags {
            let shown = format!("{plan:?}");
            assert!(
                install(&install_args(plan, None), &NoFlags, &Answers::default()).is_err(),
                "{shown}"
            );
        }
        for text in [
            "cpu-limit: xyz\n",
            "namespace: Not_A_Label\n",
            "containerd-socket: run/containerd.sock\n",
            "metrics: [cpu, nonsense]\n",
        ] {
            let a = answers(text);
            assert!(install_from(&a).is_err(), "{text}");
        }
        for relative in ["containerd.sock", "./run/containerd.sock"] {
            let e = install(
                &install_args(PlanArgs::default(), Some(relative)),
                &NoFlags,
                &Answers::default(),
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains("not an absolute host path"), "{e}");
        }
    }

    #[test]
    fn prometheus_is_a_url_auto_or_a_prometheus_object() {
        assert_eq!(
            PrometheusTarget::parse("http://127.0.0.1:9090").unwrap(),
            PrometheusTarget::Url("http://127.0.0.1:9090".into())
        );
        assert_eq!(
            PrometheusTarget::parse("auto").unwrap(),
            PrometheusTarget::Operator(PrometheusChoice::Auto)
        );
        assert_eq!(
            PrometheusTarget::parse("observability/kube-prom-stack-kube-prome-prometheus").unwrap(),
            PrometheusTarget::Operator(PrometheusChoice::Named {
                namespace: "observability".into(),
                name: "kube-prom-stack-kube-prome-prometheus".into()
            })
        );
        for bad in [
            "none",
            "127.0.0.1:9090",
            "ftp://x/",
            "http://u:p@host:9090",
            "http://host:9090/?x=1",
            "Not/A_Name",
        ] {
            assert!(PrometheusTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_kubeconfig_flag_must_name_an_existing_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let missing = dir.path().join("missing");
        for bad in [
            fifo.as_path(),
            Path::new("/dev/zero"),
            dir.path(),
            missing.as_path(),
        ] {
            let e = KubeconfigPath::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("pass a regular kubeconfig file"),
                "{e}"
            );
        }
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "apiVersion: v1\n").unwrap();
        assert_eq!(KubeconfigPath::parse(&ok).unwrap().0, ok);
    }
}
