//! Store checks (`ferry verify`): are the points restorable, like `restic check`.
//! Here, not in the appliance, so that a function can run the same checks.
//!
//! Always: every index object matches its name and decodes (a damaged one is named; its
//! packs are read through their trailers), every pack's trailer is readable, every
//! point decodes, every chunk it names is indexed, every pack a point uses exists with
//! exactly the size its index entries say, and every point's locations object (what
//! image builds read) lists the point's chunks at their offsets in packs that exist.
//! With `--read-data`: every pack a checked point uses is read whole, its id and trailer
//! checked, each chunk's index entry compared with the trailer's, and every chunk read
//! where the index says (as restore reads it), decompressed and hashed.

use std::collections::{BTreeSet, HashMap};

use ferry_core::id::PackId;
use ferry_core::index::ChunkIndex;
use ferry_core::layout;
use ferry_core::locations::Dedup;
use ferry_core::manifest::Manifest;
use ferry_core::pack::{open_blob, parse_trailer, PackEntry};
use ferry_core::ChunkId;
use futures::{stream, StreamExt};
use serde::Serialize;

use crate::repo::{Repository, IO_CONCURRENCY};
use crate::RepoError;

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub points_checked: usize,
    pub chunks_checked: usize,
    pub packs_checked: usize,
    pub bytes_read: u64,
    pub errors: Vec<String>,
}

pub async fn verify(
    repo: &Repository,
    hosts: &[String],
    point: Option<&str>,
    read_data: bool,
) -> Result<VerifyReport, RepoError> {
    let mut report = VerifyReport::default();
    let loaded = repo.read_index().await?;
    for d in &loaded.damaged {
        report.errors.push(format!(
            "{}: {} (skipped; a capture re-indexes its packs and removes it)",
            d.key, d.reason
        ));
    }
    let index = loaded.index;
    let packs: HashMap<PackId, u64> = repo
        .list_packs()
        .await?
        .into_iter()
        .map(|(id, o)| (id, o.size))
        .collect();

    let mut used_packs = BTreeSet::new();
    let mut used_chunks = BTreeSet::new();
    for host in hosts {
        let ids = match point {
            Some(p) => vec![repo.resolve_point(host, Some(p)).await?.meta.point],
            None => repo.list_points(host).await?,
        };
        for id in ids {
            let m = match repo.read_point(host, &id).await {
                Ok(m) => m,
                Err(e) => {
                    report.errors.push(format!("point {host}/{id}: {e:#}"));
                    continue;
                }
            };
            report.points_checked += 1;
            match check_locations(repo, &m, &index, &packs).await {
                Ok(errs) => report.errors.extend(errs),
                Err(e) => report
                    .errors
                    .push(format!("locations of point {host}/{id}: {e}")),
            }
            let mut missing = 0;
            for c in &m.chunks {
                match index.get(&c.id) {
                    Some(loc) => {
                        used_packs.insert(loc.pack);
                        used_chunks.insert(c.id);
                    }
                    None => {
                        if missing < 10 {
                            report.errors.push(format!(
                                "point {host}/{id}: chunk {} is not in any pack",
                                c.id
                            ));
                        }
                        missing += 1;
                    }
                }
            }
            if missing >= 10 {
                report.errors.push(format!(
                    "point {host}/{id}: {missing} chunks missing in all"
                ));
            }
        }
    }
    report.chunks_checked = used_chunks.len();
    // Each used pack's index entries, as restore reads them.
    let mut by_pack: HashMap<PackId, Vec<PackEntry>> = HashMap::new();
    for c in &used_chunks {
        if let Some(loc) = index.get(c) {
            by_pack.entry(loc.pack).or_default().push(loc.entry);
        }
    }
    for p in &used_packs {
        match packs.get(p) {
            None => report.errors.push(format!(
                "pack {} is indexed but missing from the store",
                layout::pack_key(p)
            )),
            Some(&size) => {
                if let Some(want) = index.pack_size(p) {
                    if want != size {
                        report.errors.push(format!(
                            "pack {}: {size} bytes, its index entries say {want} (truncated or damaged)",
                            layout::pack_key(p)
                        ));
                    }
                }
            }
        }
    }
    if read_data {
        let results: Vec<(u64, Vec<String>)> =
            stream::iter(used_packs.iter().filter(|p| packs.contains_key(*p)))
                .map(|p| check_pack(repo, *p, packs[p], &by_pack[p]))
                .buffer_unordered(IO_CONCURRENCY)
                .collect()
                .await;
        for (bytes, errs) in results {
            report.bytes_read += bytes;
            report.errors.extend(errs);
        }
        report.packs_checked = used_packs.len();
    }
    report.ok = report.errors.is_empty();
    Ok(report)
}

/// The point's locations object against the point and the store: the same chunks at
/// the same offsets, each in a pack that exists. A point without one (captured before
/// they existed) is fine: its first image build writes it.
async fn check_locations(
    repo: &Repository,
    m: &Manifest,
    index: &ChunkIndex,
    packs: &HashMap<PackId, u64>,
) -> Result<Vec<String>, RepoError> {
    let (host, id) = (&m.meta.host, &m.meta.point);
    let Some(l) = repo.open_locations(host, id).await? else {
        return Ok(Vec::new());
    };
    let mut errors = Vec::new();
    if l.footer.image_size != m.meta.image_size {
        errors.push(format!(
            "{}: image size {}, the point says {}",
            l.key, l.footer.image_size, m.meta.image_size
        ));
        return Ok(errors);
    }
    let refs = repo.segment_refs(&l, 0..l.footer.segments).await?;
    let mut want = m.offsets();
    let mut dedup = Dedup::default();
    for r in refs {
        for got in dedup.next(repo.read_segment(&l, r).await?) {
            let ok = want.next() == Some((got.at, got.chunk))
                && packs.contains_key(&got.loc.pack)
                && index
                    .get(&got.chunk.id)
                    .is_none_or(|i| i.pack != got.loc.pack || i.entry == got.loc.entry);
            if !ok {
                errors.push(format!(
                    "{}: chunk at offset {} does not match the point or the store",
                    l.key, got.at
                ));
                return Ok(errors);
            }
        }
    }
    if want.next().is_some() {
        errors.push(format!("{}: fewer chunks than the point", l.key));
    }
    Ok(errors)
}

async fn check_pack(
    repo: &Repository,
    id: PackId,
    size: u64,
    used: &[PackEntry],
) -> (u64, Vec<String>) {
    let key = layout::pack_key(&id);
    let data = match repo.backend.get(&key).await {
        Ok(d) => d,
        Err(e) => return (0, vec![format!("pack {key}: cannot read: {e}")]),
    };
    let mut errors = Vec::new();
    if ChunkId::of(&data) != id {
        errors.push(format!(
            "pack {key}: content does not match its id (corrupt)"
        ));
    }
    let trailer: HashMap<ChunkId, PackEntry> = match parse_trailer(&key, &data, size) {
        Ok(e) => e.into_iter().map(|e| (e.id, e)).collect(),
        Err(e) => {
            errors.push(format!("pack {key}: {e}"));
            return (data.len() as u64, errors);
        }
    };
    for e in used {
        if trailer.get(&e.id) != Some(e) {
            errors.push(format!(
                "pack {key}: the index entry of chunk {} differs from the pack's own",
                e.id
            ));
        }
    }
    let data2 = data.clone();
    let key2 = key.clone();
    let wanted = used.to_vec();
    let blob_errors = tokio::task::spawn_blocking(move || {
        let mut dctx = match zstd::bulk::Decompressor::new() {
            Ok(d) => d,
            Err(e) => return vec![format!("pack {key2}: cannot create a zstd context: {e}")],
        };
        wanted
            .iter()
            .filter_map(|e| {
                let end = e.offset.checked_add(u64::from(e.stored_len))?;
                let Some(blob) = data2.get(e.offset as usize..end as usize) else {
                    return Some(format!(
                        "pack {key2}: chunk {} lies past the end of the pack",
                        e.id
                    ));
                };
                open_blob(&mut dctx, &key2, e, blob)
                    .err()
                    .map(|err| err.to_string())
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|e| vec![format!("pack {key}: check failed: {e}")]);
    errors.extend(blob_errors);
    (data.len() as u64, errors)
}
