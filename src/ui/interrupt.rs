//! Ctrl-C at a prompt. dialoguer reads keys in raw mode, so Ctrl-C arrives as a byte; console
//! then raises SIGINT at its own process and returns `Interrupted` (console 0.16
//! `unix_term.rs` `read_single_key`). With the default disposition SIGINT kills the process
//! right there, before any `Drop` runs, and a choice list or confirmation (which hide the
//! cursor) leaves the terminal without one.
//!
//! [`PromptGuard`] is held while a prompt is shown: it installs a SIGINT handler that only
//! shows the cursor again and notes the interruption, so the prompt's `Interrupted` error reaches
//! [`super::prompts`], which reports it as any other "no" at a prompt (`PromptError::Cancelled`:
//! exit 2, nothing applied, one JSON document under `-o json`). On drop it shows the cursor and
//! restores the previous disposition, so outside prompts Ctrl-C does what it did before.
//!
//! Why not `tokio::signal`: tokio's handler, once registered, stays for the life of the process
//! (a later Ctrl-C during `apply` would then be swallowed), and it answers on another thread,
//! racing the prompt's own error path. A plain `sigaction` handler runs on the spot and is undone.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Set by the handler; read (and cleared) by the prompt that was interrupted.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// DECTCEM "show cursor", what `console::Term::show_cursor` writes.
const SHOW_CURSOR: &[u8] = b"\x1b[?25h";

extern "C" fn on_sigint(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // SAFETY: write(2) is async-signal-safe; the buffer is a static of the given length.
    unsafe {
        nix::libc::write(
            nix::libc::STDERR_FILENO,
            SHOW_CURSOR.as_ptr().cast(),
            SHOW_CURSOR.len(),
        );
    }
}

/// While alive, SIGINT shows the cursor and interrupts the prompt instead of killing us.
pub struct PromptGuard {
    previous: Option<SigAction>,
}

impl PromptGuard {
    pub fn new() -> PromptGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // No SA_RESTART: a blocking read or poll in the prompt returns EINTR (an `Interrupted`
        // error, like the Ctrl-C byte) instead of carrying on as if nothing happened.
        let action = SigAction::new(
            SigHandler::Handler(on_sigint),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores an atomic and calls write(2), both async-signal-safe.
        let previous = unsafe { sigaction(Signal::SIGINT, &action) }.ok();
        PromptGuard { previous }
    }

    /// Whether SIGINT arrived since this guard was made (also between keys, when the terminal
    /// was not in raw mode and no read was waiting).
    pub fn interrupted(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Default for PromptGuard {
    fn default() -> Self {
        PromptGuard::new()
    }
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        let _ = console::Term::stderr().show_cursor();
        if let Some(previous) = &self.previous {
            // SAFETY: reinstates the disposition that was in force before `new`.
            let _ = unsafe { sigaction(Signal::SIGINT, previous) };
        }
    }
}

/// The signal that arrived while writing (0: none); set by [`on_signal_while_writing`], read by
/// [`WriteGuard::interrupted`].
static WRITE_INTERRUPTED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal_while_writing(signal: nix::libc::c_int) {
    WRITE_INTERRUPTED.store(signal, Ordering::SeqCst);
}

/// What stops a run while it writes: Ctrl-C, and what a supervisor sends (Ansible's or
/// systemd's SIGTERM, SIGHUP when the terminal goes away).
const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// How a stop signal is named in messages.
fn signal_name(signal: i32) -> &'static str {
    match Signal::try_from(signal) {
        Ok(Signal::SIGTERM) => "SIGTERM",
        Ok(Signal::SIGHUP) => "SIGHUP",
        _ => "Ctrl-C",
    }
}

/// While alive, a stop signal (Ctrl-C, SIGTERM, SIGHUP) does not kill the process between two
/// writes to the cluster (which would leave some objects written and nobody told which): it is
/// noted, the write under way finishes, and the caller stops and reports what was written
/// ([`WriteGuard::interrupted`]). `SA_RESETHAND` puts the default disposition back as the first
/// one arrives, so a second kills at once and a slow API server never makes the binary
/// unstoppable. On drop the previous dispositions are restored.
pub struct WriteGuard {
    previous: Vec<(Signal, SigAction)>,
}

impl WriteGuard {
    pub fn new() -> WriteGuard {
        WRITE_INTERRUPTED.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal_while_writing),
            SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let previous = STOP_SIGNALS
            .into_iter()
            // SAFETY: the handler only stores an atomic, which is async-signal-safe.
            .filter_map(|signal| Some((signal, unsafe { sigaction(signal, &action) }.ok()?)))
            .collect();
        WriteGuard { previous }
    }

    /// Which stop signal arrived since this guard was made, if one did ("Ctrl-C", "SIGTERM",
    /// "SIGHUP").
    pub fn interrupted(&self) -> Option<&'static str> {
        match WRITE_INTERRUPTED.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal_name(signal)),
        }
    }
}

/// Resolves with the name of the first stop signal (Ctrl-C, SIGTERM, SIGHUP) that arrives; for
/// an async wait that must say what it was doing rather than die. (Never, if the handlers
/// cannot be installed.)
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).ok();
    let (mut term, mut hup) = (
        listen(SignalKind::terminate()),
        listen(SignalKind::hangup()),
    );
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => "Ctrl-C",
        Some(()) = next(term.as_mut()) => "SIGTERM",
        Some(()) = next(hup.as_mut()) => "SIGHUP",
    }
}

/// The next delivery of `signal`; never when it could not be listened for.
async fn next(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

impl Default for WriteGuard {
    fn default() -> Self {
        WriteGuard::new()
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        for (signal, previous) in &self.previous {
            // SAFETY: reinstates the disposition that was in force before `new`.
            let _ = unsafe { sigaction(*signal, previous) };
        }
    }
}
