//! Chunk-location objects: where every chunk of one point sits in the store, cut into
//! segments of the image, so that a reader of one byte range of the image (an image
//! build's `write` step) fetches and holds only that range's part and never the store's
//! whole index or the point's whole chunk list.
//!
//! ```text
//! locations = segment* | table | footer
//! segment   = zstd( record* )    the chunks overlapping image bytes [i*span, (i+1)*span)
//! record    = image offset u64 | chunk id (32) | raw length u32
//!             | pack id (32) | offset in pack u64 | stored length u32          (88 bytes)
//! table     = (segment offset u64 | segment length u32)*, one per segment     (12 bytes)
//! footer    = span u64 | image size u64 | segment count u32 | version u32
//!             | magic "FRYLOCS\0"                                               (32 bytes)
//! ```
//! A chunk that crosses a segment boundary is in both segments. Written at capture, after
//! the point's packs and index are durable and before the point; derived data: it can be
//! rebuilt from the point and the index at any time.

use crate::error::FormatError;
use crate::id::ChunkId;
use crate::index::BlobLocation;
use crate::manifest::ChunkRef;
use crate::pack::PackEntry;

pub const MAGIC: &[u8; 8] = b"FRYLOCS\0";
pub const VERSION: u32 = 1;
pub const RECORD_LEN: usize = 88;
pub const TABLE_ENTRY_LEN: usize = 12;
pub const FOOTER_LEN: usize = 32;
/// Image bytes per segment: 128 EBS blocks. A segment of 8 KiB chunks holds about 8,200
/// records (720 KiB before compression).
pub const SPAN: u64 = 64 << 20;

/// One chunk of the image and where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Byte offset of the chunk in the image.
    pub at: u64,
    pub chunk: ChunkRef,
    pub loc: BlobLocation,
}

impl Located {
    pub fn end(&self) -> u64 {
        self.at + u64::from(self.chunk.len)
    }
}

/// What the footer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub span: u64,
    pub image_size: u64,
    pub segments: u32,
}

impl Footer {
    /// Bytes of the table (which ends where the footer starts).
    pub fn table_len(&self) -> u64 {
        u64::from(self.segments) * TABLE_ENTRY_LEN as u64
    }

    /// Segments that hold image bytes `start..end`.
    pub fn segments_for(&self, start: u64, end: u64) -> std::ops::Range<u32> {
        let first = (start / self.span).min(u64::from(self.segments)) as u32;
        let last = end.div_ceil(self.span).min(u64::from(self.segments)) as u32;
        first..last
    }
}

/// Where a segment is in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    pub offset: u64,
    pub len: u32,
}

/// Builds a locations object from a point's chunks in image order.
pub struct Writer {
    span: u64,
    image_size: u64,
    level: i32,
    out: Vec<u8>,
    table: Vec<SegmentRef>,
    /// Records of the segment being filled.
    current: Vec<u8>,
    /// A chunk that runs past the current segment, carried into the next.
    carry: Option<Located>,
}

impl Writer {
    pub fn new(image_size: u64) -> Self {
        Self::with_span(image_size, SPAN)
    }

    pub fn with_span(image_size: u64, span: u64) -> Self {
        Writer {
            span: span.max(1),
            image_size,
            level: 3,
            out: Vec::new(),
            table: Vec::new(),
            current: Vec::new(),
            carry: None,
        }
    }

    fn segment_end(&self) -> u64 {
        (self.table.len() as u64 + 1) * self.span
    }

    fn close_segment(&mut self) -> Result<(), FormatError> {
        let sealed = zstd::bulk::compress(&self.current, self.level)
            .map_err(|e| FormatError::malformed("locations", e.to_string()))?;
        self.table.push(SegmentRef {
            offset: self.out.len() as u64,
            len: sealed.len() as u32,
        });
        self.out.extend_from_slice(&sealed);
        self.current.clear();
        if let Some(c) = self.carry.take() {
            if c.end() > self.segment_end() {
                self.carry = Some(c);
            }
            encode_record(&c, &mut self.current);
        }
        Ok(())
    }

    /// Adds the next chunk (chunks must come in image order, without gaps).
    pub fn push(&mut self, l: Located) -> Result<(), FormatError> {
        while l.at >= self.segment_end() {
            self.close_segment()?;
        }
        encode_record(&l, &mut self.current);
        if l.end() > self.segment_end() {
            self.carry = Some(l);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<u8>, FormatError> {
        let segments = self.image_size.div_ceil(self.span);
        while (self.table.len() as u64) < segments {
            self.close_segment()?;
        }
        for s in &self.table {
            self.out.extend_from_slice(&s.offset.to_le_bytes());
            self.out.extend_from_slice(&s.len.to_le_bytes());
        }
        self.out.extend_from_slice(&self.span.to_le_bytes());
        self.out.extend_from_slice(&self.image_size.to_le_bytes());
        self.out
            .extend_from_slice(&(self.table.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&VERSION.to_le_bytes());
        self.out.extend_from_slice(MAGIC);
        Ok(self.out)
    }
}

fn encode_record(l: &Located, out: &mut Vec<u8>) {
    out.extend_from_slice(&l.at.to_le_bytes());
    out.extend_from_slice(&l.chunk.id.0);
    out.extend_from_slice(&l.chunk.len.to_le_bytes());
    out.extend_from_slice(&l.loc.pack.0);
    out.extend_from_slice(&l.loc.entry.offset.to_le_bytes());
    out.extend_from_slice(&l.loc.entry.stored_len.to_le_bytes());
}

fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// Reads the footer from the last [`FOOTER_LEN`] bytes of the object.
pub fn parse_footer(object: &str, tail: &[u8], object_size: u64) -> Result<Footer, FormatError> {
    let f = tail
        .len()
        .checked_sub(FOOTER_LEN)
        .map(|s| &tail[s..])
        .ok_or_else(|| FormatError::malformed(object, "shorter than a locations footer"))?;
    if &f[24..32] != MAGIC {
        return Err(FormatError::BadMagic {
            object: object.to_string(),
            kind: "locations",
        });
    }
    let version = u32::from_le_bytes(le(&f[20..24]));
    if version > VERSION {
        return Err(FormatError::UnsupportedVersion {
            object: object.to_string(),
            found: version,
            supported: VERSION,
        });
    }
    let footer = Footer {
        span: u64::from_le_bytes(le(&f[..8])),
        image_size: u64::from_le_bytes(le(&f[8..16])),
        segments: u32::from_le_bytes(le(&f[16..20])),
    };
    if footer.span == 0
        || footer.image_size.div_ceil(footer.span) != u64::from(footer.segments)
        || footer.table_len() + FOOTER_LEN as u64 > object_size
    {
        return Err(FormatError::malformed(object, "footer does not fit"));
    }
    Ok(footer)
}

/// Parses table entries; `data_end` is where the table starts (segments end there).
pub fn parse_table(object: &str, b: &[u8], data_end: u64) -> Result<Vec<SegmentRef>, FormatError> {
    if !b.len().is_multiple_of(TABLE_ENTRY_LEN) {
        return Err(FormatError::malformed(object, "table length"));
    }
    b.chunks_exact(TABLE_ENTRY_LEN)
        .map(|e| {
            let s = SegmentRef {
                offset: u64::from_le_bytes(le(&e[..8])),
                len: u32::from_le_bytes(le(&e[8..12])),
            };
            match s.offset.checked_add(u64::from(s.len)) {
                Some(end) if end <= data_end => Ok(s),
                _ => Err(FormatError::malformed(object, "segment runs past the data")),
            }
        })
        .collect()
}

/// Decodes one segment's records.
pub fn parse_segment(object: &str, sealed: &[u8]) -> Result<Vec<Located>, FormatError> {
    let raw = zstd::stream::decode_all(sealed)
        .map_err(|e| FormatError::malformed(object, format!("segment is not zstd: {e}")))?;
    if !raw.len().is_multiple_of(RECORD_LEN) {
        return Err(FormatError::malformed(object, "segment length"));
    }
    Ok(raw
        .chunks_exact(RECORD_LEN)
        .map(|r| {
            let chunk = ChunkRef {
                id: ChunkId(le(&r[8..40])),
                len: u32::from_le_bytes(le(&r[40..44])),
            };
            Located {
                at: u64::from_le_bytes(le(&r[..8])),
                chunk,
                loc: BlobLocation {
                    pack: ChunkId(le(&r[44..76])),
                    entry: PackEntry {
                        id: chunk.id,
                        offset: u64::from_le_bytes(le(&r[76..84])),
                        stored_len: u32::from_le_bytes(le(&r[84..88])),
                        raw_len: chunk.len,
                    },
                },
            }
        })
        .collect())
}

/// Chunks of consecutive segments, each once (a chunk that crosses a boundary is in
/// both segments), in image order.
#[derive(Default)]
pub struct Dedup {
    end: u64,
}

impl Dedup {
    /// Keeps the records of the next segment that the earlier ones did not hold.
    pub fn next(&mut self, records: Vec<Located>) -> Vec<Located> {
        let out: Vec<Located> = records.into_iter().filter(|l| l.at >= self.end).collect();
        if let Some(last) = out.last() {
            self.end = last.end();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(at: u64, len: u32, n: u8) -> Located {
        let id = ChunkId::of(&[n]);
        Located {
            at,
            chunk: ChunkRef { id, len },
            loc: BlobLocation {
                pack: ChunkId::of(b"pack"),
                entry: PackEntry {
                    id,
                    offset: u64::from(n) * 100,
                    stored_len: 50,
                    raw_len: len,
                },
            },
        }
    }

    fn read_all(obj: &[u8]) -> (Footer, Vec<Vec<Located>>) {
        let f = parse_footer("l", obj, obj.len() as u64).unwrap();
        let data_end = obj.len() as u64 - FOOTER_LEN as u64 - f.table_len();
        let table = parse_table(
            "l",
            &obj[data_end as usize..obj.len() - FOOTER_LEN],
            data_end,
        )
        .unwrap();
        let segs = table
            .iter()
            .map(|s| {
                parse_segment(
                    "l",
                    &obj[s.offset as usize..(s.offset + u64::from(s.len)) as usize],
                )
                .unwrap()
            })
            .collect();
        (f, segs)
    }

    #[test]
    fn chunks_across_a_boundary_are_in_both_segments_and_read_once() {
        // Span 100: chunks [0,60) [60,130) [130,250) [250,300).
        let chunks = [
            located(0, 60, 1),
            located(60, 70, 2),
            located(130, 120, 3),
            located(250, 50, 4),
        ];
        let mut w = Writer::with_span(300, 100);
        for c in chunks {
            w.push(c).unwrap();
        }
        let obj = w.finish().unwrap();
        let (f, segs) = read_all(&obj);
        assert_eq!((f.span, f.image_size, f.segments), (100, 300, 3));
        let ats = |s: &Vec<Located>| s.iter().map(|l| l.at).collect::<Vec<_>>();
        assert_eq!(ats(&segs[0]), vec![0, 60]);
        assert_eq!(ats(&segs[1]), vec![60, 130]);
        assert_eq!(ats(&segs[2]), vec![130, 250]);
        assert_eq!(segs[2][1], chunks[3]);
        let mut d = Dedup::default();
        let all: Vec<Located> = segs.into_iter().flat_map(|s| d.next(s)).collect();
        assert_eq!(all, chunks.to_vec());
        assert_eq!(f.segments_for(150, 260), 1..3);
        assert_eq!(f.segments_for(0, 1000), 0..3);
    }

    #[test]
    fn a_chunk_spanning_several_segments_is_in_each() {
        let mut w = Writer::with_span(350, 100);
        w.push(located(0, 10, 1)).unwrap();
        w.push(located(10, 340, 2)).unwrap();
        let (_, segs) = read_all(&w.finish().unwrap());
        assert_eq!(segs.len(), 4);
        for s in &segs[1..] {
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].at, 10);
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut w = Writer::with_span(100, 100);
        w.push(located(0, 100, 1)).unwrap();
        let obj = w.finish().unwrap();
        assert!(parse_footer("l", &obj[..10], 10).is_err());
        let mut bad = obj.clone();
        let n = bad.len();
        bad[n - 1] = b'X';
        assert!(matches!(
            parse_footer("l", &bad, n as u64),
            Err(FormatError::BadMagic { .. })
        ));
        let data_end = (n - FOOTER_LEN - TABLE_ENTRY_LEN) as u64;
        let mut table = obj[data_end as usize..n - FOOTER_LEN].to_vec();
        table[0] = 0xff;
        assert!(parse_table("l", &table, data_end).is_err());
        assert!(parse_segment("l", b"not zstd").is_err());
    }
}
