//! A point's block map: per fixed block of the image, the SHA-256 a source host can
//! compute with its own tools, and the BLAKE3 chaining value the image hash is made of.
//!
//! ```text
//! blocks object = zstd( magic "FRYBLOCK" | version u32 LE | block size u32 LE
//!                       | image size u64 LE | count u64 LE | (sha256 (32) | cv (32))* )
//! ```
//! The next capture of the host asks the host for the SHA-256 of each block of its disk,
//! fetches only the blocks whose hash differs, and takes every other block's chaining
//! value from here, so the image hash stays exact without reading unchanged blocks
//! ([`crate::image_hash`]). Points written before block maps have none: the next
//! capture of their host reads the whole disk.

use crate::error::FormatError;
use crate::image_hash;

pub const MAGIC: &[u8; 8] = b"FRYBLOCK";
pub const VERSION: u32 = 1;
/// The block size of the maps Ferry writes: 64 KiB.
///
/// Small enough that a 4 KiB write costs one 64 KiB block on the wire (plus the bytes
/// content-defined chunking needs around it), large enough that the map is 0.1% of the
/// image (two 32-byte hashes a block). A power of two, so each block is a whole
/// subtree of the image's BLAKE3 tree.
pub const BLOCK_SIZE: u32 = 64 << 10;
const HEADER: usize = 8 + 4 + 4 + 8 + 8;
const ENTRY: usize = 64;

pub type Digest = [u8; 32];

/// One block's hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHash {
    pub sha256: Digest,
    /// BLAKE3 chaining value of the block at its offset in the image.
    pub cv: Digest,
}

impl BlockHash {
    /// The hashes of block `index` of an image cut in `block_size` blocks.
    pub fn of(block_size: u32, index: u64, data: &[u8]) -> Self {
        use sha2::Digest as _;
        BlockHash {
            sha256: sha2::Sha256::digest(data).into(),
            cv: image_hash::block_cv(u64::from(block_size), index, data),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    pub block_size: u32,
    pub image_size: u64,
    pub blocks: Vec<BlockHash>,
}

/// How many `block_size` blocks an image of `image_size` bytes has.
pub fn block_count(block_size: u32, image_size: u64) -> u64 {
    image_size.div_ceil(u64::from(block_size))
}

impl BlockMap {
    /// A map of `image_size` bytes whose blocks are all still to be filled in.
    pub fn empty(block_size: u32, image_size: u64) -> Self {
        let n = block_count(block_size, image_size) as usize;
        BlockMap {
            block_size,
            image_size,
            blocks: vec![
                BlockHash {
                    sha256: [0; 32],
                    cv: [0; 32]
                };
                n
            ],
        }
    }

    /// The image's BLAKE3 (as `b3sum` prints it). `first_block` is the image's bytes
    /// when it is a single block (its hash is then no chaining value).
    pub fn image_hash(&self, first_block: Option<&bytes::Bytes>) -> String {
        let cvs: Vec<_> = self.blocks.iter().map(|b| b.cv).collect();
        image_hash::combine(
            u64::from(self.block_size),
            self.image_size,
            &cvs,
            first_block,
        )
        .to_hex()
        .to_string()
    }

    /// The byte range of block `i`.
    pub fn range(&self, i: u64) -> std::ops::Range<u64> {
        let b = u64::from(self.block_size);
        i * b..((i + 1) * b).min(self.image_size)
    }

    pub fn encode(&self, object: &str) -> Result<Vec<u8>, FormatError> {
        let mut raw = Vec::with_capacity(HEADER + self.blocks.len() * ENTRY);
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&VERSION.to_le_bytes());
        raw.extend_from_slice(&self.block_size.to_le_bytes());
        raw.extend_from_slice(&self.image_size.to_le_bytes());
        raw.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for b in &self.blocks {
            raw.extend_from_slice(&b.sha256);
            raw.extend_from_slice(&b.cv);
        }
        zstd::bulk::compress(&raw, 3).map_err(|e| FormatError::malformed(object, e.to_string()))
    }

    /// Decodes a stored map, streaming: it holds no more entries than its header
    /// announces for its image size.
    pub fn decode(object: &str, stored: &[u8]) -> Result<Self, FormatError> {
        use std::io::Read;
        let bad =
            |e: std::io::Error| FormatError::malformed(object, format!("not a zstd stream: {e}"));
        let short = || FormatError::malformed(object, "truncated block map");
        let mut d = zstd::stream::read::Decoder::new(stored).map_err(bad)?;
        let mut head = [0u8; HEADER];
        d.read_exact(&mut head).map_err(|_| short())?;
        if &head[..8] != MAGIC {
            return Err(FormatError::BadMagic {
                object: object.to_string(),
                kind: "block map",
            });
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&head[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let version = u32_at(8);
        if version > VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: object.to_string(),
                found: version,
                supported: VERSION,
            });
        }
        let (block_size, image_size, count) = (u32_at(12), u64_at(16), u64_at(24));
        if !block_size.is_power_of_two() || block_size < 1024 {
            return Err(FormatError::malformed(
                object,
                format!("block size {block_size} is not a power of two of at least 1 KiB"),
            ));
        }
        if count != block_count(block_size, image_size) {
            return Err(FormatError::malformed(
                object,
                format!("{count} blocks of {block_size} bytes cannot make an image of {image_size} bytes"),
            ));
        }
        let mut blocks = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut e = [0u8; ENTRY];
        for _ in 0..count {
            d.read_exact(&mut e).map_err(|_| short())?;
            let (mut sha256, mut cv) = ([0u8; 32], [0u8; 32]);
            sha256.copy_from_slice(&e[..32]);
            cv.copy_from_slice(&e[32..]);
            blocks.push(BlockHash { sha256, cv });
        }
        if d.read(&mut e).map_err(bad)? != 0 {
            return Err(FormatError::malformed(object, "bytes after the block list"));
        }
        Ok(BlockMap {
            block_size,
            image_size,
            blocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(data: &[u8], block: u32) -> BlockMap {
        let mut m = BlockMap::empty(block, data.len() as u64);
        for (i, d) in data.chunks(block as usize).enumerate() {
            m.blocks[i] = BlockHash::of(block, i as u64, d);
        }
        m
    }

    #[test]
    fn round_trips_and_gives_the_image_hash() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let m = map_of(&data, 64 << 10);
        assert_eq!(m.blocks.len(), 5);
        let back = BlockMap::decode("m", &m.encode("m").unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.image_hash(None),
            blake3::hash(&data).to_hex().to_string()
        );
        assert_eq!(m.range(4), 262_144..300_000);
        use sha2::Digest as _;
        let sha: [u8; 32] = sha2::Sha256::digest(&data[65536..131072]).into();
        assert_eq!(m.blocks[1].sha256, sha);
    }

    #[test]
    fn damage_is_refused() {
        let m = map_of(&[1u8; 5000], 1024);
        let mut raw = zstd::bulk::decompress(&m.encode("m").unwrap(), 1 << 20).unwrap();
        raw[24] = 9; // the count
        let bad = zstd::bulk::compress(&raw, 1).unwrap();
        assert!(BlockMap::decode("m", &bad).is_err());
        raw[24] = 5;
        raw.pop();
        let short = zstd::bulk::compress(&raw, 1).unwrap();
        assert!(BlockMap::decode("m", &short).is_err());
        assert!(BlockMap::decode("m", b"nonsense").is_err());
    }
}
