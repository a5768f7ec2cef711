//! Index objects and the in-memory chunk index built from them.
//!
//! ```text
//! index object = magic "FRYINDX\0" | version u32 LE | pack count u32 LE | pack*
//! pack         = pack id (32) | entry count u32 LE | entry* (the 48-byte pack entries)
//! ```
//! An index object is written only after every pack it lists is durable. Its own key is
//! the BLAKE3 of its bytes, so writing it twice is harmless.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::FormatError;
use crate::id::{ChunkId, PackId};
use crate::pack::{decode_entries, encode_entries, PackEntry, ENTRY_LEN, FOOTER_LEN};

pub const MAGIC: &[u8; 8] = b"FRYINDX\0";
pub const VERSION: u32 = 1;

/// The packs one index object describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<(PackId, Vec<PackEntry>)>,
}

impl IndexFile {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_slice(MAGIC);
        b.put_u32_le(VERSION);
        b.put_u32_le(self.packs.len() as u32);
        for (id, entries) in &self.packs {
            b.put_slice(&id.0);
            b.put_u32_le(entries.len() as u32);
            encode_entries(entries, &mut b);
        }
        b.freeze()
    }

    pub fn decode(object: &str, b: &[u8]) -> Result<Self, FormatError> {
        let short = || FormatError::malformed(object, "truncated index");
        if b.len() < 16 || &b[..8] != MAGIC {
            return Err(FormatError::BadMagic {
                object: object.to_string(),
                kind: "index",
            });
        }
        let version = read_u32(&b[8..12]);
        if version > VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: object.to_string(),
                found: version,
                supported: VERSION,
            });
        }
        let count = read_u32(&b[12..16]) as usize;
        let mut pos = 16;
        let mut packs = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let head = b.get(pos..pos + 36).ok_or_else(short)?;
            let mut id = [0u8; 32];
            id.copy_from_slice(&head[..32]);
            let n = read_u32(&head[32..36]) as usize;
            pos += 36;
            let table = b.get(pos..pos + n * ENTRY_LEN).ok_or_else(short)?;
            packs.push((ChunkId(id), decode_entries(object, table, n)?));
            pos += n * ENTRY_LEN;
        }
        if pos != b.len() {
            return Err(FormatError::malformed(
                object,
                "trailing bytes after the last pack",
            ));
        }
        Ok(IndexFile { packs })
    }
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

/// Where a chunk can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackId,
    pub entry: PackEntry,
}

/// Every chunk the store holds, merged from all index objects (and recovered packs).
#[derive(Debug, Default)]
pub struct ChunkIndex {
    chunks: HashMap<ChunkId, BlobLocation>,
    /// Each pack with the size its entries imply (blobs, entry table and footer).
    packs: HashMap<PackId, u64>,
}

impl ChunkIndex {
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry]) {
        let data_end = entries
            .iter()
            .map(|e| e.offset.saturating_add(u64::from(e.stored_len)))
            .max()
            .unwrap_or(0);
        let size = data_end
            .saturating_add((entries.len() * ENTRY_LEN) as u64)
            .saturating_add(FOOTER_LEN as u64);
        self.packs.insert(pack, size);
        for e in entries {
            // The first location wins: any copy is as good as another.
            self.chunks
                .entry(e.id)
                .or_insert(BlobLocation { pack, entry: *e });
        }
    }

    pub fn add_file(&mut self, f: &IndexFile) {
        for (pack, entries) in &f.packs {
            self.add_pack(*pack, entries);
        }
    }

    pub fn get(&self, id: &ChunkId) -> Option<&BlobLocation> {
        self.chunks.get(id)
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.chunks.contains_key(id)
    }

    pub fn has_pack(&self, pack: &PackId) -> bool {
        self.packs.contains_key(pack)
    }

    /// The size a pack's object must have, by its index entries.
    pub fn pack_size(&self, pack: &PackId) -> Option<u64> {
        self.packs.get(pack).copied()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let e = |s: &[u8], off| PackEntry {
            id: ChunkId::of(s),
            offset: off,
            stored_len: 10,
            raw_len: 20,
        };
        let f = IndexFile {
            packs: vec![
                (ChunkId::of(b"p1"), vec![e(b"a", 0), e(b"b", 10)]),
                (ChunkId::of(b"p2"), vec![e(b"b", 0)]),
            ],
        };
        let enc = f.encode();
        assert_eq!(IndexFile::decode("i", &enc).unwrap(), f);
        assert!(IndexFile::decode("i", &enc[..enc.len() - 1]).is_err());
        let mut idx = ChunkIndex::default();
        idx.add_file(&f);
        assert_eq!(idx.chunk_count(), 2);
        assert_eq!(idx.pack_count(), 2);
        assert_eq!(
            idx.get(&ChunkId::of(b"b")).unwrap().pack,
            ChunkId::of(b"p1")
        );
    }
}
