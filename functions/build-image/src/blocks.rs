//! 512 KiB EBS blocks from the store: assembled from a point's located chunks (each
//! checked on the way), and written with their SHA-256 and bounded concurrency.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ferry_core::ebs::BLOCK_SIZE;
use ferry_core::index::BlobLocation;
use ferry_core::locations::Located;
use ferry_core::ChunkId;
use ferry_fn::StepError;
use ferry_store::{RepoError, Repository};
use futures::{stream, StreamExt, TryStreamExt};

use crate::cloud::{self, Cloud};
use crate::store::repo_error;

/// Concurrent PutSnapshotBlock calls (the EBS direct APIs allow many writers).
pub const PUT_CONCURRENCY: usize = 16;
/// Concurrent pack reads while assembling.
const FETCH_CONCURRENCY: usize = 4;

/// The bytes of blocks `window`, read from the store (each chunk checked on the way).
/// `records` are the located chunks of the image around the window (any superset).
pub async fn assemble(
    repo: &Repository,
    records: &[Located],
    image_size: u64,
    window: &[u64],
) -> Result<BTreeMap<u64, Vec<u8>>, StepError> {
    let mut wanted: HashMap<ChunkId, (BlobLocation, Vec<u64>)> = HashMap::new();
    for &b in window {
        let (start, end) = (b * BLOCK_SIZE, ((b + 1) * BLOCK_SIZE).min(image_size));
        let first = records.partition_point(|l| l.end() <= start);
        for l in records[first..].iter().take_while(|l| l.at < end) {
            let (_, offs) = wanted.entry(l.chunk.id).or_insert((l.loc, Vec::new()));
            if !offs.contains(&l.at) {
                offs.push(l.at);
            }
        }
    }
    let bufs = Mutex::new(
        window
            .iter()
            .map(|&b| (b, vec![0u8; BLOCK_SIZE as usize]))
            .collect::<BTreeMap<_, _>>(),
    );
    let fetches = ferry_store::chunks::plan_located(wanted.into_values());
    stream::iter(fetches)
        .map(|f| {
            let bufs = &bufs;
            async move {
                let data = repo
                    .read_pack_range(&f.pack, f.offset, f.len)
                    .await
                    .map_err(repo_error)?;
                ferry_store::chunks::open_blobs(&f, &data, |_, raw, offsets| {
                    let mut bufs = bufs
                        .lock()
                        .map_err(|_| RepoError::Zstd(std::io::Error::other("lock poisoned")))?;
                    for &at in offsets {
                        place(&mut bufs, at, &raw);
                    }
                    Ok::<_, RepoError>(())
                })
                .map_err(repo_error)
            }
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    bufs.into_inner()
        .map_err(|_| StepError::Retryable("block buffers lock poisoned".into()))
}

/// Copies the parts of a chunk at image offset `at` that fall in the buffered blocks.
fn place(bufs: &mut BTreeMap<u64, Vec<u8>>, at: u64, raw: &[u8]) {
    let end = at + raw.len() as u64;
    if raw.is_empty() {
        return;
    }
    for b in at / BLOCK_SIZE..=(end - 1) / BLOCK_SIZE {
        let Some(buf) = bufs.get_mut(&b) else {
            continue;
        };
        let (bs, be) = (b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
        let (s, e) = (at.max(bs), end.min(be));
        buf[(s - bs) as usize..(e - bs) as usize]
            .copy_from_slice(&raw[(s - at) as usize..(e - at) as usize]);
    }
}

/// Writes `bufs` into snapshot `sid`, [`PUT_CONCURRENCY`] at a time.
pub async fn put_blocks(
    c: &Cloud,
    sid: &str,
    bufs: BTreeMap<u64, Vec<u8>>,
) -> Result<(), StepError> {
    stream::iter(bufs)
        .map(|(b, data)| cloud::put_block(c, sid, b, data))
        .buffer_unordered(PUT_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_across_a_block_boundary_lands_in_both_blocks() {
        let bs = BLOCK_SIZE as usize;
        let mut bufs: BTreeMap<u64, Vec<u8>> = [(0, vec![0u8; bs]), (1, vec![0u8; bs])]
            .into_iter()
            .collect();
        place(&mut bufs, BLOCK_SIZE - 2, &[1, 2, 3, 4]);
        assert_eq!(&bufs[&0][bs - 2..], &[1, 2]);
        assert_eq!(&bufs[&1][..2], &[3, 4]);
        // A block outside the window is skipped, not an error.
        place(&mut bufs, 3 * BLOCK_SIZE, &[9; 8]);
        assert_eq!(bufs.len(), 2);
    }
}
