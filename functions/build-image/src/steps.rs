//! The four steps of a build. Each looks before it creates, so any of them can be
//! retried: `plan` finds or starts the snapshot and cuts the work into ranges, `write`
//! writes one range, `finish` completes the snapshot and registers and records the AMI,
//! `abandon` deletes a snapshot that a failed build left unfinished.

use ferry_core::ebs::{blocks, changed_blocks, BLOCK_SIZE};
use ferry_core::id::is_all_zero;
use ferry_core::manifest::Manifest;
use ferry_fn::StepError;
use ferry_store::Repository;

use crate::store::repo_error;

use crate::blocks::{assemble, put_blocks, Placed};
use crate::cloud::{
    self, delete_unfinished, find_image, find_snapshot, image_name, record_image, Cloud, NewImage,
    NewSnapshot,
};
use ferry_core::steps::build_image::{
    split_ranges, AbandonRequest, Abandoned, BuildImageResult, FinishRequest, Plan, PlanRequest,
    RangeItem, WriteRange, Written,
};

/// Blocks assembled at a time (16 MiB of memory, twice that for a child).
const WINDOW_BLOCKS: usize = 32;

/// Blocks that may need writing: every block that is not all zeros, or, against a
/// parent, every block whose content can differ from it.
fn candidates(m: &Manifest, parent: Option<&Manifest>) -> Vec<u64> {
    match parent {
        Some(pm) => changed_blocks(pm, m),
        None => blocks(m)
            .into_iter()
            .filter(|b| !b.zero)
            .map(|b| b.index)
            .collect(),
    }
}

pub async fn plan(c: &Cloud, repo: &Repository, req: PlanRequest) -> Result<Plan, StepError> {
    let m = repo
        .resolve_point(&req.host, req.point.as_deref())
        .await
        .map_err(repo_error)?;
    let point = m.meta.point.clone();
    let blocks_total = m.meta.image_size.div_ceil(BLOCK_SIZE);
    let done = |snapshot_id, image_id| Plan {
        host: req.host.clone(),
        point: point.clone(),
        snapshot_id,
        parent_snapshot_id: None,
        image_id,
        blocks_total,
        blocks_planned: 0,
        ranges: Vec::new(),
    };
    let found = find_snapshot(c, &point).await?;
    if let Some(ami) = find_image(c, &req.host, &point).await? {
        return Ok(done(found.map(|s| s.id), Some(ami)));
    }
    let (sid, parent) = match found {
        Some(s) if s.completed => return Ok(done(Some(s.id), None)),
        // An earlier try started it: same parent, same blocks.
        Some(s) => {
            let parent = match &s.parent_point {
                Some(pp) => Some((parent_snapshot(c, pp).await?, pp.clone())),
                None => None,
            };
            (s.id, parent)
        }
        None => {
            let parent = match &m.meta.parent {
                Some(pp) => find_snapshot(c, pp)
                    .await?
                    .filter(|s| s.completed)
                    .map(|s| (s.id, pp.clone())),
                None => None,
            };
            (start_snapshot(c, &m, parent.as_ref()).await?, parent)
        }
    };
    let pm = match &parent {
        Some((_, pp)) => Some(repo.read_point(&req.host, pp).await.map_err(repo_error)?),
        None => None,
    };
    let cands = candidates(&m, pm.as_ref());
    let ranges = split_ranges(&cands, blocks_total, c.range_blocks)
        .into_iter()
        .map(|(first, end, n)| {
            RangeItem::new(WriteRange {
                host: req.host.clone(),
                point: point.clone(),
                snapshot_id: sid.clone(),
                parent_point: parent.as_ref().map(|(_, pp)| pp.clone()),
                first,
                end,
                candidates: n,
            })
        })
        .collect();
    Ok(Plan {
        host: req.host,
        point,
        snapshot_id: Some(sid),
        parent_snapshot_id: parent.map(|(s, _)| s),
        image_id: None,
        blocks_total,
        blocks_planned: cands.len() as u64,
        ranges,
    })
}

async fn parent_snapshot(c: &Cloud, parent_point: &str) -> Result<String, StepError> {
    match find_snapshot(c, parent_point).await? {
        Some(s) if s.completed => Ok(s.id),
        _ => Err(StepError::NonRetryable(format!(
            "the snapshot of parent point {parent_point} is gone; delete the unfinished snapshot and build again"
        ))),
    }
}

async fn start_snapshot(
    c: &Cloud,
    m: &Manifest,
    parent: Option<&(String, String)>,
) -> Result<String, StepError> {
    cloud::start_snapshot(
        c,
        &NewSnapshot {
            point: &m.meta.point,
            host: &m.meta.host,
            size_gib: m.meta.image_size.div_ceil(1 << 30).max(1) as i64,
            parent: parent.map(|(s, pp)| (s.as_str(), pp.as_str())),
        },
    )
    .await
}

pub async fn write(c: &Cloud, repo: &Repository, r: WriteRange) -> Result<Written, StepError> {
    let m = repo
        .read_point(&r.host, &r.point)
        .await
        .map_err(repo_error)?;
    let pm = match &r.parent_point {
        Some(pp) => Some(repo.read_point(&r.host, pp).await.map_err(repo_error)?),
        None => None,
    };
    let index = repo.read_index().await.map_err(repo_error)?.index;
    let todo: Vec<u64> = candidates(&m, pm.as_ref())
        .into_iter()
        .filter(|b| (r.first..r.end).contains(b))
        .collect();
    let placed = Placed::new(&m);
    let parent_placed = pm.as_ref().map(Placed::new);
    let mut written = 0u64;
    for window in todo.chunks(WINDOW_BLOCKS) {
        let mut bufs = assemble(repo, &index, &placed, window).await?;
        match &parent_placed {
            // A block whose chunks only brush it with zeros reads as zeros unwritten.
            None => bufs.retain(|_, data| !is_all_zero(data)),
            // The manifests say these blocks may differ; the parent's bytes, read from
            // the store (never from the old snapshot), say whether they do.
            Some(pp) => {
                let old = assemble(repo, &index, pp, window).await?;
                bufs.retain(|b, data| old.get(b) != Some(data));
            }
        }
        written += bufs.len() as u64;
        put_blocks(c, &r.snapshot_id, bufs).await?;
    }
    tracing::info!(snapshot = %r.snapshot_id, first = r.first, end = r.end, written, "range written");
    Ok(Written {
        blocks_written: written,
    })
}

pub async fn finish(
    c: &Cloud,
    repo: &Repository,
    req: FinishRequest,
) -> Result<BuildImageResult, StepError> {
    let written: u64 = req.writes.iter().map(|w| w.blocks_written).sum();
    let existing = find_image(c, &req.host, &req.point).await?;
    let found = find_snapshot(c, &req.point).await?;
    let sid = match (&req.snapshot_id, &found) {
        (Some(s), _) => s.clone(),
        (None, Some(f)) => f.id.clone(),
        (None, None) => {
            return Err(StepError::NonRetryable(format!(
                "no snapshot of point {} to finish",
                req.point
            )))
        }
    };
    let image_id = match existing {
        Some(ami) => ami,
        None => {
            if !found.as_ref().is_some_and(|f| f.id == sid && f.completed) {
                cloud::complete_snapshot(c, &sid, written).await?;
            }
            let m = repo
                .read_point(&req.host, &req.point)
                .await
                .map_err(repo_error)?;
            register_image(c, &m, &sid).await?
        }
    };
    record_image(c, &req.host, &req.point, &sid, &image_id).await?;
    Ok(BuildImageResult {
        host: req.host,
        point: req.point,
        snapshot_id: sid,
        image_id,
        parent_snapshot_id: req.parent_snapshot_id,
        blocks_written: written,
    })
}

pub async fn abandon(c: &Cloud, req: AbandonRequest) -> Result<Abandoned, StepError> {
    let deleted = match &req.snapshot_id {
        Some(sid) if delete_unfinished(c, sid).await? => Some(sid.clone()),
        _ => None,
    };
    Ok(Abandoned { deleted })
}

/// EC2's name for a machine architecture as `uname -m` prints it.
pub fn architecture(uname_m: &str) -> Result<&'static str, StepError> {
    match uname_m {
        "x86_64" | "amd64" => Ok("x86_64"),
        "aarch64" | "arm64" => Ok("arm64"),
        "i386" | "i486" | "i586" | "i686" => Ok("i386"),
        other => Err(StepError::NonRetryable(format!(
            "architecture {other} cannot boot on EC2"
        ))),
    }
}

async fn register_image(c: &Cloud, m: &Manifest, sid: &str) -> Result<String, StepError> {
    let (arch, boot) = match &m.meta.machine {
        Some(f) => (architecture(&f.arch)?, Some(f.boot)),
        // Unknown: EC2's own default for x86_64.
        None => ("x86_64", None),
    };
    cloud::register_image(
        c,
        &NewImage {
            name: image_name(&m.meta.host, &m.meta.point),
            host: &m.meta.host,
            point: &m.meta.point,
            arch,
            boot,
            snapshot_id: sid,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_ec2_names() {
        assert_eq!(architecture("x86_64").unwrap(), "x86_64");
        assert_eq!(architecture("aarch64").unwrap(), "arm64");
        let e = architecture("ppc64le").unwrap_err();
        assert!(matches!(e, StepError::NonRetryable(ref m) if m.contains("ppc64le")));
    }

    #[test]
    fn a_first_image_writes_every_nonzero_block_and_a_child_only_changes() {
        use ferry_core::manifest::{ChunkRef, PointMeta};
        let meta = |size| PointMeta {
            point: "p".into(),
            host: "h".into(),
            disk: "/dev/sda".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            image_size: size,
            consistency: ferry_core::manifest::Consistency::Crash,
            image_blake3: String::new(),
            parent: None,
            stats: Default::default(),
            machine: None,
        };
        let bs = BLOCK_SIZE as usize;
        let (zero, a, b) = (vec![0u8; bs], vec![1u8; bs], vec![2u8; bs]);
        let man = |parts: &[&Vec<u8>]| Manifest {
            meta: meta((parts.len() * bs) as u64),
            chunks: parts
                .iter()
                .map(|p| ChunkRef {
                    id: ferry_core::ChunkId::of(p),
                    len: bs as u32,
                })
                .collect(),
        };
        let parent = man(&[&a, &zero, &a]);
        assert_eq!(candidates(&parent, None), vec![0, 2]);
        let child = man(&[&a, &b, &a]);
        assert_eq!(candidates(&child, Some(&parent)), vec![1]);
    }
}
