//! `HostRoot`: the path prefix every host file is read through.

use std::path::{Component, Path, PathBuf};

use super::HostError;

/// A path prefix (default `/`). `--host-root DIR` / `CADVISOR_SETUP_HOST_ROOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    /// The real host.
    pub fn system() -> Self {
        HostRoot {
            root: PathBuf::from("/"),
        }
    }

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

    /// Maps an absolute host path to the path to open here: `/etc/x` → `<root>/etc/x`.
    ///
    /// `..` components cannot climb above the root.
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

    /// Maps a path under this root back to a host path: `<root>/etc/x` → `/etc/x`.
    pub fn to_host(&self, local: &Path) -> Option<PathBuf> {
        local
            .strip_prefix(&self.root)
            .ok()
            .map(|rel| Path::new("/").join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_prefixes_and_cannot_escape() {
        let r = HostRoot {
            root: PathBuf::from("/tmp/h"),
        };
        assert_eq!(r.resolve("/etc/x"), PathBuf::from("/tmp/h/etc/x"));
        assert_eq!(r.resolve("/../../etc"), PathBuf::from("/tmp/h/etc"));
        assert_eq!(r.resolve("/a/../b"), PathBuf::from("/tmp/h/b"));
        assert_eq!(
            r.to_host(Path::new("/tmp/h/var/run")),
            Some(PathBuf::from("/var/run"))
        );
    }

    #[test]
    fn system_root_is_identity() {
        let r = HostRoot::system();
        assert_eq!(r.resolve("/run/x.sock"), PathBuf::from("/run/x.sock"));
    }
}
