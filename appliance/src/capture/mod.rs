//! `ferry capture`: one host's disk into a new recovery point.
//!
//! Order of writes is what makes a capture crash-safe: packs first (by the pipeline),
//! then one index object naming them, then the point's locations object (where each of its
//! chunks is, for image builds), then the point. A point therefore exists only when
//! everything it names is durable; a capture killed earlier leaves packs that the next
//! capture finds (see [`ferry_store::repo::Repository::load_index`]) and does not upload again.

mod blocks;
mod changed;
mod host_side;
mod method;
mod pipeline;
pub mod source;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ferry_core::index::{ChunkIndex, IndexFile};
use ferry_core::manifest::{point_id, CaptureStats, Consistency, Manifest, PointMeta, ReadMethod};
use serde::Serialize;
use std::sync::atomic::Ordering;
use time::OffsetDateTime;

pub use method::ReadInfo;
pub use pipeline::Counters;

use crate::host::{Host, SnapshotMethod};
use crate::progress::{Bar, Progress};
use crate::records::Records;
use crate::shutdown::Shutdown;
use crate::ssh::{quote, SshSession, SshTarget};
use ferry_store::repo::Repository;

/// What `ferry capture --json` prints for each host.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub host: String,
    pub point: String,
    pub parent: Option<String>,
    pub image_size: u64,
    pub image_blake3: String,
    pub consistency: Consistency,
    /// `bytes_read`, `bytes_new`, `bytes_uploaded`, `chunks`, `chunks_new`,
    /// `packs_uploaded`, `duration_s`, as stored with the point.
    #[serde(flatten)]
    pub stats: CaptureStats,
    /// Packs left by an interrupted capture that this one indexed and reused.
    pub packs_recovered: usize,
    /// Changed-blocks reads: the tools the host hashed its disk with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hasher: Option<&'static str>,
    /// With `--image`: the build-image execution started for this point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_execution: Option<String>,
    /// The point was written (it is restorable), but what should follow failed:
    /// recording it in DynamoDB, or starting its image build. Exit code 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_point_error: Option<String>,
}

pub struct CaptureOptions {
    pub accept_new_host_key: bool,
    /// Stops a capture in flight (the point is not written, a snapshot is removed).
    pub shutdown: Shutdown,
    /// The point's parent; none: the host's newest point in the store. (A recovery
    /// instance's first capture names the point it was launched from.)
    pub parent: Option<String>,
    /// A point derived from another (`ferry convert`): the image read is a work copy,
    /// the point keeps the source's disk, consistency and machine facts.
    pub derived: Option<Derived>,
}

/// What a derived point keeps from its source, and what made it.
#[derive(Debug, Clone)]
pub struct Derived {
    pub disk: String,
    pub consistency: Consistency,
    pub machine: Option<ferry_core::manifest::MachineFacts>,
    pub conversion: ferry_core::convert::Conversion,
}

/// A progress bar following the bytes the pipeline has read.
pub(crate) fn bar(
    progress: &Progress,
    host: &str,
    size: Option<u64>,
    counters: &Arc<Counters>,
) -> Bar {
    let c = counters.clone();
    progress.follow(&format!("capture {host}"), size, move || {
        c.bytes_read.load(Ordering::Relaxed)
    })
}

pub async fn capture_host(
    repo: Arc<Repository>,
    records: Option<&Records>,
    h: &Host,
    opts: &CaptureOptions,
    progress: &Progress,
) -> Result<CaptureReport> {
    let started = Instant::now();
    let created = OffsetDateTime::now_utc();
    let point = point_id(created, rand::random());
    let parent = match &opts.parent {
        Some(p) => Some(p.clone()),
        None => repo.list_points(&h.name).await?.pop(),
    };
    let loaded = repo.load_index().await?;
    let index = Arc::new(loaded.index);
    let counters = Arc::new(Counters::default());

    let (result, host_key, machine) = match h.ssh_target(opts.accept_new_host_key) {
        None => {
            let size = std::fs::metadata(&h.disk).map(|m| m.len()).ok();
            let bar = bar(progress, &h.name, size, &counters);
            let src = source::local_read(h)?;
            let r = tokio::select! {
                r = pipeline::run(src, repo.clone(), index.clone(), counters.clone()) => r,
                _ = opts.shutdown.requested() => Err(anyhow::anyhow!("interrupted")),
            };
            bar.finish();
            let r = r.map(|r| {
                let info = ReadInfo {
                    bytes_read: r.image_size,
                    full_read_reason: parent
                        .as_ref()
                        .map(|_| "a disk on the appliance is read in full".to_string()),
                    ..ReadInfo::default()
                };
                (r, info)
            });
            (r, None, None)
        }
        Some(target) => {
            let session = Arc::new(SshSession::connect(&target).await?);
            let machine = source::machine_facts(&session, &h.name).await;
            let sink = Sink {
                repo: repo.clone(),
                index: index.clone(),
                counters: counters.clone(),
            };
            let r = capture_remote(
                &session,
                &target,
                h,
                (&point, parent.as_deref()),
                sink,
                progress,
                &opts.shutdown,
            )
            .await;
            let key = session.host_key.clone();
            if let Ok(s) = Arc::try_unwrap(session) {
                s.close().await;
            }
            (r, Some(key), machine)
        }
    };
    let (out, read) = result
        .with_context(|| format!("capture of host {} failed; no point was written", h.name))?;

    let written = IndexFile { packs: out.packs };
    let index_bytes = if written.packs.is_empty() {
        0
    } else {
        repo.write_index(&written).await?
    };
    let c = &counters;
    let mut stats = CaptureStats {
        bytes_read: read.bytes_read,
        bytes_new: c.bytes_new.load(Ordering::Relaxed),
        bytes_uploaded: c.bytes_uploaded.load(Ordering::Relaxed) + index_bytes,
        chunks: out.chunks.len() as u64,
        chunks_new: c.chunks_new.load(Ordering::Relaxed),
        packs_uploaded: c.packs_uploaded.load(Ordering::Relaxed),
        duration_s: 0.0,
        method: read.method,
        bytes_transferred: read.bytes_transferred,
        blocks_changed: read.blocks_changed,
        full_read_reason: read.full_read_reason.clone(),
    };
    let full_read_at = match read.method {
        ReadMethod::Full => Some(created),
        ReadMethod::ChangedBlocks => read.last_full_read,
    };
    stats.duration_s = started.elapsed().as_secs_f64();
    let d = opts.derived.clone();
    let mut manifest = Manifest {
        meta: PointMeta {
            point: point.clone(),
            host: h.name.clone(),
            disk: d
                .as_ref()
                .map_or_else(|| h.disk.clone(), |d| d.disk.clone()),
            created,
            image_size: out.image_size,
            consistency: d
                .as_ref()
                .map_or_else(|| source::consistency(h), |d| d.consistency),
            image_blake3: out.image_blake3,
            parent: parent.clone(),
            stats,
            machine: d.as_ref().map_or(machine, |d| d.machine.clone()),
            full_read_at,
            converted: d.map(|d| d.conversion),
        },
        chunks: out.chunks,
    };
    // The point's own size counts as uploaded metadata; its encoded length barely
    // depends on the number, so one re-encode settles it.
    let manifest_len = manifest.encode()?.len() as u64;
    let mut new_chunks = ChunkIndex::default();
    new_chunks.add_file(&written);
    let locations = ferry_store::locations::encode(&manifest, |id| {
        index.get(id).or_else(|| new_chunks.get(id)).copied()
    })?;
    drop((index, new_chunks, written));
    manifest.meta.stats.bytes_uploaded += manifest_len + locations.len() as u64;
    repo.write_locations(&manifest, locations).await?;
    manifest.meta.stats.bytes_uploaded += repo.write_blocks(&h.name, &point, &out.blocks).await?;
    let (key, _) = repo.write_point(&manifest).await?;
    // The point exists from here on: a failure to record it does not unmake it.
    let mut after_point_error = None;
    if let Some(db) = records {
        let recorded = async {
            // A derived point was read from a work copy: the host's record (how it is
            // reached) stays as its own captures wrote it.
            if opts.derived.is_none() {
                db.put_host(h, host_key.as_deref(), &point)
                    .await
                    .with_context(|| format!("recording host {} in DynamoDB", h.name))?;
            }
            db.put_point(&manifest.meta, &key)
                .await
                .with_context(|| format!("recording point {point} in DynamoDB"))
        };
        if let Err(e) = recorded.await {
            tracing::warn!(host = %h.name, %point, error = %format!("{e:#}"), "point written, record failed");
            after_point_error = Some(format!(
                "point {point} was written, but recording it failed: {e:#} (capture again, or run `ferry capture` later, to record it)"
            ));
        }
    }
    let mut stats = manifest.meta.stats.clone();
    stats.duration_s = started.elapsed().as_secs_f64();
    Ok(CaptureReport {
        host: h.name.clone(),
        point,
        parent,
        image_size: manifest.meta.image_size,
        image_blake3: manifest.meta.image_blake3.clone(),
        consistency: manifest.meta.consistency,
        stats,
        packs_recovered: loaded.recovered_packs,
        hasher: read.hasher,
        image_execution: None,
        after_point_error,
    })
}

/// Where the pipeline puts what it reads: the store, the index it dedupes against, and
/// the counters it reports into.
struct Sink {
    repo: Arc<Repository>,
    index: Arc<ferry_core::index::ChunkIndex>,
    counters: Arc<Counters>,
}

/// Reads the host's disk (through a snapshot when configured): its changed blocks when
/// it can, else all of it.
async fn capture_remote(
    session: &Arc<SshSession>,
    target: &SshTarget,
    h: &Host,
    (point, parent): (&str, Option<&str>),
    sink: Sink,
    progress: &Progress,
    shutdown: &Shutdown,
) -> Result<(pipeline::PipelineResult, ReadInfo)> {
    let Sink {
        repo,
        index,
        counters,
    } = sink;
    let snap = match h.snapshot {
        SnapshotMethod::None => None,
        SnapshotMethod::Lvm => {
            source::sweep_stale_snapshots(session, h).await;
            let tag = point.rsplit('-').next().unwrap_or("snap");
            Some(source::lvm_snapshot(session, h, tag).await?)
        }
    };
    let device = snap
        .as_ref()
        .map(|s| s.device.clone())
        .unwrap_or_else(|| h.disk.clone());
    let read = async {
        let size = remote_size(session, h, &device).await;
        let reason = match method::choose(&repo, session, h, &device, parent, size).await {
            method::Choice::Full(why) => why,
            method::Choice::Changed(setup) => {
                let r = method::read_changed(
                    *setup,
                    session.clone(),
                    h,
                    &device,
                    repo.clone(),
                    index.clone(),
                    counters.clone(),
                    progress,
                )
                .await;
                match r {
                    Err(e) if method::changed_under_read(&e) => {
                        tracing::warn!(host = %h.name, error = %format!("{e:#}"), "reading the whole disk instead");
                        counters.reset_read();
                        format!("{e:#}: read in full instead")
                    }
                    r => return r,
                }
            }
        };
        let src = source::remote_read(session, h, &device).await?;
        let bar = bar(progress, &h.name, size, &counters);
        let r = pipeline::run(src, repo, index, counters).await;
        bar.finish();
        let r = r?;
        let info = ReadInfo {
            bytes_read: r.image_size,
            bytes_transferred: r.image_size,
            full_read_reason: parent.map(|_| reason),
            ..ReadInfo::default()
        };
        Ok((r, info))
    };
    // A shutdown (Ctrl-C, SIGTERM) must not leave a snapshot behind: stop reading,
    // then clean up below.
    let result = tokio::select! {
        r = read => r,
        _ = shutdown.requested() => Err(anyhow::anyhow!("interrupted")),
    };
    if let Some(s) = &snap {
        if let Err(e) = remove_snapshot(session, target, h, s).await {
            return Err(match result {
                Ok(_) => e,
                Err(first) => {
                    first.context(format!("and the snapshot could not be removed: {e:#}"))
                }
            });
        }
    }
    result
}

/// Removes the capture's snapshot; when the session is gone (the connection dropped
/// mid-read), on a fresh one.
async fn remove_snapshot(
    session: &SshSession,
    target: &SshTarget,
    h: &Host,
    s: &source::LvmSnapshot,
) -> Result<()> {
    let first = match source::remove_lvm_snapshot(session, h, s).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    tracing::warn!(host = %h.name, error = %format!("{first:#}"), "removing the snapshot on a new connection");
    let fresh = SshSession::connect(target)
        .await
        .map_err(|e| first.context(format!("and a new connection failed: {e:#}")))?;
    let r = source::remove_lvm_snapshot(&fresh, h, s).await;
    fresh.close().await;
    r
}

/// The device size, for the progress bar only (`None` if the host will not say).
async fn remote_size(session: &SshSession, h: &Host, device: &str) -> Option<u64> {
    let d = quote(device);
    let script = format!("blockdev --getsize64 {d} 2>/dev/null || stat -L -c %s {d}");
    let (status, out, _) = session.run(&h.privileged(&script)).await.ok()?;
    if status != 0 {
        return None;
    }
    String::from_utf8_lossy(&out).trim().parse().ok()
}
