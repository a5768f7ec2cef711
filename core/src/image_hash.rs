//! The whole-image BLAKE3 (as `b3sum` prints it), computed block by block in parallel.
//!
//! BLAKE3 is a tree: a block of `block_len` bytes (a power of two, at least one 1 KiB
//! BLAKE3 chunk) that starts at a multiple of `block_len` is a complete subtree, so its
//! chaining value can be computed on any thread and the values merged at the end in
//! the tree's own shape. That takes the image hash off the capture's critical path.

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use bytes::Bytes;

/// Chaining value of block `index` (all blocks but the last must be `block_len` long).
pub fn block_cv(block_len: u64, index: u64, data: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(index * block_len)
        .update(data)
        .finalize_non_root()
}

/// Merges the blocks' chaining values into the image hash. `first_block` is needed only
/// when the image is a single block (a lone block is the root itself, which a
/// chaining value cannot stand for).
pub fn combine(
    block_len: u64,
    image_len: u64,
    cvs: &[ChainingValue],
    first_block: Option<&Bytes>,
) -> blake3::Hash {
    if image_len <= block_len {
        return blake3::hash(first_block.map(|b| &b[..]).unwrap_or(&[]));
    }
    let (left, right) = split(block_len, image_len, cvs);
    merge_subtrees_root(&left, &right, Mode::Hash)
}

fn split(block_len: u64, len: u64, cvs: &[ChainingValue]) -> (ChainingValue, ChainingValue) {
    let left_len = left_subtree_len(len);
    let n = (left_len / block_len) as usize;
    (
        subtree(block_len, left_len, &cvs[..n]),
        subtree(block_len, len - left_len, &cvs[n..]),
    )
}

fn subtree(block_len: u64, len: u64, cvs: &[ChainingValue]) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let (l, r) = split(block_len, len, cvs);
    merge_subtrees_non_root(&l, &r, Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_blocks(data: &[u8], block: usize) -> blake3::Hash {
        let cvs: Vec<ChainingValue> = data
            .chunks(block)
            .enumerate()
            .map(|(i, b)| block_cv(block as u64, i as u64, b))
            .collect();
        let first = Bytes::copy_from_slice(&data[..data.len().min(block)]);
        combine(block as u64, data.len() as u64, &cvs, Some(&first))
    }

    #[test]
    fn equals_plain_blake3_for_every_shape() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for block in [1024usize, 4096, 16384] {
            for len in [
                0,
                1,
                1023,
                1024,
                1025,
                block - 1,
                block,
                block + 1,
                3 * block,
                5 * block + 7,
                200_000,
            ] {
                let d = &data[..len];
                assert_eq!(
                    by_blocks(d, block),
                    blake3::hash(d),
                    "block {block} len {len}"
                );
            }
        }
    }
}
