//! Validated values: each newtype can only hold text its check accepted, so whatever holds one
//! (the plan options, a command's settings) needs no check of its own. Built once, when flags,
//! environment and answers file are resolved (`crate::settings`), before any I/O.

use std::fmt;

use serde::Serialize;

use crate::plan::PlanError;
use crate::validate::{self, QuantityKind};

/// A text newtype whose `parse` runs `$check(field, value)`.
macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// `value` when it passes the check; the error names `field`.
            pub fn parse(field: &'static str, value: &str) -> Result<Self, PlanError> {
                let check: fn(&'static str, &str) -> Result<(), PlanError> = $check;
                check(field, value)?;
                Ok($name(value.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A built-in default (a constant; `tests::built_in_defaults_parse` checks each).
            pub fn built_in(text: &'static str) -> Self {
                $name(text.to_string())
            }
        }

        impl std::str::FromStr for $name {
            type Err = PlanError;
            fn from_str(value: &str) -> Result<Self, PlanError> {
                Self::parse(stringify!($name), value)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

checked_text!(
    /// A Kubernetes namespace name (DNS-1123 label).
    Namespace,
    validate::dns1123_label
);
checked_text!(
    /// An object name (the DaemonSet's): a DNS-1123 label, what we create and what
    /// `--daemonset` names in practice.
    ObjectName,
    validate::dns1123_label
);
checked_text!(
    /// A container image reference (`registry/path:tag` or `@sha256:...`).
    Image,
    validate::image_reference
);
checked_text!(
    /// A containerd namespace (`k8s.io`).
    ContainerdNamespace,
    validate::containerd_namespace
);
checked_text!(
    /// A container label key for cAdvisor's whitelist (`io.kubernetes.pod.uid`).
    ContainerLabel,
    validate::label_key
);
checked_text!(
    /// One of cAdvisor's metric groups (`cpu`, `memory`, ...).
    MetricGroup,
    validate::metric_name
);
checked_text!(
    /// A CPU quantity in the Kubernetes grammar (`100m`, `1`), positive and not finer than 1m.
    CpuQuantity,
    |field, value| validate::quantity(field, value, QuantityKind::Cpu).map(|_| ())
);
checked_text!(
    /// A memory quantity in the Kubernetes grammar (`200Mi`), a positive whole number of bytes.
    MemoryQuantity,
    |field, value| validate::quantity(field, value, QuantityKind::Memory).map(|_| ())
);

impl CpuQuantity {
    /// Milli-CPUs (the text was checked, so it parses).
    pub fn millis(&self) -> Result<u128, PlanError> {
        validate::quantity("cpu", &self.0, QuantityKind::Cpu)
    }
}

impl MemoryQuantity {
    pub fn bytes(&self) -> Result<u128, PlanError> {
        validate::quantity("memory", &self.0, QuantityKind::Memory)
    }
}

/// The items as text, `sep`-separated (`cpu,memory`).
pub fn join<T: std::ops::Deref<Target = str>>(items: &[T], sep: &str) -> String {
    items.iter().map(|i| &**i).collect::<Vec<&str>>().join(sep)
}

/// Parses every item of a list.
pub fn parse_all<T>(
    field: &'static str,
    items: &[String],
    parse: fn(&'static str, &str) -> Result<T, PlanError>,
) -> Result<Vec<T>, PlanError> {
    items.iter().map(|i| parse(field, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_parse() {
        use crate::plan::*;
        assert!(Namespace::parse("--namespace", DEFAULT_NAMESPACE).is_ok());
        assert!(ObjectName::parse("--daemonset", NAME).is_ok());
        assert!(Image::parse("--image", DEFAULT_IMAGE).is_ok());
        assert!(CpuQuantity::parse("--cpu-request", DEFAULT_CPU_REQUEST).is_ok());
        assert!(CpuQuantity::parse("--cpu-limit", DEFAULT_CPU_LIMIT).is_ok());
        assert!(MemoryQuantity::parse("--memory-request", DEFAULT_MEMORY_REQUEST).is_ok());
        assert!(MemoryQuantity::parse("--memory-limit", DEFAULT_MEMORY_LIMIT).is_ok());
        for m in DEFAULT_METRICS {
            assert!(MetricGroup::parse("--metrics", m).is_ok(), "{m}");
        }
    }

    #[test]
    fn each_value_holds_only_what_its_check_accepts() {
        assert_eq!(
            Namespace::parse("--namespace", "monitoring").unwrap(),
            "monitoring"
        );
        assert!(Namespace::parse("--namespace", "Not_A_Name").is_err());
        assert!(Image::parse("--image", "ghcr.io/google/cadvisor:0.60.5").is_ok());
        assert!(Image::parse("--image", "a b").is_err());
        assert!(CpuQuantity::parse("--cpu-limit", "xyz").is_err());
        assert_eq!(
            CpuQuantity::parse("--cpu-limit", "1")
                .unwrap()
                .millis()
                .unwrap(),
            1000
        );
        assert!(MemoryQuantity::parse("--memory-limit", "0").is_err());
        assert!(ContainerdNamespace::parse("--containerd-namespace", "k8s.io").is_ok());
        assert!(ContainerLabel::parse("--extra-label", "a,b").is_err());
        assert!(MetricGroup::parse("--metrics", "cpu").is_ok());
        let err = Namespace::parse("--namespace", "-x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--namespace"), "{err}");
        // Serialised and printed as the plain text.
        let ns = Namespace::parse("--namespace", "cadvisor").unwrap();
        assert_eq!(serde_json::to_value(&ns).unwrap(), "cadvisor");
        assert_eq!(format!("{ns}"), "cadvisor");
    }
}
