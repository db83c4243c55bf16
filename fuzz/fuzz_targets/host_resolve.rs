//! `host_resolve`: `cadvisor_setup::host::fs::resolve`, which follows symlinks *inside* a host
//! root (absolute targets re-rooted, `..` clamped at the root).
//!
//! The input describes a small tree (at most 16 directories, files and symlinks with absolute
//! or relative targets, `..`, `.`, loops; names from a four-letter alphabet so that paths
//! collide) built in a fresh directory, and a host path to resolve. Invariants, whenever the
//! resolver returns a path:
//! - it lies under the root (lexically), and the same call gives the same answer;
//! - canonicalising its longest existing prefix gives a path under the canonical root;
//! - opening it cannot leave the root: a kernel-style walk from the root (symlinks followed as
//!   the kernel follows them: absolute targets from the real `/`, `..` unclamped, at most 40
//!   links) never climbs above the root nor follows an absolute target; in particular its last
//!   component is not a symlink that leads out;
//! - in a tree without symlinks it is the lexical `HostRoot::resolve`.
//!
//! The tree is built without ever following a symlink (each parent is checked with
//! `symlink_metadata`, files are created with `O_EXCL`), so an absolute target such as `/a` is
//! only ever read, never written through.
#![no_main]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use cadvisor_setup::host::HostRoot;
use cadvisor_setup::host::fs;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const MAX_ENTRIES: usize = 16;
const MAX_SEGMENTS: usize = 8;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Seg {
    Name(u8),
    Parent,
    Current,
}

impl Seg {
    fn text(self) -> &'static str {
        match self {
            Seg::Name(n) => NAMES[usize::from(n) % NAMES.len()],
            Seg::Parent => "..",
            Seg::Current => ".",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Dir,
    File,
    /// A symlink to `/segs...` (absolute) or `segs...` (relative).
    Link {
        absolute: bool,
        target: Vec<Seg>,
    },
}

#[derive(Arbitrary, Debug)]
struct Entry {
    /// Only the `Name` segments count: entries are created by name.
    path: Vec<Seg>,
    kind: Kind,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<Entry>,
    query: Vec<Seg>,
    absolute_query: bool,
}

fn join(absolute: bool, segs: &[Seg]) -> PathBuf {
    let mut p = PathBuf::from(if absolute { "/" } else { "" });
    for s in segs.iter().take(MAX_SEGMENTS) {
        p.push(s.text());
    }
    p
}

/// The resolver's answer; an error (a link loop, more than 40 links) is an allowed answer.
fn resolve(root: &HostRoot, path: &Path) -> Option<PathBuf> {
    fs::resolve(root, path).ok()
}

/// Creates `rel` under `base` without following any symlink; false when it cannot (a parent is
/// a file or a link, or the name is taken).
fn create(base: &Path, entry: &Entry) -> bool {
    let names: Vec<&str> = entry
        .path
        .iter()
        .take(MAX_SEGMENTS)
        .filter(|s| matches!(s, Seg::Name(_)))
        .map(|s| s.text())
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return false;
    };
    let mut dir = base.to_path_buf();
    for name in parents {
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return false,
            Err(_) => {
                if std::fs::create_dir(&dir).is_err() {
                    return false;
                }
            }
        }
    }
    let path = dir.join(last);
    match &entry.kind {
        Kind::Dir => std::fs::create_dir(&path).is_ok(),
        Kind::File => std::fs::File::create_new(&path).is_ok(),
        Kind::Link { absolute, target } => symlink(join(*absolute, target), &path).is_ok(),
    }
}

/// Where a kernel walk of `rel` from `root` goes: `Err` with the reason when it would leave the
/// root, `Ok` when it stays inside (or stops: a missing component, a non-directory, or ELOOP).
fn kernel_walk(root: &Path, rel: &Path) -> Result<(), String> {
    let mut pending: Vec<PathBuf> = rel
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut here: Vec<PathBuf> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some(".") | Some("/") => continue,
            Some("..") => {
                if here.pop().is_none() {
                    return Err(format!("`..` climbs above the root in {}", rel.display()));
                }
                continue;
            }
            _ => {}
        }
        here.push(part);
        let local: PathBuf = root.join(here.iter().collect::<PathBuf>());
        let Ok(meta) = std::fs::symlink_metadata(&local) else {
            return Ok(()); // ENOENT: nothing is opened
        };
        if !meta.file_type().is_symlink() {
            if !meta.is_dir() && !pending.is_empty() {
                return Ok(()); // ENOTDIR
            }
            continue;
        }
        links += 1;
        if links > 40 {
            return Ok(()); // ELOOP
        }
        let target = std::fs::read_link(&local).expect("a symlink has a target");
        if target.is_absolute() {
            return Err(format!(
                "{} is a symlink to {}, which the kernel follows from the real /",
                local.display(),
                target.display()
            ));
        }
        here.pop();
        for c in target.components().rev() {
            pending.push(PathBuf::from(c.as_os_str()));
        }
    }
    Ok(())
}

static RUN: AtomicUsize = AtomicUsize::new(0);

fuzz_target!(|input: Input| {
    let scratch = std::env::temp_dir().join(format!("cadvisor-setup-fuzz-{}", std::process::id()));
    let base = scratch.join(RUN.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&base).expect("scratch directory");
    let base = base.canonicalize().expect("canonical scratch directory");

    let mut links = 0;
    for entry in input.entries.iter().take(MAX_ENTRIES) {
        if create(&base, entry) && matches!(entry.kind, Kind::Link { .. }) {
            links += 1;
        }
    }
    let root = HostRoot::new(&base).expect("host root");
    let query = join(input.absolute_query, &input.query);

    if let Some(local) = resolve(&root, &query) {
        assert!(
            local.starts_with(&base),
            "{} resolved to {}, outside the root {}",
            query.display(),
            local.display(),
            base.display()
        );
        assert_eq!(
            resolve(&root, &query),
            Some(local.clone()),
            "not deterministic"
        );
        // The longest existing prefix, canonicalised, stays under the canonical root.
        let mut prefix = local.as_path();
        while !prefix.exists() {
            prefix = prefix.parent().expect("the root exists");
        }
        let canonical = prefix
            .canonicalize()
            .expect("an existing path canonicalises");
        assert!(
            canonical.starts_with(&base),
            "{} resolved to {}, whose existing prefix {} is really {}: outside the root",
            query.display(),
            local.display(),
            prefix.display(),
            canonical.display()
        );
        // Opening the answer cannot leave the root, whatever its last component is.
        let rel = local.strip_prefix(&base).expect("checked above");
        if let Err(why) = kernel_walk(&base, rel) {
            panic!(
                "{} resolved to {}, and opening it leaves the root: {why}",
                query.display(),
                local.display()
            );
        }
        if links == 0 {
            assert_eq!(local, root.resolve(&query), "no symlinks: lexical answer");
        }
    }
    // remove_dir_all removes symlinks, never what they point to.
    std::fs::remove_dir_all(&base).expect("clean up");
});
