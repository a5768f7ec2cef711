//! `ferry restore`: a point back into a file, or onto a host's disk writing only the
//! byte ranges that differ.
//!
//! Nothing is presented as restored until every chunk has been read back and checked
//! against its id: a file restore writes `<file>.ferry-partial` (mode 0600) and renames
//! it at the end; a block device is written in place and read back against the point; a host restore stages the changed chunks locally first and touches the host's
//! disk only once all of them are verified.

mod fetch;
mod host_checks;
mod target;
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
use target::Target;

#[derive(Debug, Serialize)]
pub struct FileRestoreReport {
    pub host: String,
    pub point: String,
    pub to: PathBuf,
    pub image_size: u64,
    pub image_blake3: String,
    pub chunks: usize,
    /// A block device target was read back and hashed equal to the point.
    pub read_back_verified: bool,
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
    let target = target::classify(to)?;
    let loaded = repo.read_index().await?;
    let offsets: Vec<(u64, ChunkId)> = m.offsets().map(|(o, c)| (o, c.id)).collect();
    let fetches = ferry_store::chunks::plan(
        &loaded.index,
        placements(offsets.iter().map(|(o, id)| (*o, id))),
    )
    .with_context(|| format!("point {} of host {}", m.meta.point, m.meta.host))?;
    drop(loaded);
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let bar = progress.follow(
        &format!("restore {}", m.meta.host),
        Some(m.meta.image_size),
        move || w.load(std::sync::atomic::Ordering::Relaxed),
    );
    let r = match &target {
        Target::File(path) => to_file(repo, m, path, fetches, fsync, written).await,
        Target::Device(path) => to_device(repo, m, path, fetches, written).await,
    };
    bar.finish();
    let (to, verified) = r?;
    Ok(FileRestoreReport {
        host: m.meta.host.clone(),
        point: m.meta.point.clone(),
        to,
        image_size: m.meta.image_size,
        image_blake3: m.meta.image_blake3.clone(),
        chunks: m.chunks.len(),
        read_back_verified: verified,
        duration_s: started.elapsed().as_secs_f64(),
    })
}

/// A regular file: `<path>.ferry-partial` (mode 0600: an image holds the host's secrets),
/// sparse, renamed into place once every chunk is written.
async fn to_file(
    repo: &Repository,
    m: &Manifest,
    path: &Path,
    fetches: Vec<ferry_store::chunks::Fetch>,
    fsync: bool,
    written: Arc<AtomicU64>,
) -> Result<(PathBuf, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = partial_path(path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    // A partial file left by an earlier run keeps its mode: set it.
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .with_context(|| format!("setting the mode of {}", partial.display()))?;
    file.set_len(m.meta.image_size)
        .with_context(|| format!("sizing {}", partial.display()))?;
    let file = Arc::new(file);
    let mode = fetch::WriteMode {
        skip_zeros: true,
        durable: fsync,
    };
    if let Err(e) = fetch::fetch_into(repo, fetches, file.clone(), mode, written).await {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context(format!(
            "restore to {} failed; nothing was written there",
            path.display()
        )));
    }
    if fsync {
        file.sync_all()
            .with_context(|| format!("syncing {}", partial.display()))?;
    }
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming {} into place", partial.display()))?;
    if fsync {
        // The rename is durable only once the directory is.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))?;
    }
    Ok((path.to_path_buf(), false))
}

/// A block device, in place: refused when in use or smaller than the image; every byte
/// of the image written (zeros too: the device holds old data), flushed, then read back
/// from the device and hashed against the point before success is reported.
async fn to_device(
    repo: &Repository,
    m: &Manifest,
    path: &Path,
    fetches: Vec<ferry_store::chunks::Fetch>,
    written: Arc<AtomicU64>,
) -> Result<(PathBuf, bool)> {
    let (file, size) = target::open_device(path)?;
    if size < m.meta.image_size {
        anyhow::bail!(
            "{} holds {size} bytes, the image {}: nothing was written",
            path.display(),
            m.meta.image_size
        );
    }
    let file = Arc::new(file);
    let mode = fetch::WriteMode {
        skip_zeros: false,
        durable: true,
    };
    let half_written = || {
        format!(
            "restore to {} failed part-way: the device now holds a mix of old and new data; run the same restore again to finish it",
            path.display()
        )
    };
    fetch::fetch_into(repo, fetches, file.clone(), mode, written)
        .await
        .with_context(half_written)?;
    file.sync_all().with_context(half_written)?;
    let f = file.clone();
    let len = m.meta.image_size;
    let got = tokio::task::spawn_blocking(move || target::hash_prefix(&f, len)).await??;
    if got != m.meta.image_blake3 {
        anyhow::bail!(
            "{}: read back, the image hashes to {got}, the point to {}: {}",
            path.display(),
            m.meta.image_blake3,
            half_written()
        );
    }
    Ok((path.to_path_buf(), true))
}
