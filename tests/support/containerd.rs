//! A real containerd (Debian's) listening wherever a test wants its socket, usually at a
//! distribution's path inside a temporary host root, running "pod" containers that carry the
//! kubelet's labels. Recipes: test-recipes §2-5.
//!
//! ```ignore
//! let ctd = Containerd::start(root.path(), "/var/snap/microk8s/common/run/containerd.sock");
//! ctd.run_pod_container("web", "web-0", "default", "web");
//! ```
//!
//! Drop kills and removes every task *before* stopping containerd (each container's shim
//! outlives containerd otherwise, test-recipes §5 pitfall 1): one bounded `ctr tasks rm -f` and
//! one `ctr containers rm` per namespace (≈0.1-0.3 s in all, not a kill/poll/rm round per
//! container). If containerd cannot do it (dead or hung), Drop kills this instance's shims and
//! their containers itself and unmounts their rootfs. Then it removes the cgroup directories
//! runc leaves behind (pitfall 4).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The image every test container runs (built from busybox-static, imported without a registry).
pub const IMAGE: &str = "docker.io/library/busybox:cadvisor-setup-test";
/// The kubelet's containerd namespace.
pub const K8S_NS: &str = "k8s.io";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The busybox OCI tar, built by tests/support/mkimage.py once and cached in /tmp (the build is
/// deterministic: mtimes are zero), written atomically so parallel tests can share it.
fn image_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let tar = PathBuf::from("/tmp/cadvisor-setup-test-busybox.tar");
        if tar.exists() {
            return tar;
        }
        let partial = PathBuf::from(format!("{}.{}", tar.display(), std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mkimage.py");
        let status = Command::new("python3")
            .arg(&script)
            .arg(&partial)
            .arg(IMAGE)
            .stdout(Stdio::null())
            .status()
            .expect("python3 runs mkimage.py");
        assert!(status.success(), "mkimage.py failed");
        std::fs::rename(&partial, &tar).expect("cache the image tar");
        tar
    })
}

/// A running containerd owned by a test.
pub struct Containerd {
    child: Option<Child>,
    socket: PathBuf,
    /// A hard link to the socket inside `work`, used by Drop: the host root holding `socket` may
    /// be deleted first (a struct field dropped earlier), and the tasks must still be reached.
    control: PathBuf,
    /// containerd's root, state, opt, config and log (outside the host root).
    work: tempfile::TempDir,
    /// Unique per instance: container ids and cgroup parents carry it.
    token: String,
    /// (namespace, id) of every container started.
    containers: Mutex<Vec<(String, String)>>,
    /// Namespaces the image was imported into.
    imported: Mutex<Vec<String>>,
}

impl Containerd {
    /// Starts containerd with its gRPC socket at `socket_host_path` inside `host_root` (which must
    /// be at most 53 characters long: containerd limits `<sock>.ttrpc` to 104). CRI disabled.
    pub fn start(host_root: &Path, socket_host_path: &str) -> Containerd {
        let socket = host_root.join(socket_host_path.trim_start_matches('/'));
        Self::start_at(&socket)
    }

    /// Starts containerd with its socket at an absolute local path.
    pub fn start_at(socket: &Path) -> Containerd {
        let work = tempfile::Builder::new()
            .prefix("csctd")
            .tempdir_in("/tmp")
            .expect("containerd work dir");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let token = format!("cs{}x{n}", std::process::id());
        std::fs::create_dir_all(socket.parent().expect("socket has a parent"))
            .expect("socket directory");
        let w = work.path();
        // test-recipes §2: CRI off, opt plugin kept out of /opt/containerd.
        let config = format!(
            "version = 2\nroot = \"{r}\"\nstate = \"{s}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{o}\"\n",
            r = w.join("root").display(),
            s = w.join("state").display(),
            o = w.join("opt").display(),
            sock = socket.display(),
        );
        std::fs::write(w.join("config.toml"), config).expect("write containerd config");
        let log = std::fs::File::create(w.join("containerd.log")).expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(w.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let mut ctd = Containerd {
            child: Some(child),
            socket: socket.to_path_buf(),
            control: socket.to_path_buf(),
            work,
            token,
            containers: Mutex::new(Vec::new()),
            imported: Mutex::new(Vec::new()),
        };
        ctd.wait_ready();
        // A unix socket is its inode: a hard link (same filesystem, /tmp) reaches the same listener.
        let control = ctd.work.path().join("ctl.sock");
        if std::fs::hard_link(socket, &control).is_ok() {
            ctd.control = control;
        }
        ctd
    }

    /// Bounded readiness wait: `ctr version` answers (usually after 65-90 ms).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ok = Command::new("ctr")
                .arg("--address")
                .arg(&self.socket)
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log =
            std::fs::read_to_string(self.work.path().join("containerd.log")).unwrap_or_default();
        panic!(
            "containerd at {} not ready after 10 s; log:\n{}",
            self.socket.display(),
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
    }

    /// The socket as a local path (host root included).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// containerd's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `ctr -a SOCK ARGS...` and returns stdout; panics with stderr on failure.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("ctr runs");
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ensure_image(&self, namespace: &str) {
        let mut imported = self.imported.lock().expect("lock");
        if imported.iter().any(|n| n == namespace) {
            return;
        }
        let tar = image_tar().display().to_string();
        self.ctr(&["-n", namespace, "images", "import", &tar]);
        imported.push(namespace.to_string());
    }

    /// A container in namespace `k8s.io` labelled as the kubelet labels a pod's container
    /// (`io.kubernetes.pod.name`, `.pod.namespace`, `.container.name`). Returns its id.
    pub fn run_pod_container(
        &self,
        id: &str,
        pod: &str,
        pod_namespace: &str,
        container_name: &str,
    ) -> String {
        self.run_container(
            K8S_NS,
            id,
            &[
                ("io.kubernetes.pod.name", pod),
                ("io.kubernetes.pod.namespace", pod_namespace),
                ("io.kubernetes.container.name", container_name),
            ],
        )
    }

    /// A running container (`sleep 3600`) in `namespace` with `labels`. The id is made unique per
    /// instance (runc's root under /run/containerd is shared between containerds). Returns it.
    pub fn run_container(&self, namespace: &str, id: &str, labels: &[(&str, &str)]) -> String {
        self.ensure_image(namespace);
        let full_id = format!("{id}-{}", self.token);
        let cgroup = format!("/{}/{full_id}", self.token);
        let mut args: Vec<String> = vec!["-n".into(), namespace.into(), "run".into(), "-d".into()];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.extend([
            "--cgroup".into(),
            cgroup,
            IMAGE.into(),
            full_id.clone(),
            "/bin/sleep".into(),
            "3600".into(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&refs);
        self.containers
            .lock()
            .expect("lock")
            .push((namespace.to_string(), full_id.clone()));
        full_id
    }

    /// `ctr` on the control socket, bounded: connection 2 s, whole command 20 s (a ctr call that
    /// cannot reach containerd otherwise retries until its timeout; a hung one would block the
    /// test forever). Returns whether it succeeded.
    fn ctr_quiet(&self, namespace: &str, args: &[&str]) -> bool {
        Command::new("ctr")
            .args(["--connect-timeout", "2s", "--timeout", "20s", "--address"])
            .arg(&self.control)
            .args(["-n", namespace])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kills and removes the tasks and records of `ids` (all in `namespace`) with two ctr calls:
    /// `tasks rm -f` sends SIGKILL, waits for each task to exit and deletes it (which unmounts
    /// its rootfs and lets its shim exit), then `containers rm`. Returns whether both worked.
    fn remove_all(&self, namespace: &str, ids: &[&str]) -> bool {
        let mut tasks = vec!["tasks", "rm", "-f"];
        tasks.extend_from_slice(ids);
        let mut records = vec!["containers", "rm"];
        records.extend_from_slice(ids);
        // `tasks rm` fails for a container whose task is already gone; the records still go.
        let tasks_ok = self.ctr_quiet(namespace, &tasks);
        self.ctr_quiet(namespace, &records) && (tasks_ok || self.tasks_gone(namespace, ids))
    }

    fn tasks_gone(&self, namespace: &str, ids: &[&str]) -> bool {
        let out = Command::new("ctr")
            .args(["--connect-timeout", "2s", "--timeout", "20s", "--address"])
            .arg(&self.control)
            .args(["-n", namespace, "tasks", "ls"])
            .output();
        out.is_ok_and(|o| {
            o.status.success()
                && !String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                    l.split_whitespace()
                        .next()
                        .is_some_and(|t| ids.contains(&t))
                })
        })
    }

    /// Last resort when containerd could not remove its tasks (it died or hung): SIGKILL every
    /// process whose command line names this instance's token (the shims, `-id <id>-<token>`)
    /// together with their container processes, then lazily unmount whatever is still mounted
    /// under the work directory (the tasks' rootfs).
    fn kill_leftovers(&self) {
        let shims = processes_with_arg_ending(&format!("-{}", self.token));
        for pid in &shims {
            for child in children_of(*pid) {
                signal("-KILL", child);
            }
            signal("-KILL", *pid);
        }
        let work = self.work.path().to_string_lossy().into_owned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&work))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
    }

    /// Removes the empty cgroup parents runc leaves in every hierarchy (`/<token>`).
    fn remove_cgroups(&self) {
        let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let mut dirs: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup").join(&self.token)];
        for e in entries.flatten() {
            dirs.push(e.path().join(&self.token));
        }
        for d in dirs {
            if d.is_dir() {
                // Children first (leaf cgroups runc may not have removed yet).
                if let Ok(children) = std::fs::read_dir(&d) {
                    for c in children.flatten() {
                        if c.path().is_dir() {
                            let _ = std::fs::remove_dir(c.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let containers =
            std::mem::take(&mut *self.containers.lock().unwrap_or_else(|e| e.into_inner()));
        let mut namespaces: Vec<&str> = containers.iter().map(|(ns, _)| ns.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        // No socket to reach (containerd gone with its directory): skip ctr, whose every call
        // would wait for its connect timeout, and clean up directly below.
        let mut clean = self.control.exists() || containers.is_empty();
        // Tasks first, while containerd runs: shims outlive containerd (test-recipes §5).
        for ns in namespaces {
            if !clean {
                break;
            }
            let ids: Vec<&str> = containers
                .iter()
                .filter(|(n, _)| n == ns)
                .map(|(_, id)| id.as_str())
                .collect();
            clean &= self.remove_all(ns, &ids);
        }
        if let Some(mut child) = self.child.take() {
            signal("-TERM", child.id() as i32);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if !clean {
            self.kill_leftovers();
        }
        self.remove_cgroups();
        let _ = std::fs::remove_file(self.socket.with_extension("sock.ttrpc"));
    }
}

/// Processes with a command-line argument ending in `suffix` (a shim's `-id <id>-<token>`).
fn processes_with_arg_ending(suffix: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|arg| arg.ends_with(suffix.as_bytes()))
            })
        })
        .collect()
}

/// Direct children of `pid` (a shim's children are its container's processes).
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn signal(sig: &str, pid: i32) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}
