//! The store's `config` object: written once by `ferry store init`, read by every tool
//! before it touches anything else. Plain JSON so that a person can read it.

use serde::{Deserialize, Serialize};

use crate::chunking::ChunkerParams;
use crate::error::FormatError;

/// The store format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    pub format_version: u32,
    /// Random id of this store, so that caches and records can tell stores apart.
    pub store_id: String,
    pub chunker: ChunkerParams,
    pub compression: Compression,
    /// A pack is closed once its compressed blobs reach this size.
    pub pack_target_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    /// Always "zstd" in format version 1.
    pub algorithm: CompressionAlgorithm,
    pub level: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompressionAlgorithm {
    #[serde(rename = "zstd")]
    Zstd,
}

impl RepoConfig {
    pub fn new(store_id: String) -> Self {
        RepoConfig {
            format_version: FORMAT_VERSION,
            store_id,
            chunker: ChunkerParams::default(),
            compression: Compression {
                algorithm: CompressionAlgorithm::Zstd,
                level: 1,
            },
            pack_target_size: 8 << 20,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, FormatError> {
        let cfg: RepoConfig =
            serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
                object: "config".into(),
                source,
            })?;
        if cfg.format_version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: "config".into(),
                found: cfg.format_version,
                supported: FORMAT_VERSION,
            });
        }
        cfg.chunker
            .validate()
            .map_err(|e| FormatError::malformed("config", e.to_string()))?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let c = RepoConfig::new("abc".into());
        let back = RepoConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let text = String::from_utf8(c.to_json()).unwrap();
        assert!(text.contains("\"fastcdc-v2020\""), "{text}");
        let newer = text.replace("\"format_version\": 1", "\"format_version\": 99");
        assert!(matches!(
            RepoConfig::from_json(newer.as_bytes()),
            Err(FormatError::UnsupportedVersion { found: 99, .. })
        ));
    }
}
