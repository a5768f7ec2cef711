//! Pack objects: many compressed chunks in one object, with a trailer that indexes them.
//!
//! ```text
//! blob 0 | blob 1 | ... | blob n-1 | entry 0 | ... | entry n-1 | footer
//! blob   = one zstd frame of the chunk's plaintext
//! entry  = chunk id (32) | offset u64 LE | stored length u32 LE | raw length u32 LE  (48 bytes)
//! footer = entry count u32 LE | format version u32 LE | magic "FRYPACK\0"           (16 bytes)
//! ```
//! The trailer makes each pack self-describing: the index of a store can be rebuilt from
//! its packs alone, and packs uploaded by a capture that was killed before it wrote its
//! index are found and reused by the next one.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::FormatError;
use crate::id::{ChunkId, PackId};

pub const MAGIC: &[u8; 8] = b"FRYPACK\0";
pub const VERSION: u32 = 1;
pub const ENTRY_LEN: usize = 48;
pub const FOOTER_LEN: usize = 16;

/// Where one chunk sits inside its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    pub id: ChunkId,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// Accumulates compressed blobs; [`PackBuilder::finish`] appends the trailer.
#[derive(Default)]
pub struct PackBuilder {
    buf: BytesMut,
    entries: Vec<PackEntry>,
    raw_bytes: u64,
}

/// A finished pack, ready to upload under [`crate::layout::pack_key`] of its id.
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: Bytes,
    pub entries: Vec<PackEntry>,
    /// Sum of the chunks' uncompressed lengths.
    pub raw_bytes: u64,
}

impl PackBuilder {
    /// A builder whose buffer holds `bytes` without growing (a pack's target size plus
    /// one blob): growing a pack buffer by doubling copies it again each time.
    pub fn with_capacity(bytes: usize) -> Self {
        PackBuilder {
            buf: BytesMut::with_capacity(bytes),
            ..Default::default()
        }
    }

    pub fn add(&mut self, id: ChunkId, raw_len: u32, blob: &[u8]) {
        self.entries.push(PackEntry {
            id,
            offset: self.buf.len() as u64,
            stored_len: blob.len() as u32,
            raw_len,
        });
        self.raw_bytes += u64::from(raw_len);
        self.buf.extend_from_slice(blob);
    }

    /// Bytes of blobs so far (the trailer is not counted).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn finish(mut self) -> FinishedPack {
        encode_entries(&self.entries, &mut self.buf);
        self.buf.put_u32_le(self.entries.len() as u32);
        self.buf.put_u32_le(VERSION);
        self.buf.put_slice(MAGIC);
        let bytes = self.buf.freeze();
        FinishedPack {
            id: ChunkId::of(&bytes),
            bytes,
            entries: self.entries,
            raw_bytes: self.raw_bytes,
        }
    }
}

pub(crate) fn encode_entries(entries: &[PackEntry], out: &mut BytesMut) {
    out.reserve(entries.len() * ENTRY_LEN);
    for e in entries {
        out.put_slice(&e.id.0);
        out.put_u64_le(e.offset);
        out.put_u32_le(e.stored_len);
        out.put_u32_le(e.raw_len);
    }
}

pub(crate) fn decode_entries(
    object: &str,
    b: &[u8],
    n: usize,
) -> Result<Vec<PackEntry>, FormatError> {
    if b.len() != n * ENTRY_LEN {
        return Err(FormatError::malformed(object, "entry table length"));
    }
    Ok(b.chunks_exact(ENTRY_LEN)
        .map(|e| {
            let mut id = [0u8; 32];
            id.copy_from_slice(&e[..32]);
            PackEntry {
                id: ChunkId(id),
                offset: u64::from_le_bytes(array(&e[32..40])),
                stored_len: u32::from_le_bytes(array(&e[40..44])),
                raw_len: u32::from_le_bytes(array(&e[44..48])),
            }
        })
        .collect())
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

/// Reads the footer (the last [`FOOTER_LEN`] bytes of a pack) and returns how many bytes
/// the whole trailer (entries + footer) takes.
pub fn trailer_len(pack: &str, footer: &[u8]) -> Result<usize, FormatError> {
    if footer.len() < FOOTER_LEN {
        return Err(FormatError::malformed(pack, "shorter than a pack footer"));
    }
    let f = &footer[footer.len() - FOOTER_LEN..];
    if &f[8..16] != MAGIC {
        return Err(FormatError::BadMagic {
            object: pack.to_string(),
            kind: "pack",
        });
    }
    let version = u32::from_le_bytes(array(&f[4..8]));
    if version > VERSION {
        return Err(FormatError::UnsupportedVersion {
            object: pack.to_string(),
            found: version,
            supported: VERSION,
        });
    }
    let n = u32::from_le_bytes(array(&f[..4])) as usize;
    Ok(n * ENTRY_LEN + FOOTER_LEN)
}

/// Parses a pack's trailer. `tail` must end at the end of the pack and hold at least
/// [`trailer_len`] bytes; `pack_size` is the size of the whole object.
pub fn parse_trailer(
    pack: &str,
    tail: &[u8],
    pack_size: u64,
) -> Result<Vec<PackEntry>, FormatError> {
    let tl = trailer_len(pack, tail)?;
    if tail.len() < tl || (pack_size as usize) < tl {
        return Err(FormatError::malformed(
            pack,
            "trailer longer than the data read",
        ));
    }
    let n = (tl - FOOTER_LEN) / ENTRY_LEN;
    let table = &tail[tail.len() - tl..tail.len() - FOOTER_LEN];
    let entries = decode_entries(pack, table, n)?;
    let data_end = pack_size - tl as u64;
    for e in &entries {
        // A damaged offset near u64::MAX must not wrap around past the check.
        let end = e.offset.checked_add(u64::from(e.stored_len));
        if end.is_none_or(|end| end > data_end) {
            return Err(FormatError::malformed(
                pack,
                format!("entry for chunk {} runs past the data", e.id),
            ));
        }
    }
    Ok(entries)
}

/// Decompresses one blob and checks it against its id. `dctx` is reused across calls:
/// a zstd context costs more to set up than a small chunk costs to decompress.
pub fn open_blob(
    dctx: &mut zstd::bulk::Decompressor<'static>,
    pack: &str,
    entry: &PackEntry,
    blob: &[u8],
) -> Result<Bytes, FormatError> {
    let raw =
        dctx.decompress(blob, entry.raw_len as usize)
            .map_err(|e| FormatError::Decompress {
                chunk: entry.id,
                pack: pack.to_string(),
                detail: e.to_string(),
            })?;
    if raw.len() != entry.raw_len as usize || ChunkId::of(&raw) != entry.id {
        return Err(FormatError::ChunkHashMismatch {
            chunk: entry.id,
            pack: pack.to_string(),
        });
    }
    Ok(Bytes::from(raw))
}

/// Compresses a chunk into a blob.
pub fn seal_blob(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(raw, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dctx() -> zstd::bulk::Decompressor<'static> {
        zstd::bulk::Decompressor::new().unwrap()
    }

    fn sample() -> (FinishedPack, Vec<Vec<u8>>) {
        let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        let mut b = PackBuilder::default();
        for c in &chunks {
            b.add(ChunkId::of(c), c.len() as u32, &seal_blob(c, 3).unwrap());
        }
        (b.finish(), chunks)
    }

    #[test]
    fn trailer_round_trip_and_blobs_open() {
        let (p, chunks) = sample();
        let size = p.bytes.len() as u64;
        let entries = parse_trailer("p", &p.bytes, size).unwrap();
        assert_eq!(entries, p.entries);
        assert_eq!(p.id, ChunkId::of(&p.bytes));
        for (e, c) in entries.iter().zip(&chunks) {
            let blob = &p.bytes[e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize];
            assert_eq!(&open_blob(&mut dctx(), "p", e, blob).unwrap()[..], &c[..]);
        }
        // Only the tail is needed: footer first, then exactly the trailer.
        let tl = trailer_len("p", &p.bytes[p.bytes.len() - FOOTER_LEN..]).unwrap();
        let tail = &p.bytes[p.bytes.len() - tl..];
        assert_eq!(parse_trailer("p", tail, size).unwrap(), p.entries);
    }

    #[test]
    fn an_entry_whose_end_overflows_is_malformed_not_a_panic() {
        let (p, _) = sample();
        let mut bytes = p.bytes.to_vec();
        let tl = trailer_len("p", &bytes[bytes.len() - FOOTER_LEN..]).unwrap();
        let first = bytes.len() - tl;
        bytes[first + 32..first + 40].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
        let err = parse_trailer("packs/ab/cd", &bytes, bytes.len() as u64).unwrap_err();
        assert!(err.to_string().contains("runs past the data"), "{err}");
    }

    #[test]
    fn corruption_is_named() {
        let (p, _) = sample();
        let e = p.entries[2];
        let mut blob =
            p.bytes[e.offset as usize..(e.offset + u64::from(e.stored_len)) as usize].to_vec();
        let last = blob.len() - 5;
        blob[last] ^= 0xff;
        let err = open_blob(&mut dctx(), "packs/ab/cd", &e, &blob)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&e.id.to_hex()) && err.contains("packs/ab/cd"),
            "{err}"
        );
        let mut bad = p.bytes.to_vec();
        let n = bad.len();
        bad[n - 1] = b'x';
        assert!(matches!(
            parse_trailer("p", &bad, n as u64),
            Err(FormatError::BadMagic { .. })
        ));
    }
}
