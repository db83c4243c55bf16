//! `verify --metrics-url`: one GET (http or https, following one redirect), its body streamed
//! into the scanner.
//!
//! hyper-util's client with hyper-rustls, both already in the build through kube (ring, the
//! system's root certificates; `SSL_CERT_FILE`/`SSL_CERT_DIR` are honoured by
//! rustls-native-certs). cAdvisor serves `/metrics` over plain HTTP on port 8080 and gzips it
//! when asked with `Accept-Encoding: gzip` (prometheus/client_golang `promhttp`); the scanner
//! recognises gzip by its magic bytes, so `Content-Encoding` needs no handling here. A proxy or
//! ingress in front of it may answer with a redirect (`/metrics` → `/metrics/`, http → https):
//! one is followed, a second is an error.

use std::time::Duration;

use futures::TryStreamExt;
use http_body_util::{BodyDataStream, Empty};
use hyper::body::Bytes;
use hyper_rustls::ConfigBuilderExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::io::StreamReader;

use crate::cluster::proxy::read_on_thread;
use crate::metrics::{self, ScanError, ScanReport};

/// How many redirects are followed.
const MAX_REDIRECTS: usize = 1;

/// Each message is complete on its own line (the underlying error is part of it, not a cause).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not a usable URL: {reason}; give one like http://127.0.0.1:8080/metrics")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot connect to {url}: {error}; check that cAdvisor runs and listens there \
         (e.g. `kubectl -n cadvisor port-forward ds/cadvisor 8080`), or verify through the cluster \
         without --metrics-url"
    )]
    Unreachable { url: String, error: String },
    #[error("{url} answered HTTP {status}, not 200: is this cAdvisor's /metrics path?")]
    Status {
        url: String,
        status: hyper::StatusCode,
    },
    #[error(
        "{url} redirected more than {MAX_REDIRECTS} time(s) (last to {location}); give the final URL"
    )]
    Redirects { url: String, location: String },
    #[error("{url} answered HTTP {status} without a usable Location: {reason}")]
    BadRedirect {
        url: String,
        status: hyper::StatusCode,
        reason: String,
    },
    #[error("{url} did not answer completely within {after:?} (raise --timeout)")]
    Timeout { url: String, after: Duration },
    #[error("reading the metrics from {url}: {error}")]
    Scan { url: String, error: ScanError },
}

/// Checks the URL: http or https, with a host.
fn parse(url: &str) -> Result<hyper::Uri, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(bad(&format!("the scheme `{other}` is not http or https"))),
        None => return Err(bad("it has no http:// or https:// scheme")),
    }
    // Credentials in the URL are never sent (no basic auth here), and every message names the
    // URL: refuse it, showing it without them, before they reach a terminal or a CI log.
    if let Some((_, host)) = uri.authority().and_then(|a| a.as_str().rsplit_once('@')) {
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        return Err(FetchError::BadUrl {
            url: format!("{}://…@{host}{path}", uri.scheme_str().unwrap_or("http")),
            reason: "it carries credentials (user:password@), which are never sent; remove them"
                .to_string(),
        });
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(uri),
        _ => Err(bad("it has no host")),
    }
}

/// Where a redirect from `from` to `location` leads: an absolute URL, or a path on the same
/// scheme and authority (RFC 9110 §10.2.2 allows a relative reference; the absolute-path form is
/// what servers send).
fn redirect_target(from: &hyper::Uri, location: &str) -> Result<hyper::Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string());
    }
    if !location.starts_with('/') || location.starts_with("//") {
        return Err(format!(
            "`{location}` is neither absolute nor an absolute path"
        ));
    }
    let mut parts = from.clone().into_parts();
    parts.path_and_query = Some(
        location
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?,
    );
    hyper::Uri::from_parts(parts).map_err(|e| e.to_string())
}

/// GETs `url` and scans the body as it arrives, all within `timeout`.
pub async fn scan_url(url: &str, timeout: Duration) -> Result<ScanReport, FetchError> {
    let uri = parse(url)?;
    match tokio::time::timeout(timeout, fetch(url, uri)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            after: timeout,
        }),
    }
}

/// The TLS configuration: the system's roots, or none when the system has none (then every
/// https URL fails with an unknown issuer, which the error names).
fn tls_config() -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
    };
    match builder().map(|b| b.with_native_roots()) {
        Ok(Ok(config)) => config.with_no_client_auth(),
        _ => match builder() {
            Ok(b) => b
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            // ring supports the safe defaults: unreachable, but no panic either way.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        },
    }
}

/// Sends a GET to `uri` (following at most [`MAX_REDIRECTS`]) and returns the final URI and the
/// response, whatever its status.
async fn get(
    url: &str,
    mut uri: hyper::Uri,
    accept: &'static str,
    gzip: bool,
) -> Result<(hyper::Uri, hyper::Response<hyper::body::Incoming>), FetchError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config())
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut redirects = 0;
    loop {
        // The metrics scanner recognises gzip by its magic bytes; an API answer is read as it is.
        let encoding = if gzip { "gzip" } else { "identity" };
        let request = hyper::Request::get(uri.clone())
            .header(hyper::header::ACCEPT, accept)
            .header(hyper::header::ACCEPT_ENCODING, encoding)
            .header(
                hyper::header::USER_AGENT,
                concat!("cadvisor-setup/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::BadUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let response = client
            .request(request)
            .await
            .map_err(|e| FetchError::Unreachable {
                url: uri.to_string(),
                error: crate::error::chain(&e),
            })?;
        let status = response.status();
        if !status.is_redirection() || status == hyper::StatusCode::NOT_MODIFIED {
            return Ok((uri, response));
        }
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if redirects == MAX_REDIRECTS {
            return Err(FetchError::Redirects {
                url: url.to_string(),
                location,
            });
        }
        redirects += 1;
        uri = redirect_target(&uri, &location).map_err(|reason| FetchError::BadRedirect {
            url: uri.to_string(),
            status,
            reason,
        })?;
    }
}

async fn fetch(url: &str, uri: hyper::Uri) -> Result<ScanReport, FetchError> {
    let (uri, response) = get(url, uri, "text/plain", true).await?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: uri.to_string(),
            status: response.status(),
        });
    }
    let body = BodyDataStream::new(response.into_body()).map_err(std::io::Error::other);
    let scan_error = |error| FetchError::Scan {
        url: uri.to_string(),
        error,
    };
    read_on_thread(StreamReader::new(Box::pin(body)), |r| metrics::scan(r))
        .await
        .map_err(|e| scan_error(ScanError::Read(e)))?
        .map_err(scan_error)
}

/// A whole response body of at most `limit` bytes (an API answer, not a stream).
#[derive(Debug)]
pub struct Answer {
    pub status: hyper::StatusCode,
    pub body: Vec<u8>,
    /// Whether the body ended within `limit` (else it is cut at `limit`).
    pub complete: bool,
}

/// GETs `url` (http or https, one redirect) and reads at most `limit` bytes of the body, all
/// within `timeout`. Any status is returned: the caller judges it (an API's error body is JSON).
pub async fn get_bounded(
    url: &str,
    accept: &'static str,
    limit: u64,
    timeout: Duration,
) -> Result<Answer, FetchError> {
    let uri = parse(url)?;
    let read = async {
        let (_, response) = get(url, uri, accept, false).await?;
        let status = response.status();
        let body = BodyDataStream::new(response.into_body()).map_err(std::io::Error::other);
        let reader =
            tokio_util::compat::TokioAsyncReadCompatExt::compat(StreamReader::new(Box::pin(body)));
        let (body, complete) = crate::cluster::proxy::read_at_most(reader, limit)
            .await
            .map_err(|e| FetchError::Unreachable {
                url: url.to_string(),
                error: format!("reading the answer: {e}"),
            })?;
        Ok(Answer {
            status,
            body,
            complete,
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            after: timeout,
        }),
    }
}

/// Checks a URL given by the user before any I/O: http or https, with a host.
pub fn check_url(url: &str) -> Result<(), FetchError> {
    parse(url).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_are_refused_and_never_shown() {
        for url in [
            "http://admin:s3cret@127.0.0.1:8080/metrics",
            "https://s3cret@prometheus.example:9090",
        ] {
            let err = check_url(url).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("carries credentials"), "{err}");
        }
    }

    #[test]
    fn http_and_https_urls_parse() {
        let uri = parse("http://127.0.0.1:8080/metrics?x=1").unwrap();
        assert_eq!(uri.port_u16(), Some(8080));
        assert_eq!(uri.path_and_query().unwrap().as_str(), "/metrics?x=1");
        assert_eq!(parse("https://[::1]/").unwrap().host(), Some("[::1]"));
    }

    #[test]
    fn unusable_urls_are_bad_url_errors() {
        for url in ["127.0.0.1:8080/metrics", "ftp://x/", "http://", "http:///x"] {
            let err = parse(url).unwrap_err();
            assert!(matches!(err, FetchError::BadUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn redirects_resolve_absolute_urls_and_paths() {
        let from: hyper::Uri = "http://node:8080/metrics".parse().unwrap();
        assert_eq!(
            redirect_target(&from, "/metrics/").unwrap().to_string(),
            "http://node:8080/metrics/"
        );
        assert_eq!(
            redirect_target(&from, "https://other/m")
                .unwrap()
                .to_string(),
            "https://other/m"
        );
        assert!(redirect_target(&from, "metrics").is_err());
        assert!(redirect_target(&from, "//evil/x").is_err());
        assert!(redirect_target(&from, "").is_err());
    }
}
