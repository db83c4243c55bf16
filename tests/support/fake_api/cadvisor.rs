//! The simulated cAdvisor of each cAdvisor pod and the simulated kubelet of each node.
//!
//! cAdvisor's behaviour comes from the pod's manifest, as the real one's does
//! (shared/reference/cadvisor.md §3-4, google/cadvisor: lib/container/containerd/*.go,
//! lib/metrics/prometheus.go):
//! - `--containerd` (default `/run/containerd/containerd.sock`, a plain path) is looked up in the
//!   container's filesystem: through the volumeMounts to the pod's hostPath volumes, then in the
//!   node's host root. A path no mount covers is in the image, where no socket exists.
//! - The client is created once, at start (`sync.Once`): a failed dial is never retried, and the
//!   containerd factory's registration failure is logged at Info level.
//! - Containers whose cgroup name has no 64-character ID, or whose ID containerd does not know in
//!   `--containerd-namespace`, or all of them when registration failed, fall to the raw factory:
//!   `id`-only series.
//! - Labels: `container_label_<sanitised key>` for every container label
//!   (`--store_container_labels=true`, the default) or only the whitelisted keys; every series
//!   carries the union of label names over all containers, `""` where missing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::containerd::{self, CtrContainer};
use super::status::{self, ApiError};
use super::store::{name_of, uid_of};
use super::{SimNode, State, resource};

const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

#[derive(Debug, Clone, PartialEq)]
pub struct CadvisorArgs {
    pub containerd: String,
    pub namespace: String,
    pub store_container_labels: bool,
    pub whitelist: Vec<String>,
    pub docker_only: bool,
    pub port: u16,
}

/// What happened when this pod's cAdvisor started.
#[derive(Debug, Clone)]
pub struct Registration {
    pub args: CadvisorArgs,
    /// The real socket it connected to, or the error after `Registration of the containerd
    /// container factory failed: `.
    pub containerd: Result<PathBuf, String>,
    pub started_at: String,
    pub version: Option<(u32, u32, u32)>,
}

impl Registration {
    pub fn log_line(&self) -> String {
        match &self.containerd {
            Ok(_) => "Registration of the containerd container factory successfully".to_string(),
            Err(e) => format!("Registration of the containerd container factory failed: {e}"),
        }
    }
}

/// Go `flag` parsing of a container's command + args: `-x=v`, `--x=v`, `--x v`, bare booleans.
pub fn parse_args(container: &Value) -> CadvisorArgs {
    let mut words: Vec<String> = Vec::new();
    for key in ["command", "args"] {
        if let Some(a) = container[key].as_array() {
            words.extend(a.iter().filter_map(|w| w.as_str().map(str::to_string)));
        }
    }
    let bools = ["store_container_labels", "docker_only"];
    let mut flags: BTreeMap<String, String> = BTreeMap::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let Some(stripped) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            continue;
        };
        if stripped.is_empty() {
            continue;
        }
        match stripped.split_once('=') {
            Some((k, v)) => {
                flags.insert(k.to_string(), v.to_string());
            }
            None if bools.contains(&stripped) => {
                flags.insert(stripped.to_string(), "true".into());
            }
            None => {
                if let Some(v) = words.get(i) {
                    flags.insert(stripped.to_string(), v.clone());
                    i += 1;
                }
            }
        }
    }
    let b = |k: &str, d: bool| {
        flags.get(k).map_or(d, |v| {
            matches!(v.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True")
        })
    };
    CadvisorArgs {
        containerd: flags
            .get("containerd")
            .cloned()
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string()),
        namespace: flags
            .get("containerd-namespace")
            .cloned()
            .unwrap_or_else(|| "k8s.io".to_string()),
        store_container_labels: b("store_container_labels", true),
        whitelist: flags
            .get("whitelisted_container_labels")
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        docker_only: b("docker_only", false),
        port: flags
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080),
    }
}

fn version_string(v: Option<(u32, u32, u32)>) -> String {
    v.map_or_else(
        || "v0.52.1".to_string(),
        |(a, b, c)| format!("v{a}.{b}.{c}"),
    )
}

/// `vMAJOR.MINOR.PATCH` from an image tag.
fn image_version(image: &str) -> Option<(u32, u32, u32)> {
    let tag = image.rsplit_once(':')?.1;
    let mut parts = tag.trim_start_matches('v').split(['.', '-']);
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// In the cAdvisor image (Alpine) `/var/run` is a symlink to `/run`, and runc resolves mount
/// destinations inside the rootfs: `/var/run` and `/run` are one directory.
fn normalize_in_image(p: &str) -> String {
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    match p.strip_prefix("/var/run") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/run{rest}"),
        _ => p.to_string(),
    }
}

fn under(path: &str, dir: &str) -> Option<String> {
    if dir == "/" {
        return Some(path.trim_start_matches('/').to_string());
    }
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some(String::new())
    } else {
        rest.strip_prefix('/').map(str::to_string)
    }
}

/// The host path behind `path` as seen inside `container` of `pod`, through its volumeMounts
/// and hostPath volumes; `None` when no hostPath mount covers it.
pub fn resolve_in_pod(pod: &Value, container: &Value, path: &str) -> Option<PathBuf> {
    let p = normalize_in_image(path);
    let mounts = container["volumeMounts"].as_array()?;
    let (mount, rel) = mounts
        .iter()
        .filter_map(|m| {
            let mp = normalize_in_image(m["mountPath"].as_str()?);
            under(&p, &mp).map(|rel| (m, rel, mp.len()))
        })
        .max_by_key(|(_, _, len)| *len)
        .map(|(m, rel, _)| (m, rel))?;
    let vol_name = mount["name"].as_str()?;
    let volume = pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == vol_name)?;
    let host = volume["hostPath"]["path"].as_str()?;
    let mut out = PathBuf::from(host);
    if let Some(sub) = mount["subPath"].as_str().filter(|s| !s.is_empty()) {
        out.push(sub);
    }
    if !rel.is_empty() {
        out.push(rel);
    }
    Some(out)
}

/// `host_path` inside `root`, following symlinks as the host's kernel would (absolute targets
/// restart at `root`).
pub fn resolve_in_root(root: &Path, host_path: &Path) -> PathBuf {
    let mut pending: VecDeque<String> = host_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let candidate = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        if let Ok(target) = std::fs::read_link(&candidate) {
            hops += 1;
            if hops > 40 {
                break;
            }
            cur.pop();
            if target.is_absolute() {
                cur.clear();
            }
            let mut comps: Vec<String> = target
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            comps.extend(pending.drain(..));
            pending = comps.into();
        }
    }
    cur.iter().fold(root.to_path_buf(), |p, c| p.join(c))
}

/// The kubelet's hostPath type checks (kubernetes/kubernetes: pkg/volume/hostpath/host_path.go
/// `checkType`), against the node's host root: `Directory`, `File`, `Socket`, `CharDevice`,
/// `BlockDevice` must exist as such; `DirectoryOrCreate` and `FileOrCreate` are created.
pub fn check_host_paths(pod: &Value, node: &SimNode) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let Some(path) = v["hostPath"]["path"].as_str() else {
            continue;
        };
        let ty = v["hostPath"]["type"].as_str().unwrap_or_default();
        let real = resolve_in_root(&node.host_root, Path::new(path));
        // Test host roots hold only what a test lays out; the kernel's trees (/sys, /proc, /dev)
        // every node has are taken from this machine when the root lacks them.
        let kernel_tree = ["/sys", "/proc", "/dev"]
            .iter()
            .any(|k| path == *k || path.starts_with(&format!("{k}/")));
        let meta = std::fs::metadata(&real).ok().or_else(|| {
            if kernel_tree {
                std::fs::metadata(path).ok()
            } else {
                None
            }
        });
        let ft = meta.as_ref().map(|m| m.file_type());
        let fail = |what: &str| {
            Err(format!(
                "MountVolume.SetUp failed for volume \"{}\" : hostPath type check failed: {path} is not a {what}",
                v["name"].as_str().unwrap_or_default()
            ))
        };
        match ty {
            "Directory" if !ft.is_some_and(|t| t.is_dir()) => return fail("directory"),
            "File" if !ft.is_some_and(|t| t.is_file()) => return fail("file"),
            "Socket" if !ft.is_some_and(|t| t.is_socket()) => return fail("socket file"),
            "CharDevice" if !ft.is_some_and(|t| t.is_char_device()) => {
                return fail("character device");
            }
            "BlockDevice" if !ft.is_some_and(|t| t.is_block_device()) => {
                return fail("block device");
            }
            "DirectoryOrCreate" if ft.is_none() => {
                let _ = std::fs::create_dir_all(&real);
            }
            "FileOrCreate" if ft.is_none() => {
                if let Some(parent) = real.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::File::create(&real);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The cAdvisor container of a pod: the one whose image or command says cadvisor, else the
/// first.
pub fn cadvisor_container(pod: &Value) -> Option<&Value> {
    let cs = pod["spec"]["containers"].as_array()?;
    cs.iter()
        .find(|c| {
            c["image"].as_str().is_some_and(|i| i.contains("cadvisor"))
                || c["command"].to_string().contains("cadvisor")
        })
        .or_else(|| cs.first())
}

/// Connects as cAdvisor's `containerd.Client()` does at start.
pub async fn register(_state: &State, pod: &Value, node: &SimNode) -> Registration {
    let empty = json!({});
    let container = cadvisor_container(pod).unwrap_or(&empty);
    let args = parse_args(container);
    let version = image_version(container["image"].as_str().unwrap_or_default());
    let socket = args.containerd.clone();
    let dial_failure = |why: &str| {
        format!(
            "unable to create containerd client: containerd: cannot unix dial containerd api service: dial unix {socket}: {why}"
        )
    };
    let containerd = if socket.contains("://") {
        // A URL is dialled as a file name (google/cadvisor: container/containerd/client.go).
        Err(dial_failure("connect: no such file or directory"))
    } else {
        match resolve_in_pod(pod, container, &socket) {
            None => Err(dial_failure("connect: no such file or directory")),
            Some(host_path) => {
                let real = resolve_in_root(&node.host_root, &host_path);
                match containerd::dial(&real).await {
                    Err(e) => Err(dial_failure(&e.0)),
                    Ok(()) => match containerd::version(&real, Duration::from_secs(2)).await {
                        Ok(_) => Ok(real),
                        Err(e) => Err(format!("failed to fetch containerd client version: {e}")),
                    },
                }
            }
        }
    };
    Registration {
        args,
        containerd,
        started_at: super::store::now_micro(),
        version,
    }
}

fn klog_prefix(at: &str, file: &str) -> String {
    // at = 2026-11-27T00:05:17.123456Z → I1127 00:05:17.123456
    let date = at.get(5..10).unwrap_or("01-01").replace('-', "");
    let time = at.get(11..26).unwrap_or("00:00:00.000000");
    format!("I{date} {time}       1 {file}] ")
}

fn container_waiting(pod: &Value) -> Option<String> {
    let statuses = pod["status"]["containerStatuses"].as_array();
    match statuses.and_then(|s| s.first()) {
        None => Some("ContainerCreating".into()),
        Some(s) => match s["state"]["waiting"]["reason"].as_str() {
            Some("ImagePullBackOff" | "ErrImagePull") => {
                Some("trying and failing to pull image".into())
            }
            Some("CrashLoopBackOff") => None,
            Some(r) => Some(r.to_string()),
            None => None,
        },
    }
}

/// `GET pods/NAME/log`: what the simulated cAdvisor printed at start.
pub fn pod_log(state: &State, pod: &Value, container: Option<&str>) -> Result<String, ApiError> {
    let cname = container
        .map(str::to_string)
        .or_else(|| {
            pod["spec"]["containers"][0]["name"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default();
    if !pod["spec"]["containers"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == cname.as_str()))
    {
        return Err(status::bad_request(format!(
            "container {cname} is not valid for pod {}",
            name_of(pod)
        )));
    }
    if let Some(why) = container_waiting(pod) {
        return Err(status::bad_request(format!(
            "container \"{cname}\" in pod \"{}\" is waiting to start: {why}",
            name_of(pod)
        )));
    }
    let (registration, crashing) = state
        .pods()
        .get(&uid_of(pod))
        .map(|p| (p.registration.clone(), p.crashing))
        .unwrap_or_default();
    let Some(reg) = registration else {
        return Ok(String::new());
    };
    let at = reg.started_at.clone();
    let p = |file: &str| klog_prefix(&at, file);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}Caching stats in memory for 2m0s",
        p("storagedriver.go:55")
    );
    if crashing {
        // The crash-loop switch: the manager fails to start, as it does without cgroup mounts.
        let fatal = p("cadvisor.go:171").replacen('I', "F", 1);
        let _ = writeln!(
            out,
            "{fatal}Failed to create a manager: mountpoint for cpu not found"
        );
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{}cAdvisor running in container: \"/sys/fs/cgroup/cpu,cpuacct\"",
        p("manager.go:204")
    );
    let _ = writeln!(
        out,
        "{}Registration of the docker container factory failed: failed to validate Docker info: failed to detect Docker info: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        p("factory.go:219")
    );
    let line = reg.log_line();
    let file = if reg.containerd.is_ok() {
        "factory.go:221"
    } else {
        "factory.go:219"
    };
    let _ = writeln!(out, "{}{line}", p(file));
    let _ = writeln!(
        out,
        "{}Registration of the crio container factory failed: Get \"http://%2Fvar%2Frun%2Fcrio%2Fcrio.sock/info\": dial unix /var/run/crio/crio.sock: connect: no such file or directory",
        p("factory.go:219")
    );
    let _ = writeln!(
        out,
        "{}Registration of the raw container factory successfully",
        p("factory.go:221")
    );
    let _ = writeln!(
        out,
        "{}Started watching for new ooms in manager",
        p("manager.go:1193")
    );
    let _ = writeln!(
        out,
        "{}Starting cAdvisor version: {} on port {}",
        p("cadvisor.go:146"),
        version_string(reg.version),
        reg.args.port
    );
    Ok(out)
}

// ---- metrics ------------------------------------------------------------------------------

/// One container as cAdvisor reports it.
struct Seen {
    /// cgroup name (the `id` label).
    id: String,
    /// Labels other than `id` (`name`, `image`, `container_label_*`), handler-dependent.
    labels: BTreeMap<String, String>,
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// `linux.cgroupsPath` of the container's OCI spec (runtime-spec config-linux.md). Only that
/// field is read, the rest of the spec skipped rather than built into a `Value`: every scrape
/// reads every container's spec.
fn cgroups_path(c: &CtrContainer) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Spec {
        linux: Option<Linux>,
    }
    #[derive(serde::Deserialize)]
    struct Linux {
        #[serde(rename = "cgroupsPath")]
        cgroups_path: Option<String>,
    }
    serde_json::from_slice::<Spec>(&c.spec)
        .ok()?
        .linux?
        .cgroups_path
}

/// The cgroup name cAdvisor sees for a container: `linux.cgroupsPath` (systemd form
/// `slice:prefix:id` converted), else ctr's default `/<namespace>/<id>`.
fn cgroup_name(c: &CtrContainer, namespace: &str) -> String {
    match cgroups_path(c).as_deref() {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) if p.split(':').count() == 3 => {
            let parts: Vec<&str> = p.split(':').collect();
            let slice = parts[0];
            let mut path = String::new();
            let mut acc = String::new();
            for piece in slice.trim_end_matches(".slice").split('-') {
                if !acc.is_empty() {
                    acc.push('-');
                }
                acc.push_str(piece);
                let _ = write!(path, "/{acc}.slice");
            }
            format!("{path}/{}-{}.scope", parts[1], parts[2])
        }
        _ => format!("/{namespace}/{}", c.id),
    }
}

/// The 64-character ID cAdvisor's containerd factory wants in a cgroup's base name.
fn id_in_cgroup(name: &str) -> Option<String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let bytes = base.as_bytes();
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        if ok(*b) {
            run += 1;
            if run == 64 {
                return Some(base[i + 1 - 64..=i].to_string());
            }
        } else {
            run = 0;
        }
    }
    None
}

/// The container ID the containerd factory looks up for a cgroup: the 64-character ID in its
/// base name (what the kubelet's containers have), or, as a concession to test containers made
/// with `ctr run` and short IDs, the whole base name.
fn factory_id(cgroup: &str) -> Option<String> {
    id_in_cgroup(cgroup).or_else(|| {
        cgroup
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .map(str::to_string)
    })
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn cpu_seconds(id: &str) -> f64 {
    let rel = id.trim_start_matches('/');
    for ctl in ["cpuacct", "cpu,cpuacct", "cpu"] {
        if let Some(ns) = read_u64(
            &Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join(rel)
                .join("cpuacct.usage"),
        ) {
            return ns as f64 / 1e9;
        }
    }
    0.5 + (id.len() % 7) as f64 * 0.25
}

fn memory_bytes(id: &str) -> u64 {
    let rel = id.trim_start_matches('/');
    read_u64(
        &Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.usage_in_bytes"),
    )
    .unwrap_or(1_234_567 + id.len() as u64 * 4096)
}

/// Name, help, type, value of a series, extra labels.
type Metric<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a dyn Fn(&Seen) -> String,
    &'a [(&'a str, &'a str)],
);

fn render(seen: &[Seen], with_timestamps: bool) -> String {
    let names: BTreeSet<&String> = seen.iter().flat_map(|s| s.labels.keys()).collect();
    let ts = now_ms();
    let secs = ts as f64 / 1000.0;
    let stamp = if with_timestamps {
        format!(" {ts}")
    } else {
        String::new()
    };
    let labels_of = |s: &Seen, extra: &[(&str, &str)]| {
        let mut all: BTreeMap<String, String> = names
            .iter()
            .map(|n| ((*n).clone(), s.labels.get(*n).cloned().unwrap_or_default()))
            .collect();
        all.insert("id".into(), s.id.clone());
        for (k, v) in extra {
            all.insert((*k).to_string(), (*v).to_string());
        }
        let parts: Vec<String> = all
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        parts.join(",")
    };
    let mut out = String::new();
    let metrics: [Metric; 4] = [
        (
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed in seconds.",
            "counter",
            &|s| format!("{}", cpu_seconds(&s.id)),
            &[("cpu", "total")],
        ),
        (
            "container_last_seen",
            "Last time a container was seen by the exporter",
            "gauge",
            &|_| format!("{:e}", secs.floor()),
            &[],
        ),
        (
            "container_memory_working_set_bytes",
            "Current working set in bytes.",
            "gauge",
            &|s| format!("{}", memory_bytes(&s.id)),
            &[],
        ),
        (
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds.",
            "gauge",
            &|_| format!("{:e}", (secs - 600.0).floor()),
            &[],
        ),
    ];
    for (name, help, ty, value, extra) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {ty}");
        for s in seen {
            let _ = writeln!(out, "{name}{{{}}} {}{stamp}", labels_of(s, extra), value(s));
        }
    }
    out
}

fn cadvisor_metrics(
    reg: &Registration,
    listed: Option<Vec<CtrContainer>>,
    node_containers: Vec<CtrContainer>,
) -> String {
    let args = &reg.args;
    let trim = reg.version.is_none_or(|v| v >= (0, 48, 0));
    let whitelist: Vec<String> = args
        .whitelist
        .iter()
        .map(|w| {
            if trim {
                w.trim().to_string()
            } else {
                w.clone()
            }
        })
        .collect();
    let mut seen = vec![Seen {
        id: "/".into(),
        labels: BTreeMap::new(),
    }];
    // Which cgroups exist on the node: every container the node's runtime runs.
    let known: BTreeMap<String, &CtrContainer> = listed
        .as_ref()
        .map(|l| l.iter().map(|c| (c.id.clone(), c)).collect())
        .unwrap_or_default();
    for c in &node_containers {
        let id = cgroup_name(c, "k8s.io");
        let handled = factory_id(&id).and_then(|cid| known.get(&cid).copied());
        match handled {
            Some(ctr) => {
                let mut labels = BTreeMap::new();
                labels.insert("name".to_string(), ctr.id.clone());
                labels.insert("image".to_string(), ctr.image.clone());
                for (k, v) in &ctr.labels {
                    if !args.store_container_labels && !whitelist.iter().any(|w| w == k) {
                        continue;
                    }
                    labels
                        .entry(format!("container_label_{}", sanitize(k)))
                        .or_insert_with(|| v.clone());
                }
                seen.push(Seen { id, labels });
            }
            None if args.docker_only => {}
            None => seen.push(Seen {
                id,
                labels: BTreeMap::new(),
            }),
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP cadvisor_version_info A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision."
    );
    let _ = writeln!(out, "# TYPE cadvisor_version_info gauge");
    let _ = writeln!(
        out,
        "cadvisor_version_info{{cadvisorRevision=\"\",cadvisorVersion=\"{}\",dockerVersion=\"\",kernelVersion=\"6.1.0-27-amd64\",osVersion=\"Alpine Linux v3.22\"}} 1",
        version_string(reg.version)
    );
    out.push_str(&render(&seen, true));
    let _ = writeln!(out, "# HELP machine_cpu_cores Number of logical CPU cores.");
    let _ = writeln!(out, "# TYPE machine_cpu_cores gauge");
    let _ = writeln!(
        out,
        "machine_cpu_cores{{boot_id=\"5f1c1a7e-0000-4000-8000-000000000001\",machine_id=\"0123456789abcdef0123456789abcdef\",system_uuid=\"00000000-0000-0000-0000-000000000001\"}} 2"
    );
    out
}

const PROM_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";

fn unreachable(addr: &str) -> ApiError {
    let mut e = status::service_unavailable(format!(
        "error trying to reach service: dial tcp {addr}: connect: connection refused"
    ));
    e.body["reason"] = json!("ServiceUnavailable");
    e
}

/// `pods/[scheme:]NAME[:port]/proxy/REST`.
pub async fn pod_proxy(
    state: &State,
    ns: &str,
    target: &str,
    rest: &str,
) -> Result<(u16, String, String), ApiError> {
    let parts: Vec<&str> = target.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [n] => (*n, None),
        ["http" | "https", n] => (*n, None),
        [n, p] => (*n, Some(*p)),
        [_, n, p] => (*n, Some(*p)),
        _ => (target, None),
    };
    // What the proxy needs of the pod, read in place (every scrape of every node asks).
    let (port, ip, running, uid, node_name) = {
        let store = state.store();
        let pod = store
            .get(resource("pods"), ns, name)
            .ok_or_else(|| status::not_found(resource("pods"), name))?;
        let port: String = match port {
            Some(p) => p.to_string(),
            None => pod["spec"]["containers"]
                .as_array()
                .and_then(|cs| {
                    cs.iter()
                        .find_map(|c| c["ports"][0]["containerPort"].as_u64())
                })
                .map(|p| p.to_string())
                .unwrap_or_default(),
        };
        (
            port,
            pod["status"]["podIP"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            pod["status"]["containerStatuses"][0]["state"]["running"].is_object(),
            uid_of(pod),
            pod["spec"]["nodeName"].as_str().map(str::to_string),
        )
    };
    let addr = format!("{ip}:{port}");
    let reg = state.pods().get(&uid).and_then(|p| p.registration.clone());
    let Some(reg) = reg.filter(|_| running && !ip.is_empty()) else {
        return Err(unreachable(&addr));
    };
    if port != reg.args.port.to_string() {
        return Err(unreachable(&addr));
    }
    match rest.trim_matches('/') {
        "metrics" => {
            let node = node_name.as_deref().and_then(|n| state.node(n));
            if node
                .as_ref()
                .is_some_and(|n| state.failures.take_unhousekept_scrape(&n.name))
            {
                // Before its first housekeeping cAdvisor knows only the root cgroup.
                let body = "# TYPE container_cpu_usage_seconds_total counter\n\
                            container_cpu_usage_seconds_total{cpu=\"total\",id=\"/\"} 1\n";
                return Ok((200, PROM_TEXT.into(), body.to_string()));
            }
            let node_containers = match &node {
                Some(n) => containerd::list(&n.real_socket(), "k8s.io", Duration::from_secs(3))
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let listed = match &reg.containerd {
                Ok(real) => containerd::list(real, &reg.args.namespace, Duration::from_secs(3))
                    .await
                    .ok(),
                Err(_) => None,
            };
            Ok((
                200,
                PROM_TEXT.into(),
                cadvisor_metrics(&reg, listed, node_containers),
            ))
        }
        "healthz" => Ok((200, "text/plain; charset=utf-8".into(), "ok".into())),
        _ => Ok((
            404,
            "text/plain; charset=utf-8".into(),
            "404 page not found\n".into(),
        )),
    }
}

/// `nodes/NAME/proxy/REST`: the kubelet's configz, healthz and `/metrics/cadvisor`.
pub async fn node_proxy(
    state: &State,
    name: &str,
    rest: &str,
) -> Result<(u16, String, String), ApiError> {
    let node = state
        .node(name)
        .ok_or_else(|| status::not_found(resource("nodes"), name))?;
    // The API server refuses to proxy to a loopback or link-local node address (seen on a real
    // v1.36 cluster whose node name resolved to 127.0.0.1: shared/reference/real-cluster.md;
    // kubernetes/kubernetes: pkg/registry/core/node/strategy.go `ResourceLocation` →
    // `proxyutil.IsProxyableIP`).
    let refused = node
        .internal_ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
            std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local(),
        });
    if refused {
        return Err(status::bad_request("address not allowed".to_string()));
    }
    match rest.trim_matches('/') {
        "configz" if state.failures.configz_forbidden(&node.name) => Err(status::forbidden(
            resource("nodes"),
            Some("proxy"),
            &node.name,
            &state.user,
            "get",
            None,
        )),
        "configz" => {
            let body = json!({"kubeletconfig": {
                "enableServer": true,
                "podLogsDir": "/var/log/pods",
                "syncFrequency": "1m0s",
                "authentication": {"anonymous": {"enabled": false}, "webhook": {"enabled": true, "cacheTTL": "2m0s"}},
                "authorization": {"mode": "AlwaysAllow"},
                "readOnlyPort": 0,
                "cgroupRoot": "/",
                "cgroupsPerQOS": true,
                "cgroupDriver": node.cgroup_driver,
                "containerRuntimeEndpoint": node.runtime_endpoint,
                "imageServiceEndpoint": "",
                "failSwapOn": false,
                "containerLogMaxSize": "10Mi",
                "containerLogMaxFiles": 5,
            }});
            Ok((200, "application/json".into(), body.to_string()))
        }
        "healthz" => Ok((200, "text/plain; charset=utf-8".into(), "ok".into())),
        "metrics/cadvisor" => {
            let listed = containerd::list(&node.real_socket(), "k8s.io", Duration::from_secs(3))
                .await
                .unwrap_or_default();
            Ok((200, PROM_TEXT.into(), kubelet_metrics(&listed)))
        }
        _ => Ok((
            404,
            "text/plain; charset=utf-8".into(),
            "404 page not found\n".into(),
        )),
    }
}

/// The kubelet's `/metrics/cadvisor`: labels `container`, `id`, `image`, `name`, `namespace`,
/// `pod` (kubernetes/kubernetes: pkg/kubelet/server/server.go `containerPrometheusLabelsFunc`).
fn kubelet_metrics(listed: &[CtrContainer]) -> String {
    let mut seen = vec![Seen {
        id: "/".into(),
        labels: ["container", "image", "name", "namespace", "pod"]
            .into_iter()
            .map(|k| (k.to_string(), String::new()))
            .collect(),
    }];
    for c in listed {
        let id = cgroup_name(c, "k8s.io");
        let mut labels = BTreeMap::new();
        let handled = factory_id(&id).is_some_and(|cid| cid == c.id);
        let l = |k: &str| {
            if handled {
                c.labels.get(k).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        labels.insert("container".into(), l("io.kubernetes.container.name"));
        labels.insert("pod".into(), l("io.kubernetes.pod.name"));
        labels.insert("namespace".into(), l("io.kubernetes.pod.namespace"));
        labels.insert(
            "image".into(),
            if handled {
                c.image.clone()
            } else {
                String::new()
            },
        );
        labels.insert(
            "name".into(),
            if handled { c.id.clone() } else { String::new() },
        );
        seen.push(Seen { id, labels });
    }
    render(&seen, true)
}
