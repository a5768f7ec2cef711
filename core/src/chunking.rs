//! Content-defined chunking: FastCDC v2020 over a stream that arrives in blocks.
//!
//! Cut points depend only on the bytes from a chunk's start up to `max` bytes further, so
//! the chunker cuts only while at least `max` bytes are buffered (or the stream ended).
//! That makes the chunk list independent of how the stream was split into blocks: a
//! capture over SSH (small packets) and a local read (large blocks) agree.

use std::collections::VecDeque;

use bytes::Bytes;
use fastcdc::v2020::{FastCDC, Normalization};
use serde::{Deserialize, Serialize};

/// Chunker parameters, recorded in the store's config so every writer cuts alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Always "fastcdc-v2020" in format version 1.
    pub algorithm: ChunkAlgorithm,
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// FastCDC normalization level (0-3).
    pub normalization: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkAlgorithm {
    #[serde(rename = "fastcdc-v2020")]
    FastCdcV2020,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkAlgorithm::FastCdcV2020,
            min_size: 8 * 1024,
            avg_size: 32 * 1024,
            max_size: 128 * 1024,
            normalization: 1,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("chunk sizes must satisfy 64 <= min <= avg <= max <= 16 MiB (got {min}/{avg}/{max})")]
    Sizes { min: u32, avg: u32, max: u32 },
    #[error("normalization level must be 0..=3, got {0}")]
    Normalization(u8),
}

impl ChunkerParams {
    pub fn validate(&self) -> Result<(), ParamsError> {
        let (min, avg, max) = (self.min_size, self.avg_size, self.max_size);
        // The bounds are fastcdc's own (MINIMUM_MIN .. MAXIMUM_MAX); checking them here
        // turns its assertions into an error a store config can report.
        let ok = (64..=1_048_576).contains(&min)
            && (256..=4_194_304).contains(&avg)
            && (1024..=16_777_216).contains(&max)
            && min <= avg
            && avg <= max;
        if !ok {
            return Err(ParamsError::Sizes { min, avg, max });
        }
        if self.normalization > 3 {
            return Err(ParamsError::Normalization(self.normalization));
        }
        Ok(())
    }

    fn level(&self) -> Normalization {
        match self.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        }
    }
}

/// Cuts a stream into chunks. Feed blocks with [`StreamChunker::push_bytes`], then call
/// [`StreamChunker::finish`]; each returns the chunks completed so far, in order.
///
/// Chunks inside a block are zero-copy slices of it; only a chunk that straddles two
/// blocks is copied (at most one per block boundary).
pub struct StreamChunker {
    params: ChunkerParams,
    /// Blocks not cut yet; the first starts at `pos`.
    pending: VecDeque<Bytes>,
    pos: usize,
    /// Bytes pending, from `pos`.
    len: usize,
    /// Where FastCDC cuts a chunk that starts a run of at least `max_size` zeros. The
    /// cut depends only on those bytes, so it is computed once and zero runs (free
    /// space) are cut without scanning them.
    zero_cut: usize,
    /// Also cut before `max_size` bytes are buffered when FastCDC finds a cut in what
    /// is there (see [`StreamChunker::eager`]).
    eager: bool,
}

impl StreamChunker {
    /// `params` must have passed [`ChunkerParams::validate`].
    pub fn new(params: ChunkerParams) -> Self {
        let zeros = vec![0u8; params.max_size as usize];
        let (_, zero_cut) = cdc(&params, &zeros).cut(0, zeros.len());
        StreamChunker {
            params,
            pending: VecDeque::new(),
            pos: 0,
            len: 0,
            zero_cut,
            eager: false,
        }
    }

    /// A chunker that cuts as soon as the bytes it holds decide a cut, instead of
    /// waiting for `max_size` of them: a changed-blocks capture feeds it only the bytes
    /// around a change, and needs each cut with as little lookahead as FastCDC needs.
    ///
    /// The cuts are the same as [`StreamChunker::new`]'s: FastCDC scans a chunk's bytes
    /// in order from `min_size` and stops at the first position whose hash matches (the
    /// mask depends only on the distance from the chunk's start, switching at
    /// `avg_size`). With at least `avg_size` bytes held, a match before the end of them
    /// is the match the scan over `max_size` bytes finds first; no match means "more
    /// bytes", never a cut.
    pub fn eager(params: ChunkerParams) -> Self {
        StreamChunker {
            eager: true,
            ..StreamChunker::new(params)
        }
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Bytes>) {
        self.push_bytes(Bytes::copy_from_slice(data), out);
    }

    pub fn push_bytes(&mut self, block: Bytes, out: &mut Vec<Bytes>) {
        if block.is_empty() {
            return;
        }
        self.len += block.len();
        self.pending.push_back(block);
        self.cut(false, out);
    }

    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.cut(true, out);
    }

    fn cut(&mut self, eof: bool, out: &mut Vec<Bytes>) {
        let max = self.params.max_size as usize;
        while self.len > 0 && (eof || self.len >= max) {
            let Some(first) = self.pending.front().cloned() else {
                return;
            };
            let avail = first.len() - self.pos;
            if avail >= max || (eof && self.pending.len() == 1) {
                // Cut inside the first block while a whole window fits in it.
                let c = cdc(&self.params, &first);
                let mut pos = self.pos;
                while first.len() - pos >= max
                    || (eof && self.pending.len() == 1 && pos < first.len())
                {
                    let end = self.next_cut(&c, &first, pos);
                    out.push(first.slice(pos..end));
                    pos = end;
                }
                self.consume(pos - self.pos);
            } else {
                // The window straddles blocks: join just enough bytes to cut once.
                let mut join = Vec::with_capacity(max);
                for b in &self.pending {
                    let start = if join.is_empty() { self.pos } else { 0 };
                    let take = (max - join.len()).min(b.len() - start);
                    join.extend_from_slice(&b[start..start + take]);
                    if join.len() == max {
                        break;
                    }
                }
                let end = self.next_cut(&cdc(&self.params, &join), &join, 0);
                out.push(Bytes::copy_from_slice(&join[..end]));
                self.consume(end);
            }
        }
        if self.eager && !eof {
            self.cut_early(out);
        }
    }

    /// With fewer than `max_size` bytes held: the cuts FastCDC finds in them.
    fn cut_early(&mut self, out: &mut Vec<Bytes>) {
        let (min, avg) = (self.params.min_size as usize, self.params.avg_size as usize);
        while self.len >= avg && self.len > min {
            let mut join = Vec::with_capacity(self.len);
            for (i, b) in self.pending.iter().enumerate() {
                join.extend_from_slice(&b[if i == 0 { self.pos } else { 0 }..]);
            }
            let end = cdc(&self.params, &join).cut(0, join.len()).1;
            if end >= join.len() {
                return;
            }
            out.push(Bytes::copy_from_slice(&join[..end]));
            self.consume(end);
        }
    }

    fn next_cut(&self, c: &FastCDC<'_>, data: &[u8], pos: usize) -> usize {
        let max = self.params.max_size as usize;
        if data.len() - pos >= max && crate::id::is_all_zero(&data[pos..pos + max]) {
            pos + self.zero_cut
        } else {
            c.cut(pos, data.len() - pos).1
        }
    }

    /// Drops `n` cut bytes from the front of the pending blocks.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(first) = self.pending.front() else {
                return;
            };
            let avail = first.len() - self.pos;
            if n < avail {
                self.pos += n;
                return;
            }
            n -= avail;
            self.pending.pop_front();
            self.pos = 0;
        }
        if self.pending.front().is_some_and(|b| b.len() == self.pos) {
            self.pending.pop_front();
            self.pos = 0;
        }
    }
}

fn cdc<'a>(p: &ChunkerParams, data: &'a [u8]) -> FastCDC<'a> {
    FastCDC::with_level(data, p.min_size, p.avg_size, p.max_size, p.level())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn data(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut v);
        v
    }

    fn chunk_all(d: &[u8], block: usize) -> Vec<Bytes> {
        let mut c = StreamChunker::new(ChunkerParams::default());
        let mut out = Vec::new();
        for b in d.chunks(block) {
            c.push(b, &mut out);
        }
        c.finish(&mut out);
        out
    }

    #[test]
    fn cuts_do_not_depend_on_block_size() {
        let d = data(3 << 20);
        let a = chunk_all(&d, 1 << 20);
        let b = chunk_all(&d, 4093);
        assert_eq!(a, b);
        // Blocks smaller than a chunk, and blocks far larger.
        assert_eq!(chunk_all(&d, 300), a);
        assert_eq!(chunk_all(&d, 3 << 20), a);
        assert_eq!(a.concat(), d);
        assert!(a.len() > 20, "3 MiB of random data makes many chunks");
        let p = ChunkerParams::default();
        for c in &a[..a.len() - 1] {
            assert!(c.len() >= p.min_size as usize && c.len() <= p.max_size as usize);
        }
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let d = data(4 << 20);
        let mut e = d.clone();
        e.splice(2_000_000..2_000_000, [1u8, 2, 3]);
        let a: std::collections::HashSet<_> = chunk_all(&d, 1 << 16).into_iter().collect();
        let b = chunk_all(&e, 1 << 16);
        let new = b.iter().filter(|c| !a.contains(*c)).count();
        assert!(new <= 3, "{new} chunks changed for a 3-byte insertion");
    }

    #[test]
    fn zero_runs_cut_exactly_like_fastcdc() {
        // Data, a long zero run, data: the shortcut must give FastCDC's own cuts.
        let mut d = data(1 << 20);
        d.extend(vec![0u8; 3_000_000]);
        d.extend(data(500_000));
        let ours: Vec<usize> = chunk_all(&d, 1 << 20).iter().map(|c| c.len()).collect();
        let small: Vec<usize> = chunk_all(&d, 100_000).iter().map(|c| c.len()).collect();
        assert_eq!(ours, small);
        let p = ChunkerParams::default();
        let theirs: Vec<usize> =
            FastCDC::with_level(&d, p.min_size, p.avg_size, p.max_size, p.level())
                .map(|c| c.length)
                .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn zeros_cut_at_max_and_empty_input_gives_nothing() {
        let out = chunk_all(&vec![0u8; 1 << 20], 1 << 20);
        assert_eq!(
            out.len(),
            (1 << 20) / ChunkerParams::default().max_size as usize
        );
        assert!(chunk_all(&[], 10).is_empty());
    }

    #[test]
    fn eager_cuts_are_the_same_cuts_and_come_without_max_lookahead() {
        let mut d = data(2 << 20);
        d[700_000..900_000].fill(0);
        let all = chunk_all(&d, 1 << 20);
        for step in [1000usize, 40_000, 131_072, 300_001] {
            let mut c = StreamChunker::eager(ChunkerParams::default());
            let (mut out, mut fed) = (Vec::new(), 0usize);
            for b in d.chunks(step) {
                c.push(b, &mut out);
                fed += b.len();
                let cut: usize = out.iter().map(|c| c.len()).sum();
                // Never more than a chunk's worth held back once the bytes decide it.
                assert!(fed - cut < 2 * ChunkerParams::default().max_size as usize);
            }
            c.finish(&mut out);
            assert_eq!(out, all, "step {step}");
        }
        // A chunk of at least avg_size that FastCDC cut (not at max_size) comes with
        // two bytes after it, not max_size.
        let p = ChunkerParams::default();
        let k = all
            .iter()
            .position(|c| c.len() >= p.avg_size as usize && c.len() < p.max_size as usize - 2)
            .unwrap();
        let end: usize = all[..=k].iter().map(|c| c.len()).sum();
        let mut c = StreamChunker::eager(p);
        let mut out = Vec::new();
        c.push(&d[..end + 2], &mut out);
        assert_eq!(out, all[..=k]);
    }

    #[test]
    fn validate_rejects_bad_sizes() {
        let mut p = ChunkerParams::default();
        assert!(p.validate().is_ok());
        p.min_size = p.max_size + 1;
        assert!(p.validate().is_err());
        p = ChunkerParams {
            normalization: 9,
            ..ChunkerParams::default()
        };
        assert_eq!(p.validate(), Err(ParamsError::Normalization(9)));
    }
}
