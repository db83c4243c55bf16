//! Real components or a loud skip: a test that needs root, containerd or a tool calls
//! [`require`] first. Under `CADVISOR_SETUP_REQUIRE_REAL=1` (set by scripts/test.sh in CI) a
//! missing component fails the test instead of skipping it.
//!
//! Every skip goes through [`require`]: besides the SKIP line on stderr (which the test harness
//! captures, so it is invisible without `--nocapture`), it appends one line to the file named by
//! `CADVISOR_SETUP_SKIP_LOG` (scripts/test.sh sets it and prints the lines at the end).

use std::io::Write;
use std::path::Path;

/// The environment variable naming the file that collects one line per skipped test.
pub const SKIP_LOG_ENV: &str = "CADVISOR_SETUP_SKIP_LOG";

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
    let test = current_test();
    eprintln!(
        "\n!!! SKIPPED {test}: {what} is missing (set CADVISOR_SETUP_REQUIRE_REAL=1 to make this a failure) !!!\n"
    );
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV).filter(|v| !v.is_empty())
        && let Err(e) = record_skip(Path::new(&log), &test, what)
    {
        eprintln!(
            "!!! could not record the skip in {}: {e} !!!",
            log.to_string_lossy()
        );
    }
    false
}

/// `binary::module::test` of the running test: libtest names each test's thread after the test
/// (with `--test-threads=1` the thread may be `main`, which is said as it is).
pub fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            // cargo names test binaries `<file>-<hash>`.
            Some((file, hash)) if hash.bytes().all(|b| b.is_ascii_hexdigit()) => file.to_string(),
            _ => stem,
        })
        .unwrap_or_else(|| "?".to_string());
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("an unnamed thread");
    format!("{binary}::{name}")
}

/// Appends `<test>: <what> is missing` as one line to `log` (one `write` of an `O_APPEND` file,
/// so lines from concurrent tests and test binaries do not interleave).
pub fn record_skip(log: &Path, test: &str, what: &str) -> std::io::Result<()> {
    let line = format!("{test}: {what} is missing\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(line.as_bytes())
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
