//! `ferry restore`: a point back into a file, or onto a host's disk writing only the
//! byte ranges that differ.
//!
//! Nothing is presented as restored until every chunk has been read back and checked
//! against its id: a file restore writes `<file>.ferry-partial` and renames it at the
//! end; a host restore stages the changed chunks locally first and touches the host's
//! disk only once all of them are verified.

mod fetch;
mod to_host;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ferry_core::manifest::Manifest;
use ferry_core::ChunkId;
use serde::Serialize;

pub use to_host::{restore_to_host, HostRestoreReport, ToHostOptions};

use crate::progress::Progress;
use ferry_store::repo::Repository;

#[derive(Debug, Serialize)]
pub struct FileRestoreReport {
    pub host: String,
    pub point: String,
    pub to: PathBuf,
    pub image_size: u64,
    pub image_blake3: String,
    pub chunks: usize,
    pub duration_s: f64,
}

/// Offsets of every chunk of `m`, grouped by chunk (a chunk may occur many times).
pub(crate) fn placements<'a>(
    chunks: impl Iterator<Item = (u64, &'a ChunkId)>,
) -> HashMap<ChunkId, Vec<u64>> {
    let mut wanted: HashMap<ChunkId, Vec<u64>> = HashMap::new();
    for (off, id) in chunks {
        wanted.entry(*id).or_default().push(off);
    }
    wanted
}

fn partial_path(to: &Path) -> PathBuf {
    let mut s = to.as_os_str().to_owned();
    s.push(".ferry-partial");
    PathBuf::from(s)
}

pub async fn restore_to_file(
    repo: &Repository,
    m: &Manifest,
    to: &Path,
    fsync: bool,
    progress: &Progress,
) -> Result<FileRestoreReport> {
    let started = Instant::now();
    let loaded = repo.read_index().await?;
    let offsets: Vec<(u64, ChunkId)> = m.offsets().map(|(o, c)| (o, c.id)).collect();
    let fetches = ferry_store::chunks::plan(
        &loaded.index,
        placements(offsets.iter().map(|(o, id)| (*o, id))),
    )
    .with_context(|| format!("point {} of host {}", m.meta.point, m.meta.host))?;
    let partial = partial_path(to);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    file.set_len(m.meta.image_size)
        .with_context(|| format!("sizing {}", partial.display()))?;
    let file = Arc::new(file);
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let bar = progress.follow(
        &format!("restore {}", m.meta.host),
        Some(m.meta.image_size),
        move || w.load(std::sync::atomic::Ordering::Relaxed),
    );
    let mode = fetch::WriteMode {
        skip_zeros: true,
        durable: fsync,
    };
    let result = fetch::fetch_into(repo, fetches, file.clone(), mode, written).await;
    bar.finish();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context(format!(
            "restore to {} failed; nothing was written there",
            to.display()
        )));
    }
    if fsync {
        file.sync_all()
            .with_context(|| format!("syncing {}", partial.display()))?;
    }
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} into place", partial.display()))?;
    Ok(FileRestoreReport {
        host: m.meta.host.clone(),
        point: m.meta.point.clone(),
        to: to.to_path_buf(),
        image_size: m.meta.image_size,
        image_blake3: m.meta.image_blake3.clone(),
        chunks: m.chunks.len(),
        duration_s: started.elapsed().as_secs_f64(),
    })
}
