//! Which socket runs the pods: candidates in order of authority (the user's flag, the kubelet's
//! configuration, the runtime's configuration, well-known paths), each probed for real, then one
//! chosen (or none, or "ambiguous").
//!
//! A MicroK8s host with Docker installed has two live containerd sockets; only the one whose
//! `k8s.io` namespace holds containers labelled `io.kubernetes.pod.name` runs the pods
//! (Docker's containerd keeps its containers in `moby`: google/cadvisor:
//! container/docker/factory.go).
//!
//! CRI-O's and cri-dockerd's sockets (when the kubelet is configured with one) speak the CRI,
//! not containerd's API: for them "verified" means the socket accepts a connection, and the
//! runtime is reported as `cri-o`/`docker`.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args_file::{Args, SnapVars};
use super::containerd;
use super::kubelet::{KubeletScan, endpoint_path};
use super::{
    CandidateSource, ConfigzHints, DistroKind, HostRoot, Probe, Runtime, RuntimeKind,
    SocketCandidate, fs, layout,
};

/// A candidate before probing.
#[derive(Debug, Clone)]
struct Spec {
    path: PathBuf,
    source: CandidateSource,
    origin: String,
}

/// Collects the candidates, highest authority first, deduplicated by host path.
pub fn candidates(
    root: &HostRoot,
    distro: DistroKind,
    user: Option<&Path>,
    kubelet: &KubeletScan,
    configz: Option<&ConfigzHints>,
    warnings: &mut Vec<String>,
) -> Vec<SocketCandidate> {
    let mut specs: Vec<Spec> = Vec::new();
    if let Some(p) = user {
        specs.push(Spec {
            path: p.to_path_buf(),
            source: CandidateSource::UserFlag,
            origin: "--containerd-socket".into(),
        });
    }
    if let Some(ep) = &kubelet.kubelet.runtime_endpoint {
        let origin = kubelet
            .endpoint_origin
            .clone()
            .unwrap_or_else(|| "kubelet configuration".into());
        push_endpoint(
            &mut specs,
            ep,
            CandidateSource::KubeletConfig,
            origin,
            warnings,
        );
    }
    if let Some(ep) = configz.and_then(|c| c.runtime_endpoint.as_ref()) {
        push_endpoint(
            &mut specs,
            ep,
            CandidateSource::Configz,
            "API server: nodes/NAME/proxy/configz containerRuntimeEndpoint".into(),
            warnings,
        );
    }
    if let Some(spec) = runtime_config(root, distro, warnings) {
        specs.push(spec);
    }
    for socket in layout::well_known_sockets() {
        specs.push(Spec {
            path: PathBuf::from(socket.value),
            source: CandidateSource::WellKnown,
            origin: format!("well-known path ({})", socket.source),
        });
    }
    dedup(root, specs)
}

fn push_endpoint(
    specs: &mut Vec<Spec>,
    endpoint: &str,
    source: CandidateSource,
    origin: String,
    warnings: &mut Vec<String>,
) {
    match endpoint_path(endpoint) {
        Some(path) => specs.push(Spec {
            path,
            source,
            origin,
        }),
        None => warnings.push(format!(
            "{origin} is `{endpoint}`, not a unix socket path; ignored"
        )),
    }
}

/// MicroK8s `args/containerd --address` (canonical/microk8s: default-args/containerd; the
/// kubelite wrapper reads the same line to wait for the socket).
fn runtime_config(root: &HostRoot, distro: DistroKind, warnings: &mut Vec<String>) -> Option<Spec> {
    let file = layout::of(distro).containerd_args?.value;
    let text = match fs::read_optional(root, Path::new(file)) {
        Ok(text) => text?,
        Err(e) => {
            warnings.push(format!("{e}; containerd's --address is unknown"));
            return None;
        }
    };
    let args = Args::parse(&text, &SnapVars::for_snap("microk8s"));
    let address = args.get("address").filter(|a| !a.is_empty())?;
    let path = endpoint_path(address)?;
    Some(Spec {
        path,
        source: CandidateSource::RuntimeConfig,
        origin: format!("{file}: --address"),
    })
}

/// `/var/run` is a symlink to `/run` on every current distribution (FHS 3.0); compare sockets in
/// their `/run` form so kubeadm's `unix:///var/run/containerd/containerd.sock` and the well-known
/// `/run/containerd/containerd.sock` are one candidate. Kept as written when `/var/run` is a real
/// directory under this root.
fn normalise(root: &HostRoot, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("/var/run") {
        // `/var` itself may be a link: find `/var/run` inside the root, without following it.
        let is_real_dir = fs::resolve_no_follow(root, Path::new("/var/run"))
            .ok()
            .and_then(|var_run| std::fs::symlink_metadata(var_run).ok())
            .is_some_and(|m| m.is_dir());
        if !is_real_dir {
            return Path::new("/run").join(rest);
        }
    }
    path.to_path_buf()
}

fn dedup(root: &HostRoot, specs: Vec<Spec>) -> Vec<SocketCandidate> {
    let mut out: Vec<SocketCandidate> = Vec::new();
    for spec in specs {
        let path = normalise(root, &spec.path);
        if let Some(existing) = out.iter_mut().find(|c| c.path == path) {
            existing.origin.push_str("; ");
            existing.origin.push_str(&spec.origin);
            continue;
        }
        out.push(SocketCandidate {
            runtime: kind_of(&path),
            path,
            source: spec.source,
            origin: spec.origin,
            probe: Probe::default(),
        });
    }
    out
}

/// CRI-O's and cri-dockerd's sockets are named after them (kubeadm constants_unix.go).
fn kind_of(path: &Path) -> RuntimeKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("crio") {
        RuntimeKind::CriO
    } else if name.contains("cri-dockerd") || name.contains("docker") {
        RuntimeKind::Docker
    } else {
        RuntimeKind::Containerd
    }
}

/// Probes every candidate concurrently.
pub async fn probe_all(root: &HostRoot, candidates: &mut [SocketCandidate], timeout: Duration) {
    let probes = candidates.iter().map(|c| async move {
        match fs::resolve(root, &c.path) {
            Ok(local) => probe(local, c.runtime, timeout).await,
            Err(e) => Probe {
                error: Some(format!("cannot be resolved under the host root: {e}")),
                ..Probe::default()
            },
        }
    });
    let results = futures::future::join_all(probes).await;
    for (c, p) in candidates.iter_mut().zip(results) {
        c.probe = p;
    }
}

/// Exists, is a socket, accepts a connection, answers `Version`, holds kubelet containers.
pub async fn probe(local: PathBuf, kind: RuntimeKind, timeout: Duration) -> Probe {
    let mut p = Probe::default();
    // Not following a final symlink: `local` comes from the resolver, which followed every link
    // inside the host root already.
    let meta = match std::fs::symlink_metadata(&local) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            p.error = Some("does not exist".into());
            return p;
        }
        Err(e) => {
            p.error = Some(format!("cannot stat: {e}"));
            return p;
        }
    };
    p.exists = true;
    if !meta.file_type().is_socket() {
        let what = if meta.is_dir() {
            "a directory"
        } else if meta.is_file() {
            "a regular file"
        } else if meta.file_type().is_symlink() {
            "a symbolic link (not followed)"
        } else {
            "not a socket"
        };
        p.error = Some(format!(
            "is {what}, not a socket (a stale path left behind? nothing listens here)"
        ));
        return p;
    }
    p.is_socket = true;
    match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(&local)).await {
        Ok(Ok(_)) => p.connects = true,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            p.error = Some(
                "connection refused: a dead socket, nothing listens (its server stopped)".into(),
            );
            return p;
        }
        Ok(Err(e)) => {
            p.error = Some(format!("cannot connect: {e}"));
            return p;
        }
        Err(_) => {
            p.error = Some(format!("connect did not finish within {timeout:?}"));
            return p;
        }
    }
    if kind != RuntimeKind::Containerd {
        // CRI-O and cri-dockerd speak the CRI, not containerd's API: a connection is what we check.
        return p;
    }
    match containerd::version(&local, timeout).await {
        Ok(v) => p.version = Some(v.version),
        Err(e) => {
            p.error = Some(short(&e));
            return p;
        }
    }
    let (list, namespaces) = tokio::join!(
        containerd::list_containers(&local, containerd::K8S_NAMESPACE, timeout),
        containerd::list_namespaces(&local, timeout)
    );
    match list {
        Ok(list) => {
            p.kubernetes_containers = Some(list.iter().filter(|c| c.is_kubernetes()).count());
        }
        Err(e) => p.error = Some(short(&e)),
    }
    if let Ok(ns) = namespaces {
        p.namespaces = Some(ns);
    }
    p
}

/// The error without the socket path (the candidate line shows it already).
fn short(e: &containerd::ProbeError) -> String {
    match e {
        containerd::ProbeError::Connect { reason, .. } => format!("cannot connect: {reason}"),
        containerd::ProbeError::Timeout { call, after, .. } => format!(
            "accepts connections but did not answer containerd's {call} within {after:?} (not containerd, or hung)"
        ),
        containerd::ProbeError::Rpc {
            call,
            code,
            message,
            ..
        } => format!("{call} failed: {code:?}: {message}"),
    }
}

/// A live candidate: containerd answered `Version`; CRI-O/cri-dockerd accepted a connection.
fn live(c: &SocketCandidate) -> bool {
    match c.runtime {
        RuntimeKind::Containerd => c.probe.version.is_some(),
        _ => c.probe.connects,
    }
}

/// Runs the pods: live, and (for containerd) `k8s.io` holds kubelet containers.
fn runs_pods(c: &SocketCandidate) -> bool {
    match c.runtime {
        RuntimeKind::Containerd => live(c) && c.probe.kubernetes_containers.unwrap_or(0) > 0,
        _ => live(c),
    }
}

/// Decides from probed candidates. Returns the runtime and warnings.
pub fn choose(candidates: Vec<SocketCandidate>) -> (Runtime, Vec<String>) {
    let mut warnings = Vec::new();
    let decision = decide(&candidates, &mut warnings);
    let chosen = match decision {
        Decision::Chosen(i) => Some(&candidates[i]),
        _ => None,
    };
    let kind = match chosen {
        Some(c) => c.runtime,
        None if candidates
            .iter()
            .any(|c| c.runtime == RuntimeKind::Containerd) =>
        {
            RuntimeKind::Containerd
        }
        None => RuntimeKind::Unknown,
    };
    let runtime = Runtime {
        kind,
        socket: chosen.map(|c| c.path.clone()),
        namespace: if kind == RuntimeKind::Docker {
            "moby".into()
        } else {
            containerd::K8S_NAMESPACE.into()
        },
        version: chosen.and_then(|c| c.probe.version.clone()),
        verified: chosen.is_some(),
        ambiguous: matches!(decision, Decision::Ambiguous),
        candidates,
    };
    (runtime, warnings)
}

enum Decision {
    Chosen(usize),
    Ambiguous,
    None,
}

fn decide(cands: &[SocketCandidate], warnings: &mut Vec<String>) -> Decision {
    // 1. The user's word: used when it is live, even with no kubelet containers (yet).
    if let Some((i, c)) = cands
        .iter()
        .enumerate()
        .find(|(_, c)| c.source == CandidateSource::UserFlag)
    {
        if !live(c) {
            warnings.push(format!(
                "--containerd-socket {} is not usable: {}",
                c.path.display(),
                c.probe.error.as_deref().unwrap_or("no answer")
            ));
            return Decision::None;
        }
        if !runs_pods(c) {
            warnings.push(format!(
                "--containerd-socket {}: containerd answers but its k8s.io namespace holds no kubelet containers; using it as told",
                c.path.display()
            ));
        }
        return Decision::Chosen(i);
    }
    let pods: Vec<usize> = (0..cands.len()).filter(|&i| runs_pods(&cands[i])).collect();
    // 2. What the kubelet is configured with (its files, then configz).
    let declared = |c: &SocketCandidate| {
        matches!(
            c.source,
            CandidateSource::KubeletConfig | CandidateSource::Configz
        )
    };
    for (i, c) in cands.iter().enumerate().filter(|(_, c)| declared(c)) {
        if runs_pods(c) {
            return Decision::Chosen(i);
        }
        if live(c) {
            if pods.is_empty() {
                warnings.push(format!(
                    "{} (the kubelet's endpoint) answers but its k8s.io namespace holds no kubelet containers (no pods yet?); pass --containerd-socket {} to accept it",
                    c.path.display(),
                    c.path.display()
                ));
                return Decision::None;
            }
            warnings.push(format!(
                "the kubelet is configured with {} but its k8s.io namespace is empty, while other sockets hold kubelet containers",
                c.path.display()
            ));
            return Decision::Ambiguous;
        }
        warnings.push(format!(
            "the kubelet's configured endpoint {} ({}) is not usable: {}",
            c.path.display(),
            c.origin,
            c.probe.error.as_deref().unwrap_or("no answer")
        ));
    }
    // 3./4. The runtime's own configuration, then well-known paths: unique, or the single most
    // authoritative one.
    match pods.as_slice() {
        [] => Decision::None,
        [only] => Decision::Chosen(*only),
        [first, rest @ ..] => {
            let best = cands[*first].source;
            if rest.iter().all(|&i| cands[i].source > best) {
                Decision::Chosen(*first)
            } else {
                Decision::Ambiguous
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(path: &str, source: CandidateSource, version: bool, pods: usize) -> SocketCandidate {
        SocketCandidate {
            path: PathBuf::from(path),
            source,
            origin: String::new(),
            runtime: RuntimeKind::Containerd,
            probe: Probe {
                exists: true,
                is_socket: true,
                connects: true,
                version: version.then(|| "1.6.20".into()),
                kubernetes_containers: version.then_some(pods),
                namespaces: None,
                error: None,
            },
        }
    }

    #[test]
    fn kubelet_endpoint_beats_a_decoy_with_pods() {
        let (rt, _) = choose(vec![
            cand("/a", CandidateSource::KubeletConfig, true, 3),
            cand("/b", CandidateSource::WellKnown, true, 2),
        ]);
        assert_eq!(rt.socket, Some(PathBuf::from("/a")));
        assert!(rt.verified && !rt.ambiguous);
    }

    #[test]
    fn two_well_known_sockets_with_pods_are_ambiguous() {
        let (rt, _) = choose(vec![
            cand("/a", CandidateSource::WellKnown, true, 3),
            cand("/b", CandidateSource::WellKnown, true, 2),
        ]);
        assert_eq!(rt.socket, None);
        assert!(rt.ambiguous && !rt.verified);
    }

    #[test]
    fn empty_docker_containerd_is_not_chosen() {
        let (rt, _) = choose(vec![
            cand("/snap", CandidateSource::WellKnown, true, 1),
            cand("/docker", CandidateSource::WellKnown, true, 0),
        ]);
        assert_eq!(rt.socket, Some(PathBuf::from("/snap")));
    }

    #[test]
    fn dead_user_socket_is_not_replaced_by_another() {
        let (rt, w) = choose(vec![
            cand("/user", CandidateSource::UserFlag, false, 0),
            cand("/b", CandidateSource::WellKnown, true, 2),
        ]);
        assert_eq!(rt.socket, None);
        assert!(w[0].contains("--containerd-socket /user"));
    }

    #[test]
    fn configz_endpoint_ranks_after_kubelet_files_before_well_known() {
        let (_dir, root) = HostRoot::temp();
        let hints = ConfigzHints {
            runtime_endpoint: Some("unix:///srv/c.sock".into()),
            cgroup_driver: None,
        };
        let c = candidates(
            &root,
            DistroKind::Unknown,
            None,
            &KubeletScan::default(),
            Some(&hints),
            &mut Vec::new(),
        );
        assert_eq!(c[0].path, Path::new("/srv/c.sock"));
        assert_eq!(c[0].source, CandidateSource::Configz);
        assert!(
            c[1..]
                .iter()
                .all(|c| c.source == CandidateSource::WellKnown)
        );
    }

    #[test]
    fn var_run_and_run_are_one_candidate() {
        let (_dir, root) = HostRoot::temp();
        let scan = KubeletScan {
            kubelet: super::super::Kubelet {
                runtime_endpoint: Some("unix:///var/run/containerd/containerd.sock".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = candidates(
            &root,
            DistroKind::Kubeadm,
            None,
            &scan,
            None,
            &mut Vec::new(),
        );
        let n = c
            .iter()
            .filter(|c| c.path == Path::new("/run/containerd/containerd.sock"))
            .count();
        assert_eq!(n, 1);
        assert_eq!(c[0].source, CandidateSource::KubeletConfig);
    }
}
