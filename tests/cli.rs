//! The real binary, run as a user would: exit codes, stdout/stderr, JSON documents.
//! One module per command.

mod support;

mod verify {
    //! `verify --metrics-file` and `--metrics-url`: files, stdin, gzip, and a real HTTP server
    //! on 127.0.0.1 (axum) answering plain, gzip-encoded and chunked responses.

    use std::io::Write;
    use std::net::SocketAddr;
    use std::process::Output;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use assert_cmd::Command;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    /// A labelled scrape as cAdvisor writes it with the containerd factory registered: the
    /// user's loki-gateway pod with its nginx container, and the union effect's empty values.
    const LABELLED: &str = concat!(
        "# HELP container_memory_working_set_bytes Current working set in bytes.\n",
        "# TYPE container_memory_working_set_bytes gauge\n",
        r#"container_memory_working_set_bytes{container_label_io_kubernetes_container_name="nginx",container_label_io_kubernetes_pod_name="loki-gateway-66c8f46897-2m445",container_label_io_kubernetes_pod_namespace="loki",id="/kubepods/besteffort/pod1f/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",image="docker.io/library/nginx:1.27",name="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"} 1.2345e+07 1784000000000"#,
        "\n",
        r#"container_memory_working_set_bytes{container_label_io_kubernetes_container_name="",container_label_io_kubernetes_pod_name="",container_label_io_kubernetes_pod_namespace="",id="/",image="",name=""} 1.1e+09 1784000000000"#,
        "\n",
    );

    /// The same cAdvisor without containerd: `id`-only series.
    const ID_ONLY: &str = concat!(
        "# TYPE container_cpu_usage_seconds_total counter\n",
        r#"container_cpu_usage_seconds_total{cpu="total",id="/",image="",name=""} 1234.5 1784000000000"#,
        "\n",
        r#"container_cpu_usage_seconds_total{cpu="total",id="/kubepods/besteffort/pod1f/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",image="",name=""} 3.25 1784000000000"#,
        "\n",
    );

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn cmd() -> Command {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("cadvisor-setup");
        for var in [
            "CADVISOR_SETUP_OUTPUT",
            "CADVISOR_SETUP_TIMEOUT",
            "CADVISOR_SETUP_HOST_ROOT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1");
        cmd
    }

    fn file_with(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// stdout must be exactly one JSON document.
    fn json(out: &Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}",
                text(&out.stdout)
            )
        })
    }

    #[test]
    fn a_labelled_file_passes_and_names_the_pod() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(&dir, "metrics.txt", LABELLED.as_bytes());
        let out = cmd()
            .args(["verify", "--metrics-file", &path])
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("PASS"), "{stdout}");
        assert!(
            stdout.contains("loki/loki-gateway-66c8f46897-2m445 (nginx)"),
            "{stdout}"
        );
    }

    #[test]
    fn an_id_only_file_fails_with_exit_6_and_the_diagnosis() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(&dir, "metrics.txt", ID_ONLY.as_bytes());
        let out = cmd()
            .args(["verify", "--metrics-file", &path])
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(6), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("FAIL"), "{stdout}");
        assert!(
            stdout.contains("cAdvisor cannot reach containerd")
                && stdout.contains("cadvisor-setup detect"),
            "{stdout}"
        );
    }

    #[test]
    fn a_gzip_file_is_recognised_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(&dir, "metrics.txt", &gzip(LABELLED.as_bytes()));
        let out = cmd()
            .args(["verify", "--metrics-file", &path, "-o", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let doc = json(&out);
        assert_eq!(doc["scan"]["gzip"], true);
        assert_eq!(doc["scan"]["labelled_series"], 1);
        assert_eq!(doc["source"]["kind"], "file");
    }

    #[test]
    fn stdin_is_read_with_a_dash() {
        let out = cmd()
            .args(["verify", "--metrics-file", "-", "-o", "json"])
            .write_stdin(ID_ONLY)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
        let doc = json(&out);
        assert_eq!(doc["source"]["kind"], "stdin");
        assert_eq!(doc["scan"]["id_only_series"], 2);
    }

    #[test]
    fn json_output_is_one_document_with_the_contract_fields() {
        let out = cmd()
            .args(["-o", "json", "verify", "--metrics-file", "-"])
            .write_stdin(LABELLED)
            .output()
            .unwrap();
        let doc = json(&out);
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["changed"], false);
        assert_eq!(doc["exit_code"], 0);
        assert_eq!(doc["verdict"], "labelled");
        assert_eq!(doc["scan"]["series"], 2);
        assert_eq!(
            doc["scan"]["pods"][0],
            serde_json::json!({"namespace": "loki", "pod": "loki-gateway-66c8f46897-2m445", "containers": ["nginx"]})
        );
        let failed = cmd()
            .args(["-o", "json", "verify", "--metrics-file", "-"])
            .write_stdin(ID_ONLY)
            .output()
            .unwrap();
        let doc = json(&failed);
        assert_eq!(
            (doc["ok"].clone(), doc["exit_code"].clone()),
            (false.into(), 6.into())
        );
        assert!(
            doc["diagnosis"]
                .as_str()
                .unwrap()
                .contains("cannot reach containerd")
        );
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let out = cmd()
            .args(["verify", "--metrics-file", "/nonexistent/metrics.txt"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("/nonexistent/metrics.txt") && stderr.contains("no such file"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }

    // ---- streams that never end, and what is not a file ----------------------------------

    /// Runs `cadvisor-setup args` with `stdin`, killing it after `limit` (so a hang fails the
    /// test rather than CI): exit code (`None` when killed), stderr, elapsed.
    fn run_with_stdin(
        args: &[&str],
        stdin: std::process::Stdio,
        limit: std::time::Duration,
    ) -> (Option<i32>, String, std::time::Duration) {
        use std::io::Read;
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cadvisor-setup"))
            .args(args)
            .env_remove("CADVISOR_SETUP_OUTPUT")
            .env_remove("CADVISOR_SETUP_TIMEOUT")
            .env("NO_COLOR", "1")
            .stdin(stdin)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if started.elapsed() > limit {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (code, stderr, started.elapsed())
    }

    const LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

    /// A FIFO nobody writes to: opening it would block forever; `--timeout` ends the wait with
    /// exit 1 and a message, and the process exits although its reading thread is still blocked.
    #[test]
    fn a_fifo_without_a_writer_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("metrics.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let (code, stderr, elapsed) = run_with_stdin(
            &[
                "verify",
                "--metrics-file",
                fifo.to_str().unwrap(),
                "--timeout",
                "1s",
            ],
            std::process::Stdio::null(),
            LIMIT,
        );
        assert_eq!(code, Some(1), "killed after {elapsed:?}? {stderr}");
        assert!(stderr.contains("timed out after 1s"), "{stderr}");
        assert!(stderr.contains("metrics.fifo"), "{stderr}");
        assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
    }

    /// A FIFO with a writer is a stream like stdin: read to its end.
    #[test]
    fn a_fifo_with_a_writer_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("metrics.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let writer_path = fifo.clone();
        let writer = std::thread::spawn(move || {
            // Blocks until the binary opens the FIFO for reading.
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&writer_path)
                .unwrap();
            w.write_all(LABELLED.as_bytes()).unwrap();
        });
        let (code, stderr, _) = run_with_stdin(
            &[
                "verify",
                "--metrics-file",
                fifo.to_str().unwrap(),
                "--timeout",
                "20s",
            ],
            std::process::Stdio::null(),
            LIMIT,
        );
        writer.join().unwrap();
        assert_eq!(code, Some(0), "{stderr}");
    }

    /// stdin held open by a writer that never finishes, and stdin from `/dev/zero` (endless):
    /// both end at `--timeout` with exit 1 (old code: `--timeout` was ignored for files and
    /// stdin, and both ran forever).
    #[test]
    fn stdin_that_never_ends_times_out() {
        let (tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let (code, stderr, elapsed) = run_with_stdin(
            &["verify", "--metrics-file", "-", "--timeout", "1s"],
            std::process::Stdio::from(std::os::fd::OwnedFd::from(rx)),
            LIMIT,
        );
        drop(tx);
        assert_eq!(code, Some(1), "killed after {elapsed:?}? {stderr}");
        assert!(
            stderr.contains("--metrics-file stdin timed out after 1s"),
            "{stderr}"
        );
        assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");

        let zero = std::fs::File::open("/dev/zero").unwrap();
        let (code, stderr, elapsed) = run_with_stdin(
            &["verify", "--metrics-file", "-", "--timeout", "2s"],
            std::process::Stdio::from(zero),
            LIMIT,
        );
        assert_eq!(code, Some(1), "killed after {elapsed:?}? {stderr}");
        assert!(stderr.contains("timed out after 2s"), "{stderr}");
    }

    /// A device or a directory is not a metrics file: exit 2 at once, saying what it is (old
    /// code: `/dev/zero` was read forever).
    #[test]
    fn a_device_or_a_directory_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        for (path, what) in [
            ("/dev/zero", "is a character device, not a file or a FIFO"),
            (dir.path().to_str().unwrap(), "is a directory"),
        ] {
            let (code, stderr, elapsed) = run_with_stdin(
                &["verify", "--metrics-file", path],
                std::process::Stdio::null(),
                LIMIT,
            );
            assert_eq!(code, Some(2), "{path}: {stderr}");
            assert!(stderr.contains(what), "{stderr}");
            assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
        }
    }

    // ---- URLs -----------------------------------------------------------------------------

    /// Whether the last request to `/metrics` asked for gzip.
    #[derive(Clone, Default)]
    struct Seen {
        asked_gzip: Arc<AtomicBool>,
    }

    /// `/metrics` answers like promhttp: gzip when asked, as a chunked stream;
    /// `/plain` never compresses; `/id-only`; everything else is 404.
    async fn serve() -> (SocketAddr, Seen) {
        let seen = Seen::default();
        let state = seen.clone();
        let app = Router::new()
            .route(
                "/metrics",
                get(move |headers: HeaderMap| {
                    let state = state.clone();
                    async move {
                        let wants_gzip = headers
                            .get(header::ACCEPT_ENCODING)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.contains("gzip"));
                        state.asked_gzip.store(wants_gzip, Ordering::SeqCst);
                        let body = if wants_gzip {
                            gzip(LABELLED.as_bytes())
                        } else {
                            LABELLED.as_bytes().to_vec()
                        };
                        // Small chunks without a Content-Length: chunked transfer encoding.
                        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                            body.chunks(17).map(|c| Ok(c.to_vec())).collect();
                        let mut response =
                            Response::new(Body::from_stream(futures::stream::iter(chunks)));
                        let headers = response.headers_mut();
                        headers.insert(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
                                .parse()
                                .unwrap(),
                        );
                        if wants_gzip {
                            headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                        }
                        response
                    }
                }),
            )
            .route("/plain", get(|| async { LABELLED }))
            .route(
                "/moved",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/metrics")]) }),
            )
            .route(
                "/twice",
                get(|| async {
                    (
                        StatusCode::MOVED_PERMANENTLY,
                        [(header::LOCATION, "/moved")],
                    )
                }),
            )
            .route("/id-only", get(|| async { ID_ONLY }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found").into_response() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, seen)
    }

    /// Runs the binary off the async runtime so the server keeps answering.
    async fn run(args: Vec<String>) -> Output {
        tokio::task::spawn_blocking(move || cmd().args(&args).output().unwrap())
            .await
            .unwrap()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_url_is_fetched_with_gzip_and_chunked_encoding() {
        let (addr, seen) = serve().await;
        let url = format!("http://{addr}/metrics");
        let out = run(args(&["verify", "--metrics-url", &url, "-o", "json"])).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            seen.asked_gzip.load(Ordering::SeqCst),
            "verify must send Accept-Encoding: gzip"
        );
        let doc = json(&out);
        assert_eq!(doc["scan"]["gzip"], true);
        assert_eq!(doc["scan"]["labelled_series"], 1);
        assert_eq!(
            doc["source"],
            serde_json::json!({"kind": "url", "location": url})
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_url_without_gzip_and_an_id_only_url() {
        let (addr, _) = serve().await;
        let out = run(args(&[
            "verify",
            "--metrics-url",
            &format!("http://{addr}/plain"),
            "-o",
            "json",
        ]))
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(json(&out)["scan"]["gzip"], false);

        let out = run(args(&[
            "verify",
            "--metrics-url",
            &format!("http://{addr}/id-only"),
        ]))
        .await;
        assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("cannot reach containerd"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_path_or_a_dead_endpoint_is_exit_1_naming_the_url() {
        let (addr, _) = serve().await;
        let url = format!("http://{addr}/nope");
        let out = run(args(&["verify", "--metrics-url", &url])).await;
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&url) && stderr.contains("404"), "{stderr}");

        // A port nobody listens on: bind one, then free it.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = format!("http://{free}/metrics");
        let out = run(args(&["verify", "--metrics-url", &url, "-o", "json"])).await;
        assert_eq!(out.status.code(), Some(1));
        let doc = json(&out);
        assert_eq!(doc["exit_code"], 1);
        assert!(doc["error"].as_str().unwrap().contains(&url), "{doc}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_endpoint_times_out() {
        // Accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let url = format!("http://{addr}/metrics");
        let started = std::time::Instant::now();
        let out = run(args(&[
            "verify",
            "--metrics-url",
            &url,
            "--timeout",
            "500ms",
        ]))
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("--timeout"),
            "{}",
            text(&out.stderr)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_redirect_is_followed_and_a_second_is_exit_1() {
        let (addr, seen) = serve().await;
        let out = run(args(&[
            "verify",
            "--metrics-url",
            &format!("http://{addr}/moved"),
            "-o",
            "json",
        ]))
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            seen.asked_gzip.load(Ordering::SeqCst),
            "the redirect asks for gzip too"
        );
        assert_eq!(json(&out)["scan"]["labelled_series"], 1);

        let url = format!("http://{addr}/twice");
        let out = run(args(&["verify", "--metrics-url", &url])).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("redirected more than 1"), "{stderr}");
        assert!(stderr.contains(&url), "{stderr}");
    }

    /// `/metrics` over TLS, with the fake API server's test PKI (its server certificate names
    /// 127.0.0.1), answered by plain hyper.
    async fn serve_tls() -> (SocketAddr, String) {
        let pki = super::support::fake_api::tls::Pki::generate();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(hyper::body::Bytes::from(LABELLED)),
                        ))
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (addr, pki.ca_pem)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_is_verified_against_the_trusted_roots() {
        let (addr, ca_pem) = serve_tls().await;
        let url = format!("https://127.0.0.1:{}/metrics", addr.port());
        // Not trusted: exit 1 naming the URL and the certificate problem.
        let out = run(args(&["verify", "--metrics-url", &url])).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&url) && stderr.contains("certificate"),
            "{stderr}"
        );

        // Trusted through SSL_CERT_FILE (rustls-native-certs reads it): labelled.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let out = tokio::task::spawn_blocking(move || {
            cmd()
                .env("SSL_CERT_FILE", &ca)
                .args(["verify", "--metrics-url", &url, "-o", "json"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(json(&out)["scan"]["labelled_series"], 1);
    }
}

mod safety {
    //! No input panics the binary (exit 101), hangs it, writes where it must not, or reaches the
    //! terminal as escape sequences: kubeconfigs, `--timeout`, `--out-dir`, host files, metrics.

    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::process::Output;
    use std::time::Duration;

    use assert_cmd::Command;

    use crate::support::host_root::HostRootDir;

    /// Larger than any `Instant` can hold: `parse_duration` accepts it (plain seconds).
    const HUGE_TIMEOUT: &str = "18446744073709551615";

    /// The binary with a clean environment and a short process timeout, so a hang fails.
    fn cmd() -> Command {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("cadvisor-setup");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(30));
        cmd
    }

    fn text(out: &Output) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Output that cannot be written (`render > FILE` on a full disk: /dev/full) is not a
    /// success: exit 1 saying so, for every format, instead of exit 0 and a cut file.
    #[test]
    fn output_that_cannot_be_written_is_an_error_not_a_success() {
        for args in [
            &["render", "--distro", "microk8s"][..],
            &["render", "--distro", "microk8s", "-o", "json"],
            &["completions", "bash"],
        ] {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full");
            let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("cadvisor-setup"))
                .env_clear()
                .env("NO_COLOR", "1")
                .args(args)
                .stdout(full)
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("could not write the output to stdout")
                    && err.contains("No space left on device"),
                "{args:?}: {err}"
            );
        }
    }

    fn assert_exit_saying(out: &Output, code: i32, needles: &[&str]) {
        assert_eq!(out.status.code(), Some(code), "{}", text(out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                text(out)
            );
        }
        assert!(!stderr.contains("panicked"), "{}", text(out));
    }

    /// Every switch's environment variable takes the same words (true/false, 1/0, yes/no,
    /// on/off) and refuses anything else with exit 2 saying what it takes.
    #[test]
    fn switch_variables_take_the_same_words_and_refuse_others() {
        let render = |var: &str, value: &str| {
            cmd()
                .args(["render", "--distro", "microk8s"])
                .env(var, value)
                .output()
                .unwrap()
        };
        for on in ["1", "yes", "on", "TRUE"] {
            let out = render("CADVISOR_SETUP_PRIVILEGED", on);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("/dev/kmsg"),
                "{on}"
            );
        }
        for off in ["0", "no", "off", "false"] {
            let out = render("CADVISOR_SETUP_PRIVILEGED", off);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains("/dev/kmsg"),
                "{off}"
            );
        }
        for var in [
            "CADVISOR_SETUP_YES",
            "CADVISOR_SETUP_DRY_RUN",
            "CADVISOR_SETUP_FORCE",
            "CADVISOR_SETUP_NO_VERIFY",
            "CADVISOR_SETUP_PRIVILEGED",
            "CADVISOR_SETUP_LABEL_NODES",
        ] {
            let out = cmd().arg("install").env(var, "maybe").output().unwrap();
            assert_exit_saying(
                &out,
                2,
                &[
                    "invalid value 'maybe'",
                    "expected true or false (or 1/0, yes/no, on/off)",
                ],
            );
        }
        // A switch given as 1 is on: install --yes without a kubeconfig gets past the
        // "no terminal to confirm" refusal.
        let out = cmd()
            .arg("install")
            .env("CADVISOR_SETUP_YES", "1")
            .env("CADVISOR_SETUP_HOST_ROOT", "/nonexistent-root")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("invalid value") && !stderr.contains("pass --yes"),
            "{}",
            text(&out)
        );
    }

    /// A flag that conflicts with one set through its environment variable: clap names only
    /// the flag, so the message adds where it came from (human and JSON); when both were
    /// typed, nothing is added.
    #[test]
    fn a_conflict_with_a_flag_from_the_environment_says_so() {
        let note = "--cluster comes from CADVISOR_SETUP_CLUSTER in the environment";
        let out = cmd()
            .args(["detect", "--no-cluster"])
            .env("CADVISOR_SETUP_CLUSTER", "1")
            .output()
            .unwrap();
        assert_exit_saying(
            &out,
            2,
            &["cannot be used with '--cluster'", note, "unset it"],
        );
        let out = cmd()
            .args(["detect", "--no-cluster", "-o", "json"])
            .env("CADVISOR_SETUP_CLUSTER", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON");
        assert!(
            report["message"].as_str().is_some_and(|m| m.contains(note)),
            "{report:#}"
        );
        let out = cmd()
            .args(["detect", "--no-cluster", "--cluster"])
            .env("CADVISOR_SETUP_CLUSTER", "1")
            .output()
            .unwrap();
        assert_exit_saying(&out, 2, &["cannot be used with"]);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("comes from"),
            "{}",
            text(&out)
        );
    }

    /// A kubeconfig whose server is a web server answering 404 pages to everything (a wrong
    /// port): uninstall must not conclude "nothing to delete" (exit 0) from 404s for kinds every
    /// API server serves; it says the server is not an API server (exit 4).
    #[test]
    fn uninstall_against_a_web_server_is_not_nothing_to_delete() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let body = "<html><body>404 Not Found</body></html>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("config");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\nusers:\n- name: u\n  user: {{token: t}}\n"
            ),
        )
        .unwrap();
        let out = cmd()
            .args([
                "uninstall",
                "--yes",
                "-o",
                "json",
                "--timeout",
                "10s",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(!text(&out).contains("nothing to delete"), "{}", text(&out));
        assert!(
            text(&out).contains("answered as no real one does"),
            "{}",
            text(&out)
        );
    }

    /// Credentials in a URL are refused before any I/O and never echoed (a terminal or a CI
    /// log would keep the password).
    #[test]
    fn credentials_in_a_url_are_refused_without_echoing_them() {
        for flag in ["--metrics-url", "--prometheus"] {
            let out = cmd()
                .args([
                    "verify",
                    flag,
                    "http://admin:s3cret@127.0.0.1:1/x",
                    "--timeout",
                    "3s",
                ])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out));
            assert!(!text(&out).contains("s3cret"), "{flag}: {}", text(&out));
            let out = cmd()
                .args([
                    "verify",
                    flag,
                    "http://admin:s3cret@127.0.0.1:1/x",
                    "-o",
                    "json",
                ])
                .output()
                .unwrap();
            assert!(!text(&out).contains("s3cret"), "{flag}: {}", text(&out));
        }
    }

    /// An environment variable exported empty (or wrong) for a flag that takes a value: clap
    /// says "a value is required for '--output'", so the message adds where it came from.
    #[test]
    fn an_empty_or_bad_value_from_the_environment_names_the_variable() {
        for (var, value, flag) in [
            ("CADVISOR_SETUP_OUTPUT", "", "--output"),
            ("CADVISOR_SETUP_KUBECONFIG", "", "--kubeconfig"),
            ("CADVISOR_SETUP_OUTPUT", "yaml", "--output"),
        ] {
            let out = cmd()
                .args(["render", "--distro", "microk8s"])
                .env(var, value)
                .output()
                .unwrap();
            assert_exit_saying(
                &out,
                2,
                &[
                    &format!("{flag} comes from {var} in the environment"),
                    "unset it",
                ],
            );
        }
    }

    /// A kubeconfig with one context; `cluster` and `user` are the YAML flow mappings.
    fn kubeconfig(dir: &Path, cluster: &str, user: &str) -> std::path::PathBuf {
        let path = dir.join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: microk8s-cluster, user: admin}}\nclusters:\n- name: microk8s-cluster\n  cluster: {cluster}\nusers:\n- name: admin\n  user: {user}\n"
            ),
        )
        .unwrap();
        path
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_server_without_scheme_is_exit_4_saying_what_to_write_in_every_command() {
        let dir = tempfile::tempdir().unwrap();
        let config = kubeconfig(
            dir.path(),
            "{server: '127.0.0.1:16443', insecure-skip-tls-verify: true}",
            "{token: abc}",
        );
        let empty_root = tempfile::tempdir().unwrap();
        for args in [vec!["status"], vec!["verify"], vec!["uninstall", "--yes"]] {
            let out = cmd()
                .arg("--kubeconfig")
                .arg(&config)
                .arg("--host-root")
                .arg(empty_root.path())
                .args(&args)
                .output()
                .unwrap();
            assert_exit_saying(
                &out,
                4,
                &[
                    "lacks the scheme",
                    "server: https://127.0.0.1:16443",
                    &config.display().to_string(),
                ],
            );
        }
    }

    #[test]
    fn a_fifo_as_kubeconfig_is_exit_2_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config");
        mkfifo(&fifo);
        let out = cmd()
            .arg("--kubeconfig")
            .arg(&fifo)
            .arg("status")
            .output()
            .unwrap();
        assert_exit_saying(
            &out,
            2,
            &["not a regular file", &fifo.display().to_string()],
        );
    }

    #[test]
    fn a_fifo_or_device_named_by_the_kubeconfig_is_exit_4_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        // Relative to the kubeconfig's directory, as kubectl resolves it.
        mkfifo(&dir.path().join("ca.crt"));
        let config = kubeconfig(
            dir.path(),
            "{server: 'https://127.0.0.1:16443', certificate-authority: ca.crt}",
            "{token: abc}",
        );
        let out = cmd()
            .arg("--kubeconfig")
            .arg(&config)
            .arg("status")
            .output()
            .unwrap();
        let ca = dir.path().join("ca.crt").display().to_string();
        assert_exit_saying(&out, 4, &["certificate-authority", "a FIFO", &ca]);

        for field in ["client-key", "tokenFile"] {
            let config = kubeconfig(
                dir.path(),
                "{server: 'https://127.0.0.1:16443', insecure-skip-tls-verify: true}",
                &format!("{{client-certificate-data: eA==, {field}: /dev/zero}}"),
            );
            let out = cmd()
                .arg("--kubeconfig")
                .arg(&config)
                .arg("status")
                .output()
                .unwrap();
            assert_exit_saying(&out, 4, &[field, "/dev/zero", "character device"]);
        }
    }

    #[test]
    fn a_huge_timeout_does_not_overflow_verify() {
        let dir = tempfile::tempdir().unwrap();
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let config = kubeconfig(
            dir.path(),
            "{server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}",
            "{token: abc}",
        );
        let out = cmd()
            .arg("--kubeconfig")
            .arg(&config)
            .args(["verify", "--timeout", HUGE_TIMEOUT])
            .output()
            .unwrap();
        assert_exit_saying(&out, 4, &["cannot reach the API server"]);
    }

    #[test]
    fn render_refuses_a_symlink_in_the_out_dir_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("out");
        std::fs::create_dir(&out_dir).unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = out_dir.join("kustomization.yaml");
        symlink(&victim, &link).unwrap();
        let out = cmd()
            .args(["render", "--distro", "microk8s", "--out-dir"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert_exit_saying(&out, 2, &[&link.display().to_string(), "symlink"]);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn render_replaces_its_own_files_on_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("out");
        for _ in 0..2 {
            let out = cmd()
                .args(["render", "--distro", "microk8s", "--out-dir"])
                .arg(&out_dir)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
        let mut names: Vec<String> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "no temporary file is left: {names:?}"
        );
        assert!(
            names.contains(&"kustomization.yaml".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn nan_infinite_and_unrepresentable_quantities_are_usage_errors() {
        for (flag, value, why) in [
            ("--cpu-limit", "0e400", "greater than zero"),
            ("--cpu-request", "1e99999", "too large"),
            ("--memory-limit", "1e99999", "too large"),
            ("--memory-request", "0.5", "whole number of bytes"),
        ] {
            let out = cmd()
                .args(["render", "--distro", "microk8s", flag, value])
                .output()
                .unwrap();
            assert_exit_saying(&out, 2, &[flag, why]);
            assert!(out.stdout.is_empty(), "nothing rendered: {}", text(&out));
        }
        // Exactly equal in integer units (1.5 CPU = 1500m) is not "request above limit".
        let out = cmd()
            .args([
                "render",
                "--distro",
                "microk8s",
                "--cpu-request",
                "1500m",
                "--cpu-limit",
                "1.5",
                "--memory-request",
                "1Ki",
                "--memory-limit",
                "1024",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = cmd()
            .args([
                "render",
                "--distro",
                "microk8s",
                "--cpu-request",
                "1001m",
                "--cpu-limit",
                "1",
            ])
            .output()
            .unwrap();
        assert_exit_saying(&out, 2, &["--cpu-request", "above the CPU limit"]);
    }

    #[test]
    fn detect_shows_escape_sequences_from_snap_yaml_as_text() {
        let root = HostRootDir::new();
        // YAML double-quoted escapes: \e is ESC, \a is BEL.
        root.microk8s(r#""v1.33\e]0;pwned\a\e[2J""#, "classic", "8000");
        let out = cmd()
            .arg("--host-root")
            .arg(root.path())
            .args(["detect", "--no-cluster"])
            .output()
            .unwrap();
        assert_no_terminal_controls(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(r"v1.33\x1b]0;pwned\x07\x1b[2J"),
            "the version is shown, escaped:\n{}",
            text(&out)
        );
    }

    /// Neither ESC nor BEL from the input reached stdout or stderr (NO_COLOR: we print none).
    fn assert_no_terminal_controls(out: &std::process::Output) {
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        for (byte, name) in [(0x1b, "ESC"), (0x07, "BEL")] {
            assert!(
                !all.contains(&byte),
                "{name} reached the terminal:\n{}",
                text(out)
            );
        }
    }

    #[test]
    fn verify_shows_escape_sequences_from_a_pod_name_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics.txt");
        std::fs::write(
            &metrics,
            "container_memory_working_set_bytes{container_label_io_kubernetes_container_name=\"c\",container_label_io_kubernetes_pod_name=\"evil\x1b]0;pwned\x07\x1b[2J\",container_label_io_kubernetes_pod_namespace=\"ns\",id=\"/kubepods/pod1/abc\",image=\"i\",name=\"abc\"} 1\n",
        )
        .unwrap();
        let out = cmd()
            .arg("verify")
            .arg("--metrics-file")
            .arg(&metrics)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_no_terminal_controls(&out);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(r"ns/evil\x1b]0;pwned\x07\x1b[2J"),
            "{}",
            text(&out)
        );
    }
}

mod usage {
    //! Every usage error is exit 2 before anything is probed or contacted: the fake API server
    //! (whose kubeconfig every run gets) must not see a single request.

    use std::path::Path;
    use std::process::Output;
    use std::time::Duration;

    use crate::support::fake_api::{FakeCluster, FakeClusterConfig};

    fn run(cluster: &FakeCluster, host_root: &Path, args: &[&str]) -> Output {
        assert_cmd::Command::from_std({
            let mut cmd =
                std::process::Command::new(assert_cmd::cargo::cargo_bin("cadvisor-setup"));
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("NO_COLOR", "1")
                .arg("--host-root")
                .arg(host_root)
                .arg("--kubeconfig")
                .arg(cluster.kubeconfig_path())
                .args(args);
            cmd
        })
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
    }

    fn text(out: &Output) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Exit 2 naming `needle`, and no request reached the API server.
    fn refused(cluster: &FakeCluster, host_root: &Path, args: &[&str], needle: &str) {
        cluster.clear_requests();
        let out = run(cluster, host_root, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(needle),
            "{args:?}: lacks {needle:?}\n{}",
            text(&out)
        );
        let requests: Vec<String> = cluster
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            requests.is_empty(),
            "{args:?} contacted the API server before refusing: {requests:?}"
        );
    }

    #[test]
    fn bad_values_are_exit_2_before_the_api_server_is_contacted() {
        let cluster = FakeCluster::start(FakeClusterConfig::default());
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        for (args, needle) in [
            (
                &["install", "--yes", "--cpu-limit", "xyz"][..],
                "--cpu-limit",
            ),
            (
                &["install", "--yes", "--dry-run", "--namespace", "Bad_NS"][..],
                "--namespace",
            ),
            (&["install", "--yes", "--image", "bad image"][..], "--image"),
            (
                &[
                    "install",
                    "--yes",
                    "--memory-request",
                    "2Gi",
                    "--memory-limit",
                    "1Gi",
                ][..],
                "above the memory limit",
            ),
            (
                &["install", "--yes", "--metrics", "cpu,nonsense"][..],
                "nonsense",
            ),
            (&["install", "--yes", "--timeout", "soon"][..], "soon"),
            (&["render", "--cpu-request", "lots"][..], "--cpu-request"),
            (&["status", "--namespace", "Bad_NS"][..], "--namespace"),
            (
                &["uninstall", "--yes", "--namespace", "x-"][..],
                "--namespace",
            ),
            (&["verify", "--namespace", "Bad_NS"][..], "--namespace"),
            (&["verify", "--daemonset", "Bad.Name!"][..], "--daemonset"),
        ] {
            refused(&cluster, root, args, needle);
        }
    }

    #[test]
    fn parallel_outside_1_to_256_is_exit_2_before_the_api_server_is_contacted() {
        let cluster = FakeCluster::start(FakeClusterConfig::default());
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        for command in [&["verify"][..], &["install", "--yes"]] {
            for bad in ["0", "x", "257"] {
                let args: Vec<&str> = command.iter().copied().chain(["--parallel", bad]).collect();
                refused(&cluster, root, &args, "--parallel");
            }
            // The answers file's `parallel` is held to the same range.
            let answers = root.join("answers.yaml");
            std::fs::write(&answers, "parallel: 0\n").unwrap();
            let config = answers.to_str().unwrap();
            let args: Vec<&str> = command
                .iter()
                .copied()
                .chain(["--config", config])
                .collect();
            refused(&cluster, root, &args, "parallel `0` (from config file)");
        }
    }

    #[test]
    fn a_relative_containerd_socket_is_exit_2_in_every_command_that_takes_one() {
        let cluster = FakeCluster::start(FakeClusterConfig::default());
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        for command in [&["detect"][..], &["install", "--yes"], &["render"]] {
            let mut args = command.to_vec();
            args.extend(["--containerd-socket", "run/containerd.sock"]);
            refused(&cluster, root, &args, "not an absolute host path");
        }
        // From the answers file too.
        let dir = tempfile::tempdir().unwrap();
        let answers = dir.path().join("answers.yaml");
        std::fs::write(&answers, "containerd-socket: containerd.sock\n").unwrap();
        let config = answers.to_str().unwrap();
        for command in [&["detect"][..], &["install", "--yes"], &["render"]] {
            let mut args = command.to_vec();
            args.extend(["--config", config]);
            refused(&cluster, root, &args, "not an absolute host path");
        }
    }

    #[test]
    fn the_answers_file_is_checked_for_every_command() {
        let cluster = FakeCluster::start(FakeClusterConfig::default());
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let dir = tempfile::tempdir().unwrap();
        let unknown = dir.path().join("unknown.yaml");
        std::fs::write(&unknown, "namespace: monitoring\nnamespce: typo\n").unwrap();
        let bad_ns = dir.path().join("bad-ns.yaml");
        std::fs::write(&bad_ns, "namespace: Not_A_Label\n").unwrap();
        let bad_timeout = dir.path().join("bad-timeout.yaml");
        std::fs::write(&bad_timeout, "timeout: soon\n").unwrap();
        for command in [
            &["detect"][..],
            &["render"],
            &["install", "--yes"],
            &["verify"],
            &["status"],
            &["uninstall", "--yes"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--config", unknown.to_str().unwrap()]);
            refused(&cluster, root, &args, "namespce");
        }
        for command in [
            &["install", "--yes"][..],
            &["verify"],
            &["status"],
            &["uninstall", "--yes"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--config", bad_ns.to_str().unwrap()]);
            refused(&cluster, root, &args, "Not_A_Label");
        }
        for command in [
            &["install", "--yes"][..],
            &["verify"],
            &["uninstall", "--yes"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--config", bad_timeout.to_str().unwrap()]);
            refused(&cluster, root, &args, "timeout `soon`");
        }
    }

    #[test]
    fn a_missing_kubeconfig_is_exit_2_before_anything_else() {
        let root = tempfile::tempdir().unwrap();
        for args in [
            &["install", "--yes", "--cpu-limit", "xyz"][..],
            &["install", "--yes"],
            &["status"],
            &["uninstall", "--yes"],
            &["verify"],
        ] {
            let out = assert_cmd::cargo::cargo_bin_cmd!("cadvisor-setup")
                .env_clear()
                .env("NO_COLOR", "1")
                .arg("--host-root")
                .arg(root.path())
                .args(["--kubeconfig", "/nonexistent/kubeconfig"])
                .args(args)
                .timeout(Duration::from_secs(60))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", text(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kubeconfig"),
                "{}",
                text(&out)
            );
        }
    }
}

/// tests/support/real.rs: a skipped test leaves one line in `CADVISOR_SETUP_SKIP_LOG` (which
/// scripts/test.sh prints at the end); under `CADVISOR_SETUP_REQUIRE_REAL=1` it fails instead.
mod skip_log {
    use super::support::real;

    /// Run only as a child of the test below (it is ignored in a normal run).
    #[test]
    #[ignore = "a child of a_missing_component_is_one_line_in_the_skip_log"]
    fn child_that_skips() {
        if !real::require("a component that is never there", false) {
            return;
        }
        panic!("require(false) let the test go on");
    }

    fn run_child(log: &std::path::Path, require_real: bool) -> std::process::Output {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--ignored",
            "--exact",
            "skip_log::child_that_skips",
            "--test-threads=1",
        ])
        .env(real::SKIP_LOG_ENV, log)
        .env_remove("CADVISOR_SETUP_REQUIRE_REAL");
        if require_real {
            cmd.env("CADVISOR_SETUP_REQUIRE_REAL", "1");
        }
        cmd.output().expect("run the test binary")
    }

    #[test]
    fn a_missing_component_is_one_line_in_the_skip_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("skips");
        let out = run_child(&log, false);
        assert!(out.status.success(), "{out:?}");
        let out = run_child(&log, false);
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(&log).expect("the skip log was written");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per skip:\n{text}");
        for line in lines {
            assert!(
                line.starts_with("cli::") && line.contains("child_that_skips"),
                "the line names the binary and the test: {line}"
            );
            assert!(
                line.ends_with(": a component that is never there is missing"),
                "the line says why: {line}"
            );
        }

        // CI: the missing component is a failure, not a skip, and nothing is logged.
        let ci_log = dir.path().join("ci-skips");
        let out = run_child(&ci_log, true);
        assert!(!out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("CADVISOR_SETUP_REQUIRE_REAL=1 but"),
            "{out:?}"
        );
        assert!(!ci_log.exists(), "a failure is not a skip");
    }
}

mod report_snapshots {
    //! Snapshots of the reports of `completions` and of the shared error document (a usage
    //! error found in the settings, one clap refuses, an unreachable API server), JSON and
    //! human. Volatile values go through `support::snapshot::normalise`.

    use std::process::Output;

    use crate::support::snapshot;

    fn run(args: &[&str], home: &std::path::Path) -> Output {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("cadvisor-setup");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("NO_COLOR", "1")
            .args(args);
        cmd.output().expect("run cadvisor-setup")
    }

    /// `args` with `-o json`, then without: (JSON snapshot text, human snapshot text).
    fn both(args: &[&str], expected: i32, known: &[(&str, &str)]) -> (String, String) {
        let home = tempfile::tempdir().expect("home");
        let mut with_json = args.to_vec();
        with_json.extend_from_slice(&["-o", "json"]);
        let out = run(&with_json, home.path());
        assert_eq!(out.status.code(), Some(expected), "{out:?}");
        let json = snapshot::json(&out, known);
        let out = run(args, home.path());
        assert_eq!(out.status.code(), Some(expected), "{out:?}");
        (json, snapshot::human(&out, known))
    }

    /// The script is the same value in both forms; the snapshots hold the envelope and the
    /// script's first line (the whole script changes with every flag).
    #[test]
    fn completions_json_and_human() {
        let home = tempfile::tempdir().expect("home");
        let json_out = run(&["completions", "bash", "-o", "json"], home.path());
        let human_out = run(&["completions", "bash"], home.path());
        assert_eq!(json_out.status.code(), Some(0), "{json_out:?}");
        assert_eq!(human_out.status.code(), Some(0), "{human_out:?}");
        let mut doc: serde_json::Value =
            serde_json::from_slice(&json_out.stdout).expect("one JSON document");
        let script = doc["script"].as_str().expect("script").to_string();
        assert_eq!(
            script.as_bytes(),
            &human_out.stdout[..],
            "one value, two forms"
        );
        assert!(script.contains("complete -F _cadvisor__setup"), "{script}");
        let first = script.lines().next().unwrap_or_default().to_string();
        doc["script"] = serde_json::json!(format!("{first}\n[… the rest of the script]"));
        insta::assert_snapshot!(
            "completions_json",
            snapshot::normalise(&doc.to_string(), &[])
        );
        let shown = format!(
            "exit 0\n--- stdout (first line)\n{first}\n--- stderr\n{}",
            String::from_utf8_lossy(&human_out.stderr)
        );
        insta::assert_snapshot!("completions_human", snapshot::normalise(&shown, &[]));
    }

    #[test]
    fn a_usage_error_from_the_settings() {
        let (json, human) = both(&["render", "--namespace", "Not_A_Name"], 2, &[]);
        insta::assert_snapshot!("usage_error_json", json);
        insta::assert_snapshot!("usage_error_human", human);
    }

    /// What clap refuses: our JSON document; for people clap's own message (not a report).
    #[test]
    fn a_command_line_clap_refuses_is_one_document_too() {
        let home = tempfile::tempdir().expect("home");
        let out = run(&["completions", "tcsh", "-o", "json"], home.path());
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        insta::assert_snapshot!("parse_error_json", snapshot::json(&out, &[]));
    }

    /// Exit 4 with the hint under the error, from a kubeconfig naming a closed port.
    #[test]
    fn an_unreachable_api_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("config");
        std::fs::write(
            &kubeconfig,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: abc}\n",
        )
        .expect("kubeconfig");
        let path = kubeconfig.to_str().expect("utf-8");
        let known = [(dir.path().to_str().expect("utf-8"), "[KUBECONFIG_DIR]")];
        let (json, human) = both(&["status", "--kubeconfig", path], 4, &known);
        insta::assert_snapshot!("unreachable_json", json);
        insta::assert_snapshot!("unreachable_human", human);
    }

    /// `verify --metrics-file` on a shared real scrape (`tests/fixtures/`), named `[FIXTURES]`.
    fn verify_file(name: &str, expected: i32) -> (String, String) {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let path = format!("{fixtures}/{name}");
        both(
            &["verify", "--metrics-file", &path],
            expected,
            &[(fixtures, "[FIXTURES]")],
        )
    }

    /// MicroK8s' cAdvisor as `install` renders it: pod labels, exit 0.
    #[test]
    fn verify_a_labelled_file_passes() {
        let (json, human) = verify_file("cadvisor-microk8s-rendered.prom", 0);
        insta::assert_snapshot!("verify_file_pass_json", json);
        insta::assert_snapshot!("verify_file_pass_human", human);
    }

    /// The upstream manifest without containerd's socket mount: `id` only, exit 6 with the
    /// diagnosis and the message.
    #[test]
    fn verify_an_id_only_file_fails() {
        let (json, human) = verify_file("cadvisor-upstream-nomount.prom", 6);
        insta::assert_snapshot!("verify_file_fail_json", json);
        insta::assert_snapshot!("verify_file_fail_human", human);
    }
}
