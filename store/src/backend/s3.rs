//! A store in an S3 bucket under a prefix (`s3://bucket/prefix`).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::{BackendError, ObjectInfo};

pub struct S3Backend {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Empty, or ends with '/'.
    prefix: String,
}

fn s3_error<E, R>(op: &'static str, key: &str, err: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let f = ferry_aws::sdk_failure(&err);
    if matches!(f.code.as_deref(), Some("NoSuchKey" | "NotFound")) {
        return BackendError::NotFound {
            key: key.to_string(),
        };
    }
    BackendError::S3 {
        op,
        key: key.to_string(),
        message: f.message,
        retryable: f.retryable,
    }
}

impl S3Backend {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        S3Backend {
            client,
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", key, e))?;
        Ok(())
    }

    /// Removes an object; S3 answers a missing one as removed.
    pub async fn remove(&self, key: &str) -> Result<(), BackendError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", key, e))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BackendError> {
        self.get_inner(key, None).await
    }

    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        self.get_inner(key, Some(format!("bytes={}-{}", offset, offset + len - 1)))
            .await
    }

    async fn get_inner(&self, key: &str, range: Option<String>) -> Result<Bytes, BackendError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .set_range(range)
            .send()
            .await
            .map_err(|e| s3_error("GetObject", key, e))?;
        let body = out.body.collect().await.map_err(|e| BackendError::S3 {
            op: "GetObject",
            key: key.to_string(),
            message: format!("reading the body: {e}"),
            retryable: true,
        })?;
        Ok(body.into_bytes())
    }

    /// The size of an object, without reading it.
    pub async fn size(&self, key: &str) -> Result<u64, BackendError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", key, e))?;
        Ok(out.content_length().unwrap_or(0).max(0) as u64)
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full(prefix))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error("ListObjectsV2", prefix, e))?;
            for o in page.contents() {
                if let Some(k) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Creates the bucket if it does not exist (`ferry store init`).
    pub async fn ensure_bucket(&self) -> Result<(), BackendError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(e) => Err(s3_error("CreateBucket", &self.bucket.clone(), e)),
        }
    }
}
