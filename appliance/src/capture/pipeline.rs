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
use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use ferry_core::chunking::StreamChunker;
use ferry_core::id::PackId;
use ferry_core::index::ChunkIndex;
use ferry_core::manifest::ChunkRef;
use ferry_core::pack::{FinishedPack, PackBuilder, PackEntry};
use ferry_core::ChunkId;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use crate::repo::Repository;

const READ_BLOCK: usize = 4 << 20;
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
    let (work_tx, work_rx) = bounded::<(usize, Bytes)>(workers * 8);
    let (hash_tx, hash_rx) = bounded::<Bytes>(64);
    let (blob_tx, blob_rx) = bounded::<Blob>(workers * 4);
    let (pack_tx, pack_rx) = mpsc::channel::<FinishedPack>(2);
    let refs = Arc::new(Mutex::new(Vec::<ChunkRef>::new()));
    let claimed = Arc::new(Mutex::new(HashSet::<ChunkId>::new()));

    let params = repo.config.chunker;
    let c = counters.clone();
    let chunker = thread::Builder::new()
        .name("chunk".into())
        .spawn(move || chunk_stage(source, StreamChunker::new(params), work_tx, hash_tx, &c))?;
    let hasher = thread::Builder::new()
        .name("image-hash".into())
        .spawn(move || {
            let mut h = blake3::Hasher::new();
            for b in hash_rx {
                h.update(&b);
            }
            h.finalize().to_hex().to_string()
        })?;
    let level = repo.config.compression.level;
    let mut worker_handles = Vec::new();
    for i in 0..workers {
        let (rx, tx) = (work_rx.clone(), blob_tx.clone());
        let (refs, claimed, index, c) = (
            refs.clone(),
            claimed.clone(),
            index.clone(),
            counters.clone(),
        );
        worker_handles.push(
            thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || hash_stage(rx, tx, &refs, &claimed, &index, level, &c))?,
        );
    }
    drop((work_rx, blob_tx));
    let target = repo.config.pack_target_size as usize;
    let packer = thread::Builder::new()
        .name("pack".into())
        .spawn(move || pack_stage(blob_rx, pack_tx, target))?;

    let uploaded = upload_stage(pack_rx, &repo, &counters).await;

    let joined = tokio::task::spawn_blocking(move || {
        let image_size = join(chunker, "chunk")?;
        let image_blake3 = hasher
            .join()
            .map_err(|_| anyhow!("image hash thread panicked"))?;
        for w in worker_handles {
            join(w, "hash")?;
        }
        join(packer, "pack")?;
        Ok::<_, anyhow::Error>((image_size, image_blake3))
    })
    .await?;
    // A read error explains everything after it; an upload error explains a closed channel.
    let (image_size, image_blake3) = match (joined, &uploaded) {
        (Err(e), Err(_)) if e.to_string().contains("channel closed") => {
            return Err(uploaded.err().unwrap_or(e))
        }
        (Err(e), _) => return Err(e),
        (Ok(v), _) => v,
    };
    let packs = uploaded?;
    let chunks = std::mem::take(
        &mut *refs
            .lock()
            .map_err(|_| anyhow!("chunk list lock poisoned"))?,
    );
    if chunks.iter().any(|c| c.len == 0) {
        return Err(anyhow!("internal error: a chunk was not hashed"));
    }
    Ok(PipelineResult {
        chunks,
        image_size,
        image_blake3,
        packs,
    })
}

fn join<T>(h: thread::JoinHandle<Result<T>>, stage: &str) -> Result<T> {
    h.join().map_err(|_| anyhow!("{stage} thread panicked"))?
}

fn chunk_stage(
    mut source: Box<dyn Read + Send>,
    mut chunker: StreamChunker,
    work: Sender<(usize, Bytes)>,
    image: Sender<Bytes>,
    counters: &Counters,
) -> Result<u64> {
    let closed = || anyhow!("pipeline channel closed");
    let (mut seq, mut total, mut out) = (0usize, 0u64, Vec::new());
    loop {
        let spare = chunker.spare(READ_BLOCK);
        let n = read_full(&mut source, spare)?;
        chunker.commit(READ_BLOCK, n, &mut out);
        total += n as u64;
        counters.bytes_read.store(total, Ordering::Relaxed);
        if n == 0 {
            chunker.finish(&mut out);
        }
        for c in out.drain(..) {
            image.send(c.clone()).map_err(|_| closed())?;
            work.send((seq, c)).map_err(|_| closed())?;
            seq += 1;
        }
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Fills `buf` unless the stream ends first; returns the bytes read (0 at the end).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("reading the disk")),
        }
    }
    Ok(n)
}

fn hash_stage(
    rx: Receiver<(usize, Bytes)>,
    tx: Sender<Blob>,
    refs: &Mutex<Vec<ChunkRef>>,
    claimed: &Mutex<HashSet<ChunkId>>,
    index: &ChunkIndex,
    level: i32,
    counters: &Counters,
) -> Result<()> {
    let mut compressor =
        zstd::bulk::Compressor::new(level).context("creating a zstd compressor")?;
    for (seq, data) in rx {
        let id = ChunkId::of(&data);
        let len = data.len() as u32;
        {
            let mut r = refs
                .lock()
                .map_err(|_| anyhow!("chunk list lock poisoned"))?;
            if r.len() <= seq {
                r.resize(seq + 1, ChunkRef { id, len: 0 });
            }
            r[seq] = ChunkRef { id, len };
        }
        let new = !index.contains(&id)
            && claimed
                .lock()
                .map_err(|_| anyhow!("dedupe lock poisoned"))?
                .insert(id);
        if !new {
            continue;
        }
        counters.chunks_new.fetch_add(1, Ordering::Relaxed);
        counters
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
