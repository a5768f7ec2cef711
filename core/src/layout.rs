//! Where each object lives inside a store. A store is a flat key space (S3 prefix or
//! directory); these functions are the only place that spells keys.

use crate::id::{ChunkId, PackId};

pub const CONFIG: &str = "config";
pub const PACKS: &str = "packs/";
pub const INDEX: &str = "index/";
pub const POINTS: &str = "points/";
pub const LOCKS: &str = "locks/";
pub const LOCATIONS: &str = "locations/";
pub const BLOCKS: &str = "blocks/";

/// `packs/ab/abcdef...`: two hex digits of fan-out keep directories small.
pub fn pack_key(id: &PackId) -> String {
    let h = id.to_hex();
    format!("{PACKS}{}/{h}", &h[..2])
}

/// The pack id of a key made by [`pack_key`], or `None` for anything else.
pub fn pack_id_of_key(key: &str) -> Option<PackId> {
    let rest = key.strip_prefix(PACKS)?;
    let (_, name) = rest.split_once('/')?;
    name.parse().ok()
}

pub fn index_key(id: &ChunkId) -> String {
    format!("{INDEX}{}", id.to_hex())
}

pub fn points_prefix(host: &str) -> String {
    format!("{POINTS}{host}/")
}

pub fn point_key(host: &str, point: &str) -> String {
    format!("{POINTS}{host}/{point}")
}

/// `locations/<host>/<point>`: where each chunk of the point is stored, by image range.
pub fn locations_key(host: &str, point: &str) -> String {
    format!("{LOCATIONS}{host}/{point}")
}

/// `blocks/<host>/<point>`: the point's block map (a hash per fixed block), for the
/// next capture's changed-block detection.
pub fn blocks_key(host: &str, point: &str) -> String {
    format!("{BLOCKS}{host}/{point}")
}

/// `locks/<id>`: one appliance's (or function's) lock on the store.
pub fn lock_key(id: &str) -> String {
    format!("{LOCKS}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_keys_round_trip() {
        let id = ChunkId::of(b"x");
        let k = pack_key(&id);
        assert!(k.starts_with(&format!("packs/{}/", &id.to_hex()[..2])));
        assert_eq!(pack_id_of_key(&k), Some(id));
        assert_eq!(pack_id_of_key("packs/zz"), None);
        assert_eq!(point_key("web1", "p"), "points/web1/p");
    }
}
