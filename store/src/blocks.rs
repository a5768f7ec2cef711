//! A point's block map (format in [`ferry_core::blockmap`]): written at capture, read by
//! the next capture of the host to ask the host only for the blocks that changed.

use bytes::Bytes;
use ferry_core::blockmap::BlockMap;
use ferry_core::layout;

use crate::backend::BackendError;
use crate::error::RepoError;
use crate::repo::Repository;

impl Repository {
    /// Writes the block map of `host`'s `point`; returns its stored size.
    pub async fn write_blocks(
        &self,
        host: &str,
        point: &str,
        map: &BlockMap,
    ) -> Result<u64, RepoError> {
        let key = layout::blocks_key(host, point);
        let bytes = map.encode(&key)?;
        let len = bytes.len() as u64;
        self.backend.put(&key, Bytes::from(bytes)).await?;
        Ok(len)
    }

    /// The block map of a point; `None` for a point captured before they existed.
    pub async fn read_blocks(
        &self,
        host: &str,
        point: &str,
    ) -> Result<Option<BlockMap>, RepoError> {
        let key = layout::blocks_key(host, point);
        match self.backend.get(&key).await {
            Ok(b) => Ok(Some(BlockMap::decode(&key, &b)?)),
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
