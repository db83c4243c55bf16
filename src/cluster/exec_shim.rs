//! Runs a kubeconfig's exec credential plugin within bounds.
//!
//! kube runs the plugin (`users[].user.exec`) itself, with `Command::output()`: no time limit and
//! every byte it prints held in memory (kube-client 5 `client/auth/mod.rs` `auth_exec`). We bound
//! the time kube may take ([`super::client`]), but a plugin still running then was left behind,
//! and one printing without end grew the process until the kernel stopped it. So kube is handed
//! this binary as the plugin's command, with the real command after [`ARG`]: it runs the plugin
//! with the same environment and standard input, keeps at most [`MAX_STDOUT`] of its credential
//! and [`MAX_STDERR`] of its messages, and stops it at the deadline.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The first argument that makes this binary the shim (not a subcommand: never parsed by clap,
/// never in `--help`).
pub const ARG: &str = "__exec-credential-plugin";

/// An ExecCredential is a token or a certificate and key: kilobytes.
pub const MAX_STDOUT: u64 = 1024 * 1024;
/// What kube shows of the plugin's error output.
pub const MAX_STDERR: u64 = 64 * 1024;

/// This binary, when it may stand in for plugins (set by the command line entry point; unset in
/// library tests, whose binary is the test harness).
static SHIM: OnceLock<PathBuf> = OnceLock::new();

/// Lets [`wrap`] hand kube `exe` as the plugin's command.
pub fn enable(exe: PathBuf) {
    let _ = SHIM.set(exe);
}

/// The plugin `command args…` as kube should run it: through the shim, stopped after
/// `deadline`. Unchanged when the shim is not enabled.
pub fn wrap(command: &mut Option<String>, args: &mut Option<Vec<String>>, deadline: Duration) {
    let Some(exe) = SHIM.get() else { return };
    let Some(original) = command.take() else {
        return;
    };
    let mut wrapped = vec![
        ARG.to_string(),
        deadline.as_secs().to_string(),
        original.clone(),
    ];
    wrapped.extend(args.take().unwrap_or_default());
    match exe.to_str() {
        Some(exe) => {
            *command = Some(exe.to_string());
            *args = Some(wrapped);
        }
        None => {
            // Not representable in a kubeconfig: run the plugin as kube would.
            *command = Some(original);
            *args = Some(wrapped.split_off(3));
        }
    }
}

/// The shim's whole run: `ARG <deadline seconds> <command> [args…]` (after [`ARG`]).
pub fn run(args: Vec<OsString>) -> ExitCode {
    match shim(args, &mut std::io::stdout(), &mut std::io::stderr()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// Runs the plugin; what it printed (within bounds) goes to `out` and `messages`.
fn shim(
    args: Vec<OsString>,
    out: &mut dyn Write,
    messages: &mut dyn Write,
) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    let seconds: u64 = args
        .next()
        .and_then(|s| s.to_str()?.parse().ok())
        .ok_or("usage: cadvisor-setup __exec-credential-plugin SECONDS COMMAND [ARGS…]")?;
    let command = args.next().ok_or("no exec credential plugin to run")?;
    let deadline = crate::deadline::deadline_after(Duration::from_secs(seconds)).into_std();
    let shown = command.to_string_lossy().into_owned();
    let mut child = Command::new(&command)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let too_much = Arc::new(AtomicBool::new(false));
    let stdout = child
        .stdout
        .take()
        .map(|o| bounded_reader(o, MAX_STDOUT, Some(too_much.clone())));
    let stderr = child
        .stderr
        .take()
        .map(|e| bounded_reader(e, MAX_STDERR, None));
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        let too_much = too_much.load(Ordering::Relaxed);
        if too_much || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if too_much {
                format!("`{shown}` printed more than {MAX_STDOUT} bytes; stopped")
            } else {
                format!("`{shown}` did not finish within {seconds}s; stopped")
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The plugin has exited, but a process it started may still hold its output open: the
    // readers end at end of file, so they too are waited for only until the deadline.
    let take = |reader: Option<std::thread::JoinHandle<Bounded>>| {
        let reader = reader?;
        while !reader.is_finished() {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reader.join().ok()
    };
    let Some(credential) = take(stdout) else {
        return Err(format!(
            "`{shown}` exited, but its output was still open after {seconds}s (held by a process it started?); not waited for"
        ));
    };
    let said = take(stderr).unwrap_or_default();
    let _ = messages.write_all(&said.bytes);
    if credential.overflowed {
        return Err(format!(
            "`{shown}` printed more than {MAX_STDOUT} bytes; stopped"
        ));
    }
    out.write_all(&credential.bytes)
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}

#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    overflowed: bool,
}

/// Reads `from` on a thread, keeping at most `limit` bytes. Past the limit it raises `stop` when
/// given (standard output: the plugin is then stopped) and ends; otherwise (error output) it reads
/// on and drops the rest, so the plugin never blocks on it.
fn bounded_reader(
    from: impl Read + Send + 'static,
    limit: u64,
    stop: Option<Arc<AtomicBool>>,
) -> std::thread::JoinHandle<Bounded> {
    std::thread::spawn(move || {
        let mut from = from;
        let mut kept = Bounded::default();
        let _ = (&mut from).take(limit + 1).read_to_end(&mut kept.bytes);
        if kept.bytes.len() as u64 > limit {
            kept.bytes.truncate(limit as usize);
            kept.overflowed = true;
            match stop {
                Some(stop) => stop.store(true, Ordering::Relaxed),
                None => {
                    let _ = std::io::copy(&mut from, &mut std::io::sink());
                }
            }
        }
        kept
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shim_with(args: &[&str]) -> Result<ExitCode, String> {
        shim_output(args).0
    }

    /// The result, and what went to standard output and error.
    fn shim_output(args: &[&str]) -> (Result<ExitCode, String>, Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = shim(
            args.iter().map(OsString::from).collect(),
            &mut out,
            &mut err,
        );
        (result, out, err)
    }

    /// A plugin still running at the deadline is stopped (not left behind), and says so.
    #[test]
    fn a_plugin_past_its_deadline_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 100", pidfile.display());
        let err = shim_with(&["1", "sh", "-c", &script]).unwrap_err();
        assert_eq!(err, "`sh` did not finish within 1s; stopped");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        assert!(!alive, "the plugin {pid} is still running");
    }

    /// A plugin that prints without end is stopped past [`MAX_STDOUT`] (kube held it all).
    #[test]
    fn a_plugin_that_prints_without_end_is_stopped() {
        let err = shim_with(&["30", "yes"]).unwrap_err();
        assert_eq!(
            err,
            format!("`yes` printed more than {MAX_STDOUT} bytes; stopped")
        );
    }

    /// Its exit status is the plugin's (kube reports a failure with it), error output without
    /// end is read and dropped past [`MAX_STDERR`] without blocking the plugin.
    #[test]
    fn a_plugin_keeps_its_exit_status_and_endless_error_output_does_not_block_it() {
        let (code, out, err) = shim_output(&[
            "30",
            "sh",
            "-c",
            "echo '{}'; head -c 3000000 /dev/zero >&2; exit 3",
        ]);
        assert_eq!(
            format!("{:?}", code.unwrap()),
            format!("{:?}", ExitCode::from(3))
        );
        assert_eq!(out, b"{}\n");
        assert_eq!(err.len() as u64, MAX_STDERR);
        assert!(
            shim_with(&["30", "/nonexistent/plugin"])
                .unwrap_err()
                .starts_with("cannot run `/nonexistent/plugin`")
        );
        assert!(shim_with(&["x", "true"]).is_err());
    }

    /// A plugin that exits but leaves a process of its own holding its output open (a helper
    /// started in the background) is not waited for past the deadline: the shim ends then.
    #[test]
    fn output_held_open_after_the_plugin_exits_does_not_hold_the_shim_past_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!(
            "echo '{{}}'; sleep 20 & echo $! > {}; exit 0",
            pidfile.display()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(shim_with(&["1", "sh", "-c", &script]));
        });
        let result = rx.recv_timeout(Duration::from_secs(10));
        if let Ok(pid) = std::fs::read_to_string(&pidfile)
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let err = result
            .expect("the shim did not end within 10s of its 1s deadline")
            .unwrap_err();
        assert_eq!(
            err,
            "`sh` exited, but its output was still open after 1s (held by a process it started?); not waited for"
        );
    }

    #[test]
    fn wrap_puts_the_shim_before_the_plugin_only_when_enabled() {
        let mut command = Some("gke-gcloud-auth-plugin".to_string());
        let mut args = Some(vec!["--flag".to_string()]);
        wrap(&mut command, &mut args, Duration::from_secs(60));
        // Not enabled in library tests: unchanged.
        assert_eq!(command.as_deref(), Some("gke-gcloud-auth-plugin"));
        assert_eq!(args, Some(vec!["--flag".to_string()]));
    }
}
