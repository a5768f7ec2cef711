//! Content ids: BLAKE3 of the plaintext for chunks, of the stored bytes for packs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte BLAKE3 digest. Chunks are named by the hash of their uncompressed bytes, so
/// identical data is stored once whichever host or point it came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

/// Packs are named by the BLAKE3 of their stored bytes, like chunks.
pub type PackId = ChunkId;

impl ChunkId {
    pub fn of(data: &[u8]) -> Self {
        ChunkId(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for human output.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.short())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a 64-digit hex id: {0:?}")]
pub struct ParseIdError(pub String);

impl FromStr for ChunkId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseIdError(s.to_string()))?;
        Ok(ChunkId(out))
    }
}

impl Serialize for ChunkId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether every byte is zero; word at a time, so that free space is recognised at
/// memory speed.
pub fn is_all_zero(data: &[u8]) -> bool {
    let mut words = data.chunks_exact(64);
    for w in &mut words {
        let mut acc = 0u64;
        for q in w.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(q);
            acc |= u64::from_ne_bytes(a);
        }
        if acc != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|b| *b == 0)
}

/// Ids of all-zero chunks, by length. Disks hold long zero runs (free space), which cut
/// into few distinct lengths; their ids are computed once instead of hashed each time.
#[derive(Default)]
pub struct ZeroIds(std::collections::HashMap<u32, ChunkId>);

impl ZeroIds {
    pub fn id(&mut self, len: u32) -> ChunkId {
        *self
            .0
            .entry(len)
            .or_insert_with(|| ChunkId::of(&vec![0u8; len as usize]))
    }

    /// The id of `data`, skipping the hash when it is all zeros.
    pub fn id_of(&mut self, data: &[u8]) -> ChunkId {
        if is_all_zero(data) {
            self.id(data.len() as u32)
        } else {
            ChunkId::of(data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_ids_match_real_hashes() {
        let mut z = ZeroIds::default();
        for len in [0usize, 1, 63, 64, 65, 4096, 262_144] {
            let zeros = vec![0u8; len];
            assert!(is_all_zero(&zeros));
            assert_eq!(z.id_of(&zeros), ChunkId::of(&zeros));
            let mut one = zeros.clone();
            if len > 0 {
                one[len - 1] = 1;
                assert!(!is_all_zero(&one));
                assert_eq!(z.id_of(&one), ChunkId::of(&one));
            }
        }
    }

    #[test]
    fn hex_round_trip_and_known_vector() {
        let id = ChunkId::of(b"");
        // BLAKE3 of the empty input, from the BLAKE3 test vectors.
        assert_eq!(
            id.to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(id.to_hex().parse::<ChunkId>().unwrap(), id);
        assert_eq!(id.short(), "af1349b9");
        assert!("xyz".parse::<ChunkId>().is_err());
    }
}
