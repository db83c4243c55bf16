//! The host-facts phase in a child process of its own (this binary, run as
//! `cadvisor-setup __host-facts`), so a read that never returns cannot hold the binary.
//!
//! A thread is not enough: a FUSE request that the daemon has taken waits for its answer
//! uninterruptibly, even for SIGKILL (kernel fs/fuse/dev.c `request_wait_answer`: "Either request
//! is already in userspace, or it was forced. Wait it out."), and so does the `flush` of a FUSE
//! file at close (`fuse_flush` sets `force`). A process exits only when all its threads have, so
//! one thread stuck there keeps the whole binary (and the shell waiting for it) alive. A child
//! process stuck there is left behind: we stop waiting, kill it (it ends as soon as the kernel
//! lets it) and exit with the message.
//!
//! Protocol: the request as one JSON document on the child's stdin; on its stdout, one line
//! `R <path>` before each lookup or read ([`super::watch::reading`]) and one final line
//! `D <answer>` with the JSON result. The child's stderr is a pipe of ours (read only when it
//! crashed): a child left behind must not hold the caller's terminal or pipe open.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{DetectOptions, HostError, HostFacts, HostFiles, HostRoot, KubeconfigFacts};

/// The first argument that makes this binary the host-facts child (not a command: clap never
/// sees it).
pub const CHILD_ARG: &str = "__host-facts";

/// The most the child may say (the facts are a few KiB).
const ANSWER_LIMIT: u64 = crate::input::MAX_INPUT_BYTES;

/// What the child is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub enum Phase {
    /// [`super::read_files`].
    Files,
    /// [`super::probe`] over files read before.
    Probe(Box<Wire<HostFiles>>),
    /// [`super::detect`].
    Detect,
    /// The kubeconfig discovery of commands that detect nothing else
    /// ([`super::kubeconfig::discover`] after [`super::distro::detect`]).
    Kubeconfig,
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    root: PathBuf,
    opts: DetectOptions,
    phase: Phase,
}

/// A value with its kubeconfig's `resolved` path, which the report never shows
/// (`#[serde(skip)]`) but the parent needs to open it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Wire<T> {
    value: T,
    resolved: Option<PathBuf>,
}

/// Values that carry a kubeconfig whose `resolved` path must cross the pipe.
pub trait CarriesKubeconfig {
    fn kubeconfig_mut(&mut self) -> Option<&mut KubeconfigFacts>;
}

impl CarriesKubeconfig for HostFiles {
    fn kubeconfig_mut(&mut self) -> Option<&mut KubeconfigFacts> {
        self.kubeconfig.as_mut()
    }
}

impl CarriesKubeconfig for HostFacts {
    fn kubeconfig_mut(&mut self) -> Option<&mut KubeconfigFacts> {
        self.kubeconfig.as_mut()
    }
}

impl CarriesKubeconfig for Option<KubeconfigFacts> {
    fn kubeconfig_mut(&mut self) -> Option<&mut KubeconfigFacts> {
        self.as_mut()
    }
}

impl<T: CarriesKubeconfig> Wire<T> {
    pub fn new(mut value: T) -> Self {
        let resolved = value.kubeconfig_mut().map(|k| k.resolved.clone());
        Wire { value, resolved }
    }

    pub fn into_inner(mut self) -> T {
        if let (Some(k), Some(resolved)) = (self.value.kubeconfig_mut(), self.resolved) {
            k.resolved = resolved;
        }
        self.value
    }
}

/// The child's last line: the result, or the error's message.
#[derive(Debug, Serialize, Deserialize)]
enum Answer<T> {
    Ok(T),
    Err(String),
}

/// Why the child could not be used; the caller then runs the phase on a thread instead
/// ([`super::watch::within`]), which bounds every hang a process can be released from.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// Runs `phase` in a child process and waits at most `budget` for its answer.
///
/// `Err(Ok(Unavailable))` when no child could be started (no path to our own binary, a path that
/// JSON cannot carry): the caller falls back to a thread. Past the budget the child is killed
/// (it ends when the kernel lets it) and the answer is [`HostError::NoAnswer`].
pub async fn run<T: CarriesKubeconfig + DeserializeOwned>(
    root: &HostRoot,
    opts: &DetectOptions,
    phase: Phase,
    budget: Duration,
) -> Result<Result<T, HostError>, Unavailable> {
    let request = Request {
        root: root.path().to_path_buf(),
        opts: opts.clone(),
        phase,
    };
    let request = serde_json::to_vec(&request).map_err(|e| Unavailable(format!("request: {e}")))?;
    let exe = std::env::current_exe().map_err(|e| Unavailable(format!("own binary: {e}")))?;
    let mut child = tokio::process::Command::new(exe)
        .arg(CHILD_ARG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Unavailable(format!("starting the host-facts process: {e}")))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.start_kill();
        return Err(Unavailable("no pipes to the host-facts process".into()));
    };
    let mut last: Option<PathBuf> = None;
    let talk = async {
        // A few KiB: the pipe takes it whole, so a child that never reads cannot block us
        // past the budget either (this is inside the timeout).
        stdin.write_all(&request).await?;
        drop(stdin);
        let mut lines = tokio::io::BufReader::new(stdout.take(ANSWER_LIMIT)).lines();
        while let Some(line) = lines.next_line().await? {
            if let Some(path) = line.strip_prefix("R ") {
                last = serde_json::from_str::<PathBuf>(path).ok().or(last.take());
            } else if let Some(answer) = line.strip_prefix("D ") {
                return Ok(Some(answer.to_string()));
            }
        }
        Ok::<_, std::io::Error>(None)
    };
    let outcome = tokio::time::timeout(budget, talk).await;
    let answer = match outcome {
        Err(_) => {
            // Killed, never waited for: a child stuck in the kernel ends when it is released;
            // tokio reaps it in the background if we are still running then.
            let _ = child.start_kill();
            return Ok(Err(HostError::NoAnswer {
                path: last,
                after: budget,
            }));
        }
        Ok(Ok(Some(answer))) => answer,
        Ok(Ok(None)) | Ok(Err(_)) => {
            // It ended (or closed its stdout) without answering: a crash. Its status and the
            // start of what it said on stderr, each waited for briefly (it has ended).
            let brief = Duration::from_secs(2);
            let mut said = String::new();
            if let Some(stderr) = child.stderr.take() {
                let mut stderr = stderr.take(4096);
                let _ = tokio::time::timeout(brief, stderr.read_to_string(&mut said)).await;
            }
            let status = match tokio::time::timeout(brief, child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                _ => {
                    let _ = child.start_kill();
                    "still running".to_string()
                }
            };
            let said = said.trim();
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            return Ok(Err(HostError::Detection(format!(
                "the host-facts process ({CHILD_ARG}) ended without an answer ({status}){said}"
            ))));
        }
    };
    // It has answered and is ending: reaped here, so its SIGCHLD cannot arrive later, in the
    // middle of a prompt's read of the terminal (which then fails with EINTR). Briefly: one
    // stuck at its exit (a FUSE `flush`) is left behind.
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    Ok(match serde_json::from_str::<Answer<Wire<T>>>(&answer) {
        Ok(Answer::Ok(wire)) => Ok(wire.into_inner()),
        Ok(Answer::Err(message)) => Err(HostError::Detection(message)),
        Err(e) => Err(HostError::Detection(format!(
            "the host-facts process answered what we cannot read: {e}"
        ))),
    })
}

/// The child: reads the request on stdin, runs the phase, writes the answer on stdout.
pub fn child_main() -> std::process::ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().take(ANSWER_LIMIT).read_to_end(&mut input) {
        return say::<()>(Answer::Err(format!("reading the request: {e}")));
    }
    let request: Request = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => return say::<()>(Answer::Err(format!("the request: {e}"))),
    };
    let root = match HostRoot::new(&request.root) {
        Ok(root) => root,
        Err(e) => return say::<()>(Answer::Err(e.to_string())),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return say::<()>(Answer::Err(format!("runtime: {e}"))),
    };
    super::watch::report_to_stdout();
    let opts = request.opts;
    match request.phase {
        Phase::Files => say(Answer::Ok(Wire::new(super::read_files(&root, &opts)))),
        Phase::Probe(files) => {
            let files = files.into_inner();
            say_result(runtime.block_on(super::probe(&root, files, &opts)))
        }
        Phase::Detect => say_result(runtime.block_on(super::detect(&root, &opts))),
        Phase::Kubeconfig => {
            let mut ignored = Vec::new();
            let distro = super::distro::detect(&root, &mut ignored);
            let env = opts.kubeconfig_env.unwrap_or_default();
            let found = super::kubeconfig::discover(&root, &distro, &env);
            say(Answer::Ok(Wire::new(found)))
        }
    }
}

fn say_result<T: CarriesKubeconfig + Serialize>(r: Result<T, HostError>) -> std::process::ExitCode {
    match r {
        Ok(v) => say(Answer::Ok(Wire::new(v))),
        Err(e) => say::<Wire<T>>(Answer::Err(e.to_string())),
    }
}

fn say<T: Serialize>(answer: Answer<T>) -> std::process::ExitCode {
    let text = serde_json::to_string(&answer).unwrap_or_else(|e| {
        serde_json::to_string(&Answer::<()>::Err(format!("the answer: {e}")))
            .unwrap_or_else(|_| r#"{"Err":"the answer"}"#.to_string())
    });
    let mut out = std::io::stdout().lock();
    match writeln!(out, "D {text}").and_then(|()| out.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

/// One `R <path>` line (the child's [`super::watch::reading`]).
pub(super) fn report_path(path: &Path) {
    // Lossy: only for the message (JSON cannot carry a path that is not UTF-8).
    if let Ok(text) = serde_json::to_string(&path.to_string_lossy()) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "R {text}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{KubeconfigSource, kubelet::KubeletScan};

    fn files() -> HostFiles {
        HostFiles {
            distribution: crate::host::distro::plain(crate::host::DistroKind::Microk8s, vec![]),
            kubelet_scan: KubeletScan::default(),
            kubeconfig: Some(KubeconfigFacts {
                path: "/var/snap/microk8s/current/credentials/client.config".into(),
                resolved: "/hostfs/var/snap/microk8s/8148/credentials/client.config".into(),
                source: KubeconfigSource::Distribution,
                readable: true,
                hint: None,
                merged: vec!["/root/.kube/other".into()],
            }),
            warnings: vec!["w".into()],
        }
    }

    #[test]
    fn the_kubeconfig_path_to_open_crosses_the_pipe() {
        let text = serde_json::to_string(&Wire::new(files())).unwrap();
        let back: Wire<HostFiles> = serde_json::from_str(&text).unwrap();
        let back = back.into_inner();
        let (sent, got) = (files(), back);
        assert_eq!(got.kubeconfig, sent.kubeconfig);
        assert_eq!(got.distribution, sent.distribution);
        assert_eq!(got.warnings, sent.warnings);
        // ... while the report still never shows it.
        let shown = serde_json::to_value(sent.kubeconfig.as_ref().unwrap()).unwrap();
        assert!(shown.get("resolved").is_none(), "{shown}");
    }

    #[test]
    fn the_childs_answer_is_one_line_and_an_error_keeps_its_message() {
        let text = serde_json::to_string(&Answer::<Wire<HostFiles>>::Err("a\nb".into())).unwrap();
        assert!(!text.contains('\n'));
        let back: Answer<Wire<HostFiles>> = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Answer::Err(m) if m == "a\nb"));
    }
}
