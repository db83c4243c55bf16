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

use std::sync::atomic::{AtomicBool, Ordering};

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

/// Set by [`on_sigint_while_writing`]; read by [`WriteGuard::interrupted`].
static WRITE_INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint_while_writing(_: nix::libc::c_int) {
    WRITE_INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C does not kill the process between two writes to the cluster (which
/// would leave some objects written and nobody told which): it is noted, the write under way
/// finishes, and the caller stops and reports what was written ([`WriteGuard::interrupted`]).
/// `SA_RESETHAND` puts the default disposition back as the first SIGINT arrives, so a second
/// Ctrl-C kills at once and a slow API server never makes the binary unstoppable. On drop the
/// previous disposition is restored.
pub struct WriteGuard {
    previous: Option<SigAction>,
}

impl WriteGuard {
    pub fn new() -> WriteGuard {
        WRITE_INTERRUPTED.store(false, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_sigint_while_writing),
            SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores an atomic, which is async-signal-safe.
        let previous = unsafe { sigaction(Signal::SIGINT, &action) }.ok();
        WriteGuard { previous }
    }

    /// Whether SIGINT arrived since this guard was made.
    pub fn interrupted(&self) -> bool {
        WRITE_INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Default for WriteGuard {
    fn default() -> Self {
        WriteGuard::new()
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            // SAFETY: reinstates the disposition that was in force before `new`.
            let _ = unsafe { sigaction(Signal::SIGINT, previous) };
        }
    }
}
