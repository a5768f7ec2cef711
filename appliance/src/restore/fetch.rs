//! Fetches planned chunks, checks each against its id, and writes it at its offsets in a
//! local file. Reads run concurrently, decompression on blocking threads, writes on one
//! writer thread.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use ferry_core::id::is_all_zero;
use futures::{stream, StreamExt, TryStreamExt};

use ferry_store::chunks::{open_blobs, Fetch};
use ferry_store::repo::Repository;

/// Dirty data is handed to the disk every this many bytes, so that the final fsync of a
/// restore finds little left to write instead of the whole image.
const FLUSH_EVERY: usize = 64 << 20;

/// Starts writeback of the file's dirty pages without waiting for it.
fn start_writeback(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor we own; a failure only loses the overlap,
    // the final fsync still makes the data durable.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Pack ranges in flight. Each holds up to a pack (8 MiB) in memory until it is opened,
/// so this bounds restore memory; four hide a store's latency while two cores open.
const FETCH_CONCURRENCY: usize = 4;

/// How [`fetch_into`] writes.
#[derive(Clone, Copy)]
pub struct WriteMode {
    /// Skip all-zero chunks (the file was created sparse, so they already read as zeros).
    pub skip_zeros: bool,
    /// Hand dirty data to the disk as the restore goes (the caller fsyncs at the end).
    pub durable: bool,
}

/// Writes every planned chunk into `out`.
///
/// One thread does all the writes: concurrent writes to one file only contend for its
/// inode lock, while reading and decompressing do run in parallel.
pub async fn fetch_into(
    repo: &Repository,
    fetches: Vec<Fetch>,
    out: Arc<File>,
    mode: WriteMode,
    written: Arc<AtomicU64>,
) -> Result<()> {
    let (tx, rx) = crossbeam_channel::bounded::<(u64, Bytes)>(256);
    let w = written.clone();
    let writer =
        std::thread::Builder::new()
            .name("write".into())
            .spawn(move || -> Result<()> {
                let mut since_flush = 0usize;
                for (at, data) in rx {
                    out.write_all_at(&data, at)
                        .with_context(|| format!("writing at offset {at}"))?;
                    w.fetch_add(data.len() as u64, Ordering::Relaxed);
                    since_flush += data.len();
                    if mode.durable && since_flush >= FLUSH_EVERY {
                        start_writeback(&out);
                        since_flush = 0;
                    }
                }
                Ok(())
            })?;
    let fetched = stream::iter(fetches)
        .map(|f| {
            let (tx, written) = (tx.clone(), written.clone());
            async move {
                let data = repo.read_pack_range(&f.pack, f.offset, f.len).await?;
                tokio::task::spawn_blocking(move || {
                    open_fetch(&f, &data, mode.skip_zeros, &tx, &written)
                })
                .await?
            }
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await;
    drop(tx);
    let wrote = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    // A write error (disk full, say) is what closed the channel the readers saw.
    wrote?;
    fetched?;
    Ok(())
}

/// Opens every blob of one fetched range and queues its writes.
fn open_fetch(
    f: &Fetch,
    data: &Bytes,
    skip_zeros: bool,
    tx: &crossbeam_channel::Sender<(u64, Bytes)>,
    written: &AtomicU64,
) -> Result<()> {
    open_blobs(f, data, |_, raw, offsets| -> Result<()> {
        if skip_zeros && is_all_zero(&raw) {
            written.fetch_add(raw.len() as u64 * offsets.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        for &at in offsets {
            tx.send((at, raw.clone()))
                .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
        }
        Ok(())
    })
}
