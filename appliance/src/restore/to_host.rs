//! Restore onto a host's disk over SSH, writing only what differs.
//!
//! The changed chunks are decided either from a base point known to be on the disk
//! (`--base`, no read needed) or by reading the disk and hashing it chunk by chunk. They
//! are staged in a local sparse file, verified, and only then streamed to the host, where
//! stock `sh` and `dd` write each range in place.

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

use super::{fetch, placements};
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
    pub bytes_read_from_target: u64,
    pub duration_s: f64,
}

pub struct ToHostOptions {
    pub accept_new_host_key: bool,
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
    let result = run(repo, m, base, target, &session, progress, started).await;
    session.close().await;
    result
}

async fn run(
    repo: &Repository,
    m: &Manifest,
    base: Option<&Manifest>,
    target: &Host,
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
        let sent = Arc::new(AtomicU64::new(0));
        let s = sent.clone();
        let bar = progress.follow(&format!("write {}", target.name), Some(total), move || {
            s.load(Ordering::Relaxed)
        });
        let r = send_ranges(session, target, &stage, &ranges, &sent).await;
        bar.finish();
        r?;
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
        duration_s: started.elapsed().as_secs_f64(),
    })
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
