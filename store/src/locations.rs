//! A point's locations object (format in [`ferry_core::locations`]): written at capture,
//! read one image range at a time by image builds, rebuilt from the index for points
//! captured before it existed.

use std::ops::Range;

use bytes::Bytes;
use ferry_core::index::{BlobLocation, ChunkIndex};
use ferry_core::layout;
use ferry_core::locations::{
    parse_footer, parse_segment, parse_table, Footer, Located, SegmentRef, Writer, FOOTER_LEN,
    TABLE_ENTRY_LEN,
};
use ferry_core::manifest::Manifest;
use ferry_core::ChunkId;

use crate::backend::BackendError;
use crate::error::RepoError;
use crate::repo::Repository;

/// Encodes the locations of `m`'s chunks; every chunk must be found by `lookup`.
pub fn encode(
    m: &Manifest,
    lookup: impl Fn(&ChunkId) -> Option<BlobLocation>,
) -> Result<Vec<u8>, RepoError> {
    let mut w = Writer::new(m.meta.image_size);
    for (at, chunk) in m.offsets() {
        let loc = lookup(&chunk.id).ok_or(RepoError::MissingChunk { chunk: chunk.id })?;
        w.push(Located { at, chunk, loc })?;
    }
    Ok(w.finish()?)
}

/// An opened locations object: its key and footer.
#[derive(Debug, Clone)]
pub struct Locations {
    pub key: String,
    pub footer: Footer,
    /// Where the table starts (the segments end there).
    data_end: u64,
}

impl Repository {
    /// Writes the locations object of `m`; returns its size.
    pub async fn write_locations(&self, m: &Manifest, bytes: Vec<u8>) -> Result<u64, RepoError> {
        let key = layout::locations_key(&m.meta.host, &m.meta.point);
        let len = bytes.len() as u64;
        self.backend.put(&key, Bytes::from(bytes)).await?;
        Ok(len)
    }

    /// Opens a point's locations object; `None` for a point captured before they existed.
    pub async fn open_locations(
        &self,
        host: &str,
        point: &str,
    ) -> Result<Option<Locations>, RepoError> {
        let key = layout::locations_key(host, point);
        let size = match self.backend.size(&key).await {
            Ok(s) => s,
            Err(BackendError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if size < FOOTER_LEN as u64 {
            return Err(RepoError::Format(ferry_core::FormatError::Malformed {
                object: key,
                detail: "shorter than a locations footer".into(),
            }));
        }
        let tail = self
            .backend
            .get_range(&key, size - FOOTER_LEN as u64, FOOTER_LEN as u64)
            .await?;
        let footer = parse_footer(&key, &tail, size)?;
        let data_end = size - FOOTER_LEN as u64 - footer.table_len();
        Ok(Some(Locations {
            key,
            footer,
            data_end,
        }))
    }

    /// Opens the locations of `m`, first writing them from the store's index when the
    /// point predates them (that one time, memory grows with the index).
    pub async fn ensure_locations(&self, m: &Manifest) -> Result<Locations, RepoError> {
        if let Some(l) = self.open_locations(&m.meta.host, &m.meta.point).await? {
            return Ok(l);
        }
        let index: ChunkIndex = self.read_index().await?.index;
        let bytes = encode(m, |id| index.get(id).copied())?;
        drop(index);
        self.write_locations(m, bytes).await?;
        tracing::info!(host = %m.meta.host, point = %m.meta.point, "wrote the locations of a point captured before they existed");
        self.open_locations(&m.meta.host, &m.meta.point)
            .await?
            .ok_or_else(|| {
                RepoError::Backend(BackendError::NotFound {
                    key: layout::locations_key(&m.meta.host, &m.meta.point),
                })
            })
    }

    /// Where segments `range` are (one ranged read of the table).
    pub async fn segment_refs(
        &self,
        l: &Locations,
        range: Range<u32>,
    ) -> Result<Vec<SegmentRef>, RepoError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let entry = TABLE_ENTRY_LEN as u64;
        let at = l.data_end + u64::from(range.start) * entry;
        let len = u64::from(range.end - range.start) * entry;
        let b = self.backend.get_range(&l.key, at, len).await?;
        Ok(parse_table(&l.key, &b, l.data_end)?)
    }

    /// The records of one segment.
    pub async fn read_segment(
        &self,
        l: &Locations,
        s: SegmentRef,
    ) -> Result<Vec<Located>, RepoError> {
        let b = self
            .backend
            .get_range(&l.key, s.offset, u64::from(s.len))
            .await?;
        Ok(parse_segment(&l.key, &b)?)
    }
}
