//! Recovery-point manifests: what one capture of one disk consists of.
//!
//! ```text
//! point object = zstd( magic "FRYPOINT" | version u32 LE | meta length u32 LE | meta JSON
//!                      | chunk count u64 LE | (chunk id (32) | length u32 LE)* )
//! ```
//! The JSON part is the human-readable metadata ([`PointMeta`]); the binary table is the
//! ordered chunk list that rebuilds the image. A point is written last, after every pack
//! and index it depends on is durable: a point that exists is restorable.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::FormatError;
use crate::id::ChunkId;

pub const MAGIC: &[u8; 8] = b"FRYPOINT";
pub const VERSION: u32 = 1;
const ENTRY: usize = 36;
/// A point's metadata is a few hundred bytes; more is damage.
const MAX_META: usize = 1 << 20;
/// The smallest chunk any chunker setting makes (FastCDC's own lower bound), bar the
/// image's last.
const MIN_CHUNK: u64 = 64;

/// How consistent the captured image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// Read from a live device: like pulling the power cord (journaling repairs it).
    Crash,
    /// Filesystems frozen for the read.
    Frozen,
    /// Read from an LVM snapshot taken for the capture.
    LvmSnapshot,
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Consistency::Crash => "crash",
            Consistency::Frozen => "frozen",
            Consistency::LvmSnapshot => "lvm-snapshot",
        })
    }
}

/// What a capture measured; stored with the point and printed by `ferry capture --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureStats {
    pub bytes_read: u64,
    /// Uncompressed bytes of chunks the store did not hold yet.
    pub bytes_new: u64,
    /// Compressed bytes written to the store, packs and metadata included.
    pub bytes_uploaded: u64,
    pub chunks: u64,
    pub chunks_new: u64,
    pub packs_uploaded: u64,
    pub duration_s: f64,
    /// How the disk was read (points written before this field: `full`).
    #[serde(default)]
    pub method: ReadMethod,
    /// Bytes that crossed the link from the host: the disk's bytes read, block hashes,
    /// the lists of ranges asked for (0 for a disk on the appliance).
    #[serde(default)]
    pub bytes_transferred: u64,
    /// Changed-blocks reads: the blocks whose hash differed from the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_changed: Option<u64>,
    /// Full reads of a host that has a parent: why the changed blocks were not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_read_reason: Option<String>,
}

/// How a capture read the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMethod {
    /// Every byte.
    #[default]
    Full,
    /// The host hashed its disk in blocks; only the blocks that differ from the
    /// parent's were read.
    ChangedBlocks,
}

/// What the source machine is, as far as booting its image elsewhere depends on it.
/// Learned over SSH at capture time; unknown for a disk image read on the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFacts {
    /// `uname -m`: `x86_64`, `aarch64`, ...
    pub arch: String,
    pub boot: BootMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMode {
    LegacyBios,
    Uefi,
}

impl MachineFacts {
    /// Parses the output of [`MachineFacts::PROBE`]: `uname -m`, then `uefi` or `bios`.
    pub fn parse(out: &str) -> Option<Self> {
        let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
        let arch = lines.next()?.to_string();
        let boot = match lines.next()? {
            "uefi" => BootMode::Uefi,
            "bios" => BootMode::LegacyBios,
            _ => return None,
        };
        if arch.is_empty() || arch.contains(char::is_whitespace) {
            return None;
        }
        Some(MachineFacts { arch, boot })
    }

    /// The stock shell command whose output [`MachineFacts::parse`] reads.
    pub const PROBE: &'static str =
        "uname -m; if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointMeta {
    pub point: String,
    pub host: String,
    /// The device or image path read on the host.
    pub disk: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub image_size: u64,
    pub consistency: Consistency,
    /// BLAKE3 of the whole image, as `b3sum` prints it.
    pub image_blake3: String,
    /// The point this capture was taken after, if any.
    pub parent: Option<String>,
    pub stats: CaptureStats,
    /// Architecture and boot mode of the source, when known (older points lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineFacts>,
    /// When the newest full read in this point's line was taken (this point's own time
    /// for a full read); points written before this field were full reads.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub full_read_at: Option<OffsetDateTime>,
    /// A point made by `ferry convert` from another (`parent`): what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted: Option<crate::convert::Conversion>,
}

/// One chunk of the image, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub meta: PointMeta,
    pub chunks: Vec<ChunkRef>,
}

/// A point id: capture time (UTC, second precision) and 8 random hex digits, so that ids
/// sort by time and two captures in the same second do not collide.
pub fn point_id(at: OffsetDateTime, random: u32) -> String {
    format!("{}-{random:08x}", crate::names::utc_stamp(at))
}

impl Manifest {
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let meta = serde_json::to_vec(&self.meta).map_err(|source| FormatError::Json {
            object: format!("point {}", self.meta.point),
            source,
        })?;
        let mut raw = Vec::with_capacity(24 + meta.len() + self.chunks.len() * ENTRY);
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&VERSION.to_le_bytes());
        raw.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        raw.extend_from_slice(&meta);
        raw.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for c in &self.chunks {
            raw.extend_from_slice(&c.id.0);
            raw.extend_from_slice(&c.len.to_le_bytes());
        }
        zstd::bulk::compress(&raw, 3)
            .map_err(|e| FormatError::malformed(&self.meta.point, e.to_string()))
    }

    /// Decodes a stored point, streaming: it holds no more than the chunk list the
    /// point's own header announces, and that list must fit its image (a damaged or
    /// hostile object cannot make the reader allocate without bound).
    pub fn decode(object: &str, stored: &[u8]) -> Result<Self, FormatError> {
        use std::io::Read;
        let bad =
            |e: std::io::Error| FormatError::malformed(object, format!("not a zstd stream: {e}"));
        let short = || FormatError::malformed(object, "truncated point");
        let mut d = zstd::stream::read::Decoder::new(stored).map_err(bad)?;
        let meta = Self::read_meta(object, &mut d)?;
        let mut count = [0u8; 8];
        d.read_exact(&mut count).map_err(|_| short())?;
        let count = u64::from_le_bytes(count);
        // Chunks are at least MIN_CHUNK bytes (the last may be shorter).
        if count > meta.image_size / MIN_CHUNK + 1 {
            return Err(FormatError::malformed(
                object,
                format!(
                    "{count} chunks cannot make an image of {} bytes",
                    meta.image_size
                ),
            ));
        }
        let mut chunks = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut e = [0u8; ENTRY];
        for _ in 0..count {
            d.read_exact(&mut e).map_err(|_| short())?;
            let mut id = [0u8; 32];
            id.copy_from_slice(&e[..32]);
            chunks.push(ChunkRef {
                id: ChunkId(id),
                len: u32::from_le_bytes([e[32], e[33], e[34], e[35]]),
            });
        }
        if d.read(&mut e).map_err(bad)? != 0 {
            return Err(FormatError::malformed(object, "bytes after the chunk list"));
        }
        let total: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
        if total != meta.image_size {
            return Err(FormatError::malformed(
                object,
                format!(
                    "chunks add up to {total} bytes, image size is {}",
                    meta.image_size
                ),
            ));
        }
        Ok(Manifest { meta, chunks })
    }

    /// Decodes only the metadata, reading no further into the stored point than it: a
    /// reader that needs no chunk list holds none.
    pub fn decode_meta(object: &str, stored: &[u8]) -> Result<PointMeta, FormatError> {
        let bad =
            |e: std::io::Error| FormatError::malformed(object, format!("not a zstd stream: {e}"));
        let mut d = zstd::stream::read::Decoder::new(stored).map_err(bad)?;
        Self::read_meta(object, &mut d)
    }

    /// Reads the header and the metadata from the start of a decoded point.
    fn read_meta(object: &str, d: &mut impl std::io::Read) -> Result<PointMeta, FormatError> {
        let bad =
            |e: std::io::Error| FormatError::malformed(object, format!("not a zstd stream: {e}"));
        let mut head = [0u8; 16];
        d.read_exact(&mut head).map_err(bad)?;
        if &head[..8] != MAGIC {
            return Err(FormatError::BadMagic {
                object: object.to_string(),
                kind: "point",
            });
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version > VERSION {
            return Err(FormatError::UnsupportedVersion {
                object: object.to_string(),
                found: version,
                supported: VERSION,
            });
        }
        let mlen = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        if mlen > MAX_META {
            return Err(FormatError::malformed(object, "metadata longer than 1 MiB"));
        }
        let mut meta = vec![0u8; mlen];
        d.read_exact(&mut meta).map_err(bad)?;
        serde_json::from_slice(&meta).map_err(|source| FormatError::Json {
            object: object.to_string(),
            source,
        })
    }

    /// Each chunk with its byte offset in the image.
    pub fn offsets(&self) -> impl Iterator<Item = (u64, ChunkRef)> + '_ {
        let mut off = 0u64;
        self.chunks.iter().map(move |c| {
            let at = off;
            off += u64::from(c.len);
            (at, *c)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn manifest(chunks: &[&[u8]]) -> Manifest {
        let refs: Vec<ChunkRef> = chunks
            .iter()
            .map(|c| ChunkRef {
                id: ChunkId::of(c),
                len: c.len() as u32,
            })
            .collect();
        let size = refs.iter().map(|c| u64::from(c.len)).sum();
        Manifest {
            meta: PointMeta {
                point: "20261124T120000Z-00000001".into(),
                host: "web1".into(),
                disk: "/dev/sda".into(),
                created: time::macros::datetime!(2026-11-24 12:00 UTC),
                image_size: size,
                consistency: Consistency::Crash,
                image_blake3: blake3::hash(&chunks.concat()).to_hex().to_string(),
                parent: None,
                stats: CaptureStats::default(),
                machine: Some(MachineFacts {
                    arch: "x86_64".into(),
                    boot: BootMode::Uefi,
                }),
                converted: None,
                full_read_at: None,
            },
            chunks: refs,
        }
    }

    #[test]
    fn round_trip_and_size_check() {
        let m = manifest(&[&[1u8; 100], &[2u8; 70]]);
        let enc = m.encode().unwrap();
        assert_eq!(Manifest::decode("p", &enc).unwrap(), m);
        let offs: Vec<u64> = m.offsets().map(|(o, _)| o).collect();
        assert_eq!(offs, vec![0, 100]);
        let mut bad = m.clone();
        bad.meta.image_size = 99;
        let err = Manifest::decode("p", &bad.encode().unwrap()).unwrap_err();
        assert!(err.to_string().contains("image size"), "{err}");
        assert!(Manifest::decode("p", b"garbage").is_err());
        assert_eq!(Manifest::decode_meta("p", &enc).unwrap(), m.meta);
        assert!(Manifest::decode_meta("p", b"garbage").is_err());
        // A header that announces more chunks than its image can hold is refused
        // before anything is allocated for them.
        let meta = serde_json::to_vec(&m.meta).unwrap();
        let mut raw = Vec::new();
        raw.extend_from_slice(MAGIC);
        raw.extend_from_slice(&VERSION.to_le_bytes());
        raw.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        raw.extend_from_slice(&meta);
        raw.extend_from_slice(&u64::MAX.to_le_bytes());
        let bomb = zstd::bulk::compress(&raw, 3).unwrap();
        let err = Manifest::decode("p", &bomb).unwrap_err();
        assert!(err.to_string().contains("cannot make an image"), "{err}");
        let mut trailing = raw[..raw.len() - 8].to_vec();
        trailing.extend_from_slice(&(m.chunks.len() as u64).to_le_bytes());
        for c in &m.chunks {
            trailing.extend_from_slice(&c.id.0);
            trailing.extend_from_slice(&c.len.to_le_bytes());
        }
        trailing.push(0);
        let err = Manifest::decode("p", &zstd::bulk::compress(&trailing, 3).unwrap()).unwrap_err();
        assert!(err.to_string().contains("after the chunk list"), "{err}");
    }

    #[test]
    fn machine_facts_from_the_probe() {
        let f = MachineFacts::parse("x86_64\nbios\n").unwrap();
        assert_eq!(f.arch, "x86_64");
        assert_eq!(f.boot, BootMode::LegacyBios);
        assert_eq!(
            MachineFacts::parse("aarch64\r\nuefi").unwrap().boot,
            BootMode::Uefi
        );
        assert!(MachineFacts::parse("x86_64\n").is_none());
        assert!(MachineFacts::parse("sh: uname: not found\nbios").is_none());
        assert!(MachineFacts::parse("x86_64\nmaybe").is_none());
    }

    #[test]
    fn points_without_machine_facts_still_decode() {
        let mut m = manifest(&[b"a"]);
        m.meta.machine = None;
        let json = serde_json::to_string(&m.meta).unwrap();
        assert!(!json.contains("machine"));
        let back: PointMeta = serde_json::from_str(&json).unwrap();
        assert_eq!(back.machine, None);
    }

    #[test]
    fn point_ids_sort_by_time() {
        let a = point_id(time::macros::datetime!(2026-11-24 09:05:03 UTC), 0xabc);
        assert_eq!(a, "20261124T090503Z-00000abc");
        let b = point_id(time::macros::datetime!(2026-11-24 10:00:00 UTC), 0);
        assert!(a < b);
    }
}
