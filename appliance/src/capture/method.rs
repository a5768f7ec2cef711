//! Full read or changed blocks: which one a capture over SSH takes, and the
//! changed-blocks read itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use ferry_core::blockmap::{BlockMap, BLOCK_SIZE};
use ferry_core::cbt::CbtError;
use ferry_core::index::ChunkIndex;
use ferry_core::manifest::{PointMeta, ReadMethod};
use ferry_store::repo::Repository;
use time::OffsetDateTime;

use super::changed::{self, ChangedStats, Plan};
use super::host_side::{self, Hasher, HasherChoice, SshRanges};
use super::pipeline::{self, Counters, PipelineResult};
use crate::host::{ChangedBlocks, Host, ReadPolicy};
use crate::progress::Progress;
use crate::ssh::SshSession;

/// How a capture read the disk, for its report and its point.
#[derive(Debug, Clone, Default)]
pub struct ReadInfo {
    pub method: ReadMethod,
    /// Disk bytes the appliance received.
    pub bytes_read: u64,
    pub bytes_transferred: u64,
    pub blocks_changed: Option<u64>,
    pub full_read_reason: Option<String>,
    /// The tools the host hashed with.
    pub hasher: Option<&'static str>,
    /// Changed-blocks reads: when the parent's line was last read in full.
    pub last_full_read: Option<OffsetDateTime>,
}

/// Why a capture must read the whole disk before asking the host anything; `None`:
/// try the changed blocks.
pub fn full_read_reason(
    policy: &ReadPolicy,
    parent: Option<&PointMeta>,
    parent_has_map: bool,
    disk_size: Option<u64>,
    now: OffsetDateTime,
) -> Option<String> {
    if policy.changed_blocks == ChangedBlocks::Off {
        return Some("changed_blocks = \"off\" for this host".into());
    }
    let Some(parent) = parent else {
        return Some("first capture of this host".into());
    };
    if !parent_has_map {
        return Some(format!(
            "the parent point {} has no block map (captured before block maps)",
            parent.point
        ));
    }
    let Some(size) = disk_size else {
        return Some("the host did not report the disk's size".into());
    };
    if size != parent.image_size {
        return Some(format!(
            "the disk's size changed from {} to {size} bytes",
            parent.image_size
        ));
    }
    if size <= u64::from(BLOCK_SIZE) {
        return Some("the disk is not larger than one block".into());
    }
    if let Some(every) = policy.full_every {
        let last = parent.full_read_at.unwrap_or(parent.created);
        let age = now - last;
        if age >= every {
            let age = Duration::from_secs(age.whole_seconds().max(0) as u64);
            return Some(format!(
                "the last full read was {} ago (full_every = {})",
                humantime::format_duration(age),
                humantime::format_duration(every)
            ));
        }
    }
    None
}

/// A changed-blocks read, ready to fetch.
pub struct Setup {
    plan: Plan,
    hasher: Hasher,
    last_full_read: OffsetDateTime,
    /// Bytes of block hashes the host sent.
    hash_bytes: u64,
}

/// Either the changed-blocks read to do, or why the whole disk is read.
pub enum Choice {
    Changed(Box<Setup>),
    Full(String),
}

/// Decides how to read `device` (the host's disk, or its snapshot) after `parent`, and
/// has the host hash it when the changed blocks can be read.
pub async fn choose(
    repo: &Repository,
    session: &SshSession,
    h: &Host,
    device: &str,
    parent: Option<&str>,
    disk_size: Option<u64>,
) -> Choice {
    // Nothing to read from the store when the answer does not depend on it.
    let Some(p) = parent.filter(|_| h.read.changed_blocks != ChangedBlocks::Off) else {
        let why = full_read_reason(&h.read, None, false, disk_size, OffsetDateTime::now_utc());
        return Choice::Full(why.unwrap_or_else(|| "no parent point".into()));
    };
    let manifest = match repo.read_point(&h.name, p).await {
        Ok(m) => m,
        Err(e) => return Choice::Full(format!("the parent point {p} cannot be read: {e}")),
    };
    let map = match repo.read_blocks(&h.name, p).await {
        Ok(m) => m,
        Err(e) => {
            return Choice::Full(format!(
                "the parent point {p}'s block map cannot be read: {e}"
            ))
        }
    };
    let now = OffsetDateTime::now_utc();
    let why = full_read_reason(&h.read, Some(&manifest.meta), map.is_some(), disk_size, now);
    if let Some(why) = why {
        return Choice::Full(why);
    }
    let Some(map) = map else {
        return Choice::Full(format!("the parent point {p} has no block map"));
    };
    if map.block_size != BLOCK_SIZE || map.image_size != manifest.meta.image_size {
        return Choice::Full(format!(
            "the parent's block map ({} byte blocks of {} bytes) does not fit this build or its point",
            map.block_size, map.image_size
        ));
    }
    let choice = match h.read.changed_blocks {
        ChangedBlocks::Python3 => HasherChoice::Python3,
        ChangedBlocks::Coreutils => HasherChoice::Coreutils,
        _ => HasherChoice::Auto,
    };
    let Some(hasher) = host_side::probe(session, choice).await else {
        return Choice::Full(match choice {
            HasherChoice::Auto => {
                "the host has neither Python 3 nor GNU coreutils' dd, split and sha256sum to hash its disk".into()
            }
            other => format!(
                "the host lacks the tools changed_blocks = \"{}\" names",
                other.name()
            ),
        });
    };
    let map = Arc::new(map);
    let (changes, hash_bytes) =
        match host_side::changes(session, h, &hasher, device, map.clone()).await {
            Ok(c) => c,
            Err(e) => return Choice::Full(format!("hashing on the host failed: {e:#}")),
        };
    let parent_map = Arc::try_unwrap(map).unwrap_or_else(|m| BlockMap::clone(&m));
    let last_full_read = manifest.meta.full_read_at.unwrap_or(manifest.meta.created);
    Choice::Changed(Box::new(Setup {
        last_full_read,
        plan: Plan {
            parent_chunks: manifest.chunks,
            parent_map,
            changes,
            params: repo.config.chunker,
            // Past a change, as many bytes as a chunk can have: the cuts after it meet
            // the parent's within that nearly always, in one stream.
            margin: u64::from(repo.config.chunker.max_size),
        },
        hasher,
        hash_bytes,
    }))
}

/// The changed-blocks read of `setup`.
#[allow(clippy::too_many_arguments)]
pub async fn read_changed(
    setup: Setup,
    session: Arc<SshSession>,
    h: &Host,
    device: &str,
    repo: Arc<Repository>,
    index: Arc<ChunkIndex>,
    counters: Arc<Counters>,
    progress: &Progress,
) -> Result<(PipelineResult, ReadInfo)> {
    let Setup {
        plan,
        hasher,
        last_full_read,
        hash_bytes,
    } = setup;
    let fetch = SshRanges::new(session, h, &hasher, device);
    let sent = fetch.sent.clone();
    let stats = Arc::new(Mutex::new(ChangedStats::default()));
    let ready = plan.ready()?;
    let bar = super::bar(progress, &h.name, Some(ready.first_round), &counters);
    let front = changed::front(ready, Box::new(fetch), counters.clone(), stats.clone());
    let r = pipeline::run_with(repo, index, counters, front).await;
    bar.finish();
    let r = r?;
    let s = stats.lock().map(|s| *s).unwrap_or_default();
    tracing::info!(
        host = %h.name,
        blocks_changed = s.blocks_changed,
        blocks_fetched = s.blocks_fetched,
        rounds = s.rounds,
        "changed blocks read"
    );
    let info = ReadInfo {
        method: ReadMethod::ChangedBlocks,
        bytes_read: s.bytes_fetched,
        bytes_transferred: s.bytes_fetched
            + hash_bytes
            + sent.load(std::sync::atomic::Ordering::Relaxed),
        blocks_changed: Some(s.blocks_changed),
        full_read_reason: None,
        hasher: Some(hasher.name()),
        last_full_read: Some(last_full_read),
    };
    Ok((r, info))
}

/// A block changed between the host's hashing and the read (a live disk without a
/// snapshot): the capture reads the whole disk instead.
pub fn changed_under_read(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<CbtError>(),
            Some(CbtError::ChangedUnderRead { .. })
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::manifest::{CaptureStats, Consistency};

    fn parent(created: OffsetDateTime, full: Option<OffsetDateTime>) -> PointMeta {
        PointMeta {
            point: "p1".into(),
            host: "web1".into(),
            disk: "/dev/sda".into(),
            created,
            image_size: 1 << 30,
            consistency: Consistency::Crash,
            image_blake3: String::new(),
            parent: None,
            stats: CaptureStats::default(),
            machine: None,
            full_read_at: full,
            converted: None,
        }
    }

    #[test]
    fn full_reads_are_taken_for_their_reasons_only() {
        let now = OffsetDateTime::now_utc();
        let p = parent(now - time::Duration::hours(1), None);
        let auto = ReadPolicy::default();
        let size = Some(1 << 30);
        assert_eq!(full_read_reason(&auto, Some(&p), true, size, now), None);
        let why = |policy: &ReadPolicy, p: Option<&PointMeta>, map: bool, size: Option<u64>| {
            full_read_reason(policy, p, map, size, now).unwrap()
        };
        assert!(why(&auto, None, false, size).contains("first capture"));
        assert!(why(&auto, Some(&p), false, size).contains("no block map"));
        assert!(why(&auto, Some(&p), true, Some(2 << 30)).contains("size changed"));
        assert!(why(&auto, Some(&p), true, None).contains("size"));
        let off = ReadPolicy {
            changed_blocks: ChangedBlocks::Off,
            ..ReadPolicy::default()
        };
        assert!(why(&off, Some(&p), true, size).contains("off"));
        // full_every counts from the last full read, not from the parent.
        let weekly = ReadPolicy {
            full_every: Some(Duration::from_secs(7 * 86400)),
            ..ReadPolicy::default()
        };
        assert_eq!(full_read_reason(&weekly, Some(&p), true, size, now), None);
        let old_full = parent(
            now - time::Duration::hours(1),
            Some(now - time::Duration::days(8)),
        );
        assert!(why(&weekly, Some(&old_full), true, size).contains("full_every = 7days"));
    }
}
