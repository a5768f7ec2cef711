//! The capture pipeline: read -> chunk -> hash -> dedupe -> compress -> pack -> upload.
//!
//! Stages are threads joined by bounded channels (uploads are async tasks), so memory is
//! bounded by channel capacities and pack size, never by disk size, and a slow stage
//! holds the ones before it back. If any stage fails the channels close and every other
//! stage stops; packs already uploaded stay in the store for the next capture to reuse.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{anyhow, Context, Result};
use blake3::hazmat::ChainingValue;
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use ferry_core::chunking::StreamChunker;
use ferry_core::id::{PackId, ZeroIds};
use ferry_core::image_hash;
use ferry_core::index::ChunkIndex;
use ferry_core::manifest::ChunkRef;
use ferry_core::pack::{FinishedPack, PackBuilder, PackEntry};
use ferry_core::ChunkId;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::blocks;
use ferry_store::repo::Repository;

const UPLOAD_CONCURRENCY: usize = 4;

/// Counters the progress display reads while the pipeline runs.
#[derive(Default)]
pub struct Counters {
    pub bytes_read: AtomicU64,
    pub bytes_new: AtomicU64,
    pub chunks_new: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub packs_uploaded: AtomicU64,
}

pub struct PipelineResult {
    pub chunks: Vec<ChunkRef>,
    pub image_size: u64,
    pub image_blake3: String,
    /// The packs this run uploaded, for its index object.
    pub packs: Vec<(PackId, Vec<PackEntry>)>,
}

struct Blob {
    id: ChunkId,
    raw_len: u32,
    data: Vec<u8>,
}

/// Work for the hash threads: a chunk (hash, dedupe, compress) or a whole read block
/// (its share of the image hash).
enum Work {
    Chunk(usize, Bytes),
    Block(u64, Bytes),
}

/// What the hash threads fill in, each at its own index.
struct Shared {
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
    refs: Mutex<Vec<ChunkRef>>,
    /// Chunks of this run already sent to the packer.
    claimed: Mutex<HashSet<ChunkId>>,
    block_cvs: Mutex<Vec<ChainingValue>>,
    first_block: Mutex<Option<Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| anyhow!("pipeline state lock poisoned"))
}

/// Stores `v` at `i`, growing the vector with `fill` as needed.
fn put_at<T: Clone>(v: &mut Vec<T>, i: usize, v_i: T, fill: T) {
    if v.len() <= i {
        v.resize(i + 1, fill);
    }
    v[i] = v_i;
}

/// Runs the pipeline over `source` until its end.
pub async fn run(
    source: Box<dyn Read + Send>,
    repo: Arc<Repository>,
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
) -> Result<PipelineResult> {
    let workers = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let (block_tx, block_rx) = bounded::<Bytes>(4);
    let (work_tx, work_rx) = bounded::<Work>(workers * 8);
    let (blob_tx, blob_rx) = bounded::<Blob>(workers * 4);
    let (pack_tx, pack_rx) = mpsc::channel::<FinishedPack>(2);
    let shared = Arc::new(Shared {
        index,
        counters: counters.clone(),
        refs: Mutex::new(Vec::new()),
        claimed: Mutex::new(HashSet::new()),
        block_cvs: Mutex::new(Vec::new()),
        first_block: Mutex::new(None),
    });

    let spawn = |name: String| thread::Builder::new().name(name);
    let reader = spawn("read".into()).spawn(move || blocks::read_stage(source, block_tx))?;
    let params = repo.config.chunker;
    let c = counters.clone();
    let chunker = spawn("chunk".into())
        .spawn(move || chunk_stage(block_rx, StreamChunker::new(params), work_tx, &c))?;
    let level = repo.config.compression.level;
    let mut hashers = Vec::new();
    for i in 0..workers {
        let (rx, tx, sh) = (work_rx.clone(), blob_tx.clone(), shared.clone());
        hashers.push(spawn(format!("hash-{i}")).spawn(move || hash_stage(rx, tx, &sh, level))?);
    }
    drop((work_rx, blob_tx));
    let target = repo.config.pack_target_size as usize;
    let packer = spawn("pack".into()).spawn(move || pack_stage(blob_rx, pack_tx, target))?;

    let uploaded = upload_stage(pack_rx, &repo, &counters).await;

    let joined = tokio::task::spawn_blocking(move || {
        let image_size = join(reader, "read")?;
        join(chunker, "chunk")?;
        for h in hashers {
            join(h, "hash")?;
        }
        join(packer, "pack")?;
        Ok::<_, anyhow::Error>(image_size)
    })
    .await?;
    // A read error explains everything after it; an upload error explains a closed channel.
    let image_size = match (joined, &uploaded) {
        (Err(e), Err(_)) if e.to_string().contains("channel closed") => {
            return Err(uploaded.err().unwrap_or(e))
        }
        (Err(e), _) => return Err(e),
        (Ok(v), _) => v,
    };
    let packs = uploaded?;
    let chunks = std::mem::take(&mut *lock(&shared.refs)?);
    if chunks.iter().any(|c| c.len == 0) {
        return Err(anyhow!("internal error: a chunk was not hashed"));
    }
    let cvs = std::mem::take(&mut *lock(&shared.block_cvs)?);
    let first = lock(&shared.first_block)?.take();
    let image_blake3 = image_hash::combine(blocks::BLOCK as u64, image_size, &cvs, first.as_ref());
    Ok(PipelineResult {
        chunks,
        image_size,
        image_blake3: image_blake3.to_hex().to_string(),
        packs,
    })
}

fn join<T>(h: thread::JoinHandle<Result<T>>, stage: &str) -> Result<T> {
    h.join().map_err(|_| anyhow!("{stage} thread panicked"))?
}

fn chunk_stage(
    blocks: Receiver<Bytes>,
    mut chunker: StreamChunker,
    work: Sender<Work>,
    counters: &Counters,
) -> Result<()> {
    let closed = || anyhow!("pipeline channel closed");
    let (mut seq, mut total, mut out) = (0usize, 0u64, Vec::new());
    let mut send = |out: &mut Vec<Bytes>| {
        for c in out.drain(..) {
            work.send(Work::Chunk(seq, c)).map_err(|_| closed())?;
            seq += 1;
        }
        Ok::<_, anyhow::Error>(())
    };
    for (i, block) in blocks.iter().enumerate() {
        total += block.len() as u64;
        work.send(Work::Block(i as u64, block.clone()))
            .map_err(|_| closed())?;
        chunker.push_bytes(block, &mut out);
        counters.bytes_read.store(total, Ordering::Relaxed);
        send(&mut out)?;
    }
    chunker.finish(&mut out);
    send(&mut out)
}

fn hash_stage(rx: Receiver<Work>, tx: Sender<Blob>, sh: &Shared, level: i32) -> Result<()> {
    let mut zeros = ZeroIds::default();
    let mut compressor =
        zstd::bulk::Compressor::new(level).context("creating a zstd compressor")?;
    for work in rx {
        let (seq, data) = match work {
            Work::Block(i, block) => {
                let cv = image_hash::block_cv(blocks::BLOCK as u64, i, &block);
                put_at(&mut *lock(&sh.block_cvs)?, i as usize, cv, [0; 32]);
                if i == 0 {
                    *lock(&sh.first_block)? = Some(block);
                }
                continue;
            }
            Work::Chunk(seq, data) => (seq, data),
        };
        let id = zeros.id_of(&data);
        let len = data.len() as u32;
        put_at(
            &mut *lock(&sh.refs)?,
            seq,
            ChunkRef { id, len },
            ChunkRef { id, len: 0 },
        );
        let new = !sh.index.contains(&id) && lock(&sh.claimed)?.insert(id);
        if !new {
            continue;
        }
        sh.counters.chunks_new.fetch_add(1, Ordering::Relaxed);
        sh.counters
            .bytes_new
            .fetch_add(u64::from(len), Ordering::Relaxed);
        let blob = compressor.compress(&data).context("compressing a chunk")?;
        tx.send(Blob {
            id,
            raw_len: len,
            data: blob,
        })
        .map_err(|_| anyhow!("pipeline channel closed"))?;
    }
    Ok(())
}

fn pack_stage(rx: Receiver<Blob>, tx: mpsc::Sender<FinishedPack>, target: usize) -> Result<()> {
    let mut builder = PackBuilder::default();
    for b in rx {
        builder.add(b.id, b.raw_len, &b.data);
        if builder.len() >= target {
            let p = std::mem::take(&mut builder).finish();
            tx.blocking_send(p)
                .map_err(|_| anyhow!("pipeline channel closed"))?;
        }
    }
    if !builder.is_empty() {
        tx.blocking_send(builder.finish())
            .map_err(|_| anyhow!("pipeline channel closed"))?;
    }
    Ok(())
}

async fn upload_stage(
    mut rx: mpsc::Receiver<FinishedPack>,
    repo: &Repository,
    counters: &Counters,
) -> Result<Vec<(PackId, Vec<PackEntry>)>> {
    let mut done = Vec::new();
    let mut running = FuturesUnordered::new();
    let upload = |p: FinishedPack| async move {
        repo.upload_pack(&p).await?;
        counters
            .bytes_uploaded
            .fetch_add(p.bytes.len() as u64, Ordering::Relaxed);
        counters.packs_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok::<_, anyhow::Error>((p.id, p.entries))
    };
    loop {
        tokio::select! {
            biased;
            Some(r) = running.next(), if !running.is_empty() => done.push(r?),
            p = rx.recv(), if running.len() < UPLOAD_CONCURRENCY => match p {
                Some(p) => running.push(upload(p)),
                None => break,
            },
        }
    }
    while let Some(r) = running.next().await {
        done.push(r?);
    }
    Ok(done)
}
