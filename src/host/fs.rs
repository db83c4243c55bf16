//! Reading host files through [`HostRoot`], with symlinks followed *inside* the root.
//!
//! Real hosts are full of absolute symlinks (`/var/lib/kubelet -> /var/snap/microk8s/common/...`,
//! Debian's `/var/run -> /run`). Under a host root such as `/var/lib/snapd/hostfs` the kernel would
//! follow an absolute target out of the root, into the snap's own filesystem; so we walk the path
//! one component at a time and re-root every absolute target, `..` never climbs above the root,
//! and the walk gives up after [`MAX_LINKS`] links (a loop) with an error, never a half-resolved
//! path. A resolved path holds no symlink the resolver has not replaced, and files are opened
//! with `O_NOFOLLOW` ([`crate::input::Follow::NoFinalLink`]), so a link swapped in afterwards at
//! the last component is refused rather than followed out of the root.
//!
//! The real host (`/`) is walked the same way: re-rooting on `/` changes nothing, and every
//! caller then sees a path without a final symlink.

use std::path::{Component, Path, PathBuf};

use super::{HostError, HostRoot};
use crate::input::{self, Follow, ReadError};

/// At most this many symlinks per path, as the kernel: path_resolution(7) "a maximum of 40
/// symbolic links"(Linux's `MAXSYMLINKS`, include/linux/namei.h).
pub const MAX_LINKS: usize = 40;

/// The largest host file read (an args file, a kubelet config, a snap.yaml, a kubeconfig).
pub const MAX_HOST_FILE: u64 = input::MAX_INPUT_BYTES;

/// A host path that cannot be resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "{path}: more than {MAX_LINKS} symbolic links to follow under the host root (a link loop?); skipped"
    )]
    TooManyLinks { path: PathBuf },
}

/// The local path of `host_path`, with every symlink resolved within the root. Components that do
/// not exist are appended as they are (the result then does not exist either). The result always
/// lies under `root.path()`; more than [`MAX_LINKS`] links is an error.
///
/// Public for fuzzing (`fuzz/`): any input must terminate and stay inside the root.
pub fn resolve(root: &HostRoot, host_path: &Path) -> Result<PathBuf, ResolveError> {
    walk(root, host_path, true)
}

/// Like [`resolve`], but the last component is not followed when it is a symlink: the local path
/// of the link itself (for reading the link, e.g. a snap's `current -> 8148`).
pub fn resolve_no_follow(root: &HostRoot, host_path: &Path) -> Result<PathBuf, ResolveError> {
    walk(root, host_path, false)
}

/// `..` or a name; `.` and `/` say nothing once the walk is relative to the root.
fn parts(path: &Path) -> impl DoubleEndedIterator<Item = Part<'_>> {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(Part::Name(n)),
        Component::ParentDir => Some(Part::Up),
        _ => None,
    })
}

enum Part<'a> {
    Name(&'a std::ffi::OsStr),
    Up,
}

/// A link target owns its components; the path's own components are borrowed.
enum Pending<'a> {
    Borrowed(Part<'a>),
    Owned(Option<std::ffi::OsString>),
}

fn walk(root: &HostRoot, host_path: &Path, follow_last: bool) -> Result<PathBuf, ResolveError> {
    // Every lookup under the root starts here: the path a hung mount would stop us at.
    super::watch::reading(&root.resolve(host_path));
    // The components still to walk, last first, so the next one is `pop()`.
    let mut pending: Vec<Pending<'_>> = parts(host_path).rev().map(Pending::Borrowed).collect();
    let mut here = root.path().to_path_buf();
    let mut depth = 0usize;
    let mut links = 0usize;
    while let Some(next) = pending.pop() {
        let name = match next {
            Pending::Borrowed(Part::Name(n)) => n.to_os_string(),
            Pending::Owned(Some(n)) => n,
            Pending::Borrowed(Part::Up) | Pending::Owned(None) => {
                // `here` holds no symlink, so `..` is its lexical parent; never above the root.
                if depth > 0 {
                    here.pop();
                    depth -= 1;
                }
                continue;
            }
        };
        here.push(&name);
        depth += 1;
        if pending.is_empty() && !follow_last {
            break;
        }
        // Not a link, or does not exist (or cannot be searched): keep the name as it is.
        let Ok(target) = std::fs::read_link(&here) else {
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            return Err(ResolveError::TooManyLinks {
                path: host_path.to_path_buf(),
            });
        }
        here.pop();
        depth -= 1;
        if target.is_absolute() {
            here = root.path().to_path_buf();
            depth = 0;
        }
        for part in parts(&target).rev() {
            pending.push(Pending::Owned(match part {
                Part::Name(n) => Some(n.to_os_string()),
                Part::Up => None,
            }));
        }
    }
    Ok(here)
}

/// Reads a host file as text: a regular file of at most [`MAX_HOST_FILE`] bytes, resolved inside
/// the root and opened without following a final symlink. `Ok(None)` when it does not exist;
/// anything else that is not such a file is an error naming the host path.
pub fn read_optional(root: &HostRoot, host_path: &Path) -> Result<Option<String>, HostError> {
    let local = resolve(root, host_path)?;
    super::watch::reading(&local);
    match input::read_bounded_text(&local, MAX_HOST_FILE, Follow::NoFinalLink) {
        Ok(text) => Ok(Some(text)),
        Err(ReadError::NotFound { .. }) => Ok(None),
        Err(e) => Err(HostError::Input(e.with_path(host_path))),
    }
}

/// Does this host path exist (following links within the root)? An error when it cannot be
/// resolved (a link loop), so detection can say which path.
pub fn exists(root: &HostRoot, host_path: &Path) -> Result<bool, ResolveError> {
    let local = resolve(root, host_path)?;
    Ok(std::fs::symlink_metadata(local).is_ok())
}

/// Is this host path a directory (following links within the root)? `false` when it cannot be
/// resolved.
pub fn is_dir(root: &HostRoot, host_path: &Path) -> bool {
    resolve(root, host_path)
        .ok()
        .and_then(|local| std::fs::symlink_metadata(local).ok())
        .is_some_and(|m| m.is_dir())
}

/// The last component of a symlink's target (a snap revision: `current -> 8148`). The link is
/// found inside the root; only its text is read, its target is not opened.
pub fn link_name(root: &HostRoot, host_path: &Path) -> Option<String> {
    let local = resolve_no_follow(root, host_path).ok()?;
    let target = std::fs::read_link(local).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
            resolve(&root, Path::new("/var/run/k3s/x.sock")).unwrap(),
            base.join("run/k3s/x.sock")
        );
        assert_eq!(
            resolve(&root, Path::new("/snap/microk8s/current/meta/snap.yaml")).unwrap(),
            base.join("snap/microk8s/8148/meta/snap.yaml")
        );
        assert_eq!(
            link_name(&root, Path::new("/snap/microk8s/current")),
            Some("8148".to_string())
        );
    }

    #[test]
    fn link_loops_are_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/a", dir.path().join("a")).unwrap();
        symlink("b", dir.path().join("b")).unwrap();
        let root = HostRoot::new(dir.path()).unwrap();
        for path in ["/a/b", "/a", "/b/c"] {
            let e = resolve(&root, Path::new(path)).unwrap_err();
            assert_eq!(
                e,
                ResolveError::TooManyLinks {
                    path: PathBuf::from(path)
                }
            );
            assert!(e.to_string().starts_with(&format!("{path}: more than 40")));
        }
        assert!(exists(&root, Path::new("/a")).is_err());
        assert!(matches!(
            read_optional(&root, Path::new("/a")),
            Err(HostError::Resolve(_))
        ));
    }

    #[test]
    fn forty_links_resolve_and_forty_one_do_not() {
        // Old code: `break` after 40 links returned `<root>/l40`, itself a symlink to `/etc/passwd`
        // that the kernel then followed out of the root.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::write(base.join("end"), "inside").unwrap();
        symlink("/end", base.join("l0")).unwrap();
        for i in 1..=40 {
            symlink(format!("/l{}", i - 1), base.join(format!("l{i}"))).unwrap();
        }
        let root = HostRoot::new(base).unwrap();
        // l39 → ... → l0 → end: 40 links.
        assert_eq!(resolve(&root, Path::new("/l39")).unwrap(), base.join("end"));
        assert!(resolve(&root, Path::new("/l40")).is_err());
    }

    #[test]
    fn a_root_with_etc_linked_to_the_real_etc_stays_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        symlink("/etc", base.join("etc")).unwrap();
        let root = HostRoot::new(base).unwrap();
        // `/etc -> /etc` re-rooted is `<root>/etc` again: a loop, never the real /etc.
        assert!(resolve(&root, Path::new("/etc/hostname")).is_err());
        assert!(read_optional(&root, Path::new("/etc/passwd")).is_err());
        // Relative `..` climbs stop at the root.
        symlink("../../../../../etc", base.join("up")).unwrap();
        assert!(resolve(&root, Path::new("/up/passwd")).is_err());
        std::fs::create_dir(base.join("x")).unwrap();
        symlink("../../../../x", base.join("x/up")).unwrap();
        assert_eq!(
            resolve(&root, Path::new("/x/up/up/up/f")).unwrap(),
            base.join("x/f")
        );
    }

    #[test]
    fn a_final_symlink_is_resolved_or_refused_never_followed_by_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let base = dir.path();
        // Absolute target: re-rooted, so it names `<root>/<outside>/secret`, which does not exist.
        symlink(outside.path().join("secret"), base.join("s")).unwrap();
        let root = HostRoot::new(base).unwrap();
        assert_eq!(read_optional(&root, Path::new("/s")).unwrap(), None);
        assert!(link_name(&root, Path::new("/s")).is_some());
    }

    #[test]
    fn link_name_reads_the_link_inside_the_root() {
        // Old code: `root.resolve` (lexical), so `snap -> /snap`'s parent was followed by the kernel.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("real/microk8s")).unwrap();
        symlink("42", base.join("real/microk8s/current")).unwrap();
        symlink("/real", base.join("snap")).unwrap();
        let root = HostRoot::new(base).unwrap();
        assert_eq!(
            link_name(&root, Path::new("/snap/microk8s/current")),
            Some("42".into())
        );
        // A loop in the parent: nothing.
        symlink("/loop", base.join("loop")).unwrap();
        assert_eq!(link_name(&root, Path::new("/loop/current")), None);
    }

    #[test]
    fn host_files_must_be_regular_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        nix::unistd::mkfifo(&base.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::File::create(base.join("big"))
            .unwrap()
            .set_len(MAX_HOST_FILE + 1)
            .unwrap();
        std::fs::create_dir(base.join("dir")).unwrap();
        let root = HostRoot::new(base).unwrap();
        let e = read_optional(&root, Path::new("/fifo")).unwrap_err();
        assert!(e.to_string().starts_with("/fifo is a FIFO"), "{e}");
        let e = read_optional(&root, Path::new("/big")).unwrap_err();
        assert!(e.to_string().starts_with("/big is too large"), "{e}");
        let e = read_optional(&root, Path::new("/dir")).unwrap_err();
        assert!(e.to_string().starts_with("/dir is a directory"), "{e}");
    }

    #[test]
    fn the_system_root_still_resolves_links() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("b")).unwrap();
        std::fs::write(base.join("b/f"), "x").unwrap();
        symlink(base.join("b"), base.join("a")).unwrap();
        let root = HostRoot::new("/").unwrap();
        assert_eq!(resolve(&root, &base.join("a/f")).unwrap(), base.join("b/f"));
        assert_eq!(
            read_optional(&root, &base.join("a/f")).unwrap().as_deref(),
            Some("x")
        );
        assert!(exists(&root, Path::new("/proc/self/status")).unwrap());
    }

    /// One entry of a random tree: a directory, a file, or a symlink with a random target.
    #[derive(Debug, Clone)]
    enum Entry {
        Dir,
        File,
        Link(String),
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c", "etc", "..", "."]).prop_map(str::to_string)
    }

    fn rel_path(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(name(), 1..max).prop_map(|v| v.join("/"))
    }

    fn entry() -> impl Strategy<Value = Entry> {
        prop_oneof![
            Just(Entry::Dir),
            Just(Entry::File),
            rel_path(5).prop_map(Entry::Link),
            rel_path(5).prop_map(|p| Entry::Link(format!("/{p}"))),
            Just(Entry::Link("/etc".into())),
            Just(Entry::Link("/".into())),
            Just(Entry::Link("../../..".into())),
        ]
    }

    /// Creates `entry` at `path` under `hostroot` without ever following a symlink (we run as
    /// root: following `etc -> /etc` while building would write into the real `/etc`). Skipped
    /// when an ancestor is not a real directory or the path exists.
    fn build(hostroot: &Path, path: &str, entry: &Entry) {
        let local = HostRoot::new(hostroot).unwrap().resolve(path);
        let Ok(rel) = local.strip_prefix(hostroot) else {
            return;
        };
        let names: Vec<_> = rel.components().collect();
        let Some((leaf, ancestors)) = names.split_last() else {
            return;
        };
        let mut here = hostroot.to_path_buf();
        for c in ancestors {
            here.push(c);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return,
                Err(_) => {
                    if std::fs::create_dir(&here).is_err() {
                        return;
                    }
                }
            }
        }
        here.push(leaf);
        if std::fs::symlink_metadata(&here).is_ok() {
            return;
        }
        let _ = match entry {
            Entry::Dir => std::fs::create_dir(&here),
            Entry::File => std::fs::write(&here, "x"),
            Entry::Link(t) => symlink(t, &here),
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the tree of files, directories and links (absolute, relative, loops, `..`),
        /// resolution terminates and, when it succeeds, names a path inside the root: what of it
        /// exists canonicalises (the kernel following every link) to a path under the root.
        #[test]
        fn resolution_stays_inside_the_root(
            tree in prop::collection::vec((rel_path(4), entry()), 0..24),
            queries in prop::collection::vec(rel_path(6), 1..8),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path().canonicalize().unwrap();
            let hostroot = base.join("root");
            std::fs::create_dir(&hostroot).unwrap();
            // A decoy outside the root that an escape would reach.
            std::fs::create_dir_all(base.join("etc/a")).unwrap();
            for (path, entry) in &tree {
                build(&hostroot, path, entry);
            }
            let root = HostRoot::new(&hostroot).unwrap();
            for q in &queries {
                let q = format!("/{q}");
                for follow in [true, false] {
                    let r = if follow {
                        resolve(&root, Path::new(&q))
                    } else {
                        resolve_no_follow(&root, Path::new(&q))
                    };
                    let Ok(local) = r else { continue };
                    prop_assert!(local.starts_with(&hostroot), "{q} -> {}", local.display());
                    // The longest existing prefix, as the kernel resolves it.
                    let mut probe = local.clone();
                    loop {
                        if std::fs::symlink_metadata(&probe).is_ok() {
                            break;
                        }
                        if !probe.pop() {
                            break;
                        }
                    }
                    let unfollowed_link = !follow
                        && probe == local
                        && std::fs::symlink_metadata(&local).is_ok_and(|m| m.file_type().is_symlink());
                    let check = if unfollowed_link {
                        // The unfollowed link itself: its parent must be inside.
                        probe.parent().and_then(|p| p.canonicalize().ok())
                    } else {
                        probe.canonicalize().ok()
                    };
                    if let Some(real) = check {
                        prop_assert!(
                            real.starts_with(&hostroot),
                            "{q} -> {} which really is {}",
                            local.display(),
                            real.display()
                        );
                    }
                }
            }
        }
    }
}
