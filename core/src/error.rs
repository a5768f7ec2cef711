//! Errors of decoding stored objects.
//!
//! Rules: one variant per kind of damage, each naming the object it was found in, so that
//! an operator can go straight to the broken pack or point. All of these are permanent:
//! retrying the same bytes cannot make them valid.

use crate::id::ChunkId;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{object}: not a Ferry {kind} object (bad magic)")]
    BadMagic { object: String, kind: &'static str },
    #[error("{object}: format version {found} is newer than this build understands ({supported})")]
    UnsupportedVersion {
        object: String,
        found: u32,
        supported: u32,
    },
    #[error("{object}: truncated or malformed: {detail}")]
    Malformed { object: String, detail: String },
    #[error("chunk {chunk} in pack {pack}: cannot decompress: {detail}")]
    Decompress {
        chunk: ChunkId,
        pack: String,
        detail: String,
    },
    #[error("chunk {chunk} in pack {pack}: content hash mismatch (stored data is corrupt)")]
    ChunkHashMismatch { chunk: ChunkId, pack: String },
    #[error("{object}: invalid JSON: {source}")]
    Json {
        object: String,
        #[source]
        source: serde_json::Error,
    },
}

impl FormatError {
    pub(crate) fn malformed(object: &str, detail: impl Into<String>) -> Self {
        FormatError::Malformed {
            object: object.to_string(),
            detail: detail.into(),
        }
    }
}
