//! Which parts of an image must be written to turn one point into another.
//!
//! Used by failback and `restore --to-host`: only the chunks of the target point that do
//! not already sit, byte for byte, at the same offset on the destination are written.

use crate::manifest::{ChunkRef, Manifest};

/// A chunk of the target point that must be written at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub offset: u64,
    pub chunk: ChunkRef,
}

/// The chunks of `target` that `base` does not already hold at the same offset.
///
/// Both chunk lists are walked once, in order. A chunk counts as present only when the
/// base has a chunk with the same id starting at the same offset, so the result is exact
/// at chunk granularity: never misses a difference, may rewrite a little more.
pub fn changed_chunks(base: &Manifest, target: &Manifest) -> Vec<Write> {
    let mut base_iter = base.offsets().peekable();
    let mut out = Vec::new();
    for (offset, chunk) in target.offsets() {
        while base_iter.peek().is_some_and(|(o, _)| *o < offset) {
            base_iter.next();
        }
        let same = base_iter
            .peek()
            .is_some_and(|(o, c)| *o == offset && c.id == chunk.id);
        if !same {
            out.push(Write { offset, chunk });
        }
    }
    out
}

/// A contiguous byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub offset: u64,
    pub len: u64,
}

/// Merges adjacent writes into ranges, so that a host gets few large writes.
pub fn coalesce(writes: &[Write]) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for w in writes {
        let len = u64::from(w.chunk.len);
        match out.last_mut() {
            Some(r) if r.offset + r.len == w.offset => r.len += len,
            _ => out.push(Range {
                offset: w.offset,
                len,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::manifest;

    #[test]
    fn only_moved_or_changed_chunks_are_written() {
        let base = manifest(&[b"aaaa", b"bbbb", b"cccc", b"dddd"]);
        let same = changed_chunks(&base, &base);
        assert!(same.is_empty());
        // Changed third chunk, same lengths.
        let t = manifest(&[b"aaaa", b"bbbb", b"CCCC", b"dddd"]);
        let w = changed_chunks(&base, &t);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].offset, 8);
        // A longer first chunk shifts everything: the shifted ones must be rewritten,
        // because on the disk they would land at other offsets.
        let t = manifest(&[b"aaaaa", b"bbbb", b"cccc", b"dddd"]);
        assert_eq!(changed_chunks(&base, &t).len(), 4);
    }

    #[test]
    fn coalesce_merges_neighbours() {
        let base = manifest(&[b"aa", b"bb", b"cc", b"dd"]);
        let t = manifest(&[b"AA", b"BB", b"cc", b"DD"]);
        let r = coalesce(&changed_chunks(&base, &t));
        assert_eq!(
            r,
            vec![Range { offset: 0, len: 4 }, Range { offset: 6, len: 2 }]
        );
    }
}
