//! A synthetic point for benchmarks: an image of any size whose every 512 KiB block holds
//! data (32 KiB chunks, each unique: a counter, then zeros, so that it compresses to a
//! few dozen bytes and a 16 GiB image costs little disk), written with the store's own
//! format code in the order a capture writes: packs, index, locations, point.

use anyhow::Result;
use ferry_core::index::{ChunkIndex, IndexFile};
use ferry_core::manifest::{CaptureStats, ChunkRef, Consistency, Manifest, PointMeta};
use ferry_core::pack::{seal_blob, PackBuilder};
use ferry_core::ChunkId;
use ferry_store::Repository;

const CHUNK: usize = 32 << 10;
/// Chunks per pack: about what an 8 MiB pack of real data holds.
const PACK_CHUNKS: usize = 1024;

/// Writes one point of `size` bytes (a multiple of 32 KiB) for `host`.
pub async fn point(repo: &Repository, host: &str, point: &str, size: u64) -> Result<Manifest> {
    let n = size / CHUNK as u64;
    let mut chunks = Vec::with_capacity(n as usize);
    let mut index = IndexFile::default();
    let mut pack = PackBuilder::default();
    let salt = ChunkId::of(host.as_bytes());
    let mut raw = vec![0u8; CHUNK];
    let mut in_pack = 0;
    for i in 0..n {
        raw[..8].copy_from_slice(&i.to_le_bytes());
        raw[8..40].copy_from_slice(&salt.0);
        let id = ChunkId::of(&raw);
        pack.add(id, CHUNK as u32, &seal_blob(&raw, 1)?);
        chunks.push(ChunkRef {
            id,
            len: CHUNK as u32,
        });
        in_pack += 1;
        if in_pack == PACK_CHUNKS || i + 1 == n {
            in_pack = 0;
            let done = std::mem::take(&mut pack).finish();
            repo.upload_pack(&done).await?;
            index.packs.push((done.id, done.entries));
        }
    }
    repo.write_index(&index).await?;
    let m = Manifest {
        meta: PointMeta {
            point: point.into(),
            host: host.into(),
            disk: "/dev/synthetic".into(),
            created: time::OffsetDateTime::now_utc(),
            image_size: n * CHUNK as u64,
            consistency: Consistency::Crash,
            image_blake3: String::new(),
            parent: None,
            stats: CaptureStats::default(),
            machine: None,
            converted: None,
            full_read_at: None,
        },
        chunks,
    };
    let mut all = ChunkIndex::default();
    all.add_file(&index);
    drop(index);
    let locations = ferry_store::locations::encode(&m, |id| all.get(id).copied())?;
    repo.write_locations(&m, locations).await?;
    repo.write_point(&m).await?;
    Ok(m)
}
