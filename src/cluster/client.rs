//! Builds a kube client from a kubeconfig file (MicroK8s' `client.config` uses client
//! certificates; rustls verifies the server against the kubeconfig's CA).
//!
//! No kubeconfig can panic or hang the binary: we read it ourselves, bounded, only when it is a
//! regular file ([`read_kubeconfig_bounded`]); we check the selected cluster's `server` URL
//! (kube-client panics on one without a scheme: `base_uri.rs` "Valid Uri"); and we check that
//! each file it names (CA, client certificate and key, token file), which kube reads itself, is
//! a regular file under the same limit, so a FIFO or `/dev/zero` there is an error, not a hang.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};

use super::ClusterError;

/// The most we read of a kubeconfig or of a file it names. Real ones are a few KiB; certificate
/// bundles stay far below this.
pub const KUBECONFIG_LIMIT: u64 = 4 * 1024 * 1024;

/// A connected client and the server it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub server: String,
}

/// Why a kubeconfig (or a file it names) was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file (it is {what})")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads at most `limit` bytes of `path`, which must be a regular file (symlinks are followed:
/// a kubeconfig may well be one). A FIFO, socket, device or directory is refused without being
/// read: the file is opened with `O_NONBLOCK` (so opening a FIFO does not wait for a writer) and
/// its type is checked with `fstat` on the open descriptor.
pub fn read_kubeconfig_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let open_err = |source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    };
    // Refuse devices and FIFOs before opening them at all (opening some devices has effects).
    let before = std::fs::metadata(path).map_err(open_err)?;
    check_type(path, &before.file_type())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    check_type(path, &meta.file_type())?;
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut data = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| ReadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(data)
}

fn check_type(path: &Path, kind: &std::fs::FileType) -> Result<(), ReadError> {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular {
        path: path.to_path_buf(),
        what,
    })
}

/// Reads `path` and builds a client. Does not contact the server.
pub async fn connect(path: &Path) -> Result<Cluster, ClusterError> {
    let shown = path.display().to_string();
    let unusable = |reason: String| ClusterError::Kubeconfig {
        path: shown.clone(),
        reason,
    };
    let kubeconfig = load(path).map_err(unusable)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| unusable(e.to_string()))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| unusable(e.to_string()))?;
    Ok(Cluster { client, server })
}

/// How long [`probe`] waits for the API server's answer (TCP, TLS and `GET /version`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Proves the API server answers: `GET /version` within `timeout`. Returns its `gitVersion`.
/// No answer in time, a refused connection or a TLS failure is [`ClusterError::Unreachable`];
/// a 401 or 403 is classified as usual (all exit 4).
pub async fn probe(cluster: &Cluster, timeout: Duration) -> Result<String, ClusterError> {
    match tokio::time::timeout(timeout, cluster.client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(err @ kube::Error::Api(_))) => Err(classify(&cluster.server, err)),
        Ok(Err(err)) => Err(ClusterError::Unreachable {
            server: cluster.server.clone(),
            reason: err.to_string(),
        }),
        Err(_) => Err(ClusterError::Unreachable {
            server: cluster.server.clone(),
            reason: format!("no answer within {}s", timeout.as_secs()),
        }),
    }
}

/// The kubeconfig at `path`, read bounded, with relative file paths made relative to its
/// directory, and its current context checked so kube can neither panic nor hang on it.
fn load(path: &Path) -> Result<Kubeconfig, String> {
    let data = read_kubeconfig_bounded(path, KUBECONFIG_LIMIT).map_err(|e| e.to_string())?;
    let text = String::from_utf8(data).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        absolutize(&mut kubeconfig, dir);
    }
    if let Some((name, cluster, user)) = selected(&kubeconfig) {
        check_server(name, cluster.server.as_deref())?;
        let mut files = vec![("certificate-authority", &cluster.certificate_authority)];
        if let Some(user) = user {
            files.push(("client-certificate", &user.client_certificate));
            files.push(("client-key", &user.client_key));
            files.push(("tokenFile", &user.token_file));
        }
        for (field, file) in files {
            if let Some(file) = file {
                read_kubeconfig_bounded(Path::new(file), KUBECONFIG_LIMIT)
                    .map_err(|e| format!("its {field}: {e}"))?;
            }
        }
    }
    Ok(kubeconfig)
}

/// Relative paths in a kubeconfig are relative to the kubeconfig's directory, as kubectl
/// resolves them (client-go `ResolveLocalPaths`) and as kube's own `Kubeconfig::read_from` does
/// (kube-client 5 `config/file_config.rs`), which we no longer call: it reads without bound.
fn absolutize(kubeconfig: &mut Kubeconfig, dir: &Path) {
    let fix = |file: &mut Option<String>| {
        if let Some(f) = file.as_deref()
            && Path::new(f).is_relative()
            && let Some(abs) = dir.join(f).to_str()
        {
            *file = Some(abs.to_string());
        }
    };
    for named in &mut kubeconfig.clusters {
        if let Some(cluster) = &mut named.cluster {
            fix(&mut cluster.certificate_authority);
        }
    }
    for named in &mut kubeconfig.auth_infos {
        if let Some(user) = &mut named.auth_info {
            fix(&mut user.client_certificate);
            fix(&mut user.client_key);
            fix(&mut user.token_file);
            // Exec commands only when they hold a separator (a bare `aws` is a PATH lookup).
            if let Some(exec) = &mut user.exec
                && exec
                    .command
                    .as_deref()
                    .is_some_and(|c| c.contains(std::path::MAIN_SEPARATOR))
            {
                fix(&mut exec.command);
            }
        }
    }
}

/// The current context's cluster (name and entry) and user, as kube selects them
/// (kube-client 5 `config/file_loader.rs`). `None` when kube will refuse the kubeconfig itself.
fn selected(kubeconfig: &Kubeconfig) -> Option<(&str, &kube::config::Cluster, Option<&AuthInfo>)> {
    let current = kubeconfig.current_context.as_ref()?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| &c.name == current)?
        .context
        .as_ref()?;
    let named = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)?;
    let cluster = named.cluster.as_ref()?;
    let user = context.user.as_ref().and_then(|u| {
        kubeconfig
            .auth_infos
            .iter()
            .find(|a| &a.name == u)
            .and_then(|a| a.auth_info.as_ref())
    });
    Some((named.name.as_str(), cluster, user))
}

/// The cluster's `server` must be `https://HOST[:PORT][/path]` (or `http://`): kube-client
/// panics when the scheme is missing, a realistic typo (`server: 127.0.0.1:16443`).
pub fn check_server(cluster: &str, server: Option<&str>) -> Result<(), String> {
    const EXAMPLE: &str = "server: https://127.0.0.1:16443";
    let Some(server) = server else {
        return Err(format!(
            "cluster \"{cluster}\" has no server; write e.g. `{EXAMPLE}`"
        ));
    };
    let shown = server.escape_debug();
    let Some((scheme, rest)) = server.split_once("://") else {
        return Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", which lacks the scheme; write `server: https://{shown}`"
        ));
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", whose scheme is not https (or http); write e.g. `{EXAMPLE}`"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => ("", None),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", which names no host; write e.g. `{EXAMPLE}`"
        ));
    }
    if let Some(port) = port
        && !(port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", whose port is not a number from 1 to 65535; write e.g. `{EXAMPLE}`"
        ));
    }
    match server.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => Ok(()),
        Ok(_) => Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", which is not an absolute URL; write e.g. `{EXAMPLE}`"
        )),
        Err(e) => Err(format!(
            "cluster \"{cluster}\" has server \"{shown}\", which is not a URL ({e}); write e.g. `{EXAMPLE}`"
        )),
    }
}

/// Maps a kube error to what it means for the user (exit 4 for the connection and auth cases).
pub fn classify(server: &str, err: kube::Error) -> ClusterError {
    match err {
        kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized {
            server: server.to_string(),
            reason: status.message,
        },
        kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
            reason: status.message,
        },
        kube::Error::Api(status) => ClusterError::Api(format!(
            "{} ({}): {}",
            status.reason, status.code, status.message
        )),
        kube::Error::HyperError(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        kube::Error::Service(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        other => ClusterError::Api(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_without_scheme_host_or_port_are_refused_saying_what_to_write() {
        for ok in [
            "https://127.0.0.1:16443",
            "https://[::1]:6443",
            "http://localhost",
            "https://api.example.com/prefix",
            "HTTPS://Example:443",
        ] {
            assert_eq!(check_server("c", Some(ok)), Ok(()), "{ok}");
        }
        let err = check_server("microk8s-cluster", Some("127.0.0.1:16443")).unwrap_err();
        assert!(
            err.contains("lacks the scheme")
                && err.contains("`server: https://127.0.0.1:16443`")
                && err.contains("microk8s-cluster"),
            "{err}"
        );
        for bad in [
            "",
            "https://",
            "https://:6443",
            "https://host:",
            "https://host:0",
            "https://host:65536",
            "https://host:12a",
            "ftp://host",
            "https://[::1",
            "https://ho st",
        ] {
            assert!(check_server("c", Some(bad)).is_err(), "{bad}");
        }
        assert!(check_server("c", None).unwrap_err().contains("no server"));
    }

    #[test]
    fn bounded_reads_refuse_devices_fifos_directories_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_kubeconfig_bounded(&fifo, 10).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        let err = read_kubeconfig_bounded(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        assert!(read_kubeconfig_bounded(dir.path(), 10).is_err());
        let big = dir.path().join("big");
        std::fs::write(&big, [b'a'; 11]).unwrap();
        assert!(matches!(
            read_kubeconfig_bounded(&big, 10),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(read_kubeconfig_bounded(&big, 11).unwrap().len(), 11);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert_eq!(read_kubeconfig_bounded(&link, 11).unwrap().len(), 11);
    }

    #[test]
    fn relative_files_are_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1', certificate-authority: ca.crt}\nusers:\n- name: u\n  user: {client-key: /dev/zero}\n",
        )
        .unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            err.contains("certificate-authority")
                && err.contains(&*dir.path().join("ca.crt").to_string_lossy()),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            err.contains("client-key") && err.contains("character device"),
            "{err}"
        );
    }
}
