//! Reading host files through [`HostRoot`], with symlinks followed *inside* the root.
//!
//! Real hosts are full of absolute symlinks (`/var/lib/kubelet -> /var/snap/microk8s/common/...`,
//! Debian's `/var/run -> /run`). Under a host root such as `/var/lib/snapd/hostfs` the kernel would
//! follow an absolute target out of the root, into the snap's own filesystem; so we walk the path
//! one component at a time and re-root every absolute target.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::{HostError, HostRoot};

/// At most this many symlinks per path (the kernel's ELOOP limit is 40).
const MAX_LINKS: usize = 40;

/// The local path of `host_path`, with every symlink resolved within the root. Components that do
/// not exist are appended as they are (the result then does not exist either).
pub fn resolve(root: &HostRoot, host_path: &Path) -> PathBuf {
    if root.is_system() {
        return root.resolve(host_path);
    }
    let mut pending: Vec<PathBuf> = host_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .rev()
        .collect();
    let mut done: Vec<PathBuf> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            done.pop();
            continue;
        }
        done.push(part);
        let here = root.resolve(done.iter().collect::<PathBuf>());
        let Ok(target) = std::fs::read_link(&here) else {
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            break;
        }
        done.pop();
        if target.is_absolute() {
            done.clear();
        }
        for comp in target.components().rev() {
            match comp {
                Component::Normal(n) => pending.push(PathBuf::from(n)),
                Component::ParentDir => pending.push(PathBuf::from("..")),
                _ => {}
            }
        }
    }
    root.resolve(done.iter().collect::<PathBuf>())
}

/// Reads a host file as text. `Ok(None)` when it does not exist.
pub fn read_optional(root: &HostRoot, host_path: &Path) -> Result<Option<String>, HostError> {
    let local = resolve(root, host_path);
    match std::fs::read_to_string(&local) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HostError::Read {
            path: host_path.to_path_buf(),
            source,
        }),
    }
}

/// Does this host path exist (following links within the root)?
pub fn exists(root: &HostRoot, host_path: &Path) -> bool {
    resolve(root, host_path).exists()
}

/// The last component of a symlink's target (a snap revision: `current -> 8148`).
pub fn link_name(root: &HostRoot, host_path: &Path) -> Option<String> {
    let target = std::fs::read_link(root.resolve(host_path)).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("run/k3s")).unwrap();
        std::fs::create_dir_all(base.join("var")).unwrap();
        symlink("/run", base.join("var/run")).unwrap();
        std::fs::create_dir_all(base.join("snap/microk8s/8148/meta")).unwrap();
        symlink("8148", base.join("snap/microk8s/current")).unwrap();
        let root = HostRoot::new(base).unwrap();
        assert_eq!(
            resolve(&root, Path::new("/var/run/k3s/x.sock")),
            base.join("run/k3s/x.sock")
        );
        assert_eq!(
            resolve(&root, Path::new("/snap/microk8s/current/meta/snap.yaml")),
            base.join("snap/microk8s/8148/meta/snap.yaml")
        );
        assert_eq!(
            link_name(&root, Path::new("/snap/microk8s/current")),
            Some("8148".to_string())
        );
    }

    #[test]
    fn link_loops_terminate() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/a", dir.path().join("a")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        let _ = resolve(&root, Path::new("/a/b"));
    }
}
