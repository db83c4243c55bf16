//! Builds a kube client from a kubeconfig file (MicroK8s' `client.config` uses client
//! certificates; rustls verifies the server against the kubeconfig's CA).
//!
//! No kubeconfig can panic or hang the binary: we read it ourselves, bounded, only when it is a
//! regular file (`crate::input::read_bounded_bytes`); we check the selected cluster's `server` URL
//! (kube-client panics on one without a scheme: `base_uri.rs` "Valid Uri"); and we check that
//! each file it names (CA, client certificate and key, token file), which kube reads itself, is
//! a regular file under the same limit, so a FIFO or `/dev/zero` there is an error, not a hang.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::IsTerminal;

use kube::config::{AuthInfo, ExecConfig, ExecInteractiveMode, KubeConfigOptions, Kubeconfig};

use super::ClusterError;
use crate::deadline::on_thread_within;
use crate::input::{Follow, read_bounded_bytes};

/// The most we read of a kubeconfig or of a file it names. Real ones are a few KiB; certificate
/// bundles stay far below this.
pub const KUBECONFIG_LIMIT: u64 = crate::input::MAX_INPUT_BYTES;

/// A connected client and the server it talks to (for messages).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub server: String,
}

impl Cluster {
    /// Awaits one API call, its error [`classify`]d for this server.
    pub async fn ask<T>(
        &self,
        call: impl std::future::Future<Output = kube::Result<T>>,
    ) -> Result<T, ClusterError> {
        call.await.map_err(|e| classify(&self.server, e))
    }
}

/// Reads the kubeconfig at `path` and builds a client. Does not contact the server.
pub async fn connect(path: &Path) -> Result<Cluster, ClusterError> {
    connect_merged(path, &[], None).await
}

/// Where the files a kubeconfig names are read, for one that is itself a host file under a host
/// root other than `/`: a path it names (made absolute) → the local path inside the host root,
/// or why there is none. The caller (which knows the host) provides it; `cluster` reads no
/// host file itself.
pub type Confine<'a> = &'a (dyn Fn(&Path) -> Result<PathBuf, String> + Sync);

/// Reads the kubeconfig at `path`, with the other files of a `KUBECONFIG` list merged after it
/// (the first file to set a value wins, as kubectl merges them), and builds a client. Does not
/// contact the server. With `confine`, the files it names are read inside the host root only,
/// and an exec credential plugin is refused: a host file under a host root is data to read, not
/// a program to run.
pub async fn connect_merged(
    path: &Path,
    others: &[PathBuf],
    confine: Option<Confine<'_>>,
) -> Result<Cluster, ClusterError> {
    let shown = std::iter::once(path)
        .chain(others.iter().map(PathBuf::as_path))
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let unusable = |reason: String| ClusterError::Kubeconfig {
        path: shown.clone(),
        reason,
    };
    let kubeconfig = load_merged(path, others, confine).map_err(unusable)?;
    if confine.is_some() {
        refuse_exec(&kubeconfig).map_err(unusable)?;
    }
    let plugin = exec_plugin(&kubeconfig);
    let interactive = std::io::stdin().is_terminal();
    let deadline = client_deadline(plugin, interactive);
    let plugin = plugin.and_then(|p| p.command.clone());
    let mut kubeconfig = kubeconfig;
    for named in &mut kubeconfig.auth_infos {
        if let Some(exec) = named.auth_info.as_mut().and_then(|u| u.exec.as_mut()) {
            super::exec_shim::wrap(&mut exec.command, &mut exec.args, deadline);
        }
    }
    let built = on_thread_within("kube-client", deadline, move || build(kubeconfig)).await;
    let Some(built) = built else {
        let reason = match plugin {
            Some(command) => format!(
                "its exec credential plugin `{}` did not finish within {}s; run it by hand to see what it waits for (a login?), or use a kubeconfig with a token or client certificate",
                command.escape_debug(),
                deadline.as_secs()
            ),
            None => format!(
                "building the client did not finish within {}s",
                deadline.as_secs()
            ),
        };
        return Err(unusable(reason));
    };
    let (client, server) = built.map_err(unusable)?;
    Ok(Cluster { client, server })
}

/// How long building the client may take. kube runs the kubeconfig's exec credential plugin
/// (`users[].user.exec`) while it builds the client, synchronously and without a time limit
/// (kube-client 5 `client/auth/mod.rs` `auth_exec`: `Command::output()`), so a plugin that
/// never ends (one waiting for a login nobody gives) would hold every command forever, past
/// any `--timeout`.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// How long a plugin that may talk to the user (`interactiveMode` other than `Never`, with a
/// terminal on stdin, which kube then hands to it) may take: a login in a browser or with a
/// device code takes a person minutes, not seconds.
pub const INTERACTIVE_CLIENT_DEADLINE: Duration = Duration::from_secs(300);

/// [`CLIENT_DEADLINE`], or [`INTERACTIVE_CLIENT_DEADLINE`] for a plugin that may ask the person
/// at the terminal (kube treats every mode but `Never` as interactive: `auth_exec`).
fn client_deadline(plugin: Option<&ExecConfig>, stdin_is_terminal: bool) -> Duration {
    let may_ask = plugin.is_some_and(|p| p.interactive_mode != Some(ExecInteractiveMode::Never));
    if may_ask && stdin_is_terminal {
        INTERACTIVE_CLIENT_DEADLINE
    } else {
        CLIENT_DEADLINE
    }
}

/// The client and its server URL, built from a checked kubeconfig (may run its exec plugin).
fn build(kubeconfig: Kubeconfig) -> Result<(kube::Client, String), String> {
    let handle = tokio::runtime::Handle::current();
    let mut config = handle
        .block_on(kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &KubeConfigOptions::default(),
        ))
        .map_err(|e| e.to_string())?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(30));
    let server = config.cluster_url.to_string();
    // kube's own retry of 429/503/504 (`Config::default_retry`: 15 retries, 5 ms doubling) keeps
    // a lasting 503 going past our 70 s bound, so a pod proxy's "connection refused" or an
    // aggregated API that is down came out as a timeout or an unreachable server. Instead, kube's
    // `RetryPolicy::default()` (3 retries, 0.5 s doubling to 5 s; docs.rs/kube `client::retry`)
    // rides out a brief 429/503 and lets a lasting one be reported as what it is. tower's Retry
    // needs a cloneable service: the Buffer.
    config.default_retry = false;
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| plugin_failure(&e).unwrap_or_else(|| e.to_string()))?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(
            kube::client::retry::RetryPolicy::default(),
        ))
        // Every answer bounded in size and time (`bounded`): kube's own stack bounds neither.
        .with_layer(&super::bounded::BoundedLayer)
        .build();
    Ok((client, server))
}

/// What an exec credential plugin's failure means, in a line (kube's own message is the whole
/// command line with its environment and a debug dump of its output).
fn plugin_failure(e: &kube::Error) -> Option<String> {
    use kube::client::AuthError;
    let kube::Error::Auth(e) = e else { return None };
    Some(match e {
        AuthError::AuthExecRun { out, .. } => {
            let said = String::from_utf8_lossy(&out.stderr);
            let said: String = said.trim().chars().take(500).collect();
            let said = said.escape_debug();
            format!("its exec credential plugin failed ({}): {said}", out.status)
        }
        AuthError::AuthExecStart(io) => {
            format!("its exec credential plugin could not be started: {io}")
        }
        AuthError::AuthExecParse(parse) => {
            format!("its exec credential plugin did not print an ExecCredential: {parse}")
        }
        _ => return None,
    })
}

/// The current context's exec plugin.
fn exec_plugin(kubeconfig: &Kubeconfig) -> Option<&ExecConfig> {
    selected(kubeconfig)?.2?.exec.as_ref()
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
fn load_merged(
    path: &Path,
    others: &[PathBuf],
    confine: Option<Confine<'_>>,
) -> Result<Kubeconfig, String> {
    let mut kubeconfig = read_one(path)?;
    if let Some(confine) = confine {
        confine_files(&mut kubeconfig, confine)?;
    }
    for other in others {
        let next = read_one(other).map_err(|e| format!("{}: {e}", other.display()))?;
        kubeconfig = kubeconfig.merge(next).map_err(|e| e.to_string())?;
    }
    check_selected(&kubeconfig)?;
    Ok(kubeconfig)
}

/// One kubeconfig file, read bounded, relative file paths made relative to its directory.
fn read_one(path: &Path) -> Result<Kubeconfig, String> {
    let data =
        read_bounded_bytes(path, KUBECONFIG_LIMIT, Follow::Links).map_err(|e| e.to_string())?;
    let text = String::from_utf8(data).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        absolutize(&mut kubeconfig, dir);
    }
    Ok(kubeconfig)
}

/// The current context's server URL and the files it names, checked so kube can neither panic
/// nor hang on them.
fn check_selected(kubeconfig: &Kubeconfig) -> Result<(), String> {
    if let Some((name, cluster, user)) = selected(kubeconfig) {
        check_server(name, cluster.server.as_deref())?;
        let mut files = vec![("certificate-authority", &cluster.certificate_authority)];
        if let Some(user) = user {
            files.push(("client-certificate", &user.client_certificate));
            files.push(("client-key", &user.client_key));
            files.push(("tokenFile", &user.token_file));
        }
        for (field, file) in files {
            if let Some(file) = file {
                read_bounded_bytes(Path::new(file), KUBECONFIG_LIMIT, Follow::Links)
                    .map_err(|e| format!("its {field}: {e}"))?;
            }
        }
    }
    Ok(())
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

/// Every file `kubeconfig` names, read inside the host root ([`Confine`]).
fn confine_files(kubeconfig: &mut Kubeconfig, confine: Confine<'_>) -> Result<(), String> {
    let fix = |field: &str, file: &mut Option<String>| -> Result<(), String> {
        if let Some(f) = file.as_deref() {
            let local = confine(Path::new(f)).map_err(|e| format!("its {field} {f}: {e}"))?;
            *file = Some(local.to_string_lossy().into_owned());
        }
        Ok(())
    };
    for named in &mut kubeconfig.clusters {
        if let Some(cluster) = &mut named.cluster {
            fix("certificate-authority", &mut cluster.certificate_authority)?;
        }
    }
    for named in &mut kubeconfig.auth_infos {
        if let Some(user) = &mut named.auth_info {
            fix("client-certificate", &mut user.client_certificate)?;
            fix("client-key", &mut user.client_key)?;
            fix("tokenFile", &mut user.token_file)?;
        }
    }
    Ok(())
}

/// A host file's exec credential plugin (or auth provider, which can run a command too) is
/// not run: see [`connect_merged`].
fn refuse_exec(kubeconfig: &Kubeconfig) -> Result<(), String> {
    if let Some((_, _, Some(user))) = selected(kubeconfig) {
        if let Some(exec) = &user.exec {
            return Err(format!(
                "it names an exec credential plugin (`{}`), and cadvisor-setup does not run programs named by files under --host-root; pass a kubeconfig with --kubeconfig",
                exec.command.as_deref().unwrap_or_default().escape_debug()
            ));
        }
        if user.auth_provider.is_some() {
            return Err("it names an auth-provider, which may run a command, and cadvisor-setup does not run programs named by files under --host-root; pass a kubeconfig with --kubeconfig".to_string());
        }
    }
    Ok(())
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
        kube::Error::Api(status) if status.code == 403 => {
            match terminating_namespace(&status.message) {
                Some(namespace) => ClusterError::NamespaceTerminating { namespace },
                None => ClusterError::Forbidden {
                    reason: status.message,
                },
            }
        }
        kube::Error::Api(status) => ClusterError::Api(format!(
            "{} ({}): {}",
            status.reason, status.code, status.message
        )),
        kube::Error::HyperError(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        // An answer that is not JSON at all (a web page): the kubeconfig's server is something
        // else than an API server (a wrong port, an ingress, a dashboard).
        kube::Error::SerdeError(e) => ClusterError::Misbehaving {
            server: server.to_string(),
            reason: format!("its answer is not Kubernetes JSON ({e})"),
        },
        kube::Error::Service(e) if super::bounded::oversized(e.as_ref()) => {
            ClusterError::Misbehaving {
                server: server.to_string(),
                reason: e.to_string(),
            }
        }
        kube::Error::Service(e) => ClusterError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        },
        other => ClusterError::Api(other.to_string()),
    }
}

/// The namespace a 403 of the NamespaceLifecycle admission plugin names: "... is forbidden:
/// unable to create new content in namespace NS because it is being terminated"
/// (kubernetes/apiserver: pkg/admission/plugin/namespace/lifecycle/admission.go).
fn terminating_namespace(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("unable to create new content in namespace ")?;
    let (namespace, _) = rest.split_once(" because it is being terminated")?;
    (!namespace.is_empty() && !namespace.contains(' ')).then(|| namespace.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_is_not_json_is_a_misbehaving_server_not_an_unexpected_error() {
        let not_json = serde_json::from_str::<serde_json::Value>("<html>nginx</html>").unwrap_err();
        let e = classify("https://k:443", kube::Error::SerdeError(not_json));
        assert!(matches!(e, ClusterError::Misbehaving { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("not Kubernetes JSON") && text.contains("kubeconfig's server"),
            "{text}"
        );
    }

    #[test]
    fn a_403_for_a_terminating_namespace_is_not_a_permission_problem() {
        let status = |message: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure(message, "Forbidden").with_code(403),
            ))
        };
        let e = classify(
            "https://k",
            status(
                "serviceaccounts \"cadvisor\" is forbidden: unable to create new content in namespace cadvisor because it is being terminated",
            ),
        );
        assert!(
            matches!(&e, ClusterError::NamespaceTerminating { namespace } if namespace == "cadvisor"),
            "{e:?}"
        );
        let e = classify(
            "https://k",
            status("daemonsets.apps is forbidden: User \"x\" cannot create"),
        );
        assert!(matches!(e, ClusterError::Forbidden { .. }), "{e:?}");
    }

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

    /// kube runs an exec plugin synchronously, without a limit, while it builds the client:
    /// `verify --timeout 5s` with a plugin that never ends hung forever.
    #[tokio::test]
    async fn an_exec_plugin_that_never_ends_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: sleep, args: ['100000'], interactiveMode: Never}\n",
        )
        .unwrap();
        tokio::time::pause();
        let err = match connect(&path).await {
            Ok(_) => panic!("a plugin that never ends built a client"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("its exec credential plugin `sleep` did not finish within 60s"),
            "{err}"
        );
    }

    #[test]
    fn a_plugin_that_may_ask_the_person_at_the_terminal_gets_minutes() {
        let plugin = |mode| {
            ExecConfig {
            interactive_mode: mode,
            ..serde_json::from_value(serde_json::json!({"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin"})).unwrap()
        }
        };
        let never = plugin(Some(ExecInteractiveMode::Never));
        let if_available = plugin(Some(ExecInteractiveMode::IfAvailable));
        let unset = plugin(None);
        assert_eq!(client_deadline(None, true), CLIENT_DEADLINE);
        assert_eq!(client_deadline(Some(&never), true), CLIENT_DEADLINE);
        assert_eq!(client_deadline(Some(&if_available), false), CLIENT_DEADLINE);
        assert_eq!(
            client_deadline(Some(&if_available), true),
            INTERACTIVE_CLIENT_DEADLINE
        );
        assert_eq!(
            client_deadline(Some(&unset), true),
            INTERACTIVE_CLIENT_DEADLINE
        );
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
        let err = load_merged(&path, &[], None).unwrap_err();
        assert!(
            err.contains("certificate-authority")
                && err.contains(&*dir.path().join("ca.crt").to_string_lossy()),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
        let err = load_merged(&path, &[], None).unwrap_err();
        assert!(
            err.contains("client-key") && err.contains("character device"),
            "{err}"
        );
    }

    #[test]
    fn a_kubeconfig_list_is_merged_and_the_first_to_set_a_value_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a");
        let second = dir.path().join("b");
        // The first file names the context; the second holds its cluster and user, as split
        // kubeconfigs commonly are (one file per cluster, one with the current context).
        std::fs::write(&first, "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n").unwrap();
        std::fs::write(&second, "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443'}\nusers:\n- name: u\n  user: {token: abc}\n").unwrap();
        let merged = load_merged(&first, std::slice::from_ref(&second), None).unwrap();
        assert_eq!(merged.current_context.as_deref(), Some("c"));
        assert_eq!(
            merged.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_deref()),
            Some("https://127.0.0.1:6443")
        );
        // Alone, the first file names a cluster it does not have: nothing to check, and kube
        // would then say the context is incomplete; merged, its server is checked.
        std::fs::write(&second, "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: '127.0.0.1:6443'}\n").unwrap();
        let err = load_merged(&first, std::slice::from_ref(&second), None).unwrap_err();
        assert!(err.contains("https://127.0.0.1:6443"), "{err}");
    }
}
