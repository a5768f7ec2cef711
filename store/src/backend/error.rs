//! Backend errors. Each names the object and the operation; `is_retryable` says whether
//! the same call may succeed later (throttling, timeouts) or never will.

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("store URL {url:?} is not file:///absolute/path or s3://bucket/prefix")]
    BadUrl { url: String },
    #[error("object {key} not found in the store")]
    NotFound { key: String },
    #[error("{op} {key}: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("S3 {op} {key}: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
        retryable: bool,
    },
}

impl BackendError {
    /// Whether the same call may succeed later (throttling, timeouts, a dropped connection).
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::S3 { retryable, .. } => *retryable,
            BackendError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }
}
