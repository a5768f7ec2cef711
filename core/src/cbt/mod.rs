//! Changed-block capture, the pure part: which bytes of a disk to fetch when the host
//! said which blocks changed since the parent point, and the new point's chunk list
//! from the parent's chunks and the fetched bytes.
//!
//! A chunk FastCDC cuts at `[s, e)` depends on the bytes `[s, e]` only (the hash that
//! decides the cut at `e` includes byte `e`), and on the image's end when it is the last
//! chunk. So a full read of the changed disk reproduces every parent chunk that starts
//! where the read's own cuts arrive and whose bytes (and the one after) did not change.
//! For each run of changed bytes `[a, b)`:
//! - chunking starts again at the parent chunk boundary `s` before the first parent
//!   chunk whose bytes reach `a` (every parent chunk before it is unchanged, and the
//!   full read's cuts agree with the parent's up to `s`);
//! - the fetched bytes from `s` are cut (as eagerly as the bytes allow, see
//!   [`StreamChunker::eager`]) until a cut lands at or after `b` on a parent chunk
//!   boundary: from there on the bytes are the parent's, and so are the chunks, up to
//!   the next run;
//! - a run whose cuts reach the next run's start before that merges with it.
//!
//! Fetch ranges are whole blocks, so that the appliance can check every fetched block
//! against the hash the host gave for it (a block that changed between the host's
//! hashing and the read is caught, not stored half old, half new).

use std::ops::Range;

use crate::blockmap::{BlockMap, Digest};

mod rebuild;
mod verify;

pub use rebuild::{Flow, Piece, Rebuild};
pub use verify::{Fetched, Segment};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CbtError {
    #[error("the parent's chunks add up to {chunks} bytes, its image to {image}")]
    ParentSize { chunks: u64, image: u64 },
    #[error("fetched bytes at {at} are not the ones the rebuild waits for (next: {want})")]
    OutOfOrder { at: u64, want: u64 },
    #[error("the rebuild ended with bytes still to fetch from {0}")]
    Unfinished(u64),
    #[error("block {block} changed while it was read (its hash on the host was taken before)")]
    ChangedUnderRead { block: u64 },
    #[error("fetched bytes at {0} are not block-aligned ranges")]
    Unaligned(u64),
}

/// The blocks whose SHA-256 on the host differs from the parent's: index and the
/// host's hash, in block order.
pub type Changes = Vec<(u64, Digest)>;

/// Compares the host's hashes, in block order, with the parent's as they arrive, so
/// only the changed ones are kept.
pub struct Compare<'a> {
    parent: &'a BlockMap,
    next: u64,
    changes: Changes,
}

impl<'a> Compare<'a> {
    pub fn new(parent: &'a BlockMap) -> Self {
        Compare {
            parent,
            next: 0,
            changes: Vec::new(),
        }
    }

    /// The host's hash of the next block; false when there are more hashes than blocks.
    pub fn push(&mut self, host: Digest) -> bool {
        let Some(p) = self.parent.blocks.get(self.next as usize) else {
            return false;
        };
        if p.sha256 != host {
            self.changes.push((self.next, host));
        }
        self.next += 1;
        true
    }

    /// The changes, once every block has its hash; `None` if some are missing.
    pub fn finish(self) -> Option<Changes> {
        (self.next == self.parent.blocks.len() as u64).then_some(self.changes)
    }
}

/// The byte runs of the changed blocks, adjacent blocks merged.
pub fn changed_runs(parent: &BlockMap, changes: &Changes) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for &(i, _) in changes {
        let r = parent.range(i);
        match runs.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => runs.push(r),
        }
    }
    runs
}

#[cfg(test)]
mod tests;
