//! Builds an EBS snapshot and an AMI from a recovery point.
//!
//! Idempotent: an AMI named after the point, or a completed snapshot tagged with it, is
//! found and reused instead of built again. When the point's parent already has a
//! snapshot, the new one names it as parent and writes only the 512 KiB blocks whose
//! content can differ, decided from the two manifests (`ferry_core::ebs`) and, for
//! those candidates, from the parent's bytes in the store (never the old snapshot); otherwise
//! every block that is not all zeros is written. Blocks are assembled in windows from
//! the store's packs, checked chunk by chunk, and written with bounded concurrency,
//! each with its SHA-256.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAlgorithm, Tag as EbsTag};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, Filter, ResourceType, Tag,
    TagSpecification,
};
use base64::Engine;
use ferry_core::ebs::{blocks, changed_blocks, BLOCK_SIZE};
use ferry_core::id::is_all_zero;
use ferry_core::manifest::{ChunkRef, Manifest};
use ferry_core::ChunkId;
use ferry_fn::{sdk_error, StepError};
use ferry_store::{RepoError, Repository};
use futures::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const POINT_TAG: &str = "ferry:point";
pub const HOST_TAG: &str = "ferry:host";
/// Blocks assembled at a time (16 MiB of memory).
const WINDOW_BLOCKS: usize = 32;
/// Concurrent PutSnapshotBlock calls (the EBS direct APIs allow many writers).
const PUT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildImageRequest {
    pub host: String,
    /// Default: the host's newest point.
    #[serde(default)]
    pub point: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildImageResult {
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    pub image_id: String,
    pub parent_snapshot_id: Option<String>,
    pub blocks_total: u64,
    pub blocks_written: u64,
    /// False when an earlier try had built them.
    pub built_now: bool,
}

pub struct Clients {
    pub ebs: aws_sdk_ebs::Client,
    pub ec2: aws_sdk_ec2::Client,
}

fn repo_error(e: RepoError) -> StepError {
    if e.is_retryable() {
        StepError::Retryable(e.to_string())
    } else {
        StepError::NonRetryable(e.to_string())
    }
}

pub fn image_name(host: &str, point: &str) -> String {
    format!("ferry-{host}-{point}")
}

pub async fn handle(
    c: &Clients,
    repo: &Repository,
    req: BuildImageRequest,
) -> Result<BuildImageResult, StepError> {
    let m = repo
        .resolve_point(&req.host, req.point.as_deref())
        .await
        .map_err(repo_error)?;
    let point = m.meta.point.clone();
    let total = m.meta.image_size.div_ceil(BLOCK_SIZE);
    let (snapshot_id, parent, written, built_now) = match find_snapshot(c, &point).await? {
        Some(id) => (id, None, 0, false),
        None => {
            let parent = match &m.meta.parent {
                Some(p) => match find_snapshot(c, p).await? {
                    Some(sid) => Some((
                        sid,
                        repo.read_point(&req.host, p).await.map_err(repo_error)?,
                    )),
                    None => None,
                },
                None => None,
            };
            let (sid, written) = write_snapshot(c, repo, &m, parent.as_ref()).await?;
            (sid, parent.map(|(s, _)| s), written, true)
        }
    };
    let image_id = register_image(c, &m, &snapshot_id).await?;
    Ok(BuildImageResult {
        host: req.host,
        point,
        snapshot_id,
        image_id,
        parent_snapshot_id: parent,
        blocks_total: total,
        blocks_written: written,
        built_now,
    })
}

/// A completed snapshot tagged with `point`.
async fn find_snapshot(c: &Clients, point: &str) -> Result<Option<String>, StepError> {
    let out = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{POINT_TAG}"))
                .values(point)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("DescribeSnapshots", point, e))?;
    Ok(out
        .snapshots()
        .iter()
        .find(|s| s.state().map(|st| st.as_str()) == Some("completed"))
        .and_then(|s| s.snapshot_id().map(str::to_string)))
}

async fn write_snapshot(
    c: &Clients,
    repo: &Repository,
    m: &Manifest,
    parent: Option<&(String, Manifest)>,
) -> Result<(String, u64), StepError> {
    let point = &m.meta.point;
    let to_write: Vec<u64> = match parent {
        Some((_, pm)) => changed_blocks(pm, m),
        None => blocks(m)
            .into_iter()
            .filter(|b| !b.zero)
            .map(|b| b.index)
            .collect(),
    };
    let gib = m.meta.image_size.div_ceil(1 << 30).max(1) as i64;
    let started = c
        .ebs
        .start_snapshot()
        .volume_size(gib)
        .set_parent_snapshot_id(parent.map(|(s, _)| s.clone()))
        .client_token(point)
        .description(format!("Ferry point {point} of host {}", m.meta.host))
        .tags(EbsTag::builder().key(POINT_TAG).value(point).build())
        .tags(EbsTag::builder().key(HOST_TAG).value(&m.meta.host).build())
        .send()
        .await
        .map_err(|e| sdk_error("StartSnapshot", point, e))?;
    let sid = started
        .snapshot_id()
        .ok_or_else(|| StepError::Retryable("StartSnapshot returned no id".into()))?
        .to_string();
    let placements: Vec<(u64, ChunkRef)> = m.offsets().collect();
    let index = repo.read_index().await.map_err(repo_error)?.index;
    let parent_placements: Option<Vec<(u64, ChunkRef)>> =
        parent.map(|(_, pm)| pm.offsets().collect());
    let mut written = 0u64;
    for window in to_write.chunks(WINDOW_BLOCKS) {
        let mut bufs = assemble(repo, &index, m, &placements, window).await?;
        match (parent, &parent_placements) {
            // A block whose chunks only brush it with zeros reads as zeros unwritten.
            (None, _) => bufs.retain(|_, data| !is_all_zero(data)),
            // The manifests say these blocks may differ; the parent's bytes, read from
            // the store (never from the old snapshot), say whether they do.
            (Some((_, pm)), Some(pp)) => {
                let old = assemble(repo, &index, pm, pp, window).await?;
                bufs.retain(|b, data| old.get(b) != Some(data));
            }
            (Some(_), None) => {}
        }
        written += bufs.len() as u64;
        stream::iter(bufs)
            .map(|(b, data)| put_block(c, &sid, b, data))
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
    }
    c.ebs
        .complete_snapshot()
        .snapshot_id(&sid)
        .changed_blocks_count(written as i32)
        .send()
        .await
        .map_err(|e| sdk_error("CompleteSnapshot", &sid, e))?;
    Ok((sid, written))
}

/// The bytes of blocks `window`, read from the store (each chunk checked on the way).
async fn assemble(
    repo: &Repository,
    index: &ferry_core::index::ChunkIndex,
    m: &Manifest,
    placements: &[(u64, ChunkRef)],
    window: &[u64],
) -> Result<BTreeMap<u64, Vec<u8>>, StepError> {
    let mut wanted: HashMap<ChunkId, Vec<u64>> = HashMap::new();
    for &b in window {
        let (start, end) = (
            b * BLOCK_SIZE,
            ((b + 1) * BLOCK_SIZE).min(m.meta.image_size),
        );
        let first = placements.partition_point(|(o, c)| o + u64::from(c.len) <= start);
        for (o, c) in placements[first..].iter().take_while(|(o, _)| *o < end) {
            let offs = wanted.entry(c.id).or_default();
            if !offs.contains(o) {
                offs.push(*o);
            }
        }
    }
    let bufs = Mutex::new(
        window
            .iter()
            .map(|&b| (b, vec![0u8; BLOCK_SIZE as usize]))
            .collect::<BTreeMap<_, _>>(),
    );
    let fetches = ferry_store::chunks::plan(index, wanted).map_err(repo_error)?;
    stream::iter(fetches)
        .map(|f| {
            let bufs = &bufs;
            async move {
                let data = repo
                    .read_pack_range(&f.pack, f.offset, f.len)
                    .await
                    .map_err(repo_error)?;
                ferry_store::chunks::open_blobs(&f, &data, |_, raw, offsets| {
                    let mut bufs = bufs
                        .lock()
                        .map_err(|_| RepoError::Zstd(std::io::Error::other("lock poisoned")))?;
                    for &at in offsets {
                        place(&mut bufs, at, &raw);
                    }
                    Ok::<_, RepoError>(())
                })
                .map_err(repo_error)
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    bufs.into_inner()
        .map_err(|_| StepError::Retryable("block buffers lock poisoned".into()))
}

/// Copies the parts of a chunk at image offset `at` that fall in the buffered blocks.
fn place(bufs: &mut BTreeMap<u64, Vec<u8>>, at: u64, raw: &[u8]) {
    let end = at + raw.len() as u64;
    for b in at / BLOCK_SIZE..=(end - 1) / BLOCK_SIZE {
        let Some(buf) = bufs.get_mut(&b) else {
            continue;
        };
        let (bs, be) = (b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
        let (s, e) = (at.max(bs), end.min(be));
        buf[(s - bs) as usize..(e - bs) as usize]
            .copy_from_slice(&raw[(s - at) as usize..(e - at) as usize]);
    }
}

async fn put_block(c: &Clients, sid: &str, index: u64, data: Vec<u8>) -> Result<(), StepError> {
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data));
    c.ebs
        .put_snapshot_block()
        .snapshot_id(sid)
        .block_index(index as i32)
        .data_length(data.len() as i32)
        .checksum(checksum)
        .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
        .block_data(ByteStream::from(data))
        .send()
        .await
        .map_err(|e| sdk_error("PutSnapshotBlock", &format!("{sid} block {index}"), e))?;
    Ok(())
}

async fn register_image(c: &Clients, m: &Manifest, sid: &str) -> Result<String, StepError> {
    let name = image_name(&m.meta.host, &m.meta.point);
    let found = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(&name).build())
        .send()
        .await
        .map_err(|e| sdk_error("DescribeImages", &name, e))?;
    if let Some(id) = found.images().first().and_then(|i| i.image_id()) {
        return Ok(id.to_string());
    }
    let out = c
        .ec2
        .register_image()
        .name(&name)
        .description(format!(
            "Ferry point {} of host {}",
            m.meta.point, m.meta.host
        ))
        .architecture(ArchitectureValues::X8664)
        .root_device_name("/dev/xvda")
        .virtualization_type("hvm")
        .ena_support(true)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(sid)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(Tag::builder().key(POINT_TAG).value(&m.meta.point).build())
                .tags(Tag::builder().key(HOST_TAG).value(&m.meta.host).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("RegisterImage", &name, e))?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| StepError::Retryable("RegisterImage returned no id".into()))
}
