//! Store checks (`ferry verify`): are the points restorable, like `restic check`.
//! Here, not in the appliance, so that a function can run the same checks.
//!
//! Always: every point decodes, every chunk it names is indexed, every pack the index
//! names exists with a sane size. With `--read-data`: every pack a checked point uses is
//! read whole, its id and trailer checked, and every chunk in it decompressed and hashed.

use std::collections::{BTreeSet, HashMap};

use ferry_core::id::PackId;
use ferry_core::layout;
use ferry_core::pack::{open_blob, parse_trailer};
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
    let index = repo.read_index().await?.index;
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
    for p in &used_packs {
        if !packs.contains_key(p) {
            report.errors.push(format!(
                "pack {} is indexed but missing from the store",
                layout::pack_key(p)
            ));
        }
    }
    if read_data {
        let results: Vec<(u64, Vec<String>)> =
            stream::iter(used_packs.iter().filter(|p| packs.contains_key(*p)))
                .map(|p| check_pack(repo, *p, packs[p], &used_chunks))
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

async fn check_pack(
    repo: &Repository,
    id: PackId,
    size: u64,
    used: &BTreeSet<ChunkId>,
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
    let entries = match parse_trailer(&key, &data, size) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("pack {key}: {e}"));
            return (data.len() as u64, errors);
        }
    };
    let data2 = data.clone();
    let key2 = key.clone();
    let wanted: Vec<_> = entries
        .into_iter()
        .filter(|e| used.contains(&e.id))
        .collect();
    let blob_errors = tokio::task::spawn_blocking(move || {
        let mut dctx = match zstd::bulk::Decompressor::new() {
            Ok(d) => d,
            Err(e) => return vec![format!("pack {key2}: cannot create a zstd context: {e}")],
        };
        wanted
            .iter()
            .filter_map(|e| {
                let blob = &data2[e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize];
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
