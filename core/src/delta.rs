//! Which parts of an image must be written to turn one point into another.
//!
//! Used by failback and `restore --to-host`: only the chunks of the target point that do
//! not already sit, byte for byte, at the same offset on the destination are written.

use crate::id::ZeroIds;
use crate::manifest::{ChunkRef, Manifest};

/// A chunk of the target point that must be written at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub offset: u64,
    pub chunk: ChunkRef,
}

/// The chunks of `target` that `base` does not already hold at the same offset.
///
/// Both chunk lists are walked once, in order. A chunk counts as present when the base
/// has a chunk with the same id starting at the same offset, or when it is all zeros and
/// the base is all zeros over the same bytes: in long zero runs (free space) cut points
/// fall every `max_size` bytes from the last content-defined cut, so a change before a
/// run shifts the run's chunks without changing a byte of it. The result never misses a
/// difference and may rewrite a little more.
pub fn changed_chunks(base: &Manifest, target: &Manifest) -> Vec<Write> {
    let mut zeros = ZeroIds::default();
    let base_zero_runs = zero_runs(base, &mut zeros);
    let mut runs = base_zero_runs.iter().peekable();
    let mut base_iter = base.offsets().peekable();
    let mut out = Vec::new();
    for (offset, chunk) in target.offsets() {
        while base_iter.peek().is_some_and(|(o, _)| *o < offset) {
            base_iter.next();
        }
        let same = base_iter
            .peek()
            .is_some_and(|(o, c)| *o == offset && c.id == chunk.id);
        if same {
            continue;
        }
        let end = offset + u64::from(chunk.len);
        while runs.peek().is_some_and(|r| r.offset + r.len <= offset) {
            runs.next();
        }
        let in_zero_run = zeros.id(chunk.len) == chunk.id
            && runs
                .peek()
                .is_some_and(|r| r.offset <= offset && end <= r.offset + r.len);
        if !in_zero_run {
            out.push(Write { offset, chunk });
        }
    }
    out
}

/// The byte ranges of `m` made of all-zero chunks, merged, in order.
fn zero_runs(m: &Manifest, zeros: &mut ZeroIds) -> Vec<Range> {
    let mut runs: Vec<Range> = Vec::new();
    for (offset, c) in m.offsets() {
        if zeros.id(c.len) != c.id {
            continue;
        }
        let len = u64::from(c.len);
        match runs.last_mut() {
            Some(r) if r.offset + r.len == offset => r.len += len,
            _ => runs.push(Range { offset, len }),
        }
    }
    runs
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
    fn shifted_zero_chunks_inside_zeros_are_not_rewritten() {
        let z = vec![0u8; 4];
        let z3 = vec![0u8; 3];
        // Base: data then 3 zero chunks. Target: the data chunk grew by one byte and
        // the zero run behind it is cut one byte later: same bytes, other chunks.
        let base = manifest(&[b"abc", &z, &z, &z]);
        let t = manifest(&[b"abcd", &z, &z, &z3]);
        let w = changed_chunks(&base, &t);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].offset, 0);
        // Zeros where the base had data must be written.
        let t = manifest(&[&z3, &z, &z, &z]);
        assert_eq!(changed_chunks(&base, &t).len(), 1);
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
