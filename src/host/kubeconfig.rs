//! Which kubeconfig to use: `--kubeconfig`, `KUBECONFIG`, `~/.kube/config`, then the
//! distribution's admin kubeconfig (each with its public source in `host::layout`).
//!
//! The flag, `KUBECONFIG` and the home directory are the user's paths, taken as given; the
//! distributions' admin kubeconfigs are host files, read through the [`HostRoot`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{
    Confinement, Distribution, DistroKind, HostRoot, KubeconfigFacts, KubeconfigSource, fs,
};
use crate::input::{self, Follow, ReadError};

/// The largest kubeconfig we accept (one with embedded certificates is a few kB).
pub const MAX_KUBECONFIG: u64 = input::MAX_INPUT_BYTES;

/// The user's side of the discovery (the command fills it from the flag and the environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KubeconfigEnv {
    /// `--kubeconfig`.
    pub flag: Option<PathBuf>,
    /// `KUBECONFIG` (a `:`-separated list).
    pub env: Option<OsString>,
    /// `HOME`.
    pub home: Option<PathBuf>,
}

impl KubeconfigEnv {
    /// From the process environment, plus the flag.
    pub fn from_process(flag: Option<PathBuf>) -> Self {
        KubeconfigEnv {
            flag,
            env: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Admin kubeconfigs by distribution ([`super::layout`]).
pub fn admin_paths(kind: DistroKind) -> Vec<&'static str> {
    super::layout::admin_kubeconfigs(kind)
}

/// Finds the kubeconfig to use, or `None`.
///
/// What it finds is read through, with the files it names ([`read_through`]): this runs in the
/// bounded host phase (`super::watch`), so a kubeconfig or certificate on a mount that does not
/// answer stops detection there, naming it, rather than the client later.
pub fn discover(
    root: &HostRoot,
    distro: &Distribution,
    user: &KubeconfigEnv,
) -> Option<KubeconfigFacts> {
    let found = find(root, distro, user)?;
    read_through(root, &found);
    Some(found)
}

fn find(root: &HostRoot, distro: &Distribution, user: &KubeconfigEnv) -> Option<KubeconfigFacts> {
    // A file the user named (flag, environment, home): links are followed.
    let user_file = |p: &Path, source| check(p, p.to_path_buf(), source, distro, Follow::Links);
    if let Some(flag) = &user.flag {
        // Given explicitly: reported even when missing or unreadable.
        return Some(user_file(flag, KubeconfigSource::Flag));
    }
    if let Some(env) = &user.env {
        // Every existing file of the list, merged in order (kubernetes.io "Organizing Cluster
        // Access Using kubeconfig Files": "merge the files ... the first file to set a
        // particular value or map key wins"; kube's `Kubeconfig::from_env` does the same).
        // Each file once, as client-go does (`deduplicate(filepath.SplitList(...))`,
        // tools/clientcmd/loader.go), and by the file itself rather than its spelling (`a`,
        // `./a`, a link to it): merging a file again changes nothing, but a list of 60 000
        // spellings of one 4 MiB file (all a 128 KiB variable holds) took a quarter of an hour.
        let mut seen = std::collections::HashSet::new();
        let mut existing = std::env::split_paths(env).filter(|p| {
            use std::os::unix::fs::MetadataExt;
            super::watch::reading(p);
            !p.as_os_str().is_empty()
                && std::fs::metadata(p).is_ok_and(|m| seen.insert((m.dev(), m.ino())))
        });
        if let Some(first) = existing.next() {
            let mut facts = user_file(&first, KubeconfigSource::Env);
            facts.merged = existing.collect();
            return Some(facts);
        }
    }
    if let Some(home) = &user.home {
        let p = home.join(".kube/config");
        super::watch::reading(&p);
        if p.exists() {
            return Some(user_file(&p, KubeconfigSource::Home));
        }
    }
    for host_path in admin_paths(distro.kind) {
        // A path that cannot be resolved inside the root (a link loop) is skipped here; the
        // distribution markers in the same directories already warn about it.
        let Ok(local) = fs::resolve(root, Path::new(host_path)) else {
            continue;
        };
        if std::fs::symlink_metadata(&local).is_ok() {
            return Some(check(
                Path::new(host_path),
                local,
                KubeconfigSource::Distribution,
                distro,
                Follow::NoFinalLink,
            ));
        }
    }
    None
}

/// Where the files a found kubeconfig names are read: `None` for the user's own (flag,
/// `KUBECONFIG`, home) and on the host itself (root `/`), where its paths mean what they say.
/// A distribution's admin kubeconfig under another host root is a host file, so the files it
/// names are host paths too: read inside the root, every link re-rooted ([`fs::resolve`]), so it
/// cannot lead a read outside (`certificate-authority: /etc/shadow`, `../../..`).
pub fn confined_files<'a>(
    root: &'a HostRoot,
    found: &KubeconfigFacts,
) -> Option<impl Fn(&Path) -> Result<PathBuf, String> + Sync + 'a> {
    (found.source == KubeconfigSource::Distribution && !root.is_system()).then_some(
        move |named: &Path| {
            // Relative names were joined to the kubeconfig's local directory (inside the root):
            // back to the host path they stand for.
            let host_path = match named.strip_prefix(root.path()) {
                Ok(rest) => Path::new("/").join(rest),
                Err(_) => named.to_path_buf(),
            };
            fs::resolve(root, &host_path).map_err(|e| e.to_string())
        },
    )
}

/// Readable by us: a regular file of at most [`MAX_KUBECONFIG`] bytes that we may open (opened,
/// never read here, so a FIFO or a device cannot block or flood us).
fn check(
    shown: &Path,
    local: PathBuf,
    source: KubeconfigSource,
    distro: &Distribution,
    follow: Follow,
) -> KubeconfigFacts {
    super::watch::reading(&local);
    let (readable, hint) = match input::open_regular(&local, MAX_KUBECONFIG, follow) {
        Ok(_) => (true, None),
        Err(e) if e.is_permission_denied() => (false, Some(permission_hint(shown, distro))),
        Err(ReadError::NotFound { .. }) => (
            false,
            Some(format!(
                "{} does not exist; pass an existing file with --kubeconfig",
                shown.display()
            )),
        ),
        Err(e) => (
            false,
            Some(format!(
                "{}; pass a kubeconfig file with --kubeconfig",
                e.with_path(shown)
            )),
        ),
    };
    KubeconfigFacts {
        path: shown.to_path_buf(),
        resolved: local,
        source,
        readable,
        hint,
        merged: Vec::new(),
    }
}

/// Reads through, bounded and only when regular, the kubeconfig found and the other files of its
/// `KUBECONFIG` list, and the files each names (certificate authorities, client certificates and
/// keys, token files) where the client will read them: relative names relative to the
/// kubeconfig's directory, and inside the root for a distribution's kubeconfig
/// ([`confined_files`]). What they hold, or that one is missing, is the client's concern; this
/// only makes a file that never answers stop the bounded host phase, with its path.
fn read_through(root: &HostRoot, found: &KubeconfigFacts) {
    let confine = confined_files(root, found);
    // As `find` opened it, and as the client will open what it names.
    let follow = match found.source {
        KubeconfigSource::Distribution => Follow::NoFinalLink,
        _ => Follow::Links,
    };
    let named_follow = match confine {
        Some(_) => Follow::NoFinalLink,
        None => Follow::Links,
    };
    let first = found.readable.then_some(&found.resolved);
    for kubeconfig in first.into_iter().chain(&found.merged) {
        super::watch::reading(kubeconfig);
        let Ok(bytes) = input::read_bounded_bytes(kubeconfig, MAX_KUBECONFIG, follow) else {
            continue;
        };
        let dir = kubeconfig.parent().unwrap_or(Path::new("/"));
        for named in named_files(&bytes) {
            let named = dir.join(named);
            let local = match &confine {
                Some(inside) => match inside(&named) {
                    Ok(local) => local,
                    Err(_) => continue,
                },
                None => named,
            };
            super::watch::reading(&local);
            let _ = input::read_bounded_bytes(&local, MAX_KUBECONFIG, named_follow);
        }
    }
}

/// The file names a kubeconfig holds, as written (nothing when it is not a kubeconfig).
fn named_files(kubeconfig: &[u8]) -> Vec<String> {
    let Some(parsed) = std::str::from_utf8(kubeconfig)
        .ok()
        .and_then(|text| kube::config::Kubeconfig::from_yaml(text).ok())
    else {
        return Vec::new();
    };
    let clusters = parsed
        .clusters
        .iter()
        .filter_map(|c| c.cluster.as_ref()?.certificate_authority.clone());
    let users = parsed
        .auth_infos
        .iter()
        .filter_map(|u| u.auth_info.as_ref());
    let user_files = users.flat_map(|u| {
        [&u.client_certificate, &u.client_key, &u.token_file]
            .into_iter()
            .filter_map(|f| f.clone())
    });
    clusters.chain(user_files).collect()
}

/// What to do when the kubeconfig is not readable by us.
fn permission_hint(path: &Path, distro: &Distribution) -> String {
    let p = path.display();
    match distro.kind {
        DistroKind::Microk8s => {
            // canonical/microk8s: utils.sh get_microk8s_group(): `microk8s`, or `snap_microk8s` when strict.
            let group = if distro.confinement == Some(Confinement::Strict) {
                "snap_microk8s"
            } else {
                "microk8s"
            };
            format!(
                "permission denied reading {p}: run with sudo, or join the {group} group: `sudo usermod -a -G {group} $USER` then log in again (or `newgrp {group}`)"
            )
        }
        DistroKind::K3s | DistroKind::Rke2 => format!(
            "permission denied reading {p}: run with sudo, or copy it: `sudo cp {p} ~/.kube/config && sudo chown $USER ~/.kube/config`"
        ),
        _ => format!(
            "permission denied reading {p}: run with sudo, or pass a readable file with --kubeconfig"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distro(kind: DistroKind) -> Distribution {
        crate::host::distro::plain(kind, Vec::new())
    }

    #[test]
    fn order_flag_env_home_distribution() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let admin = root.resolve("/var/snap/microk8s/current/credentials/client.config");
        std::fs::create_dir_all(admin.parent().unwrap()).unwrap();
        std::fs::write(&admin, "x").unwrap();
        let home = dir.path().join("home");
        let d = distro(DistroKind::Microk8s);

        let none = KubeconfigEnv::default();
        let k = discover(&root, &d, &none).unwrap();
        assert_eq!(k.source, KubeconfigSource::Distribution);
        assert_eq!(
            k.path,
            Path::new("/var/snap/microk8s/current/credentials/client.config")
        );
        assert!(k.readable);

        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(home.join(".kube/config"), "x").unwrap();
        let with_home = KubeconfigEnv {
            home: Some(home.clone()),
            ..Default::default()
        };
        assert_eq!(
            discover(&root, &d, &with_home).unwrap().source,
            KubeconfigSource::Home
        );

        let env_file = dir.path().join("env.conf");
        std::fs::write(&env_file, "x").unwrap();
        let mut list = OsString::from("/does/not/exist:");
        list.push(&env_file);
        let with_env = KubeconfigEnv {
            env: Some(list),
            ..with_home.clone()
        };
        let k = discover(&root, &d, &with_env).unwrap();
        assert_eq!((k.source, k.path), (KubeconfigSource::Env, env_file));

        let with_flag = KubeconfigEnv {
            flag: Some(PathBuf::from("/nope/config")),
            ..with_env
        };
        let k = discover(&root, &d, &with_flag).unwrap();
        assert_eq!(k.source, KubeconfigSource::Flag);
        assert!(!k.readable && k.hint.unwrap().contains("does not exist"));
    }

    #[test]
    fn a_kubeconfig_list_names_each_file_once_however_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "x").unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("link-to-a")).unwrap();
        let spellings = [
            a.clone(),
            dir.path().join("./a"),
            dir.path().join("link-to-a"),
            b.clone(),
            a.clone(),
            dir.path().join("missing"),
            b.clone(),
        ];
        let env = KubeconfigEnv {
            env: Some(std::env::join_paths(&spellings).unwrap()),
            ..Default::default()
        };
        let k = discover(&root, &distro(DistroKind::Kubeadm), &env).unwrap();
        assert_eq!((k.source, &k.path), (KubeconfigSource::Env, &a));
        assert_eq!(k.merged, vec![b]);
    }

    #[test]
    fn microk8s_permission_hint_names_the_group() {
        let mut d = distro(DistroKind::Microk8s);
        assert!(permission_hint(Path::new("/x"), &d).contains("usermod -a -G microk8s"));
        d.confinement = Some(Confinement::Strict);
        assert!(permission_hint(Path::new("/x"), &d).contains("snap_microk8s"));
    }

    #[test]
    fn an_admin_kubeconfig_that_is_a_fifo_is_unreadable_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let admin = root.resolve("/etc/rancher/k3s/k3s.yaml");
        std::fs::create_dir_all(admin.parent().unwrap()).unwrap();
        nix::unistd::mkfifo(&admin, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let k = discover(&root, &distro(DistroKind::K3s), &KubeconfigEnv::default()).unwrap();
        assert!(!k.readable);
        let hint = k.hint.unwrap();
        assert!(
            hint.starts_with("/etc/rancher/k3s/k3s.yaml is a FIFO (named pipe)"),
            "{hint}"
        );
    }

    #[test]
    fn an_admin_kubeconfig_linked_outside_the_root_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let real = outside.path().join("admin.conf");
        std::fs::write(&real, "x").unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let admin = root.resolve("/etc/kubernetes/admin.conf");
        std::fs::create_dir_all(admin.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, &admin).unwrap();
        // Re-rooted, the link names `<root>/<outside>/admin.conf`, which does not exist.
        assert_eq!(
            discover(
                &root,
                &distro(DistroKind::Kubeadm),
                &KubeconfigEnv::default()
            ),
            None
        );
    }
}
