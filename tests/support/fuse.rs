//! A real FUSE mount whose files never answer a READ (tests/support/fuse_hang.py): a hung
//! network or FUSE mount under a temporary host root.
//!
//! Dropping a [`HungMount`] ends it whatever the test did: the connection is aborted
//! (`/sys/fs/fuse/connections/N/abort`, kernel Documentation/filesystems/fuse.rst "Aborting a
//! filesystem connection"), the server is killed (which aborts it too), and the mount is
//! detached (`umount -l`), so nothing stays blocked on it and the temporary directory can be
//! removed (a recursive removal over a live hung mount would hang too).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::real;

pub struct HungMount {
    server: Child,
    mountpoint: PathBuf,
}

/// Root, `/dev/fuse` and python3: what a FUSE test needs (a loud skip or, under
/// `CADVISOR_SETUP_REQUIRE_REAL=1`, a failure).
pub fn require_fuse() -> Option<PathBuf> {
    if !(real::require("root (to mount FUSE)", real::is_root())
        && real::require("/dev/fuse", Path::new("/dev/fuse").exists()))
    {
        return None;
    }
    let python = real::tool_path("python3");
    if real::require("python3", python.is_some()) {
        python
    } else {
        None
    }
}

impl HungMount {
    /// Mounts at `mountpoint` (an existing directory, whose own files it hides) a directory
    /// holding one regular file per name of `files`; reading any of them never answers. `None`
    /// when FUSE cannot be used here (skipped loudly, or a failure when real components are
    /// required).
    pub fn start(mountpoint: &Path, files: &[&str]) -> Option<HungMount> {
        let python = require_fuse()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fuse_hang.py");
        let mut server = Command::new(python)
            .arg(script)
            .arg(mountpoint)
            .args(files)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fuse_hang.py");
        let mut first = String::new();
        let out = server.stdout.take().expect("server stdout");
        let _ = BufReader::new(out).read_line(&mut first);
        let mount = HungMount {
            server,
            mountpoint: mountpoint.to_path_buf(),
        };
        assert_eq!(
            first.trim(),
            "mounted",
            "fuse_hang.py did not mount {} (its error is above)",
            mountpoint.display()
        );
        Some(mount)
    }

    /// The connection's number under /sys/fs/fuse/connections: the minor of the mount's device,
    /// from /proc/self/mountinfo (a `stat` of the mount point itself could block).
    fn connection(&self) -> Option<String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let target = self.mountpoint.to_str()?;
        mountinfo.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let is_it =
                fields.get(4) == Some(&target) && line.split(" - ").nth(1)?.starts_with("fuse ");
            is_it.then(|| fields.get(2)?.split(':').nth(1).map(str::to_string))?
        })
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        if let Some(n) = self.connection() {
            // Present when fusectl is mounted; killing the server below aborts it anyway.
            let _ = std::fs::write(format!("/sys/fs/fuse/connections/{n}/abort"), "1");
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .stderr(Stdio::null())
            .status();
    }
}
