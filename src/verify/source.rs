//! Where a scrape comes from when it is not the cluster: a file, a FIFO, stdin or a URL, each
//! streamed into the scanner of `crate::metrics` within `--timeout`.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::VerifyError;
use super::http;
use crate::input::FileKind;
use crate::metrics::{self, ScanReport};

/// Where the metrics came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "location", rename_all = "lowercase")]
pub enum Source {
    File(PathBuf),
    Stdin,
    Url(String),
}

impl Source {
    /// `--metrics-file PATH`, `-` meaning stdin.
    pub fn file(path: &Path) -> Source {
        if path == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(path.to_path_buf())
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "stdin".to_string(),
            Source::Url(url) => url.clone(),
        }
    }

    /// Reads and scans the whole source, for at most `timeout`.
    pub async fn scan(&self, timeout: Duration) -> Result<ScanReport, VerifyError> {
        match self {
            Source::Url(url) => Ok(http::scan_url(url, timeout).await?),
            Source::File(path) => scan_file(Some(path.clone()), timeout).await,
            Source::Stdin => scan_file(None, timeout).await,
        }
    }
}

/// Scans a file, a FIFO or stdin (`None`) on a thread of its own, for at most `timeout`.
///
/// A FIFO or stdin may never end (or never get a writer: opening a FIFO blocks until one comes),
/// so the read is bounded by `--timeout` like a URL. The reading thread is a plain detached
/// thread, not tokio's `spawn_blocking`: the runtime waits for its blocking tasks when it shuts
/// down (docs.rs/tokio `Runtime::shutdown_background`: "dropping a runtime will block
/// indefinitely for spawned blocking tasks to complete"), whereas a detached thread ends with
/// the process. The scanner reads incrementally, so memory stays flat whatever the stream's
/// length.
async fn scan_file(path: Option<PathBuf>, timeout: Duration) -> Result<ScanReport, VerifyError> {
    if let Some(path) = &path {
        check_path(path)?;
    }
    let shown = match &path {
        Some(path) => path.display().to_string(),
        None => "stdin".to_string(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("metrics-file".into())
        .spawn(move || {
            let result = match &path {
                None => metrics::scan(std::io::stdin().lock()).map_err(|error| VerifyError::Scan {
                    shown: "stdin".to_string(),
                    error,
                }),
                Some(path) => scan_path(path),
            };
            // The receiver is gone after a timeout: nobody wants the result any more.
            let _ = tx.send(result);
        })
        .map_err(VerifyError::Thread)?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(VerifyError::ReaderGone { shown }),
        Err(_) => Err(VerifyError::Timeout {
            shown,
            after: human_duration(timeout),
        }),
    }
}

/// What `--metrics-file` may be: a regular file, or a FIFO (a stream like stdin). A directory,
/// a device or a socket is a usage error (exit 2), found before anything is opened.
fn check_path(path: &Path) -> Result<(), VerifyError> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::NoSuchFile { shown });
        }
        Err(error) => return Err(VerifyError::Open { shown, error }),
    };
    refuse_kind(path, meta.file_type())
}

fn refuse_kind(path: &Path, file_type: std::fs::FileType) -> Result<(), VerifyError> {
    let shown = path.display().to_string();
    match FileKind::of(file_type) {
        None | Some(FileKind::Fifo) => Ok(()),
        Some(FileKind::Directory) => Err(VerifyError::Directory { shown }),
        Some(kind) => Err(VerifyError::NotAFile {
            shown,
            kind: kind.to_string(),
        }),
    }
}

/// Opens and scans a regular file or a FIFO (on the reading thread: opening a FIFO blocks until
/// a writer opens it). Checked again on the open file, in case the path changed since.
fn scan_path(path: &Path) -> Result<ScanReport, VerifyError> {
    let shown = path.display().to_string();
    let open_error = |error| VerifyError::Open {
        shown: shown.clone(),
        error,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
        .map_err(open_error)?;
    let meta = file.metadata().map_err(open_error)?;
    refuse_kind(path, meta.file_type())?;
    metrics::scan(file).map_err(|error| VerifyError::Scan {
        shown: shown.clone(),
        error,
    })
}

/// `60s`, `1.5s`, `250ms`.
pub fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_flag() {
        assert_eq!(human_duration(Duration::from_secs(60)), "60s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[tokio::test]
    async fn a_directory_is_a_usage_error_and_a_missing_file_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Source::file(dir.path())
            .scan(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::Directory { .. }), "{err}");
        let err = Source::file(&dir.path().join("nope"))
            .scan(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
