//! Streaming scanner for the Prometheus text format: which pods appear with
//! `container_label_io_kubernetes_pod_name`. Constant memory, gzip recognised. No I/O of its own.

use crate::error::{Classify, ExitCode};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read metrics: {0}")]
    Read(#[from] std::io::Error),
}

impl Classify for ScanError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Unexpected
    }
}
