//! The capture pipeline: read -> chunk -> hash -> dedupe -> compress -> pack -> upload.
//! A full read's front is a read thread and a chunk thread; a changed-blocks capture's
//! front is one thread that fetches ranges and rebuilds the chunk list
//! ([`super::changed`]); the stages after them are the same.
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
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use ferry_core::blockmap::{BlockHash, BlockMap, BLOCK_SIZE};
use ferry_core::chunking::StreamChunker;
use ferry_core::id::{PackId, ZeroIds};
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

impl Counters {
    /// Before a full read that follows a changed-blocks read that gave up: what is new
    /// and read is counted again (uploads stay counted: they happened).
    pub fn reset_read(&self) {
        self.bytes_read.store(0, Ordering::Relaxed);
        self.bytes_new.store(0, Ordering::Relaxed);
        self.chunks_new.store(0, Ordering::Relaxed);
    }
}

pub struct PipelineResult {
    pub chunks: Vec<ChunkRef>,
    pub image_size: u64,
    pub image_blake3: String,
    /// The hashes of each block of what was captured, for the next capture.
    pub blocks: BlockMap,
    /// The packs this run uploaded, for its index object.
    pub packs: Vec<(PackId, Vec<PackEntry>)>,
}

struct Blob {
    id: ChunkId,
    raw_len: u32,
    data: Vec<u8>,
}

/// Work for the hash threads: a chunk (hash, dedupe, compress), a chunk already in the
/// store at its place in the list, or read bytes starting on a block boundary (their
/// blocks' hashes).
pub enum Work {
    Chunk(usize, Bytes),
    Known(usize, ChunkRef),
    Block(u64, Bytes),
}

/// What the hash threads fill in, each at its own index.
struct Shared {
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
    refs: Mutex<Vec<ChunkRef>>,
    /// Chunks of this run already sent to the packer.
    claimed: Mutex<HashSet<ChunkId>>,
    blocks: Mutex<Vec<BlockHash>>,
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

/// What a front hands the back stages when it is done.
pub struct FrontResult {
    pub image_size: u64,
    /// The block map, when the front made it itself (a changed-blocks capture).
    pub blocks: Option<BlockMap>,
}

/// Runs the pipeline over `source` until its end.
pub async fn run(
    source: Box<dyn Read + Send>,
    repo: Arc<Repository>,
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
) -> Result<PipelineResult> {
    let params = repo.config.chunker;
    let c = counters.clone();
    run_with(repo, index, counters, move |work| {
        let (block_tx, block_rx) = bounded::<Bytes>(4);
        let reader = thread::Builder::new()
            .name("read".into())
            .spawn(move || blocks::read_stage(source, block_tx))?;
        let chunked = chunk_stage(block_rx, StreamChunker::new(params), work, &c);
        let image_size = join(reader, "read")?;
        chunked?;
        Ok(FrontResult {
            image_size,
            blocks: None,
        })
    })
    .await
}

/// Runs the back stages with `front` (on a thread of its own) feeding them work.
pub async fn run_with<F>(
    repo: Arc<Repository>,
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
    front: F,
) -> Result<PipelineResult>
where
    F: FnOnce(Sender<Work>) -> Result<FrontResult> + Send + 'static,
{
    let workers = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let (work_tx, work_rx) = bounded::<Work>(workers * 8);
    let (blob_tx, blob_rx) = bounded::<Blob>(workers * 4);
    let (pack_tx, pack_rx) = mpsc::channel::<FinishedPack>(2);
    let shared = Arc::new(Shared {
        index,
        counters: counters.clone(),
        refs: Mutex::new(Vec::new()),
        claimed: Mutex::new(HashSet::new()),
        blocks: Mutex::new(Vec::new()),
        first_block: Mutex::new(None),
    });

    let spawn = |name: String| thread::Builder::new().name(name);
    let front = spawn("front".into()).spawn(move || front(work_tx))?;
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
        let front = join(front, "front")?;
        for h in hashers {
            join(h, "hash")?;
        }
        join(packer, "pack")?;
        Ok::<_, anyhow::Error>(front)
    })
    .await?;
    // A read error explains everything after it; an upload error explains a closed channel.
    let front = match (joined, &uploaded) {
        (Err(e), Err(_)) if e.to_string().contains("channel closed") => {
            return Err(uploaded.err().unwrap_or(e))
        }
        (Err(e), _) => return Err(e),
        (Ok(v), _) => v,
    };
    let packs = uploaded?;
    let image_size = front.image_size;
    let chunks = std::mem::take(&mut *lock(&shared.refs)?);
    if chunks.iter().any(|c| c.len == 0) {
        return Err(anyhow!("internal error: a chunk was not hashed"));
    }
    let total: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
    if total != image_size {
        return Err(anyhow!(
            "internal error: the chunks add up to {total} bytes, the image to {image_size}"
        ));
    }
    let blocks = match front.blocks {
        Some(b) => b,
        None => BlockMap {
            block_size: BLOCK_SIZE,
            image_size,
            blocks: std::mem::take(&mut *lock(&shared.blocks)?),
        },
    };
    if blocks.blocks.len() as u64 != ferry_core::blockmap::block_count(BLOCK_SIZE, image_size) {
        return Err(anyhow!("internal error: a block was not hashed"));
    }
    let first = lock(&shared.first_block)?.take();
    let image_blake3 = blocks.image_hash(first.as_ref());
    Ok(PipelineResult {
        chunks,
        image_size,
        image_blake3,
        blocks,
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
    for block in blocks.iter() {
        work.send(Work::Block(total, block.clone()))
            .map_err(|_| closed())?;
        total += block.len() as u64;
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
            Work::Block(at, block) => {
                hash_blocks(sh, at, &block)?;
                continue;
            }
            Work::Known(seq, r) => {
                put_at(&mut *lock(&sh.refs)?, seq, r, ChunkRef { id: r.id, len: 0 });
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

/// The hashes of the blocks of `data`, read at image offset `at` (a block boundary).
fn hash_blocks(sh: &Shared, at: u64, data: &Bytes) -> Result<()> {
    let first = at / u64::from(BLOCK_SIZE);
    let hashes: Vec<BlockHash> = data
        .chunks(BLOCK_SIZE as usize)
        .enumerate()
        .map(|(k, b)| BlockHash::of(BLOCK_SIZE, first + k as u64, b))
        .collect();
    let mut all = lock(&sh.blocks)?;
    let zero = BlockHash {
        sha256: [0; 32],
        cv: [0; 32],
    };
    for (k, h) in hashes.into_iter().enumerate() {
        put_at(&mut all, (first as usize) + k, h, zero);
    }
    drop(all);
    if at == 0 && data.len() <= BLOCK_SIZE as usize {
        *lock(&sh.first_block)? = Some(data.clone());
    }
    Ok(())
}

fn pack_stage(rx: Receiver<Blob>, tx: mpsc::Sender<FinishedPack>, target: usize) -> Result<()> {
    // Room for the target, the blob that crosses it and the entry table.
    let capacity = target + (1 << 20);
    let mut builder = PackBuilder::with_capacity(capacity);
    for b in rx {
        builder.add(b.id, b.raw_len, &b.data);
        if builder.len() >= target {
            let p = std::mem::replace(&mut builder, PackBuilder::with_capacity(capacity)).finish();
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
