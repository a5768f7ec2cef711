//! Object storage for a store: a narrow port (`put`, `get`, `get_range`, `list`,
//! `remove`) with
//! one adapter per backend. Keys are the ones `ferry_core::layout` spells; both adapters
//! lay them out identically.

mod error;
mod file;
mod s3;

use bytes::Bytes;

pub use error::BackendError;
pub use file::FileBackend;
pub use s3::S3Backend;

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A store location: `file:///abs/path` or `s3://bucket/prefix`.
pub enum Backend {
    File(FileBackend),
    S3(S3Backend),
}

impl Backend {
    /// Opens the location named by `url`. S3 clients come from `ferry_aws::clients`.
    pub async fn open(url: &str, aws: &ferry_aws::AwsSettings) -> Result<Self, BackendError> {
        match url.starts_with("s3://") {
            true => Self::open_with(url, &ferry_aws::clients::sdk_config(aws).await),
            false => Self::open_with(url, &aws_config::SdkConfig::builder().build()),
        }
    }

    /// Opens the location named by `url`; an S3 store's client is built from `cfg`.
    pub fn open_with(url: &str, cfg: &aws_config::SdkConfig) -> Result<Self, BackendError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Backend::File(FileBackend::new(path)?));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackendError::BadUrl {
                    url: url.to_string(),
                });
            }
            let client = ferry_aws::clients::s3(cfg);
            return Ok(Backend::S3(S3Backend::new(client, bucket, prefix)));
        }
        Err(BackendError::BadUrl {
            url: url.to_string(),
        })
    }

    /// Writes an object atomically: readers see the whole object or none of it.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        match self {
            Backend::File(b) => b.put(key, data).await,
            Backend::S3(b) => b.put(key, data).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BackendError> {
        match self {
            Backend::File(b) => b.get(key).await,
            Backend::S3(b) => b.get(key).await,
        }
    }

    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        match self {
            Backend::File(b) => b.get_range(key, offset, len).await,
            Backend::S3(b) => b.get_range(key, offset, len).await,
        }
    }

    /// The size of an object, without reading it.
    pub async fn size(&self, key: &str) -> Result<u64, BackendError> {
        match self {
            Backend::File(b) => b.size(key).await,
            Backend::S3(b) => b.size(key).await,
        }
    }

    /// Removes an object (prune, lock release); one already gone is not an error.
    pub async fn remove(&self, key: &str) -> Result<(), BackendError> {
        match self {
            Backend::File(b) => b.remove(key).await,
            Backend::S3(b) => b.remove(key).await,
        }
    }

    /// Every object whose key starts with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        match self {
            Backend::File(b) => b.list(prefix).await,
            Backend::S3(b) => b.list(prefix).await,
        }
    }

    /// The URL form of the location, for messages.
    pub fn describe(&self) -> String {
        match self {
            Backend::File(b) => b.describe(),
            Backend::S3(b) => b.describe(),
        }
    }
}
