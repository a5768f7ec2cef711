//! Test disks: the project's sample disks (a real ext4 image and its changed copy, see
//! [`crate::sample_disk`]), small synthetic images, and whole-file hashes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::sample_disk::{self, Spec};
use rand::{RngCore, SeedableRng};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The sample disk in `dir`, made if missing; concurrent callers (tests run in
/// parallel) wait on a lock while one of them makes it.
fn locked_sample(dir: &Path, spec: Spec) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::File::create(dir.join(".lock"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", dir.display());
    }
    let d = sample_disk::ensure(dir, spec)?;
    Ok((d.base, d.changed))
}

/// The test-size sample disk (256 MiB image, 150 MiB of files) and its changed copy,
/// made once per machine and reused.
pub fn workload() -> Result<(PathBuf, PathBuf)> {
    locked_sample(&std::env::temp_dir().join("ferry-sample-256"), Spec::SMALL)
}

/// The benchmark-size sample disk (2 GiB) in `dir` (default `$TMPDIR/ferry-sample-2048`),
/// made if missing: (disk.img, disk-changed.img).
/// A `dir` that already holds both images but no sample marker is an external workload
/// (e.g. an earlier benchmark's) and is used as it is.
pub fn bench_workload(dir: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
    if let Some(d) = &dir {
        let (a, b) = (d.join("disk.img"), d.join("disk-changed.img"));
        if a.exists() && b.exists() && !d.join("sample.txt").exists() {
            return Ok((a, b));
        }
    }
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("ferry-sample-2048"));
    eprintln!("sample disk (2 GiB) in {}", dir.display());
    locked_sample(&dir, Spec::BENCH)
}

/// A disk image of `size` seeded random bytes (incompressible, so that a capture and
/// an image build really move them).
pub fn random(path: &Path, size: usize, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut f = std::fs::File::create(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n;
    }
    Ok(())
}

/// Copies a file (the copy is not sparse, like a real device).
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Overwrites `count` blocks of `len` random bytes at seeded random offsets.
pub fn scribble(path: &Path, seed: u64, count: usize, len: usize) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = f.metadata()?.len();
    let mut buf = vec![0u8; len];
    for _ in 0..count {
        let off = rng.next_u64() % (size - len as u64);
        rng.fill_bytes(&mut buf);
        f.seek(SeekFrom::Start(off))?;
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    Ok(())
}

pub fn sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn blake3(path: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Number of 4 KiB blocks that differ between two equally long files.
pub fn differing_bytes(a: &Path, b: &Path) -> Result<u64> {
    let (x, y) = (std::fs::read(a)?, std::fs::read(b)?);
    Ok(x.iter().zip(&y).filter(|(p, q)| p != q).count() as u64)
}

/// Every file under `dir`, at any depth, sorted (none when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}
