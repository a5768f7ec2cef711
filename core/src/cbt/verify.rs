//! Fetched blocks: each hashed as it completes, checked against the hash the host gave
//! for it, and put into the new point's block map.

use super::CbtError;
use crate::blockmap::{BlockHash, BlockMap, Digest};

/// The new point's block map, built from the parent's and the blocks fetched.
pub struct Fetched {
    map: BlockMap,
    host: Vec<Digest>,
    /// A block being gathered from pieces, and its offset.
    buf: Vec<u8>,
    buf_at: u64,
    /// Blocks fetched (and checked) so far.
    pub blocks: u64,
}

impl Fetched {
    /// `host`: the SHA-256 of each block as the host computed it.
    pub fn new(parent: &BlockMap, host: Vec<Digest>) -> Self {
        Fetched {
            map: parent.clone(),
            host,
            buf: Vec::new(),
            buf_at: 0,
            blocks: 0,
        }
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
        if self.host.get(i as usize) != Some(&h.sha256) {
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
