//! The host-facts phase under a time bound, and which path it was reading when time ran out.
//!
//! Host files are read bounded in size and refused when they are FIFOs or devices
//! ([`crate::input`]), but a regular file on a network or FUSE mount whose server stopped
//! answering blocks `open`, `stat` or `read` for good: an NFS `hard` mount retries forever
//! (nfs(5) "hard"), and a FUSE request waits for its daemon (kernel
//! Documentation/filesystems/fuse.rst, "Interrupting filesystem operations"). [`within`] runs
//! the phase on its own thread and gives up after a budget, naming the path that thread was at
//! ([`reading`] records it before each lookup and read). Commands run the phase in a child
//! process instead ([`super::isolated`]), which a FUSE read cannot hold the binary through;
//! [`within`] is what they fall back to when no child can be started.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::HostError;

/// How long the host-facts phase may take. Reading the host's files takes milliseconds; the
/// slowest legitimate part is probing containerd sockets, each call bounded by
/// [`super::DetectOptions::probe_timeout`] (2 s; at most four calls per socket, sockets probed
/// together), so 30 s is several times the worst honest case and still short enough that a
/// person sees the message before giving up on the command.
pub const HOST_BUDGET: Duration = Duration::from_secs(30);

/// The path the watched thread is reading now (shared with the thread that waits for it).
#[derive(Debug, Clone, Default)]
struct Current(Arc<Mutex<Option<PathBuf>>>);

impl Current {
    fn get(&self) -> Option<PathBuf> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, path: &Path) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
    }
}

/// Where [`reading`] reports on this thread.
#[derive(Debug)]
enum Sink {
    /// A thread [`within`] started: the waiting thread looks at it.
    Shared(Current),
    /// The host-facts child process ([`super::isolated`]): a line on stdout for the parent.
    Stdout,
}

thread_local! {
    /// Set on the thread [`within`] starts and in the host-facts child; absent elsewhere, where
    /// [`reading`] does nothing.
    static CURRENT: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Records that this thread is about to look up or read `path` (a local path: the host root
/// applied). Does nothing outside [`within`] and the host-facts child.
pub fn reading(path: &Path) {
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(Sink::Shared(current)) => current.set(path),
        Some(Sink::Stdout) => super::isolated::report_path(path),
        None => {}
    });
}

/// Makes [`reading`] on this thread report to the parent process ([`super::isolated`]).
pub(super) fn report_to_stdout() {
    CURRENT.with(|c| *c.borrow_mut() = Some(Sink::Stdout));
}

/// Runs `f` (host reads, socket probes) on a thread of its own and waits at most `budget`.
/// Past it: [`HostError::NoAnswer`] naming the path being read. The thread is left behind (it
/// cannot be stopped inside the kernel) and ends with the process.
pub async fn within<T: Send + 'static>(
    budget: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HostError> {
    let current = Current::default();
    let theirs = current.clone();
    let work = move || {
        CURRENT.with(|c| *c.borrow_mut() = Some(Sink::Shared(theirs)));
        f()
    };
    crate::deadline::on_thread_within("host-facts", budget, work)
        .await
        .ok_or_else(|| HostError::NoAnswer {
            path: current.get(),
            after: budget,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_result_comes_back_when_the_reads_answer() {
        let r = within(HOST_BUDGET, || {
            reading(Path::new("/etc/hostname"));
            7
        })
        .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_read_that_never_answers_is_named() {
        let (_hold, wait) = std::sync::mpsc::channel::<()>();
        let e = within(Duration::from_millis(50), move || {
            reading(Path::new("/first"));
            reading(Path::new("/mnt/nfs/args/kubelet"));
            wait.recv().is_ok()
        })
        .await
        .unwrap_err();
        let HostError::NoAnswer { path, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(path.as_deref(), Some(Path::new("/mnt/nfs/args/kubelet")));
        assert!(e.to_string().contains("/mnt/nfs/args/kubelet"), "{e}");
    }

    #[test]
    fn reading_outside_a_watched_thread_records_nothing() {
        reading(Path::new("/x"));
        assert!(CURRENT.with(|c| c.borrow().is_none()));
    }
}
