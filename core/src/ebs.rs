//! Mapping a recovery point onto EBS snapshot blocks (512 KiB), for the image builder.
//!
//! A point is a list of variable-sized chunks; an EBS snapshot is a list of fixed
//! 512 KiB blocks. Each block is described by the chunk pieces that fill it, which is
//! enough to (a) skip blocks that are all zeros (EBS reads unwritten blocks as zeros) and
//! (b) decide, from two chunk lists alone (a window of each at a time), which blocks of a
//! child snapshot can differ from its parent, so an incremental snapshot writes only those.

use crate::id::{ChunkId, ZeroIds};
use crate::manifest::ChunkRef;

/// The EBS direct APIs' block size.
pub const BLOCK_SIZE: u64 = 512 * 1024;

/// A piece of a chunk inside one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub chunk: ChunkId,
    /// Offset of the piece inside the chunk.
    pub chunk_offset: u32,
    pub len: u32,
    /// The chunk is all zeros.
    pub zero: bool,
}

/// What a block holds, for comparing blocks: data pieces as they are, and each run of
/// zero pieces as its length (zeros are zeros, whichever chunk they were cut into).
#[derive(Debug, PartialEq, Eq)]
enum Content {
    Data(ChunkId, u32, u32),
    Zeros(u32),
}

/// One 512 KiB block of the image (the last may be shorter; EBS pads it with zeros).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub index: u64,
    pub pieces: Vec<Piece>,
    /// Every piece comes from an all-zero chunk.
    pub zero: bool,
}

/// Blocks `first..end` of an image, each with the pieces of `chunks` (image offset and
/// chunk, in image order) that fill it; chunks outside the blocks are skipped, so a
/// caller can hand over any superset (a segment of a locations object, say).
pub fn blocks_between(
    first: u64,
    end: u64,
    chunks: impl IntoIterator<Item = (u64, ChunkRef)>,
) -> Vec<Block> {
    let mut zeros = ZeroIds::default();
    let mut out: Vec<Block> = (first..end)
        .map(|index| Block {
            index,
            pieces: Vec::new(),
            zero: true,
        })
        .collect();
    let (lo, hi) = (first * BLOCK_SIZE, end * BLOCK_SIZE);
    for (offset, c) in chunks {
        let chunk_end = offset + u64::from(c.len);
        if chunk_end <= lo || offset >= hi {
            continue;
        }
        let is_zero = zeros.id(c.len) == c.id;
        let mut at = offset.max(lo);
        let stop = chunk_end.min(hi);
        while at < stop {
            let b = at / BLOCK_SIZE;
            let block_end = ((b + 1) * BLOCK_SIZE).min(stop);
            let block = &mut out[(b - first) as usize];
            block.pieces.push(Piece {
                chunk: c.id,
                chunk_offset: (at - offset) as u32,
                len: (block_end - at) as u32,
                zero: is_zero,
            });
            block.zero &= is_zero;
            at = block_end;
        }
    }
    out
}

impl Block {
    fn content(&self) -> Vec<Content> {
        let mut out: Vec<Content> = Vec::with_capacity(self.pieces.len());
        for p in &self.pieces {
            match (p.zero, out.last_mut()) {
                (true, Some(Content::Zeros(n))) => *n += p.len,
                (true, _) => out.push(Content::Zeros(p.len)),
                (false, _) => out.push(Content::Data(p.chunk, p.chunk_offset, p.len)),
            }
        }
        out
    }
}

/// Indices of the blocks of `new` that may differ from `old`, the parent's blocks of the
/// same span (fewer where the parent ends earlier): a block is unchanged when both hold
/// the same chunk pieces at the same places, counting runs of zeros as equal whatever
/// chunks they were cut into. Blocks past the parent's end count as changed unless they
/// are zero.
pub fn changed_between(old: &[Block], new: &[Block]) -> Vec<u64> {
    let base = new.first().map_or(0, |b| b.index);
    new.iter()
        .filter(|b| match old.get((b.index - base) as usize) {
            Some(o) => o.content() != b.content(),
            None => !b.zero,
        })
        .map(|b| b.index)
        .collect()
}

/// Blocks of `blocks` that hold any data (EBS reads unwritten blocks as zeros).
pub fn nonzero(blocks: &[Block]) -> Vec<u64> {
    blocks.iter().filter(|b| !b.zero).map(|b| b.index).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::manifest;
    use crate::manifest::Manifest;

    fn blocks(m: &Manifest) -> Vec<Block> {
        blocks_between(0, m.meta.image_size.div_ceil(BLOCK_SIZE), m.offsets())
    }

    fn changed_blocks(parent: &Manifest, child: &Manifest) -> Vec<u64> {
        changed_between(&blocks(parent), &blocks(child))
    }

    const B: usize = BLOCK_SIZE as usize;

    #[test]
    fn pieces_cover_every_block_exactly() {
        let a = vec![1u8; 300 * 1024];
        let z = vec![0u8; 900 * 1024];
        let c = vec![2u8; 100];
        let m = manifest(&[&a, &z, &c]);
        let bl = blocks(&m);
        assert_eq!(bl.len(), 3);
        for b in &bl[..2] {
            assert_eq!(b.pieces.iter().map(|p| p.len as usize).sum::<usize>(), B);
        }
        assert!(!bl[0].zero, "block 0 holds data");
        assert!(bl[1].zero, "block 1 is inside the zero chunk");
        assert!(!bl[2].zero);
        assert_eq!(bl[1].pieces[0].chunk_offset, (B - 300 * 1024) as u32);
    }

    #[test]
    fn only_blocks_touched_by_changed_chunks_are_changed() {
        let chunks: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i + 1; 256 * 1024]).collect();
        let refs: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        let parent = manifest(&refs);
        assert!(changed_blocks(&parent, &parent).is_empty());
        let mut changed = chunks.clone();
        changed[5] = vec![99; 256 * 1024];
        let refs2: Vec<&[u8]> = changed.iter().map(|c| &c[..]).collect();
        let child = manifest(&refs2);
        // Chunk 5 covers bytes 1.25..1.5 MiB: block 2 only.
        assert_eq!(changed_blocks(&parent, &child), vec![2]);
    }

    #[test]
    fn zero_blocks_cut_differently_are_unchanged() {
        let d = vec![7u8; 100];
        let z1 = vec![0u8; 2 * B];
        let (za, zb) = (vec![0u8; B / 2], vec![0u8; B + B / 2]);
        let parent = manifest(&[&d, &z1]);
        let child = manifest(&[&d, &za, &zb]);
        // Same bytes everywhere, zero runs cut into other chunks: nothing changed.
        assert!(changed_blocks(&parent, &child).is_empty());
        // Data where the parent had zeros is a change.
        let e = vec![8u8; 10];
        let rest = vec![0u8; B / 2 - 10];
        let child = manifest(&[&d, &zb, &e, &rest]);
        assert_eq!(changed_blocks(&parent, &child), vec![1]);
    }

    #[test]
    fn a_window_of_blocks_sees_the_same_pieces_as_the_whole_image() {
        let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 300 * 1024]).collect();
        let refs: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        let m = manifest(&refs);
        let all = blocks(&m);
        let part = blocks_between(2, 4, m.offsets());
        assert_eq!(part, all[2..4].to_vec());
        // A parent that ends inside the window: the blocks past its end are changed.
        assert_eq!(changed_between(&all[2..3], &part), vec![3]);
        // Chunk 0 is zeros, but block 0 also holds chunk 1's bytes.
        assert_eq!(nonzero(&all), (0..all.len() as u64).collect::<Vec<_>>());
    }
}
