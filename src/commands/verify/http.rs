//! `verify --metrics-url`: one plain-HTTP GET, its body streamed into the scanner.
//!
//! HTTP/1.1 through hyper's connection API (already in the build through kube). cAdvisor serves
//! `/metrics` over plain HTTP on port 8080 and gzips it when asked with `Accept-Encoding: gzip`
//! (prometheus/client_golang `promhttp`); the scanner recognises gzip by its magic bytes, so the
//! `Content-Encoding` header needs no handling here. https is not supported: cAdvisor has no TLS
//! of its own, and a TLS endpoint can be fetched with curl and piped into `--metrics-file -`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::metrics::{ScanError, ScanReport, Scanner};

/// Each message is complete on its own line (the underlying error is part of it, not a cause).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not a usable URL: {reason}; give one like http://127.0.0.1:8080/metrics")]
    BadUrl { url: String, reason: String },
    #[error(
        "`{url}`: https is not supported (cAdvisor serves plain HTTP on :8080); use http://, or \
         fetch it yourself and pipe it in: curl -s --compressed URL | cadvisor-setup verify --metrics-file -"
    )]
    Https { url: String },
    #[error(
        "cannot connect to {url}: {error}; check that cAdvisor runs and listens there \
         (e.g. `kubectl -n cadvisor port-forward ds/cadvisor 8080`), or verify through the cluster \
         without --metrics-url"
    )]
    Unreachable { url: String, error: std::io::Error },
    #[error("{url} answered HTTP {status}, not 200: is this cAdvisor's /metrics path?")]
    Status {
        url: String,
        status: hyper::StatusCode,
    },
    #[error("HTTP exchange with {url} failed: {error}")]
    Http { url: String, error: hyper::Error },
    #[error("{url} did not answer completely within {after:?} (raise --timeout)")]
    Timeout { url: String, after: Duration },
    #[error("reading the metrics from {url}: {error}")]
    Scan { url: String, error: ScanError },
}

/// Where to connect and what to ask for.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

fn parse(url: &str) -> Result<Target, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(FetchError::Https {
                url: url.to_string(),
            });
        }
        Some(other) => return Err(bad(&format!("the scheme `{other}` is not http"))),
        None => return Err(bad("it has no http:// scheme")),
    }
    let authority = uri.authority().ok_or_else(|| bad("it has no host"))?;
    let host = authority.host();
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    Ok(Target {
        // `[::1]` → `::1` for the socket address.
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority
            .as_str()
            .rsplit('@')
            .next()
            .unwrap_or(host)
            .to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
    })
}

/// GETs `url` and scans the body as it arrives, all within `timeout`.
pub async fn scan_url(url: &str, timeout: Duration) -> Result<ScanReport, FetchError> {
    let target = parse(url)?;
    match tokio::time::timeout(timeout, fetch(url, &target)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            after: timeout,
        }),
    }
}

async fn fetch(url: &str, target: &Target) -> Result<ScanReport, FetchError> {
    let http = |error| FetchError::Http {
        url: url.to_string(),
        error,
    };
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|error| FetchError::Unreachable {
            url: url.to_string(),
            error,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    // The connection task drives the socket; it ends when the response is read or dropped.
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(target.path.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::ACCEPT, "text/plain")
        .header(hyper::header::ACCEPT_ENCODING, "gzip")
        .header(
            hyper::header::USER_AGENT,
            concat!("cadvisor-setup/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let response = sender.send_request(request).await.map_err(http)?;
    if !response.status().is_success() {
        driver.abort();
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status(),
        });
    }
    let mut body = response.into_body();
    let mut scanner = Scanner::new();
    let scan_error = |error| FetchError::Scan {
        url: url.to_string(),
        error,
    };
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(http)?.into_data() {
            scanner.feed(&data).map_err(scan_error)?;
        }
    }
    driver.abort();
    scanner.finish().map_err(scan_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_host_port_and_path() {
        let t = parse("http://127.0.0.1:8080/metrics?x=1").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/metrics?x=1".into(),
            }
        );
        let t = parse("http://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(parse("http://node-1").unwrap().path, "/");
    }

    #[test]
    fn unusable_urls_are_usage_errors() {
        for url in [
            "https://x/metrics",
            "127.0.0.1:8080/metrics",
            "ftp://x/",
            "http://",
        ] {
            let err = parse(url).unwrap_err();
            let code = crate::commands::Error::from(err).exit_code();
            assert_eq!(code, crate::error::ExitCode::Usage, "{url}");
        }
        assert!(
            parse("https://x/")
                .unwrap_err()
                .to_string()
                .contains("https is not supported")
        );
    }
}
