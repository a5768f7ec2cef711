//! Checks around a restore onto a host's disk, run with the host's stock shell tools:
//! is the disk in use (before anything is written), does it hold the `--base` point
//! (a sample of its chunks, before trusting it), and does it now equal the point (read
//! back and hashed, before success is reported).

use std::io::Read;

use anyhow::{bail, Context, Result};
use ferry_core::manifest::{ChunkRef, Manifest};
use ferry_core::ChunkId;

use crate::ssh::quote;

/// Chunks of `--base` read from the target before it is trusted.
pub const SAMPLES: usize = 32;

/// A shell script that prints `free`, or what holds the disk: `mounted`, `swap`, `held`
/// (device-mapper, LVM, RAID on it or on a partition of it) or `loop` (an image file
/// that backs a loop device).
pub fn in_use_script(disk: &str) -> String {
    let d = quote(disk);
    format!(
        r#"d=$(readlink -f -- {d}); n=${{d##*/}}
if [ -b "$d" ]; then
  while read -r dev rest; do case "$dev" in "$d"|"$d"[0-9]*|"$d"p[0-9]*) echo mounted; exit 0;; esac; done < /proc/mounts
  while read -r dev rest; do case "$dev" in "$d"|"$d"[0-9]*|"$d"p[0-9]*) echo swap; exit 0;; esac; done < /proc/swaps
  for h in /sys/class/block/"$n"/holders /sys/class/block/"$n"/"$n"*/holders; do
    [ -d "$h" ] && [ -n "$(ls -A "$h")" ] && {{ echo held; exit 0; }}
  done
else
  for f in /sys/block/loop*/loop/backing_file; do
    [ -f "$f" ] && [ "$(cat "$f")" = "$d" ] && {{ echo loop; exit 0; }}
  done
fi
echo free"#
    )
}

/// What [`in_use_script`] printed, as a reason to refuse; `None` when the disk is free.
pub fn in_use_reason(out: &str) -> Result<Option<&'static str>> {
    Ok(match out.trim() {
        "free" => None,
        "mounted" => Some("it (or a partition of it) is mounted"),
        "swap" => Some("it (or a partition of it) is in use as swap"),
        "held" => Some("device-mapper, LVM or RAID holds it (or a partition of it)"),
        "loop" => Some("it backs a loop device"),
        other => bail!("unexpected answer from the in-use check: {other:?}"),
    })
}

/// Up to `n` chunks of `m`, spread evenly over the image, with their offsets.
pub fn samples(m: &Manifest, n: usize) -> Vec<(u64, ChunkRef)> {
    let all: Vec<(u64, ChunkRef)> = m.offsets().collect();
    if all.len() <= n {
        return all;
    }
    (0..n).map(|i| all[i * all.len() / n]).collect()
}

/// One remote command that prints the bytes of every sample, in order.
pub fn samples_script(disk: &str, samples: &[(u64, ChunkRef)]) -> String {
    let d = quote(disk);
    samples
        .iter()
        .map(|(off, c)| {
            format!(
                "dd if={d} bs=64K skip={off} count={} iflag=skip_bytes,count_bytes status=none",
                c.len
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// How many samples differ in `out` (the script's output, samples back to back).
pub fn samples_differing(samples: &[(u64, ChunkRef)], out: &[u8]) -> usize {
    let mut at = 0usize;
    let mut differ = 0;
    for (_, c) in samples {
        let end = at + c.len as usize;
        match out.get(at..end) {
            Some(b) if ChunkId::of(b) == c.id => {}
            _ => differ += 1,
        }
        at = end;
    }
    differ
}

/// BLAKE3 of the first `len` bytes of `r`, as `b3sum` prints it; a short read is an error.
pub fn hash_stream(
    mut r: impl Read,
    len: u64,
    read: &std::sync::atomic::AtomicU64,
) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = r
            .read(&mut buf[..want])
            .context("reading the target back")?;
        if n == 0 {
            bail!("the target ended {left} bytes before the image's end");
        }
        h.update(&buf[..n]);
        left -= n as u64;
        read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(chunks: &[&[u8]]) -> Manifest {
        let refs: Vec<ChunkRef> = chunks
            .iter()
            .map(|c| ChunkRef {
                id: ChunkId::of(c),
                len: c.len() as u32,
            })
            .collect();
        let size = refs.iter().map(|c| u64::from(c.len)).sum();
        Manifest {
            meta: ferry_core::manifest::PointMeta {
                point: "p".into(),
                host: "h".into(),
                disk: "/dev/sda".into(),
                created: time::OffsetDateTime::UNIX_EPOCH,
                image_size: size,
                consistency: ferry_core::manifest::Consistency::Crash,
                image_blake3: String::new(),
                parent: None,
                stats: Default::default(),
                machine: None,
                converted: None,
                full_read_at: None,
            },
            chunks: refs,
        }
    }

    #[test]
    fn samples_are_spread_and_checked_in_order() {
        let data: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        let man = m(&refs);
        let s = samples(&man, 5);
        assert_eq!(
            s.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![0, 6, 12, 18, 24]
        );
        assert_eq!(samples(&man, 50).len(), 10);
        let good: Vec<u8> = [0u8, 2, 4, 6, 8].iter().flat_map(|&i| vec![i; 3]).collect();
        assert_eq!(samples_differing(&s, &good), 0);
        let mut bad = good.clone();
        bad[4] = 99;
        assert_eq!(samples_differing(&s, &bad), 1);
        assert_eq!(samples_differing(&s, &good[..7]), 3, "short output");
        let script = samples_script("/dev/sdb", &s[..2]);
        assert!(script.contains("skip=6 count=3"), "{script}");
    }

    #[test]
    fn in_use_answers() {
        assert_eq!(in_use_reason("free\n").unwrap(), None);
        assert!(in_use_reason("mounted")
            .unwrap()
            .unwrap()
            .contains("mounted"));
        assert!(in_use_reason("loop").unwrap().is_some());
        assert!(in_use_reason("sh: oops").is_err());
        assert!(in_use_script("/dev/my disk").contains("'/dev/my disk'"));
    }
}
