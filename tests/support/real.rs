//! Real components or a loud skip: a test that needs root, containerd or a tool calls
//! [`require`] first. Under `CADVISOR_SETUP_REQUIRE_REAL=1` (set by scripts/test.sh in CI) a
//! missing component fails the test instead of skipping it.

use std::path::Path;

/// Returns `true` when the test may go on. When it may not: panics if real components are
/// required, otherwise prints a loud SKIP line and returns `false`.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CADVISOR_SETUP_REQUIRE_REAL").is_ok_and(|v| v == "1") {
        panic!(
            "CADVISOR_SETUP_REQUIRE_REAL=1 but {what} is missing: run scripts/test.sh, which installs it"
        );
    }
    eprintln!(
        "\n!!! SKIPPED: {what} is missing (set CADVISOR_SETUP_REQUIRE_REAL=1 to make this a failure) !!!\n"
    );
    false
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

pub fn have_tool(name: &str) -> bool {
    which::which(name).is_ok()
}

/// Root plus containerd, ctr and runc: what a real-containerd test needs.
pub fn require_containerd() -> bool {
    require("root", is_root())
        && require(
            "containerd (apt-get install containerd)",
            have_tool("containerd"),
        )
        && require("ctr (apt-get install containerd)", have_tool("ctr"))
        && require("runc (apt-get install runc)", have_tool("runc"))
        && require(
            "busybox-static (apt-get install busybox-static)",
            Path::new("/bin/busybox").exists(),
        )
}

/// A tool on PATH or in the venv that scripts/test.sh creates for the Python tools.
pub fn tool_path(name: &str) -> Option<std::path::PathBuf> {
    if let Ok(path) = which::which(name) {
        return Some(path);
    }
    let venv = std::env::var_os("CADVISOR_SETUP_VENV")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".cache/cadvisor-setup/venv"))
        })?;
    let candidate = venv.join("bin").join(name);
    candidate.is_file().then_some(candidate)
}
