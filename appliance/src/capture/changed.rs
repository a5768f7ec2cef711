//! The front of a changed-blocks capture: fetches the ranges the rebuild asks for (one
//! stream a round; a round ends early when the cuts after a change need the bytes after
//! its range), checks every fetched block against the host's hash, and hands the
//! pipeline the parent's chunks and the fresh ones in order.

use std::io::Read;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use crossbeam_channel::Sender;
use ferry_core::blockmap::BlockMap;
use ferry_core::cbt::{changed_runs, Changes, Fetched, Flow, Piece, Rebuild, Segment};
use ferry_core::chunking::ChunkerParams;
use ferry_core::manifest::ChunkRef;

use super::pipeline::{Counters, FrontResult, Work};

/// Rounds a capture may take before it gives up (each round is one more stream; the
/// cuts after a change meet the parent's within a few chunks).
const MAX_ROUNDS: usize = 64;
/// Bytes read from a stream at a time.
const PIECE: u64 = 1 << 20;

/// Opens a stream of the bytes of `ranges`, in order, back to back.
pub trait RangeFetch: Send {
    fn open(&mut self, ranges: &[Range<u64>]) -> Result<Box<dyn Read + Send>>;
}

/// What a changed-blocks capture starts from.
pub struct Plan {
    pub parent_chunks: Vec<ChunkRef>,
    pub parent_map: BlockMap,
    pub changes: Changes,
    pub params: ChunkerParams,
    /// Bytes fetched past each changed run in the first round.
    pub margin: u64,
}

/// What a changed-blocks capture measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangedStats {
    pub blocks_changed: u64,
    /// Blocks fetched (changed ones and the ones around them the chunking needed).
    pub blocks_fetched: u64,
    pub bytes_fetched: u64,
    pub rounds: usize,
}

/// A plan made ready to run: the rebuild, the new block map, the first round's bytes
/// (what the progress display counts up to).
pub struct Ready {
    rebuild: Rebuild,
    fetched: Fetched,
    blocks_changed: u64,
    image_size: u64,
    pub first_round: u64,
}

impl Plan {
    pub fn ready(self) -> Result<Ready> {
        let runs = changed_runs(&self.parent_map, &self.changes);
        let image_size = self.parent_map.image_size;
        let blocks_changed = self.changes.len() as u64;
        let rebuild = Rebuild::new(
            self.parent_chunks,
            image_size,
            self.parent_map.block_size,
            runs,
            self.params,
            self.margin,
        )?;
        let fetched = Fetched::new(self.parent_map, self.changes);
        let first_round = rebuild
            .requests(|i| fetched.known_zero(i))
            .iter()
            .flat_map(|r| fetched.segments(r.clone()))
            .filter(|s| !s.zero)
            .map(|s| s.range.end - s.range.start)
            .sum();
        Ok(Ready {
            rebuild,
            fetched,
            blocks_changed,
            image_size,
            first_round,
        })
    }
}

/// The pipeline front for `ready`, fetching through `fetch`.
pub fn front(
    ready: Ready,
    mut fetch: Box<dyn RangeFetch>,
    counters: Arc<Counters>,
    stats: Arc<std::sync::Mutex<ChangedStats>>,
) -> impl FnOnce(Sender<Work>) -> Result<FrontResult> + Send + 'static {
    move |work| {
        let Ready {
            rebuild: mut rb,
            mut fetched,
            blocks_changed,
            image_size,
            ..
        } = ready;
        let mut seq = 0usize;
        let mut out = Vec::new();
        let (mut bytes, mut rounds) = (0u64, 0usize);
        'rounds: loop {
            let ranges = rb.requests(|i| fetched.known_zero(i));
            if ranges.is_empty() {
                break;
            }
            let plan: Vec<(Range<u64>, Vec<Segment>)> = ranges
                .into_iter()
                .map(|r| (r.clone(), fetched.segments(r)))
                .collect();
            let wanted = to_fetch(&plan);
            // Free space the parent had and the host did not change is not fetched: a
            // round of nothing but that needs no stream.
            let mut stream = match wanted.is_empty() {
                true => None,
                false => {
                    rounds += 1;
                    if rounds > MAX_ROUNDS {
                        bail!("the changed blocks' chunks did not meet the parent's after {MAX_ROUNDS} rounds");
                    }
                    Some(fetch.open(&wanted)?)
                }
            };
            for (r, segments) in &plan {
                for seg in segments {
                    let mut at = seg.range.start;
                    while at < seg.range.end {
                        let n = (seg.range.end - at).min(PIECE) as usize;
                        let piece = match (&mut stream, seg.zero) {
                            (_, true) => zeros(n),
                            (Some(s), false) => {
                                let mut buf = vec![0u8; n];
                                s.read_exact(&mut buf).with_context(|| {
                                    format!("reading changed blocks at byte {at}")
                                })?;
                                let piece = Bytes::from(buf);
                                fetched.add(at, &piece)?;
                                bytes += n as u64;
                                counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                                piece
                            }
                            (None, false) => {
                                bail!("internal error: bytes to fetch without a stream")
                            }
                        };
                        rb.feed(at, &piece, &mut out)?;
                        send(&work, &mut seq, &mut out)?;
                        at += n as u64;
                    }
                    fetched.range_end()?;
                }
                let flow = rb.range_end(r.end, &mut out);
                send(&work, &mut seq, &mut out)?;
                if flow == Flow::Extend {
                    // The rest of this stream is of no use before more bytes of this
                    // range's end: dropping it ends the remote command.
                    continue 'rounds;
                }
            }
            // Every range read: the command must end here, and end well.
            if let Some(mut s) = stream {
                let mut more = [0u8; 1];
                match s.read(&mut more) {
                    Ok(0) => {}
                    Ok(_) => bail!("the host sent more bytes than the ranges asked for"),
                    Err(e) => return Err(anyhow!(e).context("reading changed blocks")),
                }
            }
        }
        rb.finish(&mut out)?;
        send(&work, &mut seq, &mut out)?;
        if let Ok(mut s) = stats.lock() {
            *s = ChangedStats {
                blocks_changed,
                blocks_fetched: fetched.blocks,
                bytes_fetched: bytes,
                rounds,
            };
        }
        Ok(FrontResult {
            image_size,
            blocks: Some(fetched.into_map()),
        })
    }
}

/// The ranges to ask the host for: the non-zero segments, adjacent ones merged.
fn to_fetch(plan: &[(Range<u64>, Vec<Segment>)]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for seg in plan.iter().flat_map(|(_, s)| s).filter(|s| !s.zero) {
        match out.last_mut() {
            Some(last) if last.end == seg.range.start => last.end = seg.range.end,
            _ => out.push(seg.range.clone()),
        }
    }
    out
}

/// `n` zero bytes, without allocating for each block.
fn zeros(n: usize) -> Bytes {
    static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
    if n <= ZEROS.len() {
        Bytes::from_static(&ZEROS[..n])
    } else {
        Bytes::from(vec![0u8; n])
    }
}

fn send(work: &Sender<Work>, seq: &mut usize, out: &mut Vec<Piece>) -> Result<()> {
    for p in out.drain(..) {
        let w = match p {
            Piece::Old(r) => Work::Known(*seq, r),
            Piece::New(b) => Work::Chunk(*seq, b),
        };
        work.send(w)
            .map_err(|_| anyhow!("pipeline channel closed"))?;
        *seq += 1;
    }
    Ok(())
}
