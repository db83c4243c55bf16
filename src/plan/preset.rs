//! `--distro`: host facts of a distribution's defaults, for rendering manifests for a node you are
//! not on. Nothing is read from this host. Paths and drivers: [`crate::host::layout`].

use std::path::PathBuf;

use crate::host::{
    Cgroup, CgroupDriver, CgroupMode, DistroKind, HostFacts, Kubelet, Runtime, RuntimeKind, layout,
};

/// The default runtime socket and cgroup driver of a distribution, from [`layout`].
struct Defaults {
    socket: &'static str,
    driver: Option<CgroupDriver>,
    /// Where the facts come from, for the report.
    source: String,
}

fn defaults(kind: DistroKind) -> Defaults {
    let l = layout::of(kind);
    let socket = l.sockets.first().copied().unwrap_or(layout::Cited {
        value: layout::CONTAINERD_DEFAULT_SOCKET,
        source: "containerd/containerd: defaults/defaults_unix.go",
    });
    let mut source = format!("socket: {}", socket.source);
    if let Some((_, why)) = l.cgroup_driver {
        source.push_str(&format!("; cgroup driver: {why}"));
    }
    Defaults {
        socket: socket.value,
        driver: l.cgroup_driver.map(|(d, _)| d),
        source,
    }
}

/// Host facts for a distribution's defaults, as if detected on one of its nodes.
pub fn preset(kind: DistroKind) -> HostFacts {
    let d = defaults(kind);
    HostFacts {
        distribution: crate::host::distro::plain(
            kind,
            vec![format!("--distro {kind}: {}", d.source)],
        ),
        runtime: Runtime {
            kind: RuntimeKind::Containerd,
            socket: Some(PathBuf::from(d.socket)),
            namespace: "k8s.io".to_string(),
            version: None,
            verified: false,
            ambiguous: false,
            candidates: Vec::new(),
        },
        cgroup: Cgroup {
            mode: CgroupMode::Unknown,
            driver: d.driver,
            driver_source: d.driver.map(|_| format!("--distro {kind}: {}", d.source)),
        },
        kubelet: Kubelet {
            runtime_endpoint: Some(format!("unix://{}", d.socket)),
            cgroup_driver: d.driver,
            ..Kubelet::default()
        },
        kubeconfig: None,
        warnings: Vec::new(),
    }
}
