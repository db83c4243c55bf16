//! Bounded, type-checked reads of input files: the one way this program reads a file it was
//! given (`--config`, `--kubeconfig`) or found (host files through [`crate::host::fs`]).
//!
//! A file we read must be a regular file of at most a known size. A FIFO would block `open` or
//! `read` forever, a device such as `/dev/zero` never ends, a directory is a mistake; each is
//! refused with a message naming what the path is. The check is made twice: `stat` before
//! opening (so a device is never even opened: opening some devices has side effects, e.g. a
//! watchdog or a tape rewinds), then `fstat` on the opened descriptor (so a path swapped between
//! the two is still caught). The open uses `O_NONBLOCK`, so even a FIFO swapped in at the last
//! moment cannot block it (open(2): "O_NONBLOCK ... the open() for reading-only returns without
//! delay" for a FIFO), and `O_NOCTTY`, so a terminal never becomes our controlling one. The
//! read itself is capped at `limit + 1` bytes (`Read::take`), so a file that grows while we
//! read it cannot grow our memory either.
//!
//! This module is a leaf (no other module of the crate is imported), so every layer can use it:
//! `options` for the answers file, `host` for host files, `cluster` for the kubeconfig and the
//! files it references.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest input file we read: 4 MiB. A kubeconfig with a few embedded certificates is a
/// few kB, an args file or a kubelet config under 10 kB, a snap.yaml a few kB; a bigger file is
/// a mistake or an attack, not an input.
pub const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

/// What a path is, when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Symlink,
    /// A regular file whose read waits for data (`/proc/kmsg`, tracefs' `trace_pipe`, some FUSE
    /// files): found when the non-blocking read answers `EAGAIN`.
    Stream,
    Other,
}

impl FileKind {
    /// `None` for a regular file.
    pub fn of(file_type: FileType) -> Option<FileKind> {
        let kind = if file_type.is_file() {
            return None;
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_fifo() {
            FileKind::Fifo
        } else if file_type.is_socket() {
            FileKind::Socket
        } else if file_type.is_char_device() {
            FileKind::CharDevice
        } else if file_type.is_block_device() {
            FileKind::BlockDevice
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        Some(kind)
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Symlink => "a symbolic link that is not followed here",
            FileKind::Stream => "a file whose read waits for data (like /proc/kmsg)",
            FileKind::Other => "not a regular file",
        })
    }
}

/// Why an input file was not read. Each message names the path and what it is.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} does not exist")]
    NotFound { path: PathBuf },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: FileKind },
    /// `size` is the file's size, or `limit + 1` when the excess was found by reading.
    #[error(
        "{path} is too large: {}, more than the limit of {}",
        size_text(*size, *limit),
        human(*limit)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path} is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The path the error names.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path }
            | ReadError::Io { path, .. } => path,
        }
    }

    /// The same error naming `path` instead (a host path rather than the local path opened).
    pub fn with_path(mut self, shown: impl Into<PathBuf>) -> Self {
        let shown = shown.into();
        match &mut self {
            ReadError::NotFound { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path }
            | ReadError::Io { path, .. } => *path = shown,
        }
        self
    }

    /// Permission denied (the caller may know which group or sudo to suggest).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

/// Whether the last component of the path may be a symlink that the kernel follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// A path the user gave: a symlink is followed, as any tool would.
    Links,
    /// A path already resolved inside a host root: the last component must not be a symlink
    /// (`O_NOFOLLOW`), so nothing the resolver did not see can lead outside the root.
    NoFinalLink,
}

/// Opens `path` for reading if it is a regular file of at most `limit` bytes (by its size), and
/// returns the file and its size. Never blocks, never opens a device.
pub fn open_regular(path: &Path, limit: u64, follow: Follow) -> Result<(File, u64), ReadError> {
    let io_err = |source: io::Error| -> ReadError {
        if source.kind() == io::ErrorKind::NotFound {
            ReadError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            ReadError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let before = match follow {
        Follow::Links => std::fs::metadata(path),
        Follow::NoFinalLink => std::fs::symlink_metadata(path),
    }
    .map_err(io_err)?;
    check_type(path, before.file_type())?;
    let mut flags = libc_flags::O_NONBLOCK | libc_flags::O_NOCTTY;
    if follow == Follow::NoFinalLink {
        flags |= libc_flags::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a symlink (open(2): ELOOP), ENXIO for a socket: swapped in since the stat.
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: FileKind::Symlink,
            },
            Some(code) if code == nix::errno::Errno::ENXIO as i32 => ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: FileKind::Socket,
            },
            _ => io_err(e),
        })?;
    let meta = file.metadata().map_err(io_err)?;
    check_type(path, meta.file_type())?;
    // O_NONBLOCK stays: a plain file ignores it, but a regular file that waits for data
    // (`/proc/kmsg`: fs/proc/kmsg.c answers -EAGAIN under O_NONBLOCK) would otherwise block the
    // read forever; `--config /proc/kmsg` hung before. [`read_bounded_bytes`] names it.
    let size = meta.len();
    if size > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    Ok((file, size))
}

/// The bytes of a regular file of at most `limit` bytes (see [`open_regular`]).
pub fn read_bounded_bytes(path: &Path, limit: u64, follow: Follow) -> Result<Vec<u8>, ReadError> {
    let (file, size) = open_regular(path, limit, follow)?;
    // procfs and sysfs files report size 0: the cap below is what bounds them.
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| match source.kind() {
            io::ErrorKind::WouldBlock => ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: FileKind::Stream,
            },
            _ => ReadError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let read = buf.len() as u64;
    if read > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            size: read,
            limit,
        });
    }
    Ok(buf)
}

/// The text of a regular file of at most `limit` bytes, following links as any tool would: the
/// reader for a path the user gave (`--config`, `--kubeconfig`, a file a kubeconfig references).
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    read_bounded_text(path, limit, Follow::Links)
}

/// [`read_bounded`] with a choice of [`Follow`].
pub fn read_bounded_text(path: &Path, limit: u64, follow: Follow) -> Result<String, ReadError> {
    let bytes = read_bounded_bytes(path, limit, follow)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotText {
        path: path.to_path_buf(),
    })
}

fn check_type(path: &Path, file_type: FileType) -> Result<(), ReadError> {
    match FileKind::of(file_type) {
        None => Ok(()),
        Some(kind) => Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// The raw open(2) flags, from nix's `OFlag` (nix re-exports libc's values).
mod libc_flags {
    use nix::fcntl::OFlag;
    pub const O_NONBLOCK: i32 = OFlag::O_NONBLOCK.bits();
    pub const O_NOCTTY: i32 = OFlag::O_NOCTTY.bits();
    pub const O_NOFOLLOW: i32 = OFlag::O_NOFOLLOW.bits();
}

/// The size of a too-large file: exact from `fstat`, or "over the limit" when found by reading.
fn size_text(size: u64, limit: u64) -> String {
    if size == limit.saturating_add(1) {
        format!("over {}", human(limit))
    } else {
        human(size)
    }
}

/// `4 MiB`, `60.0 MiB`, `512 bytes`.
pub fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const KIB: u64 = 1024;
    if bytes >= MIB {
        if bytes.is_multiple_of(MIB) {
            format!("{} MiB", bytes / MIB)
        } else {
            format!("{:.1} MiB", bytes as f64 / MIB as f64)
        }
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes as f64 / KIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    #[test]
    fn a_small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), "hello");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello!").unwrap();
        let e = read_bounded(&p, 5).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    size: 6,
                    limit: 5,
                    ..
                }
            ),
            "{e:?}"
        );
        // A sparse 60 MB file costs nothing to refuse: its size decides.
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(60_000_000).unwrap();
        let e = read_bounded(&big, MAX_INPUT_BYTES).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    size: 60_000_000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("57.2 MiB, more than the limit of 4 MiB"),
            "{e}"
        );
    }

    #[test]
    fn missing_directory_fifo_and_devices_are_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_bounded(&missing, 10),
            Err(ReadError::NotFound { .. })
        ));
        let e = read_bounded(dir.path(), 10).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: FileKind::Directory,
                    ..
                }
            ),
            "{e:?}"
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let start = Instant::now();
        let e = read_bounded(&fifo, 10).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(e.to_string().contains("is a FIFO (named pipe)"), "{e}");
        let e = read_bounded(Path::new("/dev/zero"), MAX_INPUT_BYTES).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: FileKind::CharDevice,
                    ..
                }
            ),
            "{e:?}"
        );
        // Through a symlink, as a user might pass it.
        let zero = dir.path().join("zero");
        symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_bounded(&zero, MAX_INPUT_BYTES),
            Err(ReadError::NotRegular {
                kind: FileKind::CharDevice,
                ..
            })
        ));
    }

    #[test]
    fn no_final_link_refuses_a_symlink_and_links_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "secret").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        assert_eq!(read_bounded(&link, 100).unwrap(), "secret");
        let e = read_bounded_text(&link, 100, Follow::NoFinalLink).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: FileKind::Symlink,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn procfs_files_of_size_zero_are_read_up_to_the_limit() {
        // /proc files report st_size 0; the take() cap bounds them.
        let text = read_bounded(Path::new("/proc/self/status"), MAX_INPUT_BYTES).unwrap();
        assert!(text.contains("Name:"));
        let e = read_bounded(Path::new("/proc/self/status"), 8).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { size: 9, .. }), "{e:?}");
    }

    #[test]
    fn the_descriptor_stays_non_blocking_so_a_waiting_file_cannot_hang_the_read() {
        // Before, O_NONBLOCK was cleared after the open, and `--config /proc/kmsg` (a regular
        // file that waits for kernel messages) blocked forever. (Not read here: reading
        // /proc/kmsg would take the host's kernel messages from its syslog.)
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "x").unwrap();
        let (file, _) = open_regular(&p, 10, Follow::Links).unwrap();
        let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert!(
            nix::fcntl::OFlag::from_bits_truncate(flags).contains(nix::fcntl::OFlag::O_NONBLOCK)
        );
        // A plain file reads as ever.
        assert_eq!(read_bounded(&p, 10).unwrap(), "x");
        let shown = ReadError::NotRegular {
            path: PathBuf::from("/proc/kmsg"),
            kind: FileKind::Stream,
        }
        .to_string();
        assert_eq!(
            shown,
            "/proc/kmsg is a file whose read waits for data (like /proc/kmsg), not a regular file"
        );
    }

    #[test]
    fn errors_can_name_the_host_path() {
        let e = ReadError::NotFound {
            path: PathBuf::from("/tmp/x/etc/a"),
        }
        .with_path("/etc/a");
        assert_eq!(e.path(), Path::new("/etc/a"));
        assert_eq!(e.to_string(), "/etc/a does not exist");
    }

    #[test]
    fn invalid_utf8_is_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_bounded(&p, 10),
            Err(ReadError::NotText { .. })
        ));
    }
}
