//! Errors of a store opened for use. Each names the store, host, point or object it is
//! about; backend and format errors pass through with their own names and ids.

use ferry_core::{ChunkId, FormatError};

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("no Ferry store at {store} (no config object): run `ferry store init` first")]
    NotInitialised { store: String },
    #[error("host {host} has no point {point}")]
    NoSuchPoint { host: String, point: String },
    #[error("host {host} has no recovery points yet")]
    NoPoints { host: String },
    #[error("point {point} is ambiguous for host {host}: {matches} points end with it")]
    AmbiguousPoint {
        host: String,
        point: String,
        matches: usize,
    },
    #[error("chunk {chunk} is not in any pack of the store (store damaged or pruned)")]
    MissingChunk { chunk: ChunkId },
    #[error("pack {pack} is shorter than its index says (chunk {chunk})")]
    ShortPack { pack: String, chunk: ChunkId },
    #[error("cannot create a zstd context: {0}")]
    Zstd(std::io::Error),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl RepoError {
    /// Whether the same call may succeed later (throttling, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RepoError::Backend(b) if b.is_retryable())
    }
}
