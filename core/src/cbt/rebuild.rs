//! The new point's chunk list from the parent's and the fetched ranges.

use std::ops::Range;

use bytes::Bytes;

use super::CbtError;
use crate::chunking::{ChunkerParams, StreamChunker};
use crate::manifest::ChunkRef;

/// One entry of the new point's chunk list, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A parent chunk, unchanged.
    Old(ChunkRef),
    /// A chunk cut from fetched bytes (it may still be in the store already).
    New(Bytes),
}

/// What the rebuild needs after the end of a fetched range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next range.
    Next,
    /// The cuts after a change have not met the parent's yet: the bytes after this range
    /// are needed before any later range; ask [`Rebuild::requests`] again.
    Extend,
}

struct Active {
    chunker: StreamChunker,
    /// Image offset of the next byte to feed.
    fed: u64,
    /// Where the changed bytes this chunker covers end.
    end: u64,
    /// How far past `fed` to fetch if the fetched bytes run out before the cuts meet.
    ext: u64,
}

/// Rebuilds the chunk list of a changed disk from its parent's and fetched ranges.
pub struct Rebuild {
    params: ChunkerParams,
    size: u64,
    block: u64,
    margin: u64,
    parent: Vec<ChunkRef>,
    /// Start of each parent chunk, then the image size.
    starts: Vec<u64>,
    runs: Vec<Range<u64>>,
    /// The run being worked on (or the next one).
    run: usize,
    next_parent: usize,
    /// Image offset up to which pieces were emitted.
    pos: u64,
    active: Option<Active>,
}

fn align_down(x: u64, b: u64) -> u64 {
    x / b * b
}

impl Rebuild {
    /// `margin`: bytes fetched past each run in the first round, for the cuts after it
    /// to meet the parent's (more is fetched in later rounds when they do not).
    pub fn new(
        parent: Vec<ChunkRef>,
        size: u64,
        block: u32,
        runs: Vec<Range<u64>>,
        params: ChunkerParams,
        margin: u64,
    ) -> Result<Self, CbtError> {
        let mut starts = Vec::with_capacity(parent.len() + 1);
        let mut at = 0u64;
        for c in &parent {
            starts.push(at);
            at += u64::from(c.len);
        }
        starts.push(at);
        if at != size {
            return Err(CbtError::ParentSize {
                chunks: at,
                image: size,
            });
        }
        Ok(Rebuild {
            params,
            size,
            block: u64::from(block),
            margin,
            parent,
            starts,
            runs,
            run: 0,
            next_parent: 0,
            pos: 0,
            active: None,
        })
    }

    fn align_up(&self, x: u64) -> u64 {
        x.div_ceil(self.block)
            .saturating_mul(self.block)
            .min(self.size)
    }

    /// Index and offset of the parent chunk where chunking starts again for changed
    /// bytes from `a`: the first parent chunk whose bytes, or the byte after them, reach
    /// `a`.
    fn restart(&self, a: u64) -> (usize, u64) {
        let k = self.starts[1..]
            .partition_point(|&end| end < a)
            .min(self.parent.len());
        (k, self.starts[k])
    }

    /// The ranges to fetch next, in order, whole blocks, merged where they touch.
    /// `free(i)`: block `i` costs nothing to read (free space the parent had and the
    /// host did not change): the bytes asked for past a change reach across such blocks,
    /// as far as the cuts after the change may need, and count only the others.
    pub fn requests(&self, free: impl Fn(u64) -> bool) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut first = self.run;
        let mut floor = 0;
        if let Some(a) = &self.active {
            out.push(a.fed..self.reach(a.fed, a.ext, &free));
            first += 1;
            floor = a.fed;
        }
        for r in &self.runs[first.min(self.runs.len())..] {
            let (_, s) = self.restart(r.start);
            let from = align_down(s, self.block).max(floor);
            let to = self.reach(r.end, self.margin, &free);
            match out.last_mut() {
                Some(last) if from <= last.end => last.end = last.end.max(to),
                _ => out.push(from..to),
            }
        }
        out
    }

    /// The block boundary that covers `want` bytes from `from` (a block boundary or
    /// the image's end), blocks that are `free` not counted.
    fn reach(&self, from: u64, want: u64, free: &impl Fn(u64) -> bool) -> u64 {
        let mut at = self.align_up(from);
        let mut got = 0u64;
        while at < self.size && (got < want || free(at / self.block)) {
            if !free(at / self.block) {
                got += self.block;
            }
            at = (at + self.block).min(self.size);
        }
        at
    }

    /// Changed blocks not covered yet, in runs (for reports).
    pub fn runs(&self) -> &[Range<u64>] {
        &self.runs
    }

    fn emit_parent_until(&mut self, offset: u64, out: &mut Vec<Piece>) {
        while self.next_parent < self.parent.len() && self.starts[self.next_parent] < offset {
            out.push(Piece::Old(self.parent[self.next_parent]));
            self.next_parent += 1;
        }
        self.pos = self.starts[self.next_parent];
    }

    /// Feeds fetched bytes at image offset `at` (a piece of a range from
    /// [`Rebuild::requests`], pieces in order); appends the pieces it completes.
    pub fn feed(&mut self, at: u64, data: &Bytes, out: &mut Vec<Piece>) -> Result<(), CbtError> {
        let end = at + data.len() as u64;
        let mut from = at;
        while from < end {
            if self.active.is_none() {
                let Some(r) = self.runs.get(self.run).cloned() else {
                    return Ok(());
                };
                let (k, s) = self.restart(r.start);
                if s >= end {
                    return Ok(());
                }
                if s < from {
                    return Err(CbtError::OutOfOrder { at: from, want: s });
                }
                self.emit_parent_until(s, out);
                debug_assert_eq!(self.next_parent, k);
                self.active = Some(Active {
                    chunker: StreamChunker::eager(self.params),
                    fed: s,
                    end: r.end,
                    ext: self.margin.max(self.block) * 2,
                });
                from = s;
            }
            let Some(a) = self.active.as_mut() else {
                continue;
            };
            if a.fed != from {
                return Err(CbtError::OutOfOrder {
                    at: from,
                    want: a.fed,
                });
            }
            let mut cut = Vec::new();
            a.chunker
                .push_bytes(data.slice((from - at) as usize..), &mut cut);
            a.fed = end;
            from = end;
            self.take_cuts(cut, out);
        }
        Ok(())
    }

    /// Emits fresh cuts until the cuts meet the parent's after the changed bytes.
    fn take_cuts(&mut self, cut: Vec<Bytes>, out: &mut Vec<Piece>) {
        for c in cut {
            let Some(fed) = self.active.as_ref().map(|a| a.fed) else {
                return;
            };
            self.pos += c.len() as u64;
            out.push(Piece::New(c));
            // Bytes past the next run's restart are in this chunker: the runs merge.
            let mut end = self.active.as_ref().map_or(0, |a| a.end);
            while let Some(next) = self.runs.get(self.run + 1) {
                if fed <= self.restart(next.start).1 {
                    break;
                }
                end = end.max(next.end);
                self.run += 1;
            }
            if let Some(a) = self.active.as_mut() {
                a.end = end;
            }
            if self.pos < end {
                continue;
            }
            if let Ok(k) = self.starts.binary_search(&self.pos) {
                self.next_parent = k;
                self.active = None;
                self.run += 1;
                return;
            }
        }
    }

    /// The end of a fetched range: whether the rebuild can go on to the next range.
    pub fn range_end(&mut self, end: u64, out: &mut Vec<Piece>) -> Flow {
        let Some(a) = self.active.as_mut() else {
            return Flow::Next;
        };
        if a.fed < end {
            return Flow::Next;
        }
        if end < self.size {
            a.ext = a.ext.saturating_mul(2);
            return Flow::Extend;
        }
        let mut cut = Vec::new();
        a.chunker.finish(&mut cut);
        for c in cut {
            self.pos += c.len() as u64;
            out.push(Piece::New(c));
        }
        self.next_parent = self.parent.len();
        self.active = None;
        self.run = self.runs.len();
        Flow::Next
    }

    /// After the last range: the parent chunks after the last change.
    pub fn finish(mut self, out: &mut Vec<Piece>) -> Result<(), CbtError> {
        if let Some(a) = &self.active {
            return Err(CbtError::Unfinished(a.fed));
        }
        if let Some(r) = self.runs.get(self.run) {
            return Err(CbtError::Unfinished(r.start));
        }
        self.emit_parent_until(self.size, out);
        Ok(())
    }
}
