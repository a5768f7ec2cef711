//! The source host's part of a changed-blocks capture, done with what the host already
//! has (nothing is installed): hashing its disk in fixed blocks, and sending ranges of
//! it. Python 3's `hashlib` (OpenSSL's SHA-256, two threads) where the host has it;
//! otherwise GNU coreutils (`dd`, `split`, `sha256sum`); otherwise nothing, and the
//! capture reads the whole disk.

use std::io::Read;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ferry_core::blockmap::{BlockMap, Digest};
use ferry_core::cbt::{Changes, Compare};
use serde::Serialize;

use super::changed::RangeFetch;
use crate::host::Host;
use crate::ssh::{quote, SshSession};

const HASH_PY: &str = include_str!("host_tools/hash.py");
const RANGES_PY: &str = include_str!("host_tools/ranges.py");
const HASH_SH: &str = include_str!("host_tools/hash.sh");
const RANGES_SH: &str = include_str!("host_tools/ranges.sh");

/// How a host hashes its disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hasher {
    /// A Python 3 interpreter (its path on the host).
    Python(String),
    Coreutils,
}

impl HasherChoice {
    pub fn name(&self) -> &'static str {
        match self {
            HasherChoice::Auto => "auto",
            HasherChoice::Python3 => "python3",
            HasherChoice::Coreutils => "coreutils",
        }
    }
}

impl Hasher {
    pub fn name(&self) -> &'static str {
        match self {
            Hasher::Python(_) => "python3",
            Hasher::Coreutils => "coreutils",
        }
    }
}

/// Which tools to look for: `auto` takes the first of Python 3 and coreutils the host
/// has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HasherChoice {
    #[default]
    Auto,
    Python3,
    Coreutils,
}

/// What the probe prints: a line `python PATH` and a line `coreutils` for what the host
/// has.
const PROBE: &str = r#"for p in python3 /usr/libexec/platform-python; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import hashlib, os, sys, concurrent.futures' >/dev/null 2>&1; then
    echo "python $(command -v "$p")"; break
  fi
done
if command -v dd >/dev/null 2>&1 && command -v split >/dev/null 2>&1 && command -v sha256sum >/dev/null 2>&1 && [ -d /dev/shm ]; then
  echo coreutils
fi"#;

/// The tools the host has for hashing, as `choice` allows; `None` if it has none.
pub async fn probe(session: &SshSession, choice: HasherChoice) -> Option<Hasher> {
    let (status, out, _) = session.run(PROBE).await.ok()?;
    if status != 0 {
        return None;
    }
    let out = String::from_utf8_lossy(&out);
    let mut python = None;
    let mut coreutils = false;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("python ") {
            python = Some(p.trim().to_string());
        } else if line.trim() == "coreutils" {
            coreutils = true;
        }
    }
    match choice {
        HasherChoice::Auto => python
            .map(Hasher::Python)
            .or(coreutils.then_some(Hasher::Coreutils)),
        HasherChoice::Python3 => python.map(Hasher::Python),
        HasherChoice::Coreutils => coreutils.then_some(Hasher::Coreutils),
    }
}

/// The host's hashes of `device`, compared with `parent`'s as they arrive: the changed
/// blocks, and the bytes the host sent.
pub async fn changes(
    session: &SshSession,
    h: &Host,
    hasher: &Hasher,
    device: &str,
    parent: Arc<BlockMap>,
) -> Result<(Changes, u64)> {
    let bs = parent.block_size;
    let cmd = match hasher {
        Hasher::Python(py) => format!("{} -c {} {} {bs}", quote(py), quote(HASH_PY), quote(device)),
        Hasher::Coreutils => {
            let segments = parent.image_size.div_ceil(u64::from(bs) * 64);
            format!(
                "sh -c {} sh {} {bs} {segments}",
                quote(HASH_SH),
                quote(device)
            )
        }
    };
    let stream = session.read_stream(&h.privileged(&cmd)).await?;
    let raw = matches!(hasher, Hasher::Python(_));
    let host = h.name.clone();
    tokio::task::spawn_blocking(move || compare(stream, raw, &parent))
        .await?
        .with_context(|| format!("host {host}: hashing {device:?} in blocks"))
}

/// Reads the host's hashes (raw 32 bytes each, or a hex line each) and compares them.
fn compare(mut stream: impl Read, raw: bool, parent: &BlockMap) -> Result<(Changes, u64)> {
    let mut cmp = Compare::new(parent);
    let rec = if raw { 32 } else { 65 };
    let mut buf = vec![0u8; rec * 4096];
    let (mut have, mut total) = (0usize, 0u64);
    loop {
        let n = stream.read(&mut buf[have..])?;
        if n == 0 {
            break;
        }
        have += n;
        total += n as u64;
        let whole = have / rec * rec;
        for r in buf[..whole].chunks_exact(rec) {
            let d = if raw { digest(r) } else { hex_digest(r)? };
            if !cmp.push(d) {
                bail!("the host sent more block hashes than the disk has blocks");
            }
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    if have != 0 {
        bail!("the host's block hashes ended in the middle of one");
    }
    let changes = cmp
        .finish()
        .context("the host sent fewer block hashes than the disk has blocks")?;
    Ok((changes, total))
}

fn digest(r: &[u8]) -> Digest {
    let mut d = [0u8; 32];
    d.copy_from_slice(r);
    d
}

fn hex_digest(line: &[u8]) -> Result<Digest> {
    let mut d = [0u8; 32];
    if line[64] != b'\n' {
        bail!("a block hash line from the host is not 64 hex digits");
    }
    hex::decode_to_slice(&line[..64], &mut d).context("a block hash from the host")?;
    Ok(d)
}

/// Ranges of a host's disk over SSH: one command a round, the list on its stdin.
pub struct SshRanges {
    pub session: Arc<SshSession>,
    pub cmd: String,
    pub rt: tokio::runtime::Handle,
    /// Bytes of range lists sent.
    pub sent: Arc<AtomicU64>,
}

impl SshRanges {
    pub fn new(session: Arc<SshSession>, h: &Host, hasher: &Hasher, device: &str) -> Self {
        let cmd = match hasher {
            Hasher::Python(py) => {
                format!("{} -c {} {}", quote(py), quote(RANGES_PY), quote(device))
            }
            Hasher::Coreutils => format!("sh -c {} sh {}", quote(RANGES_SH), quote(device)),
        };
        SshRanges {
            session,
            cmd: h.privileged(&cmd),
            rt: tokio::runtime::Handle::current(),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl RangeFetch for SshRanges {
    fn open(&mut self, ranges: &[Range<u64>]) -> Result<Box<dyn Read + Send>> {
        let list: String = ranges
            .iter()
            .map(|r| format!("{} {}\n", r.start, r.end - r.start))
            .collect();
        self.sent.fetch_add(list.len() as u64, Ordering::Relaxed);
        let (session, cmd) = (self.session.clone(), self.cmd.clone());
        let reader = self.rt.block_on(async move {
            session
                .read_stream_with_input(&cmd, Bytes::from(list))
                .await
        })?;
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::blockmap::BlockHash;

    fn parent(n: usize) -> BlockMap {
        let mut m = BlockMap::empty(1024, n as u64 * 1024);
        for (i, b) in m.blocks.iter_mut().enumerate() {
            *b = BlockHash {
                sha256: [i as u8; 32],
                cv: [0; 32],
            };
        }
        m
    }

    #[test]
    fn host_hashes_raw_or_hex_give_the_changed_blocks() {
        let p = parent(3);
        let mut raw = Vec::new();
        for d in [[0u8; 32], [9; 32], [2; 32]] {
            raw.extend_from_slice(&d);
        }
        let (c, n) = compare(&raw[..], true, &p).unwrap();
        assert_eq!(c, vec![(1, [9; 32])]);
        assert_eq!(n, 96);
        let hex: String = [[0u8; 32], [1; 32], [7; 32]]
            .iter()
            .map(|d| format!("{}\n", hex::encode(d)))
            .collect();
        let (c, _) = compare(hex.as_bytes(), false, &p).unwrap();
        assert_eq!(c, vec![(2, [7; 32])]);
    }

    #[test]
    fn too_few_too_many_or_torn_hashes_are_errors() {
        let p = parent(2);
        assert!(compare(&[0u8; 32][..], true, &p).is_err());
        assert!(compare(&[0u8; 96][..], true, &p).is_err());
        assert!(compare(&[0u8; 40][..], true, &p).is_err());
        assert!(compare(&b"zz\n"[..], false, &p).is_err());
    }
}
