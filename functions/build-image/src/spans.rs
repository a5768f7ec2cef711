//! A point's image (and its parent's) as the build reads it: one segment of the
//! locations objects at a time, each with the blocks it holds that may need writing.
//! Memory per segment is bounded by the segment's span, never by the image or the store.

use std::ops::Range;

use ferry_core::ebs::{blocks_between, changed_between, nonzero, BLOCK_SIZE};
use ferry_core::locations::{Located, SegmentRef};
use ferry_fn::StepError;
use ferry_store::locations::Locations;
use ferry_store::Repository;

use crate::store::repo_error;

/// Segments whose table entries are read at once by a scan of the whole image.
const TABLE_BATCH: u32 = 4096;

/// A point's locations and, for a child snapshot, its parent point's.
pub struct Images {
    pub child: Locations,
    pub parent: Option<Locations>,
}

/// Blocks `first..end` of one segment, the records around them and the blocks among
/// them that may differ (from zeros, or from the parent).
pub struct Span {
    pub first: u64,
    pub end: u64,
    pub child: Vec<Located>,
    pub parent: Vec<Located>,
    pub candidates: Vec<u64>,
}

async fn open(repo: &Repository, host: &str, point: &str) -> Result<Locations, StepError> {
    if let Some(l) = repo.open_locations(host, point).await.map_err(repo_error)? {
        return Ok(l);
    }
    let m = repo.read_point(host, point).await.map_err(repo_error)?;
    repo.ensure_locations(&m).await.map_err(repo_error)
}

impl Images {
    pub async fn open(
        repo: &Repository,
        host: &str,
        point: &str,
        parent: Option<&str>,
    ) -> Result<Self, StepError> {
        let child = open(repo, host, point).await?;
        let parent = match parent {
            Some(pp) => Some(open(repo, host, pp).await?),
            None => None,
        };
        for l in std::iter::once(&child).chain(parent.as_ref()) {
            if !l.footer.span.is_multiple_of(BLOCK_SIZE) {
                return Err(StepError::NonRetryable(format!(
                    "{}: segments of {} bytes do not hold whole EBS blocks",
                    l.key, l.footer.span
                )));
            }
        }
        Ok(Images { child, parent })
    }

    pub fn image_size(&self) -> u64 {
        self.child.footer.image_size
    }

    pub fn blocks_total(&self) -> u64 {
        self.image_size().div_ceil(BLOCK_SIZE)
    }

    fn span_blocks(&self) -> u64 {
        self.child.footer.span / BLOCK_SIZE
    }

    /// The segments that hold blocks `first..end`, with the parent's segment of the same
    /// span where the parent has one.
    pub async fn segments(
        &self,
        repo: &Repository,
        first: u64,
        end: u64,
    ) -> Result<Vec<(u32, SegmentRef, Option<SegmentRef>)>, StepError> {
        let range = self
            .child
            .footer
            .segments_for(first * BLOCK_SIZE, end * BLOCK_SIZE);
        let child = repo
            .segment_refs(&self.child, range.clone())
            .await
            .map_err(repo_error)?;
        let parent = match &self.parent {
            Some(p) => {
                let have = range.start.min(p.footer.segments)..range.end.min(p.footer.segments);
                repo.segment_refs(p, have).await.map_err(repo_error)?
            }
            None => Vec::new(),
        };
        Ok(range
            .zip(child)
            .enumerate()
            .map(|(i, (s, c))| (s, c, parent.get(i).copied()))
            .collect())
    }

    /// Reads one segment (and the parent's) and finds its blocks in `first..end` that
    /// may need writing.
    pub async fn span(
        &self,
        repo: &Repository,
        seg: (u32, SegmentRef, Option<SegmentRef>),
        first: u64,
        end: u64,
    ) -> Result<Span, StepError> {
        let (s, child_ref, parent_ref) = seg;
        let spb = self.span_blocks();
        let lo = (u64::from(s) * spb).max(first);
        let hi = ((u64::from(s) + 1) * spb).min(end).min(self.blocks_total());
        let child = repo
            .read_segment(&self.child, child_ref)
            .await
            .map_err(repo_error)?;
        let child_blocks = blocks_between(lo, hi, child.iter().map(|l| (l.at, l.chunk)));
        let (parent, candidates) = match (&self.parent, parent_ref) {
            (None, _) => (Vec::new(), nonzero(&child_blocks)),
            (Some(p), pref) => {
                let records = match pref {
                    Some(r) => repo.read_segment(p, r).await.map_err(repo_error)?,
                    None => Vec::new(),
                };
                let parent_end = hi.min(p.footer.image_size.div_ceil(BLOCK_SIZE)).max(lo);
                let old = blocks_between(lo, parent_end, records.iter().map(|l| (l.at, l.chunk)));
                (records, changed_between(&old, &child_blocks))
            }
        };
        Ok(Span {
            first: lo,
            end: hi,
            child,
            parent,
            candidates,
        })
    }

    /// Every segment of the image in batches of `TABLE_BATCH` segments, for a scan.
    pub fn batches(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let spb = self.span_blocks() * u64::from(TABLE_BATCH);
        let total = self.blocks_total();
        (0..total.div_ceil(spb)).map(move |i| i * spb..((i + 1) * spb).min(total))
    }
}
