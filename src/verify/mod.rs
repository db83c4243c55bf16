//! The verification stage: do cAdvisor's metrics carry pod labels? It uses `cluster` and
//! `metrics`, never `ui` or `commands`.
//!
//! Sources, all streamed into the scanner of `crate::metrics`:
//! - the cluster ([`nodes::verify`]): every cAdvisor pod's `/metrics` through the pod proxy,
//!   judged against the kubelet's `/metrics/cadvisor` through the node proxy ([`judge`]);
//!   nodes checked concurrently (bounded), failing ones retried until the timeout, then
//!   diagnosed from the manifest and the pod log; the result recorded on the DaemonSet;
//! - a URL ([`http`]: http or https, one redirect), a file, a FIFO or stdin ([`Source`]),
//!   judged on the scan alone ([`report::Outcome`]);
//! - the Prometheus that scrapes it ([`prometheus`]): our targets up on every node, and a query
//!   by the relabelled `pod`/`namespace`/`container` labels answered.
//!
//! Uses `cluster` and `metrics`; never `ui` or `commands` (they print what this returns).

pub mod http;
pub mod judge;
pub mod nodes;
pub mod prometheus;
pub mod report;
pub mod source;

pub use http::FetchError;
pub use nodes::{DEFAULT_CONCURRENCY, Verification, VerifyOptions, record, verify};
pub use report::Outcome;
pub use source::Source;

use crate::metrics::ScanError;

/// Why a file, stdin or URL could not be verified. Each message is complete on its own line.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "--metrics-file {shown}: no such file; save a scrape first \
         (curl -s http://127.0.0.1:8080/metrics > metrics.txt) or use `-` for stdin"
    )]
    NoSuchFile { shown: String },
    #[error("--metrics-file {shown} is a directory; give a file saved from cAdvisor's /metrics")]
    Directory { shown: String },
    #[error(
        "--metrics-file {shown} is {kind}, not a file or a FIFO; give a file saved from \
         cAdvisor's /metrics, or `-` to read stdin"
    )]
    NotAFile { shown: String, kind: String },
    #[error("cannot open --metrics-file {shown}: {error}")]
    Open {
        shown: String,
        error: std::io::Error,
    },
    #[error("cannot start the thread that reads --metrics-file: {0}")]
    Thread(std::io::Error),
    #[error("the thread reading --metrics-file {shown} stopped without a result")]
    ReaderGone { shown: String },
    #[error(
        "reading --metrics-file {shown} timed out after {after}: the input did not end (a FIFO or \
         stdin whose writer has not finished, or has not started); raise --timeout, or save the \
         scrape to a file first"
    )]
    Timeout { shown: String, after: String },
    #[error("scanning {shown}: {error}")]
    Scan { shown: String, error: ScanError },
    #[error("{0}")]
    Fetch(#[from] FetchError),
}
