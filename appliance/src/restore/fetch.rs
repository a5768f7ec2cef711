//! Fetches planned chunks, checks each against its id, and writes it at its offsets in a
//! local file. Reads run concurrently; decompression runs on blocking threads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use ferry_core::layout;
use ferry_core::pack::open_blob;
use futures::{stream, StreamExt, TryStreamExt};

use super::plan::Fetch;
use crate::repo::{Repository, IO_CONCURRENCY};

/// Writes every planned chunk into `out`. All-zero chunks are skipped when `skip_zeros`
/// (the file was created sparse, so they already read as zeros).
pub async fn fetch_into(
    repo: &Repository,
    fetches: Vec<Fetch>,
    out: Arc<File>,
    skip_zeros: bool,
    written: Arc<AtomicU64>,
) -> Result<()> {
    stream::iter(fetches)
        .map(|f| {
            let (out, written) = (out.clone(), written.clone());
            async move {
                let data = repo.read_pack_range(&f.pack, f.offset, f.len).await?;
                tokio::task::spawn_blocking(move || {
                    let key = layout::pack_key(&f.pack);
                    for (e, offsets) in &f.blobs {
                        let start = (e.offset - f.offset) as usize;
                        let blob = data
                            .get(start..start + e.stored_len as usize)
                            .with_context(|| {
                                format!(
                                    "pack {key} is shorter than its index says (chunk {})",
                                    e.id
                                )
                            })?;
                        let raw = open_blob(&key, e, blob)?;
                        let zero = skip_zeros && raw.iter().all(|b| *b == 0);
                        for &at in offsets {
                            if !zero {
                                out.write_all_at(&raw, at)
                                    .with_context(|| format!("writing at offset {at}"))?;
                            }
                            written.fetch_add(raw.len() as u64, Ordering::Relaxed);
                        }
                    }
                    Ok::<_, anyhow::Error>(())
                })
                .await?
            }
        })
        .buffer_unordered(IO_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
