//! The four steps of a build. Each looks before it creates, so any of them can be
//! retried: `plan` finds or starts the snapshot and finds the ranges with blocks to
//! write, `write` writes one range (reading only that range's part of the point), `finish` completes the snapshot and registers and records the AMI,
//! `abandon` deletes a snapshot that a failed build left unfinished.

use std::collections::BTreeMap;

use ferry_aws::lock::LockError;
use ferry_core::ebs::BLOCK_SIZE;
use ferry_core::id::is_all_zero;
use ferry_core::manifest::PointMeta;
use ferry_fn::StepError;
use ferry_store::Repository;

use crate::store::repo_error;

use crate::blocks::{assemble, put_blocks};
use crate::cloud::{
    self, delete_unfinished, find_image, find_snapshot, image_name, record_image, Cloud, NewImage,
    NewSnapshot,
};
use crate::spans::Images;
use ferry_core::steps::build_image::{
    range_blocks, AbandonRequest, Abandoned, BuildImageResult, FinishRequest, Plan, PlanRequest,
    WriteRange, Written,
};

/// Blocks assembled at a time (16 MiB of memory, twice that for a child).
const WINDOW_BLOCKS: usize = 32;

/// Takes the point's build lock for the attempt (again: a refresh), when there is a
/// records table to hold it.
async fn hold(c: &Cloud, host: &str, point: &str, attempt: &str) -> Result<(), StepError> {
    match cloud::build_lock(c, host, point, attempt) {
        Some(lock) => lock.take().await.map_err(|e| match e {
            LockError::Held { holder, expires } => StepError::NonRetryable(format!(
                "another build of point {point} of host {host} is running ({holder}, lock until Unix time {expires}); follow it with `ferry image {host} --point {point}`"
            )),
            LockError::Preempted { by } => StepError::NonRetryable(format!(
                "the build of point {point} of host {host} was preempted by {by}"
            )),
            LockError::Call(e) => e.into(),
        }),
        None => Ok(()),
    }
}

async fn release(c: &Cloud, host: &str, point: &str, attempt: &str) -> Result<(), StepError> {
    match cloud::build_lock(c, host, point, attempt) {
        Some(lock) => lock.release().await.map_err(|e| match e {
            LockError::Call(e) => e.into(),
            held => StepError::Retryable(held.to_string()),
        }),
        None => Ok(()),
    }
}

/// Finds the point and takes its build lock: one build of a point at a time, so that
/// one's clean-up cannot delete a snapshot another is writing. A plan that fails after
/// taking it releases it.
pub async fn plan(c: &Cloud, repo: &Repository, req: PlanRequest) -> Result<Plan, StepError> {
    let meta = repo
        .resolve_point_meta(&req.host, req.point.as_deref())
        .await
        .map_err(repo_error)?;
    hold(c, &req.host, &meta.point, &req.attempt).await?;
    let (host, point, attempt) = (req.host.clone(), meta.point.clone(), req.attempt.clone());
    let r = plan_locked(c, repo, req, meta).await;
    if r.is_err() {
        if let Err(e) = release(c, &host, &point, &attempt).await {
            tracing::warn!(%e, "releasing the build lock after a failed plan");
        }
    }
    r
}

async fn plan_locked(
    c: &Cloud,
    repo: &Repository,
    req: PlanRequest,
    meta: PointMeta,
) -> Result<Plan, StepError> {
    let point = meta.point.clone();
    // Unfinished snapshots of earlier attempts are dead (their builds failed or were
    // stopped): with the lock held, none is being written.
    cloud::delete_stale(c, &point, &req.attempt).await?;
    let blocks_total = meta.image_size.div_ceil(BLOCK_SIZE);
    let done = |snapshot_id, image_id| Plan {
        host: req.host.clone(),
        point: point.clone(),
        snapshot_id,
        parent_snapshot_id: None,
        parent_point: None,
        image_id,
        blocks_total,
        blocks_planned: 0,
        range_blocks: c.range_blocks,
        ranges: Vec::new(),
        attempt: req.attempt.clone(),
    };
    let found = find_snapshot(c, &point, &req.attempt).await?;
    if let Some(ami) = find_image(c, &req.host, &point).await? {
        return Ok(done(found.map(|s| s.id), Some(ami)));
    }
    let (sid, parent) = match found {
        Some(s) if s.completed => return Ok(done(Some(s.id), None)),
        // This attempt started it before (a retried step): same parent, same blocks.
        Some(s) => {
            let parent = match &s.parent_point {
                Some(pp) => Some((parent_snapshot(c, pp).await?, pp.clone())),
                None => None,
            };
            (s.id, parent)
        }
        None => {
            let parent = match &meta.parent {
                Some(pp) => find_snapshot(c, pp, &req.attempt)
                    .await?
                    .filter(|s| s.completed)
                    .map(|s| (s.id, pp.clone())),
                None => None,
            };
            (
                start_snapshot(c, &meta, parent.as_ref(), &req.attempt).await?,
                parent,
            )
        }
    };
    let parent_point = parent.as_ref().map(|(_, pp)| pp.clone());
    let images = Images::open(repo, &req.host, &point, parent_point.as_deref()).await?;
    let per = range_blocks(blocks_total, c.range_blocks);
    // Candidate blocks per range, found one segment at a time.
    let mut per_range: BTreeMap<u32, u64> = BTreeMap::new();
    for batch in images.batches() {
        for seg in images.segments(repo, batch.start, batch.end).await? {
            let span = images.span(repo, seg, batch.start, batch.end).await?;
            for b in span.candidates {
                *per_range.entry((b / per) as u32).or_default() += 1;
            }
        }
    }
    Ok(Plan {
        host: req.host,
        point,
        snapshot_id: Some(sid),
        parent_snapshot_id: parent.map(|(s, _)| s),
        parent_point,
        image_id: None,
        blocks_total,
        blocks_planned: per_range.values().sum(),
        range_blocks: per,
        ranges: per_range.into_keys().collect(),
        attempt: req.attempt,
    })
}

async fn parent_snapshot(c: &Cloud, parent_point: &str) -> Result<String, StepError> {
    match find_snapshot(c, parent_point, "").await? {
        Some(s) if s.completed => Ok(s.id),
        _ => Err(StepError::NonRetryable(format!(
            "the snapshot of parent point {parent_point} is gone; delete the unfinished snapshot and build again"
        ))),
    }
}

async fn start_snapshot(
    c: &Cloud,
    m: &PointMeta,
    parent: Option<&(String, String)>,
    attempt: &str,
) -> Result<String, StepError> {
    cloud::start_snapshot(
        c,
        &NewSnapshot {
            point: &m.point,
            host: &m.host,
            attempt,
            size_gib: m.image_size.div_ceil(1 << 30).max(1) as i64,
            parent: parent.map(|(s, pp)| (s.as_str(), pp.as_str())),
        },
    )
    .await
}

/// Writes the blocks of one range that differ from zeros (or from the parent), one
/// segment of the image and `WINDOW_BLOCKS` blocks at a time: memory is bounded by
/// the segment and the window, whatever the size of the image, the range or the store.
pub async fn write(c: &Cloud, repo: &Repository, r: WriteRange) -> Result<Written, StepError> {
    hold(c, &r.host, &r.point, &r.attempt).await?;
    let images = Images::open(repo, &r.host, &r.point, r.parent_point.as_deref()).await?;
    let (first, end) = r.blocks(images.blocks_total());
    let size = images.image_size();
    let parent_size = images.parent.as_ref().map(|p| p.footer.image_size);
    let mut written = 0u64;
    for seg in images.segments(repo, first, end).await? {
        let span = images.span(repo, seg, first, end).await?;
        for window in span.candidates.chunks(WINDOW_BLOCKS) {
            let mut bufs = assemble(repo, &span.child, size, window).await?;
            match parent_size {
                // A block whose chunks only brush it with zeros reads as zeros unwritten.
                None => bufs.retain(|_, data| !is_all_zero(data)),
                // The locations say these blocks may differ; the parent's bytes, read
                // from the store (never from the old snapshot), say whether they do.
                Some(psize) => {
                    let old = assemble(repo, &span.parent, psize, window).await?;
                    bufs.retain(|b, data| old.get(b) != Some(data));
                }
            }
            written += bufs.len() as u64;
            put_blocks(c, &r.snapshot_id, bufs).await?;
        }
    }
    tracing::info!(snapshot = %r.snapshot_id, first, end, written, "range written");
    Ok(Written {
        blocks_written: written,
    })
}

pub async fn finish(
    c: &Cloud,
    repo: &Repository,
    req: FinishRequest,
) -> Result<BuildImageResult, StepError> {
    hold(c, &req.host, &req.point, &req.attempt).await?;
    let written: u64 = req.writes.iter().sum();
    let existing = find_image(c, &req.host, &req.point).await?;
    let found = find_snapshot(c, &req.point, "").await?;
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
                .resolve_point_meta(&req.host, Some(&req.point))
                .await
                .map_err(repo_error)?;
            register_image(c, &m, &sid).await?
        }
    };
    record_image(c, &req.host, &req.point, &sid, &image_id).await?;
    release(c, &req.host, &req.point, &req.attempt).await?;
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
    if let (Some(host), Some(point)) = (&req.host, &req.point) {
        release(c, host, point, &req.attempt).await?;
    }
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

async fn register_image(c: &Cloud, m: &PointMeta, sid: &str) -> Result<String, StepError> {
    let (arch, boot) = match &m.machine {
        Some(f) => (architecture(&f.arch)?, Some(f.boot)),
        // Unknown: EC2's own default for x86_64.
        None => ("x86_64", None),
    };
    cloud::register_image(
        c,
        &NewImage {
            name: image_name(&m.host, &m.point),
            host: &m.host,
            point: &m.point,
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
}
