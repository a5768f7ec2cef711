//! Test disks: the shared benchmark workload (a real ext4 image and its changed copy),
//! small synthetic images, and whole-file hashes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use rand::{RngCore, SeedableRng};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `disk.img` and `disk-changed.img` from `shared/bench/make_workload.sh`, made once per
/// machine at the test size (256 MiB image, 150 MiB of files) and reused.
pub fn workload() -> Result<(PathBuf, PathBuf)> {
    let script = repo_root().join("../shared/bench/make_workload.sh");
    if !script.exists() {
        bail!(
            "{} is missing (shared/ must sit beside the checkout)",
            script.display()
        );
    }
    let dir = std::env::temp_dir().join("ferry-workload-256");
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::File::create(dir.join(".lock"))?;
    // One test makes it; the others wait on the lock.
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", dir.display());
    }
    let (a, b) = (dir.join("disk.img"), dir.join("disk-changed.img"));
    if !dir.join("sha256.txt").exists() {
        let out = Command::new("bash")
            .arg(&script)
            .env("WORKLOAD_DIR", &dir)
            .env("IMAGE_MB", "256")
            .env("DATA_MB", "150")
            .output()
            .context("running make_workload.sh")?;
        if !out.status.success() {
            bail!(
                "make_workload.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok((a, b))
}

/// The benchmark workload (`make_workload.sh` at its default 2 GiB) in `dir` (default
/// `$TMPDIR/ferry-workload`), made if missing: (disk.img, disk-changed.img).
pub fn bench_workload(dir: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("ferry-workload"));
    if !dir.join("sha256.txt").exists() {
        eprintln!("making the 2 GiB workload in {}", dir.display());
        let st = Command::new("bash")
            .arg(repo_root().join("../shared/bench/make_workload.sh"))
            .env("WORKLOAD_DIR", &dir)
            .status()?;
        if !st.success() {
            bail!("make_workload.sh failed");
        }
    }
    Ok((dir.join("disk.img"), dir.join("disk-changed.img")))
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
