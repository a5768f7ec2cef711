//! Content-defined chunking: FastCDC v2020 over a stream that arrives in blocks.
//!
//! Cut points depend only on the bytes from a chunk's start up to `max` bytes further, so
//! the chunker cuts only while at least `max` bytes are buffered (or the stream ended).
//! That makes the chunk list independent of how the stream was split into blocks: a
//! capture over SSH (small packets) and a local read (large blocks) agree.

use bytes::{Bytes, BytesMut};
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
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
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

/// Cuts a stream into chunks. Feed blocks with [`StreamChunker::push`], then call
/// [`StreamChunker::finish`]; each returns the chunks completed so far, in order, as
/// zero-copy slices of the buffered data.
pub struct StreamChunker {
    params: ChunkerParams,
    buf: BytesMut,
    cuts: Vec<usize>,
}

impl StreamChunker {
    /// `params` must have passed [`ChunkerParams::validate`].
    pub fn new(params: ChunkerParams) -> Self {
        StreamChunker {
            params,
            buf: BytesMut::new(),
            cuts: Vec::new(),
        }
    }

    /// Space to read into without an extra copy: reserve, read into the returned slice,
    /// then [`StreamChunker::commit`] the bytes read.
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        let len = self.buf.len();
        self.buf.resize(len + want, 0);
        &mut self.buf[len..]
    }

    /// Keeps `used` bytes of the last [`StreamChunker::spare`] slice and cuts.
    pub fn commit(&mut self, want: usize, used: usize, out: &mut Vec<Bytes>) {
        let keep = self.buf.len() - want + used;
        self.buf.truncate(keep);
        self.cut(false, out);
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Bytes>) {
        self.buf.extend_from_slice(data);
        self.cut(false, out);
    }

    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.cut(true, out);
    }

    fn cut(&mut self, eof: bool, out: &mut Vec<Bytes>) {
        let max = self.params.max_size as usize;
        let len = self.buf.len();
        if len == 0 || (!eof && len < max) {
            return;
        }
        let p = &self.params;
        let cdc = FastCDC::with_level(&self.buf, p.min_size, p.avg_size, p.max_size, p.level());
        self.cuts.clear();
        let mut pos = 0;
        while pos < len && (eof || len - pos >= max) {
            let (_, end) = cdc.cut(pos, len - pos);
            self.cuts.push(end - pos);
            pos = end;
        }
        for &n in &self.cuts {
            out.push(self.buf.split_to(n).freeze());
        }
    }
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
        assert_eq!(a.concat(), d);
        assert!(a.len() > 20, "3 MiB of random data makes many chunks");
        let p = ChunkerParams::default();
        for c in &a[..a.len() - 1] {
            assert!(c.len() >= p.min_size as usize && c.len() <= p.max_size as usize);
        }
    }

    #[test]
    fn spare_and_commit_match_push() {
        let d = data(1 << 20);
        let mut c = StreamChunker::new(ChunkerParams::default());
        let mut out = Vec::new();
        for b in d.chunks(100_000) {
            let spare = c.spare(150_000);
            spare[..b.len()].copy_from_slice(b);
            c.commit(150_000, b.len(), &mut out);
        }
        c.finish(&mut out);
        assert_eq!(out, chunk_all(&d, 1 << 20));
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
    fn zeros_cut_at_max_and_empty_input_gives_nothing() {
        let out = chunk_all(&vec![0u8; 1 << 20], 1 << 20);
        assert_eq!(out.len(), 4);
        assert!(chunk_all(&[], 10).is_empty());
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
