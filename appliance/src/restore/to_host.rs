//! Restore onto a host's disk over SSH, writing only what differs.
//!
//! The changed chunks are decided either from a base point known to be on the disk
//! (`--base`, no read needed) or by reading the disk and hashing it chunk by chunk. They
//! are staged in a local sparse file, verified, and only then streamed to the host, where
//! stock `sh` and `dd` write each range in place. A disk in use is refused unless forced,
//! a `--base` is checked on a sample of the disk before it is trusted, and after writing
//! the disk is read back and hashed against the point before success is reported.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ferry_core::delta::{changed_chunks, coalesce, Range, Write};
use ferry_core::manifest::Manifest;
use ferry_core::ChunkId;
use serde::Serialize;

use super::{fetch, host_checks, placements};
use crate::host::Host;
use crate::progress::Progress;
use crate::ssh::{quote, SshSession};
use ferry_store::repo::Repository;

#[derive(Debug, Serialize)]
pub struct HostRestoreReport {
    pub host: String,
    pub point: String,
    pub target: String,
    pub disk: String,
    /// `base-point` or `read-target`.
    pub compared_with: String,
    pub base: Option<String>,
    pub image_size: u64,
    pub chunks: usize,
    pub chunks_written: usize,
    pub ranges_written: usize,
    pub bytes_written: u64,
    /// Read to decide what differs (without `--base`).
    pub bytes_read_from_target: u64,
    /// Read after writing, hashed and found equal to the point (0 when nothing was
    /// written without `--base`: the comparison itself proved it).
    pub bytes_read_back: u64,
    pub duration_s: f64,
}

pub struct ToHostOptions {
    pub accept_new_host_key: bool,
    /// Write even when the disk is in use (mounted, swap, held, backing a loop device).
    pub force: bool,
    /// Counts the bytes written to the disk as they go (a failback reports a write
    /// stopped part-way).
    pub written: Option<Arc<AtomicU64>>,
}

fn sudo(h: &Host, script: &str) -> String {
    if h.sudo {
        format!("sudo -n sh -c {}", quote(script))
    } else {
        format!("sh -c {}", quote(script))
    }
}

pub async fn restore_to_host(
    repo: &Repository,
    m: &Manifest,
    base: Option<&Manifest>,
    target: &Host,
    opts: &ToHostOptions,
    progress: &Progress,
) -> Result<HostRestoreReport> {
    let started = Instant::now();
    let ssh = target
        .ssh_target(opts.accept_new_host_key)
        .with_context(|| format!("host {} has no `ssh` address to restore to", target.name))?;
    let session = SshSession::connect(&ssh).await?;
    let result = run(repo, m, base, target, opts, &session, progress, started).await;
    session.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run(
    repo: &Repository,
    m: &Manifest,
    base: Option<&Manifest>,
    target: &Host,
    opts: &ToHostOptions,
    session: &SshSession,
    progress: &Progress,
    started: Instant,
) -> Result<HostRestoreReport> {
    let disk = quote(&target.disk);
    let size_out = session
        .check(&sudo(
            target,
            &format!("blockdev --getsize64 {disk} 2>/dev/null || stat -L -c %s {disk}"),
        ))
        .await
        .with_context(|| format!("host {}: cannot size disk {}", target.name, target.disk))?;
    let disk_size: u64 = String::from_utf8_lossy(&size_out)
        .trim()
        .parse()
        .with_context(|| format!("host {}: unexpected size of {}", target.name, target.disk))?;
    if disk_size < m.meta.image_size {
        bail!(
            "host {}: disk {} holds {disk_size} bytes, the point needs {}",
            target.name,
            target.disk,
            m.meta.image_size
        );
    }

    let in_use = session
        .check(&sudo(target, &host_checks::in_use_script(&target.disk)))
        .await
        .with_context(|| {
            format!(
                "host {}: checking whether {} is in use",
                target.name, target.disk
            )
        })?;
    if let Some(why) = host_checks::in_use_reason(&String::from_utf8_lossy(&in_use))? {
        if !opts.force {
            bail!(
                "host {}: disk {} is in use: {why}; nothing was written (stop what uses it, or pass --force)",
                target.name,
                target.disk
            );
        }
        tracing::warn!(host = %target.name, disk = %target.disk, why, "writing a disk in use (--force)");
    }
    if let Some(b) = base {
        let samples = host_checks::samples(b, host_checks::SAMPLES);
        let out = session
            .check(&sudo(
                target,
                &host_checks::samples_script(&target.disk, &samples),
            ))
            .await
            .with_context(|| format!("host {}: reading samples of {}", target.name, target.disk))?;
        let differ = host_checks::samples_differing(&samples, &out);
        if differ > 0 {
            bail!(
                "host {}: disk {} does not hold base point {}: {differ} of {} sampled chunks differ; nothing was written (run without --base to compare by reading the disk)",
                target.name,
                target.disk,
                b.meta.point,
                samples.len()
            );
        }
    }

    let (writes, compared_with, read_bytes) = match base {
        Some(b) => (changed_chunks(b, m), "base-point", 0),
        None => {
            let reader = session
                .read_stream(&sudo(target, &format!("cat -- {disk}")))
                .await?;
            let mm = m.clone();
            let read = Arc::new(AtomicU64::new(0));
            let r = read.clone();
            let bar = progress.follow(
                &format!("compare {}", target.name),
                Some(m.meta.image_size),
                move || r.load(Ordering::Relaxed),
            );
            let w =
                tokio::task::spawn_blocking(move || differing_chunks(Box::new(reader), &mm, &read))
                    .await?;
            bar.finish();
            (w?, "read-target", m.meta.image_size)
        }
    };
    let ranges = coalesce(&writes);
    let bytes_written: u64 = ranges.iter().map(|r| r.len).sum();

    if !writes.is_empty() {
        // Stage and verify every chunk to write before the host's disk is touched.
        let loaded = repo.read_index().await?;
        let fetches = ferry_store::chunks::plan(
            &loaded.index,
            placements(writes.iter().map(|w| (w.offset, &w.chunk.id))),
        )?;
        let stage = tempfile::tempfile().context("creating the local staging file")?;
        stage.set_len(m.meta.image_size)?;
        let stage = Arc::new(stage);
        let staged = Arc::new(AtomicU64::new(0));
        fetch::fetch_into(
            repo,
            fetches,
            stage.clone(),
            fetch::WriteMode {
                skip_zeros: false,
                durable: false,
            },
            staged,
        )
        .await
        .with_context(|| format!("nothing was written to host {}", target.name))?;
        let total = bytes_written;
        let sent = opts
            .written
            .clone()
            .unwrap_or_else(|| Arc::new(AtomicU64::new(0)));
        let base_sent = sent.load(Ordering::Relaxed);
        let s = sent.clone();
        let bar = progress.follow(&format!("write {}", target.name), Some(total), move || {
            s.load(Ordering::Relaxed) - base_sent
        });
        let r = send_ranges(session, target, &stage, &ranges, &sent).await;
        bar.finish();
        r.with_context(|| half_written(target))?;
    }
    let read_back = !writes.is_empty() || base.is_some();
    if read_back {
        read_back_and_check(session, target, m, progress).await?;
    }
    Ok(HostRestoreReport {
        host: m.meta.host.clone(),
        point: m.meta.point.clone(),
        target: target.name.clone(),
        disk: target.disk.clone(),
        compared_with: compared_with.to_string(),
        base: base.map(|b| b.meta.point.clone()),
        image_size: m.meta.image_size,
        chunks: m.chunks.len(),
        chunks_written: writes.len(),
        ranges_written: ranges.len(),
        bytes_written,
        bytes_read_from_target: read_bytes,
        bytes_read_back: if read_back { m.meta.image_size } else { 0 },
        duration_s: started.elapsed().as_secs_f64(),
    })
}

fn half_written(target: &Host) -> String {
    format!(
        "host {}: writing disk {} failed part-way: the disk now holds a mix of old and new data; run the same restore again (without --base) to finish it",
        target.name, target.disk
    )
}

/// Reads the first image-size bytes of the disk back and checks their hash against the
/// point's.
async fn read_back_and_check(
    session: &SshSession,
    target: &Host,
    m: &Manifest,
    progress: &Progress,
) -> Result<()> {
    let len = m.meta.image_size;
    let cmd = format!(
        "dd if={} bs=1M count={len} iflag=count_bytes status=none",
        quote(&target.disk)
    );
    let reader = session.read_stream(&sudo(target, &cmd)).await?;
    let read = Arc::new(AtomicU64::new(0));
    let r = read.clone();
    let bar = progress.follow(
        &format!("read back {}", target.name),
        Some(len),
        move || r.load(Ordering::Relaxed),
    );
    let got = tokio::task::spawn_blocking(move || host_checks::hash_stream(reader, len, &read))
        .await?
        .with_context(|| half_written(target));
    bar.finish();
    let got = got?;
    if got != m.meta.image_blake3 {
        bail!(
            "host {}: disk {} read back does not equal point {} (BLAKE3 {got}, the point's {}): {}",
            target.name,
            target.disk,
            m.meta.point,
            m.meta.image_blake3,
            half_written(target)
        );
    }
    Ok(())
}

/// Reads the target's disk in the point's chunk boundaries and keeps the chunks whose
/// bytes differ (or lie beyond the end of what the disk returned).
fn differing_chunks(
    mut disk: Box<dyn Read + Send>,
    m: &Manifest,
    read: &AtomicU64,
) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; ferry_core::chunking::ChunkerParams::default().max_size as usize];
    let mut eof = false;
    for (offset, chunk) in m.offsets() {
        let len = chunk.len as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let mut got = 0;
        while !eof && got < len {
            match disk.read(&mut buf[got..len]) {
                Ok(0) => eof = true,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(anyhow::Error::new(e).context("reading the target disk")),
            }
        }
        read.fetch_add(got as u64, Ordering::Relaxed);
        if got < len || ChunkId::of(&buf[..len]) != chunk.id {
            out.push(Write { offset, chunk });
        }
    }
    Ok(out)
}

/// Streams ranges to one remote `sh` that hands each to `dd` (header line
/// "OFFSET LENGTH", then LENGTH bytes). `read` takes the header byte by byte from the
/// pipe, so `dd` sees exactly the payload.
async fn send_ranges(
    session: &SshSession,
    target: &Host,
    stage: &std::fs::File,
    ranges: &[Range],
    sent: &AtomicU64,
) -> Result<()> {
    let script = format!(
        "while read off len; do dd of={} bs=1M seek=\"$off\" count=\"$len\" oflag=seek_bytes \
         iflag=count_bytes,fullblock conv=notrunc status=none || exit 1; done; sync",
        quote(&target.disk)
    );
    let mut w = session.write_stream(&sudo(target, &script)).await?;
    const PIECE: u64 = 1 << 20;
    for r in ranges {
        w.write(Bytes::from(format!("{} {}\n", r.offset, r.len)))
            .await?;
        let mut done = 0;
        while done < r.len {
            let n = (r.len - done).min(PIECE) as usize;
            let mut buf = vec![0u8; n];
            stage
                .read_exact_at(&mut buf, r.offset + done)
                .context("reading the staging file")?;
            w.write(Bytes::from(buf)).await?;
            done += n as u64;
            sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    w.finish()
        .await
        .with_context(|| format!("writing to disk {} of host {}", target.disk, target.name))?;
    Ok(())
}
