//! `HostRoot`: the path prefix every host file is read through.

use std::path::{Component, Path, PathBuf};

use super::HostError;

/// A path prefix (default `/`). `--host-root DIR` / `CADVISOR_SETUP_HOST_ROOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    /// A host root that must exist and be a directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, HostError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(HostError::BadHostRoot { path: root });
        }
        Ok(HostRoot { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn is_system(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Maps an absolute host path to a path under the root, lexically: `/etc/x` → `<root>/etc/x`.
    ///
    /// `..` components cannot climb above the root, but symlinks inside the root are not looked
    /// at, so the kernel would follow an absolute one out of the root: to open or stat a host
    /// path, use [`super::fs::resolve`], which re-roots every link.
    pub fn resolve(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        let mut depth = 0usize;
        for comp in host_path.as_ref().components() {
            match comp {
                Component::Normal(c) => {
                    out.push(c);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    out.pop();
                    depth -= 1;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
impl HostRoot {
    /// A host tree of its own in a new temporary directory (removed when the `TempDir` drops).
    pub(crate) fn temp() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        (dir, root)
    }

    /// Writes `text` to the host file `path`, creating its directories.
    pub(crate) fn write(&self, path: &str, text: &str) {
        let p = self.resolve(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Where a strictly confined snap sees the host's `/`: snapd runs it in a mount namespace whose
/// `/` is the base snap, with the host's root filesystem at this path (readable through the
/// `system-backup` interface; snapcraft.io/docs/system-backup-interface).
pub const SNAP_HOSTFS: &str = "/var/lib/snapd/hostfs";

/// The host root to use when `--host-root` (or `CADVISOR_SETUP_HOST_ROOT`) is not given.
///
/// `/`, except inside a strictly confined or devmode snap (both run in the snap's own mount
/// namespace), where it is [`SNAP_HOSTFS`]. snapd sets `SNAP` and `SNAP_NAME` for every snap
/// app (snapcraft.io/docs/environment-variables); the confinement comes from
/// `SNAP_CONFINEMENT` when present, else from `CADVISOR_SETUP_SNAP_CONFINEMENT`, which
/// snap/snapcraft.yaml sets for the app. A classic snap sees the host at `/`. `env` looks a
/// variable up (`|k| std::env::var_os(k)` in production).
pub fn default_host_root(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let in_snap = env("SNAP_NAME").is_some() || env("SNAP").is_some();
    let confinement = env("SNAP_CONFINEMENT").or_else(|| env("CADVISOR_SETUP_SNAP_CONFINEMENT"));
    match confinement.as_ref().and_then(|c| c.to_str()) {
        Some("strict" | "devmode") if in_snap => PathBuf::from(SNAP_HOSTFS),
        _ => PathBuf::from("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strict_snap_reads_the_host_through_hostfs() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let hostfs = PathBuf::from(SNAP_HOSTFS);
        let root = PathBuf::from("/");
        assert_eq!(default_host_root(env(&[])), root);
        assert_eq!(
            default_host_root(env(&[
                ("SNAP_NAME", "cadvisor-setup"),
                ("CADVISOR_SETUP_SNAP_CONFINEMENT", "classic")
            ])),
            root
        );
        assert_eq!(
            default_host_root(env(&[
                ("SNAP", "/snap/cadvisor-setup/x1"),
                ("CADVISOR_SETUP_SNAP_CONFINEMENT", "strict")
            ])),
            hostfs
        );
        assert_eq!(
            default_host_root(env(&[
                ("SNAP_NAME", "cadvisor-setup"),
                ("SNAP_CONFINEMENT", "devmode")
            ])),
            hostfs
        );
        // Outside a snap the variable alone changes nothing; an unknown confinement is `/`.
        assert_eq!(
            default_host_root(env(&[("CADVISOR_SETUP_SNAP_CONFINEMENT", "strict")])),
            root
        );
        assert_eq!(
            default_host_root(env(&[("SNAP_NAME", "x"), ("SNAP_CONFINEMENT", "weird")])),
            root
        );
    }

    #[test]
    fn resolve_prefixes_and_cannot_escape() {
        let r = HostRoot {
            root: PathBuf::from("/tmp/h"),
        };
        assert_eq!(r.resolve("/etc/x"), PathBuf::from("/tmp/h/etc/x"));
        assert_eq!(r.resolve("/../../etc"), PathBuf::from("/tmp/h/etc"));
        assert_eq!(r.resolve("/a/../b"), PathBuf::from("/tmp/h/b"));
    }

    #[test]
    fn system_root_is_identity() {
        let r = HostRoot::new("/").unwrap();
        assert_eq!(r.resolve("/run/x.sock"), PathBuf::from("/run/x.sock"));
    }
}
