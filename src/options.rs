//! Raw flags (`cli`) → options with the source of each value, by precedence
//! flag > environment (`CADVISOR_SETUP_<FLAG>`) > `--config answers.yaml` > detected/built-in default.
//!
//! clap already folds the environment into each flag and tells us which of the two a value came
//! from ([`clap::parser::ValueSource`]); the answers file fills what neither gave.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::{GrafanaDashboardMode, PlanArgs, ServiceMonitorMode};
use crate::input::ReadError;
use crate::plan::{PlanError, PlanOptions};
use crate::values::{
    self, ContainerLabel, ContainerdNamespace, CpuQuantity, Image, MemoryQuantity, MetricGroup,
    Namespace,
};

/// Where a value came from, for `-v` and the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueSource {
    Flag,
    Env,
    File,
    Prompt,
    Default,
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueSource::Flag => "flag",
            ValueSource::Env => "environment",
            ValueSource::File => "config file",
            ValueSource::Prompt => "answer",
            ValueSource::Default => "default",
        })
    }
}

/// Asks clap where a flag's value came from (flag or environment). Keys are clap argument ids
/// (the field names of [`PlanArgs`], e.g. `cpu_request`).
pub trait FlagSources {
    fn source_of(&self, id: &str) -> Option<ValueSource>;
}

impl FlagSources for clap::ArgMatches {
    fn source_of(&self, id: &str) -> Option<ValueSource> {
        let matches = match self.subcommand() {
            Some((_, sub)) => sub,
            None => self,
        };
        matches.try_get_raw(id).ok().flatten()?;
        match matches.value_source(id) {
            Some(clap::parser::ValueSource::CommandLine) => Some(ValueSource::Flag),
            Some(clap::parser::ValueSource::EnvVariable) => Some(ValueSource::Env),
            _ => None,
        }
    }
}

/// No flag given at all (tests).
#[cfg(test)]
pub struct NoFlags;

#[cfg(test)]
impl FlagSources for NoFlags {
    fn source_of(&self, _id: &str) -> Option<ValueSource> {
        None
    }
}

/// The `--config answers.yaml` file: keys are the long flag names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Answers {
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub metrics: Option<StringList>,
    #[serde(alias = "extra-labels")]
    pub extra_label: Option<StringList>,
    pub containerd_namespace: Option<String>,
    pub containerd_socket: Option<PathBuf>,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    pub privileged: Option<bool>,
    pub service_monitor: Option<ServiceMonitorMode>,
    pub grafana_dashboard: Option<GrafanaDashboardMode>,
    pub timeout: Option<String>,
    pub force: Option<bool>,
    pub parallel: Option<u64>,
    pub prometheus: Option<String>,
    pub network_policy: Option<crate::cli::NetworkPolicyMode>,
    #[serde(alias = "label_nodes")]
    pub label_nodes: Option<bool>,
}

/// `metrics: cpu,memory` or `metrics: [cpu, memory]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StringList {
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub fn items(&self) -> Vec<String> {
        match self {
            StringList::One(s) => split_list(s),
            StringList::Many(v) => v.iter().map(|s| s.trim().to_string()).collect(),
        }
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The largest answers file (`--config`) we read.
pub const MAX_ANSWERS_FILE: u64 = crate::input::MAX_INPUT_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "--config: cannot use the answers file: {source}\n  give a regular YAML file of at most {} whose keys are flag names, e.g. `namespace: monitoring`",
        crate::input::human(MAX_ANSWERS_FILE)
    )]
    Read {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error(
        "--kubeconfig: {source}\n  pass a regular kubeconfig file of at most {} (MicroK8s: /var/snap/microk8s/current/credentials/client.config)",
        crate::input::human(crate::input::MAX_INPUT_BYTES)
    )]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: ReadError,
    },
    #[error(
        "the answers file {path} is not valid: {reason}\n  keys are flag names, e.g. `namespace: monitoring`, `privileged: true`, `metrics: [cpu, memory]`"
    )]
    Parse { path: PathBuf, reason: String },
}

impl Answers {
    /// Reads `--config`: a regular file of at most [`MAX_ANSWERS_FILE`] bytes (a FIFO or a
    /// device is refused without blocking; exit 2 like any bad flag value).
    pub fn load(path: &Path) -> Result<Answers, OptionsError> {
        let text = crate::input::read_bounded(path, MAX_ANSWERS_FILE).map_err(|source| {
            OptionsError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Answers::parse(&text).map_err(|reason| OptionsError::Parse {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Answers, String> {
        if text.trim().is_empty() {
            return Ok(Answers::default());
        }
        // serde-saphyr's message starts with "error: " and repeats itself under a snippet of
        // the file; its first line already names the line, column and what was wrong.
        serde_saphyr::from_str(text).map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        })
    }
}

/// Plan options plus where each came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub plan: PlanOptions,
    pub service_monitor: ServiceMonitorMode,
    pub grafana_dashboard: GrafanaDashboardMode,
    pub containerd_socket: Option<PathBuf>,
    /// Option name (long flag) → source.
    pub sources: BTreeMap<&'static str, ValueSource>,
}

impl Resolved {
    pub fn source(&self, name: &str) -> ValueSource {
        source_in(&self.sources, name)
    }

    /// `namespace = cadvisor (default)` lines for `-v`.
    pub fn describe(&self) -> Vec<String> {
        let p = &self.plan;
        let or = |v: Option<&str>, default: &str| v.unwrap_or(default).to_string();
        let resources = crate::plan::Resources::of(p);
        let rows: Vec<(&str, String)> = vec![
            ("namespace", p.namespace.to_string()),
            ("image", p.image.to_string()),
            (
                "metrics",
                p.metrics.as_ref().map_or_else(
                    || crate::plan::DEFAULT_METRICS.join(","),
                    |m| values::join(m, ","),
                ),
            ),
            (
                "extra-label",
                if p.extra_labels.is_empty() {
                    "none".to_string()
                } else {
                    values::join(&p.extra_labels, ",")
                },
            ),
            (
                "containerd-namespace",
                or(p.containerd_namespace.as_deref(), "detected, else k8s.io"),
            ),
            (
                "containerd-socket",
                self.containerd_socket
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_else(|| "detected (render --distro: the distribution's)".into()),
            ),
            ("cpu-request", resources.cpu_request),
            ("cpu-limit", resources.cpu_limit),
            ("memory-request", resources.memory_request),
            ("memory-limit", resources.memory_limit),
            ("privileged", p.privileged.to_string()),
            (
                "service-monitor",
                format!("{:?}", self.service_monitor).to_lowercase(),
            ),
            (
                "grafana-dashboard",
                format!("{:?}", self.grafana_dashboard).to_lowercase(),
            ),
        ];
        rows.into_iter()
            .map(|(name, value)| format!("{name} = {value} ({})", self.source(name)))
            .collect()
    }
}

/// Where the value of option `name` came from: a recorded source, else its default.
fn source_in(sources: &BTreeMap<&'static str, ValueSource>, name: &str) -> ValueSource {
    sources.get(name).copied().unwrap_or(ValueSource::Default)
}

/// Picks a flag's (or its environment variable's) value over the answers file's, and records
/// which one it took (for `-v` and the JSON report).
pub(crate) struct Picker<'a> {
    flags: &'a dyn FlagSources,
    sources: BTreeMap<&'static str, ValueSource>,
}

impl<'a> Picker<'a> {
    pub(crate) fn new(flags: &'a dyn FlagSources) -> Self {
        Picker {
            flags,
            sources: BTreeMap::new(),
        }
    }

    /// Where option `name`'s value came from ([`ValueSource::Default`] when nothing gave it).
    pub(crate) fn source(&self, name: &str) -> ValueSource {
        source_in(&self.sources, name)
    }

    /// A switch without a value (`--force`): given only when clap says it came from the
    /// command line or the environment.
    pub(crate) fn given_switch(&self, id: &str, value: bool) -> Option<bool> {
        self.flags.source_of(id).map(|_| value)
    }

    /// The flag's value (clap `id`) or else the file's, `None` when neither gave one.
    pub(crate) fn pick<T>(
        &mut self,
        name: &'static str,
        id: &str,
        from_flag: Option<T>,
        from_file: Option<T>,
    ) -> Option<T> {
        if let Some(v) = from_flag {
            let source = self.flags.source_of(id).unwrap_or(ValueSource::Flag);
            self.sources.insert(name, source);
            return Some(v);
        }
        if let Some(v) = from_file {
            self.sources.insert(name, ValueSource::File);
            return Some(v);
        }
        None
    }
}

/// Applies the precedence flag > env > file > default, and parses every plan value into its
/// checked type (`crate::values`): a bad one is an error naming its flag.
pub fn resolve(
    args: &PlanArgs,
    containerd_socket: Option<&PathBuf>,
    flags: &dyn FlagSources,
    answers: &Answers,
) -> Result<Resolved, PlanError> {
    let defaults = PlanOptions::default();
    let mut picker = Picker::new(flags);
    // A value given as the flag `--$name` (clap id `$field`) or the answers file's `$name`.
    macro_rules! pick {
        ($name:literal, $field:ident) => {
            picker.pick(
                $name,
                stringify!($field),
                Clone::clone(&args.$field),
                Clone::clone(&answers.$field),
            )
        };
    }
    // The same, parsed into its type: a bad value is an error naming its flag `--$name`.
    macro_rules! parsed {
        ($name:literal, $field:ident, $type:ty) => {
            pick!($name, $field)
                .map(|v| <$type>::parse(concat!("--", $name), &v))
                .transpose()?
        };
    }
    let namespace = parsed!("namespace", namespace, Namespace);
    let image = parsed!("image", image, Image);
    let metrics = picker.pick(
        "metrics",
        "metrics",
        args.metrics.clone(),
        answers.metrics.as_ref().map(|m| m.items().join(",")),
    );
    let metrics = metrics
        .map(|m| values::parse_all("--metrics", &split_list(&m), MetricGroup::parse))
        .transpose()?;
    let extra = picker.pick(
        "extra-label",
        "extra_labels",
        (!args.extra_labels.is_empty()).then(|| args.extra_labels.join(",")),
        answers.extra_label.as_ref().map(|m| m.items().join(",")),
    );
    let extra_labels = values::parse_all(
        "--extra-label",
        &extra.map(|m| split_list(&m)).unwrap_or_default(),
        ContainerLabel::parse,
    )?;
    let containerd_namespace = parsed!(
        "containerd-namespace",
        containerd_namespace,
        ContainerdNamespace
    );
    let cpu_request = parsed!("cpu-request", cpu_request, CpuQuantity);
    let cpu_limit = parsed!("cpu-limit", cpu_limit, CpuQuantity);
    let memory_request = parsed!("memory-request", memory_request, MemoryQuantity);
    let memory_limit = parsed!("memory-limit", memory_limit, MemoryQuantity);
    let socket = picker.pick(
        "containerd-socket",
        "containerd_socket",
        containerd_socket.map(|p| p.display().to_string()),
        answers
            .containerd_socket
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    let privileged = pick!("privileged", privileged).unwrap_or(defaults.privileged);
    let service_monitor =
        pick!("service-monitor", service_monitor).unwrap_or(ServiceMonitorMode::Auto);
    let grafana_dashboard =
        pick!("grafana-dashboard", grafana_dashboard).unwrap_or(GrafanaDashboardMode::Auto);

    Ok(Resolved {
        plan: PlanOptions {
            namespace: namespace.unwrap_or(defaults.namespace),
            image: image.unwrap_or(defaults.image),
            metrics,
            extra_labels,
            containerd_namespace,
            cpu_request,
            cpu_limit,
            memory_request,
            memory_limit,
            privileged,
            service_monitor: service_monitor == ServiceMonitorMode::Always,
            grafana_dashboard: grafana_dashboard == GrafanaDashboardMode::Always,
            ..PlanOptions::default()
        },
        service_monitor,
        grafana_dashboard,
        containerd_socket: socket.map(PathBuf::from),
        sources: picker.sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AllFromEnv;
    impl FlagSources for AllFromEnv {
        fn source_of(&self, _id: &str) -> Option<ValueSource> {
            Some(ValueSource::Env)
        }
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let args = PlanArgs {
            namespace: Some("from-flag".into()),
            ..PlanArgs::default()
        };
        let answers = Answers::parse(
            "namespace: from-file\nimage: registry.local/cadvisor:1\nprivileged: true\nmetrics: [cpu, memory]\n",
        )
        .unwrap();
        let r = resolve(&args, None, &NoFlags, &answers).unwrap();
        assert_eq!(r.plan.namespace, "from-flag");
        assert_eq!(r.source("namespace"), ValueSource::Flag);
        assert_eq!(r.plan.image, "registry.local/cadvisor:1");
        assert_eq!(r.source("image"), ValueSource::File);
        assert!(r.plan.privileged);
        assert_eq!(
            r.plan.metrics,
            Some(vec!["cpu".parse().unwrap(), "memory".parse().unwrap()])
        );
        assert_eq!(r.plan.cpu_request, None);
        assert_eq!(r.source("cpu-request"), ValueSource::Default);
    }

    #[test]
    fn env_is_reported_as_env() {
        let args = PlanArgs {
            image: Some("x/y:1".into()),
            ..PlanArgs::default()
        };
        let r = resolve(&args, None, &AllFromEnv, &Answers::default()).unwrap();
        assert_eq!(r.source("image"), ValueSource::Env);
        assert!(
            r.describe()
                .iter()
                .any(|l| l == "image = x/y:1 (environment)")
        );
    }

    #[test]
    fn unknown_keys_in_answers_are_refused() {
        let err = Answers::parse("namespace: x\nnamespce: typo\n").unwrap_err();
        assert!(err.contains("namespce"), "{err}");
        // Said once, on one line, where it is: no "error: " inside our own error, no snippet.
        assert!(
            err.starts_with("line 2 column 1: unknown field `namespce`"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(err.matches("expected one of").count(), 1, "{err}");
    }

    #[test]
    fn comma_string_and_list_are_equivalent() {
        let a = Answers::parse("extra-label: a.b/c, d\n").unwrap();
        let b = Answers::parse("extra-label: [a.b/c, d]\n").unwrap();
        assert_eq!(
            a.extra_label.unwrap().items(),
            b.extra_label.unwrap().items()
        );
    }

    #[test]
    fn an_answers_file_must_be_a_small_regular_file() {
        use crate::input::{FileKind, ReadError};
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("answers.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_ANSWERS_FILE + 1)
            .unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(&ok, "namespace: monitoring\n").unwrap();
        assert_eq!(
            Answers::load(&ok).unwrap().namespace.as_deref(),
            Some("monitoring")
        );
        for (path, kind) in [
            (fifo.as_path(), Some(FileKind::Fifo)),
            (Path::new("/dev/zero"), Some(FileKind::CharDevice)),
            (dir.path(), Some(FileKind::Directory)),
            (big.as_path(), None),
        ] {
            let e = Answers::load(path).unwrap_err();
            match (&e, kind) {
                (
                    OptionsError::Read {
                        source: ReadError::NotRegular { kind: found, .. },
                        ..
                    },
                    Some(kind),
                ) => assert_eq!(*found, kind),
                (
                    OptionsError::Read {
                        source: ReadError::TooLarge { .. },
                        ..
                    },
                    None,
                ) => {}
                _ => panic!("{}: {e:?}", path.display()),
            }
            assert!(e.to_string().starts_with("--config: "), "{e}");
        }
    }
}
