//! The project's own sample disks: a raw ext4 image holding a tree of generated but
//! realistic files (configuration and documentation text, logs, program binaries with
//! code, string tables and padding, already-compressed media, duplicated libraries),
//! and a copy of it after "a day of changes" on a server. Used by the demo, the tests and
//! the benchmarks, made on any machine with `mkfs.ext4` and `debugfs` (e2fsprogs), no
//! root and no loop device.
//!
//! Deterministic: every byte comes from seeded generators, file times are fixed, and the
//! file system is made with a fixed UUID, hash seed and clock (`E2FSPROGS_FAKE_TIME`), so
//! the same parameters give the same images, run after run.
//!
//! The day of changes, applied to the copy in this order:
//! 1. `debugfs`: a new directory `/var/log/app` with 8 log files of 512 KiB (4 MiB of
//!    compressible text);
//! 2. `debugfs`: a "package update" of 3 binaries of 1-4 MiB (removed, then written again
//!    with one 4 KiB block changed in the middle, so the new copy lands elsewhere);
//! 3. `200 x image/2 GiB` overwrites of 100 KiB of random bytes at random 4 KiB-aligned
//!    offsets anywhere in the image (metadata, file data and free space alike).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Bumped whenever the generator's output changes: cached images of another version
/// are made again.
const VERSION: u32 = 2;
const UUID: &str = "5e1f0000-0000-4000-8000-00000000f001";
const HASH_SEED: &str = "5e1f0000-0000-4000-8000-00000000f002";
/// 2023-11-14, the clock of every inode and superblock field mkfs and debugfs write.
const FAKE_TIME: &str = "1700000000";
/// Access and modification time of every generated file (2100-01-01, which relatime
/// never updates, so reading the tree cannot change it).
const FILE_TIME: u64 = 4_102_444_800;

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub image_mb: u64,
    pub data_mb: u64,
    pub seed: u64,
}

impl Spec {
    /// The size the tests and the demo use: a 256 MiB image with 150 MiB of files.
    pub const SMALL: Spec = Spec {
        image_mb: 256,
        data_mb: 150,
        seed: 20240601,
    };
    /// The benchmark size: 2 GiB with 1200 MiB of files.
    pub const BENCH: Spec = Spec {
        image_mb: 2048,
        data_mb: 1200,
        seed: 20240601,
    };

    fn marker(&self) -> String {
        format!(
            "ferry sample disk v{VERSION} image_mb={} data_mb={} seed={}\n",
            self.image_mb, self.data_mb, self.seed
        )
    }
}

/// The two images in `dir`.
#[derive(Debug, Clone)]
pub struct SampleDisk {
    pub base: PathBuf,
    pub changed: PathBuf,
}

/// `dir/disk.img` and `dir/disk-changed.img` for `spec`, made unless `dir` already
/// holds them for the same spec and generator version. Callers that may race hold a
/// lock around this (see `disk::workload`).
pub fn ensure(dir: &Path, spec: Spec) -> Result<SampleDisk> {
    let out = SampleDisk {
        base: dir.join("disk.img"),
        changed: dir.join("disk-changed.img"),
    };
    let marker = dir.join("sample.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(spec.marker().as_str())
        && out.base.exists()
        && out.changed.exists()
    {
        return Ok(out);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(&marker);
    make(dir, spec, &out)?;
    std::fs::write(&marker, spec.marker())?;
    Ok(out)
}

fn make(dir: &Path, spec: Spec, out: &SampleDisk) -> Result<()> {
    if spec.data_mb * 10 > spec.image_mb * 8 {
        bail!(
            "{} MiB of files do not fit a {} MiB image with room to spare",
            spec.data_mb,
            spec.image_mb
        );
    }
    let tree = dir.join("tree");
    let _ = std::fs::remove_dir_all(&tree);
    let files = Tree::generate(&tree, spec)?;

    let sparse = dir.join("disk.sparse");
    let _ = std::fs::remove_file(&sparse);
    std::fs::File::create(&sparse)?.set_len(spec.image_mb << 20)?;
    e2fs(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-U", UUID, "-L", "ferry-sample", "-E"])
            .arg(format!(
                "hash_seed={HASH_SEED},lazy_itable_init=0,lazy_journal_init=0"
            ))
            .arg("-d")
            .arg(&tree)
            .arg(&sparse),
    )?;
    // mkfs copies each inode's change time from the tree, and no call can set that on
    // the host: set it (and its nanoseconds) in the image instead.
    let mut sif = String::new();
    for rel in std::iter::once(String::new()).chain(entries(&tree)?) {
        sif += &format!("sif /{rel} ctime @{FAKE_TIME}\nsif /{rel} ctime_extra 0\n");
    }
    let script = dir.join("ctime.cmds");
    std::fs::write(&script, sif)?;
    e2fs(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&script)
            .arg(&sparse),
    )?;
    std::fs::remove_file(&script)?;
    // A captured block device is not sparse: every byte is written.
    copy_dense(&sparse, &out.base)?;
    std::fs::remove_file(&sparse)?;
    std::fs::remove_dir_all(&tree)?;

    copy_dense(&out.base, &out.changed)?;
    day_of_changes(dir, spec, &files, &out.changed)
}

/// Runs an e2fsprogs command with the fixed clock; fails with its stderr.
fn e2fs(cmd: &mut Command) -> Result<std::process::Output> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        .output()
        .with_context(|| format!("running {name} (install e2fsprogs)"))?;
    if !out.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

fn copy_dense(from: &Path, to: &Path) -> Result<()> {
    let mut r = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut w = std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
    }
    w.sync_all()?;
    Ok(())
}

/// The generated tree: every file's path (relative, `/`-separated) and size, in order.
struct Tree {
    binaries: Vec<(String, u64)>,
}

/// What kind of file, which decides its content.
#[derive(Clone, Copy)]
enum Kind {
    Config,
    Doc,
    Log,
    Source,
    Binary,
    Media,
}

const WORDS: &[&str] = &[
    "server",
    "request",
    "client",
    "session",
    "cache",
    "backend",
    "timeout",
    "retry",
    "database",
    "query",
    "index",
    "table",
    "user",
    "login",
    "token",
    "config",
    "listen",
    "port",
    "address",
    "worker",
    "thread",
    "queue",
    "message",
    "error",
    "warning",
    "info",
    "debug",
    "module",
    "service",
    "network",
    "interface",
    "route",
    "packet",
    "buffer",
    "memory",
    "disk",
    "volume",
    "snapshot",
    "backup",
    "restore",
    "mount",
    "file",
    "path",
    "directory",
    "permission",
    "owner",
    "group",
    "process",
    "signal",
    "status",
    "health",
    "check",
    "enable",
    "disable",
    "default",
    "value",
    "option",
    "version",
    "update",
    "install",
    "package",
    "library",
    "function",
    "return",
    "struct",
    "const",
    "static",
    "public",
    "private",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "with",
    "on",
];

/// Between `n.start` and `n.end - 1` words, space-separated.
fn words(rng: &mut StdRng, n: std::ops::Range<usize>, out: &mut Vec<u8>) {
    let n = rng.random_range(n);
    for i in 0..n {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
    }
}

/// `len` bytes of a file of `kind`, from `rng`.
fn content(kind: Kind, len: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut b = Vec::with_capacity(len + 256);
    match kind {
        Kind::Config => {
            while b.len() < len {
                match rng.random_range(0..10) {
                    0 => {
                        b.extend_from_slice(b"\n[");
                        words(rng, 1..2, &mut b);
                        b.extend_from_slice(b"]\n");
                    }
                    1 => {
                        b.extend_from_slice(b"# ");
                        words(rng, 4..12, &mut b);
                        b.push(b'\n');
                    }
                    _ => {
                        words(rng, 1..2, &mut b);
                        b.push(b'_');
                        words(rng, 1..2, &mut b);
                        let v: u32 = rng.random_range(0..65536);
                        b.extend_from_slice(format!(" = {v}\n").as_bytes());
                    }
                }
            }
        }
        Kind::Doc => {
            while b.len() < len {
                words(rng, 6..16, &mut b);
                b.extend_from_slice(if rng.random_range(0..6) == 0 {
                    b".\n\n"
                } else {
                    b". "
                });
            }
        }
        Kind::Log => {
            let mut t = 1_700_000_000u64 + rng.random_range(0..86_400);
            while b.len() < len {
                t += rng.random_range(0..4);
                let level =
                    ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"][rng.random_range(0..6)];
                b.extend_from_slice(
                    format!("{t} {level} app[{}]: ", rng.random_range(1000..10000)).as_bytes(),
                );
                words(rng, 3..9, &mut b);
                b.extend_from_slice(
                    format!(
                        " id={:08x} latency={}ms\n",
                        rng.next_u32(),
                        rng.random_range(1..900)
                    )
                    .as_bytes(),
                );
            }
        }
        Kind::Source => {
            let mut depth = 0usize;
            while b.len() < len {
                b.extend(std::iter::repeat_n(b' ', depth * 4));
                match rng.random_range(0..8) {
                    0 if depth < 4 => {
                        b.extend_from_slice(b"fn ");
                        words(rng, 1..2, &mut b);
                        b.extend_from_slice(b"_");
                        words(rng, 1..2, &mut b);
                        b.extend_from_slice(b"(value: u64) -> Result<(), Error> {\n");
                        depth += 1;
                    }
                    1 if depth > 0 => {
                        b.extend_from_slice(b"}\n");
                        depth -= 1;
                    }
                    _ => {
                        b.extend_from_slice(b"let ");
                        words(rng, 1..2, &mut b);
                        b.extend_from_slice(b" = ");
                        words(rng, 1..2, &mut b);
                        b.extend_from_slice(
                            format!(".get({});\n", rng.random_range(0..64)).as_bytes(),
                        );
                    }
                }
            }
        }
        Kind::Binary => {
            // A header, then sections: code (bytes from a small alphabet of opcodes),
            // a string table, zero padding, and a block of constants (random).
            b.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
            b.extend(std::iter::repeat_n(0u8, 56));
            let opcodes: Vec<u8> = (0..48).map(|_| rng.random()).collect();
            while b.len() < len {
                match rng.random_range(0..10) {
                    0..=5 => {
                        for _ in 0..rng.random_range(4096..32768) {
                            b.push(opcodes[rng.random_range(0..opcodes.len())]);
                        }
                    }
                    6 | 7 => {
                        for _ in 0..rng.random_range(64..512) {
                            words(rng, 1..2, &mut b);
                            b.push(0);
                        }
                    }
                    8 => b.extend(std::iter::repeat_n(0u8, rng.random_range(512..8192))),
                    _ => {
                        let start = b.len();
                        b.resize(start + rng.random_range(1024..16384), 0);
                        rng.fill_bytes(&mut b[start..]);
                    }
                }
            }
        }
        Kind::Media => {
            b.resize(len, 0);
            rng.fill_bytes(&mut b);
        }
    }
    b.truncate(len);
    b
}

/// Where files of each kind go, their extension and their size range.
const LAYOUT: &[(Kind, &str, &str, u64, u64)] = &[
    (Kind::Config, "etc/app", "conf", 512, 16 << 10),
    (Kind::Doc, "usr/share/doc", "txt", 2 << 10, 128 << 10),
    (Kind::Log, "var/log", "log", 16 << 10, 1 << 20),
    (Kind::Source, "usr/src/app", "rs", 2 << 10, 96 << 10),
    (Kind::Binary, "usr/bin", "", 64 << 10, 4 << 20),
    (Kind::Binary, "usr/lib", "so", 32 << 10, 3 << 20),
    (Kind::Media, "srv/www/static", "jpg", 16 << 10, 2 << 20),
];

/// Shares of the data, per entry of [`LAYOUT`], in percent.
const SHARES: &[u64] = &[3, 12, 10, 10, 30, 20, 15];

impl Tree {
    fn generate(root: &Path, spec: Spec) -> Result<Tree> {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let total = spec.data_mb << 20;
        let mut binaries = Vec::new();
        let mut written: Vec<PathBuf> = Vec::new();
        for (i, &(kind, dir, ext, min, max)) in LAYOUT.iter().enumerate() {
            let budget = total * SHARES[i] / 100;
            let mut used = 0;
            let mut n = 0;
            while used < budget {
                let size = rng.random_range(min..=max).min(budget - used).max(1);
                let sub = format!("{dir}/{}", WORDS[n % 16]);
                let name = match ext {
                    "" => format!("{}-{n}", WORDS[rng.random_range(0..WORDS.len())]),
                    e => format!("{}-{n}.{e}", WORDS[rng.random_range(0..WORDS.len())]),
                };
                let rel = format!("{sub}/{name}");
                let path = root.join(&rel);
                let mut file_rng = StdRng::seed_from_u64(rng.next_u64());
                // One library in ten is a copy of one already written (bundled twice).
                let data = match (kind, written.len()) {
                    (Kind::Binary, w) if dir == "usr/lib" && w > 0 && n % 10 == 9 => {
                        std::fs::read(&written[file_rng.random_range(0..w)])?
                    }
                    _ => content(kind, size as usize, &mut file_rng),
                };
                std::fs::create_dir_all(path.parent().unwrap_or(root))?;
                std::fs::write(&path, &data)
                    .with_context(|| format!("writing {}", path.display()))?;
                if matches!(kind, Kind::Binary)
                    && dir == "usr/bin"
                    && (1 << 20..=4 << 20).contains(&(data.len() as u64))
                {
                    binaries.push((rel, data.len() as u64));
                }
                if matches!(kind, Kind::Binary) {
                    written.push(path);
                }
                used += data.len() as u64;
                n += 1;
            }
        }
        fix_times(root)?;
        Ok(Tree { binaries })
    }
}

/// Every file and directory below `root`, relative, `/`-separated, sorted.
fn entries(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let rel = p.strip_prefix(root)?.to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            }
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Fixed times and modes on everything below `root`, so that mkfs copies the same
/// inodes on every machine.
fn fix_times(root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(FILE_TIME);
    let times = std::fs::FileTimes::new().set_accessed(t).set_modified(t);
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mode = if p.to_string_lossy().contains("/bin/") {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
                std::fs::File::options()
                    .write(true)
                    .open(&p)?
                    .set_times(times)?;
            }
        }
        dirs.push(d);
    }
    // Directories last: writing their entries above changed their times.
    for d in dirs {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        std::fs::File::open(&d)?.set_times(times)?;
    }
    Ok(())
}

fn day_of_changes(dir: &Path, spec: Spec, tree: &Tree, image: &Path) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0xda7);
    let chg = dir.join("chg");
    let _ = std::fs::remove_dir_all(&chg);
    std::fs::create_dir_all(&chg)?;
    let mut cmds = String::from("mkdir /var/log/app\n");
    for i in 0..8 {
        let p = chg.join(format!("app{i}.log"));
        std::fs::write(&p, content(Kind::Log, 512 << 10, &mut rng))?;
        cmds += &format!("write {} /var/log/app/app{i}.log\n", p.display());
    }
    if tree.binaries.len() < 3 {
        bail!("the sample tree has too few binaries of 1-4 MiB to update");
    }
    for (j, k) in rand::seq::index::sample(&mut rng, tree.binaries.len(), 3)
        .into_iter()
        .enumerate()
    {
        let (rel, _) = &tree.binaries[k];
        let mut data = debugfs_cat(image, rel)?;
        let off = (data.len() / 2) & !4095;
        let end = (off + 4096).min(data.len());
        rng.fill_bytes(&mut data[off..end]);
        let p = chg.join(format!("bin{j}"));
        std::fs::write(&p, &data)?;
        cmds += &format!("rm /{rel}\nwrite {} /{rel}\n", p.display());
    }
    let script = chg.join("debugfs.cmds");
    std::fs::write(&script, cmds)?;
    e2fs(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&script)
            .arg(image),
    )?;
    std::fs::remove_dir_all(&chg)?;

    let overwrites = 200 * spec.image_mb / 2048;
    let mut f = std::fs::OpenOptions::new().write(true).open(image)?;
    let size = f.metadata()?.len();
    let mut buf = vec![0u8; 100 << 10];
    for _ in 0..overwrites {
        let off = rng.random_range(0..size - buf.len() as u64) & !4095;
        rng.fill_bytes(&mut buf);
        f.seek(SeekFrom::Start(off))?;
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    Ok(())
}

/// A file's bytes as the image holds them.
fn debugfs_cat(image: &Path, rel: &str) -> Result<Vec<u8>> {
    let out = e2fs(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat /{rel}"))
            .arg(image),
    )?;
    Ok(out.stdout)
}
