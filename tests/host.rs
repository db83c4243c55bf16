//! Host tier: `cadvisor-setup detect` on temporary host roots with Debian's containerd really
//! listening at each distribution's socket path, real labelled containers, real cgroup mounts.
//! Every test runs the real binary (`--host-root R -o json --no-cluster`).

mod support;

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use support::containerd::Containerd;
use support::host_root::{DEFAULT_SOCKET, HostRootDir, K0S_SOCKET, K3S_SOCKET, MICROK8S_SOCKET};
use support::real;

/// The outcome of one `detect` run.
struct Detect {
    code: i32,
    json: Value,
    stderr: String,
    elapsed: Duration,
}

impl Detect {
    fn candidate(&self, path: &str) -> &Value {
        self.json["runtime"]["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .find(|c| c["path"] == path)
            .unwrap_or_else(|| panic!("no candidate {path} in {:#}", self.json["runtime"]))
    }

    fn warnings(&self) -> Vec<String> {
        self.json["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .map(|w| w.as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn detect(root: &Path, extra: &[&str]) -> Detect {
    let start = Instant::now();
    let out = Command::cargo_bin("cadvisor-setup")
        .expect("binary")
        .arg("detect")
        .arg("--host-root")
        .arg(root)
        .args(["-o", "json", "--no-cluster"])
        .args(extra)
        .env_remove("KUBECONFIG")
        .env_remove("CADVISOR_SETUP_KUBECONFIG")
        .env_remove("CADVISOR_SETUP_CONTAINERD_SOCKET")
        .env("HOME", root.join("home"))
        .timeout(Duration::from_secs(30))
        .output()
        .expect("detect runs");
    parse(out, start)
}

fn parse(out: std::process::Output, start: Instant) -> Detect {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    Detect {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn assert_verified(d: &Detect, socket: &str) {
    assert_eq!(d.code, 0, "{:#}\n{}", d.json, d.stderr);
    assert_eq!(d.json["ok"], true);
    assert_eq!(d.json["exit_code"], 0);
    assert_eq!(
        d.json["runtime"]["socket"], socket,
        "{:#}",
        d.json["runtime"]
    );
    assert_eq!(d.json["runtime"]["verified"], true);
    assert_eq!(d.json["runtime"]["kind"], "containerd");
    assert_eq!(d.json["runtime"]["namespace"], "k8s.io");
    assert!(
        d.json["runtime"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
}

/// A containerd at `socket` in `root` running one container labelled as the kubelet labels a
/// pod's (`[id, pod, pod namespace, container name]`), and `detect` on the root, asserted
/// verified at `socket`. `None` (after `real::require`'s SKIP) when containerd is missing. Keep
/// the containerd alive as long as the root is used.
fn verified_host(
    root: &HostRootDir,
    socket: &str,
    [id, pod, namespace, name]: [&str; 4],
) -> Option<(Detect, Containerd)> {
    if !real::require_containerd() {
        return None;
    }
    let ctd = Containerd::start(root.path(), socket);
    ctd.run_pod_container(id, pod, namespace, name);
    let d = detect(root.path(), &[]);
    assert_verified(&d, socket);
    Some((d, ctd))
}

mod microk8s {
    use super::*;

    #[test]
    fn classic_picks_the_snap_socket_with_version_revision_and_kubeconfig() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let Some((d, _ctd)) =
            verified_host(&root, MICROK8S_SOCKET, ["web", "web-0", "default", "web"])
        else {
            return;
        };
        let dist = &d.json["distribution"];
        assert_eq!(dist["kind"], "microk8s");
        assert_eq!(dist["version"], "v1.35.2");
        assert_eq!(dist["confinement"], "classic");
        assert_eq!(dist["revision"], "8148");
        let c = d.candidate(MICROK8S_SOCKET);
        assert_eq!(c["source"], "kubelet-config");
        assert_eq!(c["probe"]["kubernetes_containers"], 1);
        let origin = c["origin"].as_str().unwrap();
        assert!(
            origin.contains("args/kubelet: --container-runtime-endpoint"),
            "{origin}"
        );
        assert!(origin.contains("args/containerd: --address"), "{origin}");
        assert_eq!(
            d.json["kubelet"]["args_file"],
            "/var/snap/microk8s/current/args/kubelet"
        );
        assert_eq!(
            d.json["kubelet"]["runtime_endpoint"],
            "/var/snap/microk8s/common/run/containerd.sock"
        );
        assert_eq!(
            d.json["kubeconfig"]["path"],
            "/var/snap/microk8s/current/credentials/client.config"
        );
        assert_eq!(d.json["kubeconfig"]["source"], "distribution");
        assert_eq!(d.json["cluster"]["checked"], false);
        assert_eq!(d.json["cgroup"]["driver"], "cgroupfs");

        // The human report: the chosen socket on the `Socket` line, every candidate listed.
        let out = Command::cargo_bin("cadvisor-setup")
            .unwrap()
            .args(["detect", "--no-cluster", "--host-root"])
            .arg(root.path())
            .env("HOME", root.path().join("home"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        let socket_line = text.lines().find(|l| l.starts_with("Socket")).unwrap();
        assert!(socket_line.contains(MICROK8S_SOCKET), "{text}");
        assert!(socket_line.contains("verified"), "{text}");
        assert!(
            text.contains("microk8s v1.35.2 (revision 8148, classic)"),
            "{text}"
        );
        assert!(
            text.contains("/run/containerd/containerd.sock  (does not exist)"),
            "{text}"
        );
    }

    #[test]
    fn strict_confinement_is_reported() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.0", "strict", "8200");
        let Some((d, _ctd)) = verified_host(
            &root,
            MICROK8S_SOCKET,
            ["dns", "coredns-abc", "kube-system", "coredns"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["confinement"], "strict");
        assert_eq!(d.json["distribution"]["revision"], "8200");
    }

    /// Docker installed next to MicroK8s: a second live containerd at the default path whose
    /// containers live in `moby`. Even without the args files deciding (the kubelet args file is
    /// unreadable here), the k8s.io check picks MicroK8s' socket.
    #[test]
    fn with_docker_decoy_picks_microk8s_socket() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let snap = Containerd::start(root.path(), MICROK8S_SOCKET);
        snap.run_pod_container("web", "web-0", "default", "web");
        let docker = Containerd::start(root.path(), DEFAULT_SOCKET);
        docker.run_container("moby", "nginx", &[("com.docker.compose.service", "nginx")]);

        let d = detect(root.path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        let decoy = d.candidate(DEFAULT_SOCKET);
        assert!(
            decoy["probe"]["version"].is_string(),
            "decoy is live: {decoy:#}"
        );
        assert_eq!(decoy["probe"]["kubernetes_containers"], 0);
        assert!(
            decoy["probe"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "moby")
        );

        // Now without any args file to decide: only the k8s.io namespace tells them apart.
        std::fs::remove_file(root.local("/var/snap/microk8s/current/args/kubelet")).unwrap();
        std::fs::remove_file(root.local("/var/snap/microk8s/current/args/containerd")).unwrap();
        let d = detect(root.path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        assert_eq!(d.candidate(MICROK8S_SOCKET)["source"], "well-known");
    }

    /// A custom `--address` in args/containerd, written with comments and quotes, and a kubelet
    /// args file whose endpoint line is commented out: the runtime's own configuration decides.
    #[test]
    fn custom_address_in_args_files_with_comments_and_quotes() {
        let custom = "/var/snap/microk8s/common/run/alt/ctd.sock";
        let root = HostRootDir::new();
        root.microk8s("v1.34.1", "classic", "8000");
        root.write(
            "/var/snap/microk8s/current/args/kubelet",
            "# managed by hand\n--root-dir=${SNAP_COMMON}/var/lib/kubelet\n\
        #--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n\n",
        );
        root.write(
            "/var/snap/microk8s/current/args/containerd",
            "--config ${SNAP_DATA}/args/containerd.toml\n\
        # moved the socket, see ticket 42\n\
        \n   --address \"${SNAP_COMMON}/run/alt/ctd.sock\"   \n\
        --state '${SNAP_COMMON}/run/containerd'\n",
        );
        let Some((d, _ctd)) = verified_host(&root, custom, ["web", "web-0", "default", "web"])
        else {
            return;
        };
        let c = d.candidate(custom);
        assert_eq!(c["source"], "runtime-config");
        assert_eq!(
            c["origin"],
            "/var/snap/microk8s/current/args/containerd: --address"
        );
        assert_eq!(d.candidate(MICROK8S_SOCKET)["probe"]["exists"], false);
    }

    /// Root ignores mode bits, so `chmod 000` cannot make a file unreadable to these tests. A
    /// directory in place of the kubelet args file is refused (not a regular file): detection
    /// warns, naming the file, and still finds the socket by probing.
    #[test]
    fn unreadable_args_file_is_a_warning_and_probing_carries_on() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let args = root.local("/var/snap/microk8s/current/args/kubelet");
        std::fs::remove_file(&args).unwrap();
        std::fs::create_dir(&args).unwrap();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("web", "web-0", "default", "web");

        let d = detect(root.path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        let w = d.warnings();
        assert!(
            w.iter()
                .any(|w| w.contains("/var/snap/microk8s/current/args/kubelet")
                    && w.contains("is a directory, not a regular file")),
            "{w:?}"
        );
        assert_eq!(d.json["kubelet"]["args_file"], Value::Null);
    }

    #[test]
    fn malformed_snap_yaml_is_a_warning_naming_the_file() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write(
            "/snap/microk8s/8148/meta/snap.yaml",
            "name: microk8s\nversion: [v1.35\nconfinement: {classic\n",
        );
        let Some((d, _ctd)) =
            verified_host(&root, MICROK8S_SOCKET, ["web", "web-0", "default", "web"])
        else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "microk8s");
        assert_eq!(d.json["distribution"]["version"], Value::Null);
        let w = d.warnings();
        assert!(
            w.iter()
                .any(|w| w.contains("/snap/microk8s/current/meta/snap.yaml")),
            "{w:?}"
        );
    }
}

mod other_distributions {
    use super::*;

    #[test]
    fn k3s_default_socket() {
        let root = HostRootDir::new();
        root.k3s();
        let Some((d, _ctd)) = verified_host(
            &root,
            K3S_SOCKET,
            ["traefik", "traefik-1", "kube-system", "traefik"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "k3s");
        assert_eq!(
            d.json["kubelet"]["runtime_endpoint"],
            "unix:///run/k3s/containerd/containerd.sock"
        );
        assert_eq!(d.candidate(K3S_SOCKET)["source"], "kubelet-config");
        assert_eq!(d.json["kubeconfig"]["path"], "/etc/rancher/k3s/k3s.yaml");
    }

    #[test]
    fn rke2_uses_the_k3s_socket() {
        let root = HostRootDir::new();
        root.rke2();
        let Some((d, _ctd)) = verified_host(
            &root,
            K3S_SOCKET,
            ["ing", "rke2-ingress-x", "kube-system", "nginx"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "rke2");
        assert_eq!(d.json["kubeconfig"]["path"], "/etc/rancher/rke2/rke2.yaml");
    }

    /// Older k8s-snap releases put containerd under the snap's common directory.
    #[test]
    fn k8s_snap_with_its_older_socket_location() {
        let sock = "/var/snap/k8s/common/run/containerd.sock";
        let root = HostRootDir::new();
        root.k8s_snap("v1.32.2", sock);
        let Some((d, _ctd)) =
            verified_host(&root, sock, ["dns", "coredns-1", "kube-system", "coredns"])
        else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "k8s-snap");
        assert_eq!(d.json["distribution"]["version"], "v1.32.2");
        assert_eq!(d.candidate(sock)["source"], "kubelet-config");
        assert_eq!(d.json["kubeconfig"]["path"], "/etc/kubernetes/admin.conf");
    }

    /// Current k8s-snap uses containerd's default socket.
    #[test]
    fn k8s_snap_with_the_default_socket() {
        let root = HostRootDir::new();
        root.k8s_snap("v1.33.0", "unix:///run/containerd/containerd.sock");
        let Some((d, _ctd)) = verified_host(
            &root,
            DEFAULT_SOCKET,
            ["dns", "coredns-1", "kube-system", "coredns"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "k8s-snap");
    }

    #[test]
    fn k0s_default_socket() {
        let root = HostRootDir::new();
        root.k0s();
        let Some((d, _ctd)) = verified_host(
            &root,
            K0S_SOCKET,
            ["kp", "kube-proxy-x", "kube-system", "kube-proxy"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "k0s");
        assert_eq!(d.json["kubeconfig"]["path"], "/var/lib/k0s/pki/admin.conf");
    }

    /// kubeadm writes `unix:///var/run/...`; with `/var/run -> /run` it is the default socket.
    #[test]
    fn kubeadm_var_run_endpoint_and_systemd_driver() {
        let root = HostRootDir::new();
        root.kubeadm("unix:///var/run/containerd/containerd.sock", "systemd");
        root.symlink("/run", "/var/run");
        let Some((d, _ctd)) = verified_host(
            &root,
            DEFAULT_SOCKET,
            ["api", "kube-apiserver-n1", "kube-system", "kube-apiserver"],
        ) else {
            return;
        };
        assert_eq!(d.json["distribution"]["kind"], "kubeadm");
        assert_eq!(d.candidate(DEFAULT_SOCKET)["source"], "kubelet-config");
        assert_eq!(d.json["cgroup"]["driver"], "systemd");
    }
}

mod refusals {
    use super::*;

    #[test]
    fn regular_file_at_the_socket_path_exits_3() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write(MICROK8S_SOCKET, "");

        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3, "{:#}", d.json);
        assert_eq!(d.json["ok"], false);
        assert_eq!(d.json["runtime"]["socket"], Value::Null);
        assert_eq!(d.json["settle_with"], "--containerd-socket");
        let c = d.candidate(MICROK8S_SOCKET);
        assert_eq!(c["probe"]["exists"], true);
        assert_eq!(c["probe"]["is_socket"], false);
        assert!(
            c["probe"]["error"]
                .as_str()
                .unwrap()
                .contains("a regular file, not a socket")
        );
    }

    /// A socket path that is a symlink loop exists but leads nowhere: the report says so,
    /// never "does not exist" nor "this does not look like a Kubernetes node".
    #[test]
    fn a_link_loop_at_the_socket_path_is_named_as_such_not_as_absent() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let sock = std::path::Path::new(MICROK8S_SOCKET);
        let other = sock.with_file_name("loop");
        root.symlink(other.to_str().unwrap(), MICROK8S_SOCKET);
        root.symlink(MICROK8S_SOCKET, other.to_str().unwrap());

        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3, "{:#}", d.json);
        let message = d.json["message"].as_str().unwrap_or_default();
        assert!(!message.contains("does not look like"), "{message}");
        assert!(
            message.contains("no containerd socket answered"),
            "{message}"
        );

        let out = Command::cargo_bin("cadvisor-setup")
            .expect("binary")
            .args(["detect", "--no-cluster", "--host-root"])
            .arg(root.path())
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .env("HOME", root.path().join("home"))
            .timeout(Duration::from_secs(30))
            .output()
            .expect("detect runs");
        let human = String::from_utf8_lossy(&out.stdout);
        let line = human
            .lines()
            .skip_while(|l| !l.contains(MICROK8S_SOCKET))
            .take(2)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!line.contains("does not exist"), "{human}");
        assert!(line.contains("link loop"), "{human}");
    }

    #[test]
    fn dead_socket_exits_3_with_connection_refused() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let path = root.local(MICROK8S_SOCKET);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());

        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3);
        let c = d.candidate(MICROK8S_SOCKET);
        assert_eq!(c["probe"]["is_socket"], true);
        assert_eq!(c["probe"]["connects"], false);
        assert!(c["probe"]["error"].as_str().unwrap().contains("refused"));
    }

    /// A socket that accepts connections and never answers must not hang detection.
    #[test]
    fn silent_socket_exits_3_well_under_10s() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let path = root.local(MICROK8S_SOCKET);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();

        let d = detect(root.path(), &[]);
        drop(listener);
        assert_eq!(d.code, 3, "{:#}", d.json);
        assert!(d.elapsed < Duration::from_secs(6), "took {:?}", d.elapsed);
        let c = d.candidate(MICROK8S_SOCKET);
        assert_eq!(c["probe"]["connects"], true);
        assert_eq!(c["probe"]["version"], Value::Null);
        let err = c["probe"]["error"].as_str().unwrap();
        assert!(err.contains("did not answer"), "{err}");
    }

    /// Two live sockets with kubelet containers and nothing authoritative: ambiguous, exit 3;
    /// `--containerd-socket` settles it.
    #[test]
    fn two_live_sockets_are_ambiguous_until_the_flag_settles_it() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        let a = Containerd::start(root.path(), K0S_SOCKET);
        a.run_pod_container("a", "a-0", "default", "a");
        let b = Containerd::start(root.path(), DEFAULT_SOCKET);
        b.run_pod_container("b", "b-0", "default", "b");

        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3, "{:#}", d.json);
        assert_eq!(d.json["runtime"]["ambiguous"], true);
        assert_eq!(d.json["runtime"]["socket"], Value::Null);
        assert_eq!(d.json["settle_with"], "--containerd-socket");

        let d = detect(root.path(), &["--containerd-socket", DEFAULT_SOCKET]);
        assert_verified(&d, DEFAULT_SOCKET);
        assert_eq!(d.json["runtime"]["ambiguous"], false);
    }
}

mod user_flag {
    use super::*;

    /// containerd at a path no distribution uses, with no pods yet: found only with the flag,
    /// which is taken as the user's word (with a warning about the empty namespace).
    #[test]
    fn containerd_socket_flag_is_probed_and_used() {
        if !real::require_containerd() {
            return;
        }
        let sock = "/srv/ctd/c.sock";
        let root = HostRootDir::new();
        let _ctd = Containerd::start(root.path(), sock);

        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3);

        let d = detect(root.path(), &["--containerd-socket", sock]);
        assert_verified(&d, sock);
        assert_eq!(d.candidate(sock)["source"], "user-flag");
        assert!(
            d.warnings()
                .iter()
                .any(|w| w.contains("no kubelet containers"))
        );

        let d = detect(
            root.path(),
            &["--containerd-socket", "/srv/ctd/missing.sock"],
        );
        assert_eq!(d.code, 3);
        assert!(
            d.warnings()
                .iter()
                .any(|w| w.contains("/srv/ctd/missing.sock") && w.contains("does not exist"))
        );
    }
}

/// Cgroup mode on real mounts made in a private mount namespace (`unshare -m`), read by the real
/// binary through `--host-root`; the host's own mounts are untouched.
mod cgroups {
    use super::*;

    fn in_mount_ns(root: &Path, mounts: &str) -> Detect {
        let bin = assert_cmd::cargo::cargo_bin("cadvisor-setup");
        let script =
            format!("set -e; {mounts}; exec \"$0\" detect --host-root \"$1\" -o json --no-cluster");
        let start = Instant::now();
        let out = StdCommand::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .arg(&bin)
            .arg(root)
            .env("HOME", root.join("home"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("unshare runs");
        let d = parse(out, start);
        assert!(
            !d.stderr.contains("mount:"),
            "mount failed in the namespace: {}",
            d.stderr
        );
        d
    }

    fn can_unshare() -> bool {
        real::require("root", real::is_root())
            && real::require("unshare (util-linux)", real::have_tool("unshare"))
    }

    #[test]
    fn v2_when_cgroup2_is_mounted_at_sys_fs_cgroup() {
        if !can_unshare() {
            return;
        }
        let root = HostRootDir::new();
        root.mkdir("/sys/fs/cgroup");
        let d = in_mount_ns(
            root.path(),
            &format!(
                "mount -t cgroup2 none {}",
                root.local("/sys/fs/cgroup").display()
            ),
        );
        assert_eq!(d.json["cgroup"]["mode"], "v2", "{}", d.stderr);
    }

    #[test]
    fn hybrid_when_tmpfs_holds_cgroup2_at_unified() {
        if !can_unshare() {
            return;
        }
        let root = HostRootDir::new();
        root.mkdir("/sys/fs/cgroup");
        let cg = root.local("/sys/fs/cgroup");
        let d = in_mount_ns(
            root.path(),
            &format!(
                "mount -t tmpfs tmpfs {cg}; mkdir {cg}/unified {cg}/kubepods.slice; mount -t cgroup2 none {cg}/unified",
                cg = cg.display()
            ),
        );
        assert_eq!(d.json["cgroup"]["mode"], "hybrid", "{}", d.stderr);
        // kubepods.slice on the tmpfs: the systemd driver's layout.
        assert_eq!(d.json["cgroup"]["driver"], "systemd");
        assert!(
            d.json["cgroup"]["driver_source"]
                .as_str()
                .unwrap()
                .contains("kubepods.slice")
        );
    }

    #[test]
    fn v1_when_tmpfs_holds_only_v1_hierarchies() {
        if !can_unshare() {
            return;
        }
        let root = HostRootDir::new();
        root.mkdir("/sys/fs/cgroup");
        let cg = root.local("/sys/fs/cgroup");
        // The memory hierarchy is the host's own v1 memory hierarchy, mounted once more.
        let d = in_mount_ns(
            root.path(),
            &format!(
                "mount -t tmpfs tmpfs {cg}; mkdir {cg}/memory {cg}/kubepods; mount -t cgroup -o memory none {cg}/memory",
                cg = cg.display()
            ),
        );
        assert_eq!(d.json["cgroup"]["mode"], "v1", "{}", d.stderr);
        assert_eq!(d.json["cgroup"]["driver"], "cgroupfs");
    }

    #[test]
    fn unknown_without_sys_mounted() {
        let root = HostRootDir::new();
        let d = detect(root.path(), &[]);
        assert_eq!(d.json["cgroup"]["mode"], "unknown");
        assert!(d.warnings().iter().any(|w| w.contains("/sys/fs/cgroup")));
    }
}

mod kubeconfig_and_cluster {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Root reads any file, so the permission checks run the binary as `nobody` (setpriv) on a
    /// MicroK8s root whose `client.config` is mode 600, as on a real node, and whose kubelet args
    /// file is mode 000.
    #[test]
    fn unreadable_admin_kubeconfig_gives_the_microk8s_group_hint() {
        if !(real::require("root", real::is_root())
            && real::require("setpriv (util-linux)", real::have_tool("setpriv")))
        {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = root.local("/var/snap/microk8s/current/credentials/client.config");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        // And an args file nobody may read (`chmod 000` does bind a non-root user).
        let args = root.local("/var/snap/microk8s/current/args/kubelet");
        std::fs::set_permissions(&args, std::fs::Permissions::from_mode(0o000)).unwrap();

        let bin = assert_cmd::cargo::cargo_bin("cadvisor-setup");
        let start = Instant::now();
        let out = StdCommand::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("detect")
            .arg("--host-root")
            .arg(root.path())
            .args(["-o", "json"])
            .env("HOME", "/nonexistent")
            .env_remove("KUBECONFIG")
            .output()
            .expect("setpriv runs");
        let d = parse(out, start);
        let kc = &d.json["kubeconfig"];
        assert_eq!(
            kc["path"],
            "/var/snap/microk8s/current/credentials/client.config"
        );
        assert_eq!(kc["readable"], false);
        let hint = kc["hint"].as_str().unwrap();
        assert!(hint.contains("permission denied"), "{hint}");
        assert!(hint.contains("sudo usermod -a -G microk8s $USER"), "{hint}");
        assert!(
            d.warnings()
                .iter()
                .any(|w| w.contains("/var/snap/microk8s/current/args/kubelet")
                    && w.contains("Permission denied")
                    && w.contains("sudo")),
            "{:?}",
            d.warnings()
        );
        // The API server was not asked with a file we cannot read; the reason is given.
        assert_eq!(d.json["cluster"]["reachable"], false);
        assert!(
            d.json["cluster"]["error"]
                .as_str()
                .unwrap()
                .starts_with("API server not reachable: permission denied")
        );
    }

    /// `--kubeconfig` pointing at an API server that is down: detect says so and still reports
    /// (and verifies) the host facts.
    #[test]
    fn api_server_down_is_reported_and_host_facts_carry_on() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("web", "web-0", "default", "web");
        // A port nobody listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let kubeconfig = root.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
                 users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
                 current-context: x\n"
            ),
        )
        .unwrap();

        let start = Instant::now();
        let out = Command::cargo_bin("cadvisor-setup")
            .unwrap()
            .arg("detect")
            .arg("--host-root")
            .arg(root.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-o", "json"])
            .env("HOME", root.path().join("home"))
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let d = parse(out, start);
        assert_verified(&d, MICROK8S_SOCKET);
        assert_eq!(d.json["kubeconfig"]["source"], "flag");
        assert_eq!(d.json["cluster"]["checked"], true);
        assert_eq!(d.json["cluster"]["reachable"], false);
        let err = d.json["cluster"]["error"].as_str().unwrap();
        assert!(err.starts_with("API server not reachable: "), "{err}");
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}

mod other_runtimes {
    use super::*;

    /// kubeadm with CRI-O: the kubelet's endpoint is CRI-O's socket, which speaks the CRI, not
    /// containerd's API; detect reports CRI-O as the runtime once the socket accepts connections.
    #[test]
    fn kubeadm_with_cri_o_is_reported_as_cri_o() {
        let root = HostRootDir::new();
        root.kubeadm("unix:///var/run/crio/crio.sock", "systemd");
        root.mkdir("/run/crio");
        let listener =
            std::os::unix::net::UnixListener::bind(root.local("/run/crio/crio.sock")).unwrap();

        let d = detect(root.path(), &[]);
        drop(listener);
        assert_eq!(d.code, 0, "{:#}", d.json);
        assert_eq!(d.json["runtime"]["kind"], "cri-o");
        assert_eq!(d.json["runtime"]["socket"], "/run/crio/crio.sock");
        assert_eq!(
            d.candidate("/run/crio/crio.sock")["source"],
            "kubelet-config"
        );
    }
}

/// `detect` with the API server answering (the fake API server of tests/support/fake_api, whose
/// nodes' configz and kubelet metrics come from the real containerd of each node's host root).
mod with_api_server {
    use super::*;
    use support::fake_api::{FakeCluster, FakeClusterConfig, SimNode};

    fn detect_with(root: &Path, kubeconfig: &Path, extra: &[&str]) -> Detect {
        let start = Instant::now();
        let out = Command::cargo_bin("cadvisor-setup")
            .unwrap()
            .arg("detect")
            .arg("--host-root")
            .arg(root)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["-o", "json"])
            .args(extra)
            .env("HOME", root.join("home"))
            .env_remove("KUBECONFIG")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        parse(out, start)
    }

    /// Two live containerds hold kubelet containers and no file on the host says which one the
    /// kubelet uses: ambiguous on the host alone, decided by the kubelet's configz.
    #[test]
    fn configz_endpoint_settles_two_live_sockets() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.write("/etc/hostname", "node-1\n");
        let a = Containerd::start(root.path(), K0S_SOCKET);
        a.run_pod_container("a", "a-0", "default", "a");
        let b = Containerd::start(root.path(), DEFAULT_SOCKET);
        b.run_pod_container("b", "b-0", "default", "b");
        let mut node = SimNode::microk8s("node-1", root.path());
        node.containerd_socket = DEFAULT_SOCKET.into();
        node.runtime_endpoint = format!("unix://{DEFAULT_SOCKET}");
        node.container_runtime_version = "containerd://1.6.20".into();
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![node]));

        let alone = detect(root.path(), &[]);
        assert_eq!(alone.code, 3);
        assert_eq!(alone.json["runtime"]["ambiguous"], true);

        let d = detect_with(root.path(), cluster.kubeconfig_path(), &[]);
        assert_verified(&d, DEFAULT_SOCKET);
        assert_eq!(d.candidate(DEFAULT_SOCKET)["source"], "configz");
        let c = &d.json["cluster"];
        assert_eq!(c["reachable"], true, "{c:#}");
        assert_eq!(c["node_name"], "node-1");
        assert_eq!(c["matched_by"], "name");
        assert_eq!(c["container_runtime_version"], "containerd://1.6.20");
        assert_eq!(
            c["configz"]["runtime_endpoint"],
            "unix:///run/containerd/containerd.sock"
        );
        assert_eq!(c["configz"]["cgroup_driver"], "cgroupfs");
        assert_eq!(d.json["cgroup"]["driver"], "cgroupfs");
        assert!(c["kubelet_cadvisor_pod_labels"].is_boolean(), "{c:#}");
        assert_eq!(d.json["kubeconfig"]["source"], "flag");
    }

    /// The API server down: reported, and the host facts still decide (MicroK8s).
    #[test]
    fn api_down_falls_back_to_host_facts() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write("/etc/hostname", "node-1\n");
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("web", "web-0", "default", "web");
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
            "node-1",
            root.path(),
        )]));

        let d = detect_with(root.path(), cluster.kubeconfig_path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        assert_eq!(d.json["cluster"]["reachable"], true);
        assert_eq!(
            d.json["cluster"]["configz"]["runtime_endpoint"],
            MICROK8S_SOCKET
        );

        cluster.failures().set_api_down(true);
        let d = detect_with(root.path(), cluster.kubeconfig_path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        assert_eq!(d.json["cluster"]["reachable"], false);
        let err = d.json["cluster"]["error"].as_str().unwrap();
        assert!(err.starts_with("API server not reachable"), "{err}");
    }

    /// RBAC without `nodes/proxy`: the node is found, configz is reported as forbidden, detection
    /// goes on with host facts.
    #[test]
    fn forbidden_configz_is_reported_per_call() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write("/etc/hostname", "node-1\n");
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        ctd.run_pod_container("web", "web-0", "default", "web");
        let cluster = FakeCluster::start(FakeClusterConfig::with_nodes(vec![SimNode::microk8s(
            "node-1",
            root.path(),
        )]));
        cluster.failures().forbid("get", "nodes/proxy");

        let d = detect_with(root.path(), cluster.kubeconfig_path(), &[]);
        assert_verified(&d, MICROK8S_SOCKET);
        let c = &d.json["cluster"];
        assert_eq!(c["reachable"], true);
        assert_eq!(c["configz"], Value::Null);
        assert!(
            c["configz_error"].as_str().unwrap().contains("403"),
            "{c:#}"
        );
    }
}

/// The library's containerd client, called directly (the fake API server's simulated cAdvisor and
/// others use it).
mod containerd_client {
    use super::*;
    use cadvisor_setup::host::containerd::{self, ProbeError};

    #[tokio::test]
    async fn version_and_labelled_containers_from_a_real_containerd() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        let id = ctd.run_pod_container("web", "web-0", "shop", "nginx");
        ctd.run_container("k8s.io", "plain", &[("app", "x")]);
        let sock = ctd.socket_path().to_path_buf();
        let t = Duration::from_secs(2);

        let v = containerd::version(&sock, t).await.unwrap();
        assert!(v.version.starts_with(char::is_numeric), "{v:?}");

        let list = containerd::list_containers(&sock, "k8s.io", t)
            .await
            .unwrap();
        assert_eq!(list.len(), 2);
        let web = list.iter().find(|c| c.id == id).expect("the pod container");
        assert!(web.is_kubernetes());
        assert_eq!(web.labels["io.kubernetes.pod.name"], "web-0");
        assert_eq!(web.labels["io.kubernetes.pod.namespace"], "shop");
        assert_eq!(web.labels["io.kubernetes.container.name"], "nginx");
        assert_eq!(web.image, support::containerd::IMAGE);
        assert_eq!(list.iter().filter(|c| c.is_kubernetes()).count(), 1);

        assert!(
            containerd::list_containers(&sock, "moby", t)
                .await
                .unwrap()
                .is_empty()
        );
        let ns = containerd::list_namespaces(&sock, t).await.unwrap();
        assert_eq!(ns, vec!["k8s.io".to_string()]);
    }

    #[tokio::test]
    async fn silent_and_missing_sockets_fail_fast_with_the_path() {
        let root = HostRootDir::new();
        let silent = root.local("/silent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
        let t = Duration::from_millis(500);

        let start = Instant::now();
        let err = containerd::version(&silent, t).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(matches!(err, ProbeError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&silent.display().to_string()));

        let missing = root.local("/missing.sock");
        let err = containerd::list_containers(&missing, "k8s.io", t)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.sock"), "{err}");
    }
}

/// The containerd harness itself: nothing outlives a test.
mod harness {
    use super::*;

    fn processes_mentioning(needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) {
                    found.push(cmd);
                }
            }
        }
        found
    }

    /// Even when the host root holding the socket is deleted before the harness is dropped (a
    /// struct whose root field comes first), the tasks are killed and no shim is left behind.
    #[test]
    fn no_shim_survives_even_if_the_host_root_goes_first() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        let id = ctd.run_pod_container("web", "web-0", "default", "web");
        assert!(!processes_mentioning(&id).is_empty(), "the shim runs");
        drop(root);
        drop(ctd);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_mentioning(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(processes_mentioning(&id), Vec::<String>::new());
    }

    /// containerd killed (SIGKILL) while its container runs: Drop cannot ask it to remove the
    /// task, so it kills the shim and the container itself and unmounts the rootfs.
    #[test]
    fn no_shim_or_mount_survives_a_dead_containerd() {
        if !real::require_containerd() {
            return;
        }
        let root = HostRootDir::new();
        let ctd = Containerd::start(root.path(), MICROK8S_SOCKET);
        let id = ctd.run_pod_container("web", "web-0", "default", "web");
        assert!(!processes_mentioning(&id).is_empty(), "the shim runs");
        let pid = ctd.pid().expect("containerd pid").to_string();
        assert!(
            StdCommand::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        drop(ctd);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_mentioning(&id).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(processes_mentioning(&id), Vec::<String>::new());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&id), "{mounts}");
    }
}

/// `--host-root` is a boundary: no symlink, however it is written, leads detection out of it,
/// and a path that cannot be resolved inside it (a loop, more than 40 links) is a warning naming
/// that path, never a half-resolved path the kernel would finish resolving on the real host.
mod containment {
    use super::*;

    fn warns_of_a_loop_at(d: &Detect, path: &str) -> bool {
        let start = format!("{path}: more than 40 symbolic links");
        d.warnings().iter().any(|w| w.starts_with(&start))
    }

    /// `/var -> /c1 -> /c2 -> ... -> /real`: `links` symlinks in all, each absolute, ending at a
    /// directory inside the root that holds RKE2's data directory.
    fn rke2_behind_links(links: usize) -> HostRootDir {
        let root = HostRootDir::new();
        root.mkdir("/real/lib/rancher/rke2");
        root.symlink("/c1", "/var");
        for i in 1..links - 1 {
            root.symlink(&format!("/c{}", i + 1), &format!("/c{i}"));
        }
        root.symlink("/real", &format!("/c{}", links - 1));
        root
    }

    /// `etc -> /etc` inside the root is `<root>/etc` again: a loop, never the real `/etc`.
    /// (Old code gave up after 40 links and returned `<root>/etc`, which the kernel then followed
    /// to the real `/etc`: rke2 when the real host has `/etc/rancher/rke2`, its admin kubeconfig.)
    #[test]
    fn etc_linked_to_the_real_etc_reads_nothing_outside() {
        let root = HostRootDir::new();
        root.symlink("/etc", "/etc");
        let d = detect(root.path(), &[]);
        assert_eq!(d.json["distribution"]["kind"], "unknown", "{:#}", d.json);
        assert_ne!(d.json["distribution"]["kind"], "rke2");
        assert_eq!(d.json["kubeconfig"], Value::Null, "{:#}", d.json);
        assert!(
            warns_of_a_loop_at(&d, "/etc/rancher/rke2"),
            "{:?}",
            d.warnings()
        );
    }

    /// A self-link (`etc -> etc`) is a loop: a warning naming the path, once per path.
    #[test]
    fn a_self_link_is_a_warning_naming_the_path() {
        let root = HostRootDir::new();
        root.symlink("etc", "/etc");
        let d = detect(root.path(), &[]);
        assert_eq!(d.code, 3);
        assert_eq!(d.json["distribution"]["kind"], "unknown");
        let w = d.warnings();
        for path in ["/etc/rancher/rke2", "/etc/rancher/k3s", "/etc/k0s"] {
            assert!(warns_of_a_loop_at(&d, path), "{path}: {w:?}");
        }
        let mut unique = w.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), w.len(), "{w:?}");
    }

    /// The kernel's limit: 40 links resolve, 41 are an error for that path (old code: silently
    /// absent, with the 41st link left for the kernel to follow outside the root).
    #[test]
    fn forty_links_resolve_and_forty_one_are_a_warning() {
        let forty = rke2_behind_links(40);
        let d = detect(forty.path(), &[]);
        assert_eq!(d.json["distribution"]["kind"], "rke2", "{:#}", d.json);
        assert!(!warns_of_a_loop_at(&d, "/var/lib/rancher/rke2"));

        let forty_one = rke2_behind_links(41);
        let d = detect(forty_one.path(), &[]);
        assert_eq!(d.json["distribution"]["kind"], "unknown", "{:#}", d.json);
        assert!(
            warns_of_a_loop_at(&d, "/var/lib/rancher/rke2"),
            "{:?}",
            d.warnings()
        );
    }

    /// `/etc/hostname` behind a chain of absolute links whose last one names a file outside the
    /// root: the file's content never reaches the report, whatever the chain's length (old code:
    /// with 41 links the kernel followed the last one, and the node name was the outside file's).
    #[test]
    fn a_chain_of_absolute_links_does_not_leak_a_file_outside_the_root() {
        const SECRET: &str = "outside-the-root-7f3a";
        let outside = tempfile::tempdir().expect("tempdir");
        let secret = outside.path().join("hostname");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        for links in [2, 40, 41, 60] {
            let root = HostRootDir::new();
            root.symlink("/l1", "/etc/hostname");
            for i in 1..links - 1 {
                root.symlink(&format!("/l{}", i + 1), &format!("/l{i}"));
            }
            root.symlink(secret.to_str().unwrap(), &format!("/l{}", links - 1));
            let d = detect(root.path(), &[]);
            let report = d.json.to_string();
            assert!(
                !report.contains(SECRET),
                "{links} links: the outside file leaked: {:#}",
                d.json
            );
            assert_ne!(d.json["kubelet"]["node_name"], SECRET);
        }
    }

    /// The real host (`--host-root /`) is walked by the same resolver (re-rooting on `/` changes
    /// nothing): detection on this machine completes with one JSON document.
    #[test]
    fn the_system_root_still_works() {
        let out = Command::cargo_bin("cadvisor-setup")
            .expect("binary")
            .args(["detect", "--host-root", "/", "-o", "json", "--no-cluster"])
            .env_remove("KUBECONFIG")
            .env_remove("CADVISOR_SETUP_CONTAINERD_SOCKET")
            .timeout(Duration::from_secs(60))
            .output()
            .expect("detect runs");
        let d = parse(out, Instant::now());
        assert!(matches!(d.code, 0 | 3), "{}\n{:#}", d.stderr, d.json);
        assert!(d.json["distribution"]["kind"].is_string());
        assert!(
            !d.warnings().iter().any(|w| w.contains("symbolic links")),
            "{:?}",
            d.warnings()
        );
    }
}

/// Host files and flag-named files must be regular files of bounded size: a FIFO, a device or a
/// directory is refused at once with a message naming it, a huge file by its size, so nothing
/// blocks forever or fills memory. Each run has a 30 s kill timeout, so a hang fails the test.
mod bounded_input {
    use super::*;
    use std::ffi::OsStr;

    /// The binary with `args` (30 s timeout): exit code, stderr, elapsed.
    fn run(args: &[&OsStr]) -> (i32, String, String, Duration) {
        let start = Instant::now();
        let out = Command::cargo_bin("cadvisor-setup")
            .expect("binary")
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("CADVISOR_SETUP_KUBECONFIG")
            .env_remove("CADVISOR_SETUP_CONFIG")
            .env_remove("CADVISOR_SETUP_OUTPUT")
            .env("HOME", "/nonexistent")
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(30))
            .output()
            .expect("binary runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            start.elapsed(),
        )
    }

    fn prompt(elapsed: Duration) {
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    }

    fn has_warning(d: &Detect, path: &str, what: &str) -> bool {
        d.warnings()
            .iter()
            .any(|w| w.contains(path) && w.contains(what))
    }

    /// MicroK8s whose args files and snap.yaml are FIFOs nobody writes: each is a warning naming
    /// it, and detection finishes (old code: blocked forever opening the first one).
    #[test]
    fn fifos_in_the_host_root_are_warnings_not_hangs() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.fifo("/var/snap/microk8s/8148/args/kubelet")
            .fifo("/var/snap/microk8s/8148/args/containerd")
            .fifo("/snap/microk8s/8148/meta/snap.yaml")
            .fifo("/var/snap/microk8s/8148/credentials/client.config");
        let d = detect(root.path(), &[]);
        prompt(d.elapsed);
        for path in [
            "/var/snap/microk8s/current/args/kubelet",
            "/var/snap/microk8s/current/args/containerd",
            "/snap/microk8s/current/meta/snap.yaml",
        ] {
            assert!(
                has_warning(&d, path, "is a FIFO (named pipe), not a regular file"),
                "{path}: {:?}",
                d.warnings()
            );
        }
        assert_eq!(d.json["distribution"]["kind"], "microk8s");
        let kc = &d.json["kubeconfig"];
        assert_eq!(kc["readable"], false, "{kc:#}");
        assert!(kc["hint"].as_str().unwrap().contains("is a FIFO"), "{kc:#}");
    }

    /// A 60 MB (sparse) kubelet args file is refused by its size, not read (old code: read it
    /// all, 1.2 GB of memory for a 58 MB file).
    #[test]
    fn a_huge_args_file_is_refused_by_size() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.sparse("/var/snap/microk8s/8148/args/kubelet", 60_000_000);
        let d = detect(root.path(), &[]);
        prompt(d.elapsed);
        assert!(
            has_warning(
                &d,
                "/var/snap/microk8s/current/args/kubelet",
                "is too large: 57.2 MiB, more than the limit of 4 MiB"
            ),
            "{:?}",
            d.warnings()
        );
        assert_eq!(d.json["kubelet"]["args_file"], Value::Null);
    }

    /// kubeadm's kubelet config is a character device (`/dev/zero`'s numbers, made with mknod
    /// inside the root): refused without being read (old code: read zeros until 2 GB).
    #[test]
    fn a_device_as_the_kubelet_config_is_refused() {
        if !real::require("root (mknod)", real::is_root()) {
            return;
        }
        let root = HostRootDir::new();
        root.kubeadm("unix:///run/containerd/containerd.sock", "systemd");
        let config = root.local("/var/lib/kubelet/config.yaml");
        std::fs::remove_file(&config).unwrap();
        nix::sys::stat::mknod(
            &config,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .expect("mknod /dev/zero's device in the host root");
        let d = detect(root.path(), &[]);
        prompt(d.elapsed);
        assert!(
            has_warning(
                &d,
                "/var/lib/kubelet/config.yaml",
                "is a character device, not a regular file"
            ),
            "{:?}",
            d.warnings()
        );
        assert_eq!(d.json["distribution"]["kind"], "kubeadm");
    }

    /// `--config` that is a FIFO, `/dev/zero` (through a symlink), a directory or a 60 MB file:
    /// exit 2 at once, saying what the path is and what to give instead.
    #[test]
    fn a_config_flag_that_is_not_a_small_regular_file_is_a_usage_error() {
        let root = HostRootDir::new();
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("answers.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let zero = dir.path().join("answers.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(60_000_000)
            .unwrap();
        for (path, what) in [
            (&fifo, "is a FIFO (named pipe), not a regular file"),
            (&zero, "is a character device, not a regular file"),
            (
                &dir.path().to_path_buf(),
                "is a directory, not a regular file",
            ),
            (&big, "is too large: 57.2 MiB, more than the limit of 4 MiB"),
        ] {
            let (code, _, stderr, elapsed) = run(&[
                OsStr::new("--config"),
                path.as_os_str(),
                OsStr::new("detect"),
                OsStr::new("--no-cluster"),
                OsStr::new("--host-root"),
                root.path().as_os_str(),
            ]);
            prompt(elapsed);
            assert_eq!(code, 2, "{}: {stderr}", path.display());
            assert!(stderr.contains("--config"), "{stderr}");
            assert!(stderr.contains(what), "{what}: {stderr}");
            assert!(
                stderr.contains("give a regular YAML file of at most 4 MiB"),
                "{stderr}"
            );
        }
    }

    /// `--kubeconfig` that is a FIFO, `/dev/zero` or a 60 MB file: exit 2 at once (old code:
    /// `detect --no-cluster` blocked forever opening the FIFO).
    #[test]
    fn a_kubeconfig_flag_that_is_not_a_small_regular_file_is_a_usage_error() {
        let root = HostRootDir::new();
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(60_000_000)
            .unwrap();
        for (path, what) in [
            (fifo.as_path(), "is a FIFO (named pipe)"),
            (Path::new("/dev/zero"), "is a character device"),
            (big.as_path(), "is too large"),
        ] {
            for command in ["detect", "status"] {
                let (code, _, stderr, elapsed) = run(&[
                    OsStr::new(command),
                    OsStr::new("--kubeconfig"),
                    path.as_os_str(),
                    OsStr::new("--host-root"),
                    root.path().as_os_str(),
                ]);
                prompt(elapsed);
                assert_eq!(code, 2, "{command} {}: {stderr}", path.display());
                assert!(stderr.contains("--kubeconfig"), "{stderr}");
                assert!(stderr.contains(what), "{what}: {stderr}");
                assert!(
                    stderr.contains("pass a regular kubeconfig file"),
                    "{stderr}"
                );
            }
        }
    }
}

/// Snapshots of `detect`'s report, JSON and human, from the same runs' roots: a MicroK8s host
/// with real containerd (exit 0) and an empty root (exit 3). Volatile values (the root, the
/// containerd version) go through `support::snapshot::normalise`.
mod report_snapshots {
    use super::*;
    use support::snapshot;

    fn run(root: &Path, extra: &[&str]) -> std::process::Output {
        Command::cargo_bin("cadvisor-setup")
            .expect("binary")
            .args(["detect", "--no-cluster", "--host-root"])
            .arg(root)
            .args(extra)
            .env_remove("KUBECONFIG")
            .env_remove("CADVISOR_SETUP_KUBECONFIG")
            .env_remove("CADVISOR_SETUP_CONTAINERD_SOCKET")
            .env_remove("CADVISOR_SETUP_OUTPUT")
            .env("HOME", root.join("home"))
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(30))
            .output()
            .expect("detect runs")
    }

    /// The JSON and the human report of `detect` on `root`, both ending with `code`.
    fn both(root: &Path, code: i32, known: &[(&str, &str)]) -> (String, String) {
        let out = run(root, &["-o", "json"]);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        let json = snapshot::json(&out, known);
        let out = run(root, &[]);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        (json, snapshot::human(&out, known))
    }

    #[test]
    fn microk8s_with_real_containerd_is_exit_0() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        // The kubelet's node name is the host name; the root's /etc/hostname makes it stable.
        root.write("/etc/hostname", "node-1\n");
        let Some((d, _ctd)) =
            verified_host(&root, MICROK8S_SOCKET, ["web", "web-0", "default", "web"])
        else {
            return;
        };
        let version = d.json["runtime"]["version"]
            .as_str()
            .expect("containerd version")
            .to_string();
        let host_root = root.path().to_str().expect("utf-8").to_string();
        let known = [
            (host_root.as_str(), "[HOST_ROOT]"),
            (version.as_str(), "[CONTAINERD_VERSION]"),
        ];
        let (json, human) = both(root.path(), 0, &known);
        insta::assert_snapshot!("detect_microk8s_json", json);
        insta::assert_snapshot!("detect_microk8s_human", human);
    }

    #[test]
    fn empty_root_is_exit_3() {
        let root = HostRootDir::new();
        root.write("/etc/hostname", "node-1\n");
        let host_root = root.path().to_str().expect("utf-8").to_string();
        let (json, human) = both(root.path(), 3, &[(host_root.as_str(), "[HOST_ROOT]")]);
        insta::assert_snapshot!("detect_empty_root_json", json);
        insta::assert_snapshot!("detect_empty_root_human", human);
    }
}

/// A host file on a mount that never answers (a real FUSE filesystem whose READ is taken and
/// never answered, as a stalled sshfs does): every command that reads the host stops at its
/// budget with exit 3 and says which file and what to do, instead of hanging.
mod hung_mount {
    use super::*;
    use std::process::Stdio;
    use support::fuse::HungMount;

    /// The binary with `args`, its stdout and stderr in files (no reader to block on). A hang
    /// guard, not a timing assertion: the budget is 30 s, so a run still going after five
    /// minutes is a hang; the test then fails, and dropping the mount releases the binary.
    fn run_to_end(args: &[&OsStr]) -> (i32, String) {
        let out = tempfile::tempfile().expect("stdout file");
        let err = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("CADVISOR_SETUP_KUBECONFIG")
            .env_remove("CADVISOR_SETUP_CONTAINERD_SOCKET")
            .env("HOME", "/nonexistent")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err.reopen().expect("stderr file"))
            .spawn()
            .expect("binary runs");
        let guard = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < guard, "{args:?} still runs: a hang");
            std::thread::sleep(Duration::from_millis(200));
        };
        let stderr = std::fs::read_to_string(err.path()).expect("stderr");
        (status.code().unwrap_or(-1), stderr)
    }

    use std::ffi::OsStr;

    #[test]
    fn detect_render_and_install_stop_at_their_budget_naming_the_file() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write("/etc/hostname", "node-1\n");
        // MicroK8s' kubelet args file (the first file detection reads there) on a mount whose
        // reads never answer.
        let args_dir = root.local("/var/snap/microk8s/8148/args");
        let Some(_mount) = HungMount::start(&args_dir, &["kubelet"]) else {
            return;
        };
        let host_root = root.path().as_os_str();
        let commands: [&[&str]; 3] = [
            &["detect", "--no-cluster"],
            &["render"],
            &["install", "--yes"],
        ];
        // Side by side: each waits the budget once.
        let runs: Vec<_> = commands
            .iter()
            .map(|command| {
                let mut args: Vec<std::ffi::OsString> =
                    command.iter().map(|a| (*a).into()).collect();
                args.push("--host-root".into());
                args.push(host_root.into());
                std::thread::spawn(move || {
                    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                    run_to_end(&args)
                })
            })
            .collect();
        let file = args_dir.join("kubelet");
        for (command, run) in commands.iter().zip(runs) {
            let (code, stderr) = run.join().expect("run");
            assert_eq!(code, 3, "{command:?}: {stderr}");
            let said = format!("no answer within 30s while reading {}", file.display());
            assert!(stderr.contains(&said), "{command:?}: {stderr}");
            assert!(
                stderr.contains("a hung network or FUSE mount?")
                    && stderr.contains("`mount`")
                    && stderr.contains("umount -l"),
                "{command:?}: {stderr}"
            );
        }
    }

    #[test]
    fn a_kubeconfig_that_never_answers_stops_detect_and_status() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        root.write("/etc/hostname", "node-1\n");
        // MicroK8s' admin kubeconfig, which detect and the cluster commands find and read.
        let credentials = root.local("/var/snap/microk8s/8148/credentials");
        let Some(_mount) = HungMount::start(&credentials, &["client.config"]) else {
            return;
        };
        let host_root = root.path().as_os_str();
        let runs: Vec<_> = [&["detect"][..], &["status"][..]]
            .into_iter()
            .map(|command| {
                let mut args: Vec<std::ffi::OsString> =
                    command.iter().map(|a| (*a).into()).collect();
                args.extend(["--host-root".into(), host_root.into()]);
                let shown = command[0];
                let run = std::thread::spawn(move || {
                    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                    run_to_end(&args)
                });
                (shown, run)
            })
            .collect();
        let file = credentials.join("client.config");
        for (command, run) in runs {
            let (code, stderr) = run.join().expect("run");
            assert_eq!(code, 3, "{command}: {stderr}");
            let said = format!("no answer within 30s while reading {}", file.display());
            assert!(stderr.contains(&said), "{command}: {stderr}");
        }
    }

    #[test]
    fn a_certificate_the_kubeconfig_names_that_never_answers_stops_status() {
        let root = HostRootDir::new();
        root.microk8s("v1.35.2", "classic", "8148");
        // A host path: the distribution's kubeconfig names files of the host, read inside the
        // root.
        root.write(
            "/var/snap/microk8s/current/credentials/client.config",
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1', certificate-authority: /srv/pki/ca.crt}\nusers:\n- name: u\n  user: {token: t}\n",
        );
        root.mkdir("/srv/pki");
        let pki = root.local("/srv/pki");
        let ca = pki.join("ca.crt");
        let Some(_mount) = HungMount::start(&pki, &["ca.crt"]) else {
            return;
        };
        let (code, stderr) = run_to_end(&[
            OsStr::new("status"),
            OsStr::new("--host-root"),
            root.path().as_os_str(),
        ]);
        assert_eq!(code, 3, "{stderr}");
        let said = format!("no answer within 30s while reading {}", ca.display());
        assert!(stderr.contains(&said), "{stderr}");
    }

    #[test]
    fn files_beside_the_hung_one_still_answer() {
        // The mount itself is live: what it does not hold answers at once (ENOENT), so the hung
        // file is the only thing that stops detection (the test above is not passing because
        // the whole mount is dead).
        let dir = tempfile::Builder::new()
            .prefix("cs")
            .tempdir_in("/tmp")
            .expect("dir");
        let Some(_mount) = HungMount::start(dir.path(), &["kubelet"]) else {
            return;
        };
        let meta = std::fs::metadata(dir.path().join("kubelet")).expect("stat answers");
        assert!(meta.is_file());
        assert!(!dir.path().join("containerd").exists());
    }
}
