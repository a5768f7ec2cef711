//! Fetched blocks: each hashed as it completes, checked against the hash the host gave
//! for it, and put into the new point's block map.

use std::ops::Range;

use super::{CbtError, Changes};
use crate::blockmap::{BlockHash, BlockMap, Digest};

/// A stretch of a fetch range: bytes to fetch from the host, or blocks that are all
/// zeros in the parent and unchanged on the host (free space), which the appliance
/// makes itself instead of fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub range: Range<u64>,
    pub zero: bool,
}

/// The new point's block map, built from the parent's and the blocks fetched.
pub struct Fetched {
    map: BlockMap,
    /// The host's hashes of the changed blocks (every other block hashed as the parent's).
    changes: Changes,
    /// A block being gathered from pieces, and its offset.
    buf: Vec<u8>,
    buf_at: u64,
    /// Blocks fetched (and checked) so far.
    pub blocks: u64,
    /// SHA-256 of a whole block of zeros, and of the image's last block's length.
    zero: Digest,
    zero_last: Digest,
}

fn sha256_of_zeros(n: usize) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(vec![0u8; n]).into()
}

impl Fetched {
    /// `parent`: the parent's block map, which becomes the new point's.
    pub fn new(parent: BlockMap, changes: Changes) -> Self {
        let b = u64::from(parent.block_size);
        let last = parent.image_size - parent.image_size.saturating_sub(1) / b * b;
        Fetched {
            zero: sha256_of_zeros(b as usize),
            zero_last: sha256_of_zeros(last as usize),
            map: parent,
            changes,
            buf: Vec::new(),
            buf_at: 0,
            blocks: 0,
        }
    }

    /// Whether block `i` is all zeros in the parent and unchanged on the host.
    pub fn known_zero(&self, i: u64) -> bool {
        if self.changes.binary_search_by_key(&i, |c| c.0).is_ok() {
            return false;
        }
        let last = self.map.blocks.len() as u64 - 1;
        let zero = if i == last {
            &self.zero_last
        } else {
            &self.zero
        };
        self.map.blocks.get(i as usize).map(|b| &b.sha256) == Some(zero)
    }

    /// `range` (whole blocks) cut into what to fetch and what is known to be zeros.
    pub fn segments(&self, range: Range<u64>) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        let b = u64::from(self.map.block_size);
        let mut at = range.start;
        while at < range.end {
            let end = ((at / b + 1) * b).min(range.end);
            let zero = self.known_zero(at / b);
            match out.last_mut() {
                Some(s) if s.zero == zero => s.range.end = end,
                _ => out.push(Segment {
                    range: at..end,
                    zero,
                }),
            }
            at = end;
        }
        out
    }

    /// Fetched bytes at image offset `at`; a range's pieces in order, ranges starting on
    /// a block boundary.
    pub fn add(&mut self, at: u64, data: &[u8]) -> Result<(), CbtError> {
        let b = u64::from(self.map.block_size);
        if self.buf.is_empty() {
            if !at.is_multiple_of(b) {
                return Err(CbtError::Unaligned(at));
            }
            self.buf_at = at;
        } else if at != self.buf_at + self.buf.len() as u64 {
            return Err(CbtError::Unaligned(at));
        }
        let mut rest = data;
        while !rest.is_empty() {
            let block_end = (self.buf_at + b).min(self.map.image_size);
            if block_end <= self.buf_at {
                return Err(CbtError::Unaligned(self.buf_at));
            }
            let want = (block_end - self.buf_at) as usize;
            let take = (want - self.buf.len()).min(rest.len());
            if self.buf.is_empty() && take == want {
                // A whole block in the piece: hashed where it is.
                self.check(&rest[..take])?;
            } else {
                self.buf.extend_from_slice(&rest[..take]);
                if self.buf.len() == want {
                    let full = std::mem::take(&mut self.buf);
                    self.check(&full)?;
                }
            }
            rest = &rest[take..];
        }
        Ok(())
    }

    fn check(&mut self, data: &[u8]) -> Result<(), CbtError> {
        let b = u64::from(self.map.block_size);
        let i = self.buf_at / b;
        let h = BlockHash::of(self.map.block_size, i, data);
        let host = match self.changes.binary_search_by_key(&i, |c| c.0) {
            Ok(k) => Some(self.changes[k].1),
            Err(_) => self.map.blocks.get(i as usize).map(|b| b.sha256),
        };
        if host != Some(h.sha256) {
            return Err(CbtError::ChangedUnderRead { block: i });
        }
        self.map.blocks[i as usize] = h;
        self.blocks += 1;
        self.buf_at += data.len() as u64;
        Ok(())
    }

    /// The end of a fetched range: it must have ended on a block boundary.
    pub fn range_end(&self) -> Result<(), CbtError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CbtError::Unaligned(self.buf_at + self.buf.len() as u64))
        }
    }

    pub fn into_map(self) -> BlockMap {
        self.map
    }
}
