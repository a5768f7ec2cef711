//! The changed-blocks path against a full read of the same disk: chunk for chunk, and
//! the image hash, for many seeds and change patterns.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::*;
use crate::blockmap::{BlockHash, BlockMap};
use crate::chunking::{ChunkerParams, StreamChunker};
use crate::id::ChunkId;
use crate::manifest::ChunkRef;

fn small() -> ChunkerParams {
    ChunkerParams {
        min_size: 1024,
        avg_size: 4096,
        max_size: 16384,
        ..ChunkerParams::default()
    }
}

fn full_read(d: &[u8], p: ChunkerParams) -> Vec<ChunkRef> {
    let mut c = StreamChunker::new(p);
    let mut out = Vec::new();
    for b in d.chunks(1 << 20) {
        c.push(b, &mut out);
    }
    c.finish(&mut out);
    out.iter()
        .map(|c| ChunkRef {
            id: ChunkId::of(c),
            len: c.len() as u32,
        })
        .collect()
}

fn map_of(d: &[u8], block: u32) -> BlockMap {
    let mut m = BlockMap::empty(block, d.len() as u64);
    for (i, b) in d.chunks(block as usize).enumerate() {
        m.blocks[i] = BlockHash::of(block, i as u64, b);
    }
    m
}

/// What the host reports: its hashes compared with the parent's as they arrive.
fn changes(parent: &BlockMap, host: &BlockMap) -> Changes {
    let mut cmp = Compare::new(parent);
    for b in &host.blocks {
        assert!(cmp.push(b.sha256));
    }
    assert!(!cmp.push([0; 32]), "one hash more than blocks");
    cmp.finish().unwrap()
}

struct Outcome {
    chunks: Vec<ChunkRef>,
    map: BlockMap,
    fetched: u64,
    rounds: usize,
}

/// The changed-blocks capture of `new` after `old`, fed in random pieces.
fn changed_blocks(
    old: &[u8],
    new: &[u8],
    block: u32,
    p: ChunkerParams,
    margin: u64,
    rng: &mut StdRng,
) -> Outcome {
    let parent_map = map_of(old, block);
    let host = changes(&parent_map, &map_of(new, block));
    let runs = changed_runs(&parent_map, &host);
    let size = new.len() as u64;
    let mut rb = Rebuild::new(full_read(old, p), size, block, runs, p, margin).unwrap();
    let mut fetched_blocks = Fetched::new(parent_map.clone(), host);
    let (mut out, mut fetched, mut rounds) = (Vec::new(), 0u64, 0usize);
    'rounds: loop {
        let reqs = rb.requests(|i| fetched_blocks.known_zero(i));
        if reqs.is_empty() {
            break;
        }
        let streams_before = rounds;
        rounds += usize::from(
            reqs.iter()
                .flat_map(|r| fetched_blocks.segments(r.clone()))
                .any(|s| !s.zero),
        );
        assert!(
            rounds < 100 && streams_before < 1000,
            "the rebuild does not converge"
        );
        for r in reqs {
            assert_eq!(r.start % u64::from(block), 0);
            assert!(r.end % u64::from(block) == 0 || r.end == size);
            for seg in fetched_blocks.segments(r.clone()) {
                let mut at = seg.range.start;
                while at < seg.range.end {
                    let n = if rng.random_bool(0.3) {
                        seg.range.end - at
                    } else {
                        rng.random_range(1..=(seg.range.end - at).min(9000))
                    };
                    let piece = if seg.zero {
                        Bytes::from(vec![0u8; n as usize])
                    } else {
                        let p = Bytes::copy_from_slice(&new[at as usize..(at + n) as usize]);
                        fetched_blocks.add(at, &p).unwrap();
                        fetched += n;
                        p
                    };
                    rb.feed(at, &piece, &mut out).unwrap();
                    at += n;
                }
                fetched_blocks.range_end().unwrap();
            }
            if rb.range_end(r.end, &mut out) == Flow::Extend {
                continue 'rounds;
            }
        }
    }
    rb.finish(&mut out).unwrap();
    let chunks = out
        .into_iter()
        .map(|p| match p {
            Piece::Old(r) => r,
            Piece::New(b) => ChunkRef {
                id: ChunkId::of(&b),
                len: b.len() as u32,
            },
        })
        .collect();
    Outcome {
        chunks,
        map: fetched_blocks.into_map(),
        fetched,
        rounds,
    }
}

fn random_image(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    rng.fill_bytes(&mut d);
    // Free space: zero runs, some longer than a chunk.
    for _ in 0..rng.random_range(0..4) {
        let at = rng.random_range(0..len);
        let n = rng.random_range(1..60_000).min(len - at);
        d[at..at + n].fill(0);
    }
    // Repeated content (a copied file).
    if len > 40_000 && rng.random_bool(0.5) {
        let n = rng.random_range(1..20_000);
        let (from, to) = (rng.random_range(0..len - n), rng.random_range(0..len - n));
        d.copy_within(from..from + n, to);
    }
    d
}

/// Overwrites up to `n` bytes from `at`: random bytes, or zeros (a freed block).
fn run(rng: &mut StdRng, d: &mut [u8], at: usize, n: usize) {
    let n = n.min(d.len() - at);
    if rng.random_bool(0.2) {
        d[at..at + n].fill(0);
    } else {
        rng.fill_bytes(&mut d[at..at + n]);
    }
}

/// One of the change patterns the issue names, at random.
fn change(rng: &mut StdRng, d: &mut [u8], block: usize) {
    let len = d.len();
    match rng.random_range(0..8) {
        // Single bytes here and there.
        0 => {
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..len);
                d[at] = d[at].wrapping_add(1);
            }
        }
        // A run across block and chunk boundaries.
        1 => {
            let at = rng.random_range(0..len);
            {
                let n = rng.random_range(1..3 * block + 7);
                run(rng, d, at, n)
            };
        }
        // At the start of the disk.
        2 => {
            let n = rng.random_range(1..2 * block);
            run(rng, d, 0, n)
        }
        // At the end, and the last byte alone.
        3 => {
            let n = rng.random_range(1..2 * block).min(len);
            run(rng, d, len - n, n);
        }
        4 => d[len - 1] ^= 0x5a,
        // Many small runs, some in adjacent blocks.
        5 => {
            for _ in 0..rng.random_range(2..20) {
                let at = rng.random_range(0..len);
                {
                    let n = rng.random_range(1..600);
                    run(rng, d, at, n)
                };
            }
        }
        // A changed tail.
        6 => {
            let at = rng.random_range(len / 2..len);
            run(rng, d, at, len);
        }
        // Nothing at all.
        _ => {}
    }
}

#[test]
fn changed_blocks_give_the_chunks_and_image_hash_of_a_full_read() {
    let mut extended = 0;
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let block = [1024u32, 4096, 8192][rng.random_range(0..3)];
        let len = rng.random_range(3 * block as usize..400_000);
        let old = random_image(&mut rng, len);
        let mut new = old.clone();
        for _ in 0..rng.random_range(1..4) {
            change(&mut rng, &mut new, block as usize);
        }
        let margin = [0u64, 4096, 16384][rng.random_range(0..3)];
        let got = changed_blocks(&old, &new, block, small(), margin, &mut rng);
        let want = full_read(&new, small());
        assert_eq!(got.chunks.len(), want.len(), "seed {seed}: chunk count");
        assert_eq!(got.chunks, want, "seed {seed}");
        assert_eq!(got.map, map_of(&new, block), "seed {seed}: block map");
        assert_eq!(
            got.map.image_hash(None),
            blake3::hash(&new).to_hex().to_string(),
            "seed {seed}"
        );
        if old == new {
            assert_eq!(
                got.fetched, 0,
                "seed {seed}: nothing changed, nothing fetched"
            );
        }
        extended += usize::from(got.rounds > 1);
    }
    // The path where the cuts after a change meet the parent's only in a later round.
    assert!(extended > 10, "{extended} runs needed more than one round");
}

#[test]
fn a_small_change_fetches_a_few_blocks_in_one_round() {
    let p = ChunkerParams::default();
    let block = crate::blockmap::BLOCK_SIZE;
    let mut rng = StdRng::seed_from_u64(9);
    let old = random_image(&mut rng, 8 << 20);
    let mut new = old.clone();
    new[3_000_000..3_004_096].fill(7);
    let got = changed_blocks(&old, &new, block, p, u64::from(p.max_size), &mut rng);
    assert_eq!(got.chunks, full_read(&new, p));
    // The changed block, the blocks the chunk before it starts in, the margin.
    assert!(got.fetched <= 5 * u64::from(block), "{} bytes", got.fetched);
    assert_eq!(got.rounds, 1);
}

#[test]
fn bytes_out_of_order_or_changed_under_the_read_are_refused() {
    let block = 4096u32;
    let mut rng = StdRng::seed_from_u64(3);
    let old = random_image(&mut rng, 100_000);
    let mut new = old.clone();
    new[50_000] ^= 1;
    let pm = map_of(&old, block);
    let host = changes(&pm, &map_of(&new, block));
    // The host hashed `new`, then block 3 changed before it was read.
    let mut read = new.clone();
    read[13_000] ^= 1;
    let mut f = Fetched::new(pm.clone(), host.clone());
    assert_eq!(
        f.add(12_288, &read[12_288..16_384]),
        Err(CbtError::ChangedUnderRead { block: 3 })
    );
    let mut f = Fetched::new(pm.clone(), host);
    assert_eq!(f.add(100, &new[100..200]), Err(CbtError::Unaligned(100)));
    let runs = changed_runs(&pm, &changes(&pm, &map_of(&new, block)));
    assert_eq!(runs, vec![49_152..53_248]);
    // Hashes that do not fit the parent's blocks.
    let mut cmp = Compare::new(&pm);
    assert!(cmp.push([0; 32]));
    assert!(cmp.finish().is_none());
    let mut rb = Rebuild::new(full_read(&old, small()), 100_000, block, runs, small(), 0).unwrap();
    let mut out = Vec::new();
    let late = Bytes::copy_from_slice(&new[60_000..61_000]);
    assert!(matches!(
        rb.feed(60_000, &late, &mut out),
        Err(CbtError::OutOfOrder { .. })
    ));
    assert!(Rebuild::new(full_read(&old, small()), 99, block, vec![], small(), 0).is_err());
}

#[test]
fn a_change_in_the_byte_after_a_cut_moves_that_cut() {
    // The byte at a chunk's end decides the cut there: changing only that byte (the
    // first byte of a block) must re-cut the chunk before the block too.
    let block = 1024u32;
    let mut rng = StdRng::seed_from_u64(11);
    let mut tried = 0;
    for _ in 0..50 {
        let old = random_image(&mut rng, 300_000);
        let mut at = 0u64;
        for c in full_read(&old, small()) {
            at += u64::from(c.len);
            if !at.is_multiple_of(u64::from(block)) || at as usize >= old.len() {
                continue;
            }
            let mut new = old.clone();
            new[at as usize] = new[at as usize].wrapping_add(1);
            let want = full_read(&new, small());
            let got = changed_blocks(&old, &new, block, small(), 0, &mut rng);
            assert_eq!(got.chunks, want, "change at the cut {at}");
            tried += 1;
        }
    }
    assert!(tried > 3, "only {tried} cuts on a block boundary");
}
