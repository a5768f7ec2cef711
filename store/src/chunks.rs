//! Reading chunks back: which packs to read, which byte ranges of them, and where each
//! chunk goes ([`plan`]); then opening every blob of a fetched range, checked against
//! its id ([`open_blobs`]). Restores and the image builder drive the reads themselves
//! (their concurrency and their sinks differ).

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use ferry_core::id::PackId;
use ferry_core::index::{BlobLocation, ChunkIndex};
use ferry_core::layout;
use ferry_core::pack::{open_blob, PackEntry};
use ferry_core::ChunkId;

use crate::error::RepoError;

/// Reads closer than this are merged into one request: a request costs more than the
/// bytes in a small gap.
const MERGE_GAP: u64 = 1 << 20;

/// One ranged read of a pack and the chunks inside it.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub pack: PackId,
    pub offset: u64,
    pub len: u64,
    /// Each chunk in this range, with every image offset it must be written at.
    pub blobs: Vec<(PackEntry, Vec<u64>)>,
}

/// Plans the reads for `wanted` (chunk -> image offsets). Every chunk must be indexed.
pub fn plan(
    index: &ChunkIndex,
    wanted: HashMap<ChunkId, Vec<u64>>,
) -> Result<Vec<Fetch>, RepoError> {
    let located = wanted
        .into_iter()
        .map(|(id, offsets)| match index.get(&id) {
            Some(loc) => Ok((*loc, offsets)),
            None => Err(RepoError::MissingChunk { chunk: id }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(plan_located(located))
}

/// Plans the reads of chunks whose locations are known (each with its image offsets).
pub fn plan_located(wanted: impl IntoIterator<Item = (BlobLocation, Vec<u64>)>) -> Vec<Fetch> {
    let mut by_pack: HashMap<PackId, Vec<(PackEntry, Vec<u64>)>> = HashMap::new();
    for (loc, offsets) in wanted {
        by_pack
            .entry(loc.pack)
            .or_default()
            .push((loc.entry, offsets));
    }
    let mut out = Vec::new();
    for (pack, mut blobs) in by_pack {
        blobs.sort_by_key(|(e, _)| e.offset);
        let mut cur: Option<Fetch> = None;
        for (e, offs) in blobs {
            let end = e.offset + u64::from(e.stored_len);
            match &mut cur {
                Some(f) if e.offset <= f.offset + f.len + MERGE_GAP => {
                    f.len = f.len.max(end - f.offset);
                    f.blobs.push((e, offs));
                }
                _ => {
                    if let Some(f) = cur.take() {
                        out.push(f);
                    }
                    cur = Some(Fetch {
                        pack,
                        offset: e.offset,
                        len: u64::from(e.stored_len),
                        blobs: vec![(e, offs)],
                    });
                }
            }
        }
        out.extend(cur);
    }
    // Captures pack chunks in image order, so reading in order of the first offset each
    // read serves writes the image mostly front to back (fewer, larger extents).
    out.sort_by_key(|f| {
        let first = f.blobs.iter().flat_map(|(_, o)| o.iter().copied()).min();
        (first, f.pack, f.offset)
    });
    out
}

thread_local! {
    /// One zstd context per thread, reused for every chunk it opens.
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Opens every blob of a fetched range (`data` holds the bytes of `f`'s range) and hands
/// each chunk, checked against its id, to `each` with the offsets it goes to.
pub fn open_blobs<E: From<RepoError>>(
    f: &Fetch,
    data: &[u8],
    mut each: impl FnMut(&PackEntry, Bytes, &[u64]) -> Result<(), E>,
) -> Result<(), E> {
    let key = layout::pack_key(&f.pack);
    for (e, offsets) in &f.blobs {
        let start = (e.offset - f.offset) as usize;
        let blob = data
            .get(start..start + e.stored_len as usize)
            .ok_or_else(|| RepoError::ShortPack {
                pack: key.clone(),
                chunk: e.id,
            })?;
        let raw = DCTX.with_borrow_mut(|d| -> Result<Bytes, RepoError> {
            let d = match d {
                Some(d) => d,
                None => d.insert(zstd::bulk::Decompressor::new().map_err(RepoError::Zstd)?),
            };
            Ok(open_blob(d, &key, e, blob)?)
        })?;
        each(e, raw, offsets)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_near_blobs_and_reports_missing_chunks() {
        let pack = ChunkId::of(b"pack");
        let e = |n: &[u8], off| PackEntry {
            id: ChunkId::of(n),
            offset: off,
            stored_len: 100,
            raw_len: 200,
        };
        let mut idx = ChunkIndex::default();
        idx.add_pack(pack, &[e(b"a", 0), e(b"b", 100), e(b"c", 10 << 20)]);
        let wanted = HashMap::from([
            (ChunkId::of(b"a"), vec![0]),
            (ChunkId::of(b"b"), vec![200, 400]),
            (ChunkId::of(b"c"), vec![600]),
        ]);
        let f = plan(&idx, wanted).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].offset, f[0].len, f[0].blobs.len()), (0, 200, 2));
        assert_eq!(f[1].offset, 10 << 20);
        let err = plan(&idx, HashMap::from([(ChunkId::of(b"zz"), vec![0])])).unwrap_err();
        assert!(err.to_string().contains(&ChunkId::of(b"zz").to_hex()));
    }
}
