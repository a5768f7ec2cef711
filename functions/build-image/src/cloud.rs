//! The AWS side of a build: the clients, and every call the steps make, shaped as the
//! steps speak (a snapshot to start, a block to put, an image to register) so that no
//! SDK type reaches them; among them the look-ups that make every step idempotent (a
//! snapshot found by its point tag, an AMI found by its name).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAlgorithm, Tag as EbsTag};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, Filter, ResourceType,
    Tag, TagSpecification,
};
use base64::Engine;
use ferry_core::keys;
use ferry_core::manifest::BootMode;
use ferry_fn::{sdk_error, StepError};
use sha2::{Digest, Sha256};

pub use ferry_core::tags::ATTEMPT as ATTEMPT_TAG;
pub use ferry_core::tags::HOST as HOST_TAG;
/// On a snapshot: the point whose snapshot it names as parent, or [`NO_PARENT`]. A
/// later try that finds the snapshot unfinished writes the same blocks again.
pub use ferry_core::tags::PARENT_POINT as PARENT_TAG;
pub use ferry_core::tags::POINT as POINT_TAG;
pub const NO_PARENT: &str = "none";
/// Block indexes per Map item unless `FERRY_IMAGE_RANGE_BLOCKS` says otherwise: 2 GiB of
/// image, a few minutes of writing at most, far inside one 15-minute invocation.
pub const DEFAULT_RANGE_BLOCKS: u64 = 4096;

pub struct Cloud {
    pub ebs: aws_sdk_ebs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    /// The records table; `None` builds images without recording them.
    pub table: Option<String>,
    pub range_blocks: u64,
}

impl Cloud {
    pub fn new(cfg: &aws_config::SdkConfig, table: Option<String>, range_blocks: u64) -> Self {
        Cloud {
            ebs: ferry_aws::clients::ebs(cfg),
            ec2: ferry_aws::clients::ec2(cfg),
            ddb: ferry_aws::clients::dynamodb(cfg),
            table,
            range_blocks,
        }
    }
}

pub fn image_name(host: &str, point: &str) -> String {
    format!("ferry-{host}-{point}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSnapshot {
    pub id: String,
    pub completed: bool,
    /// From [`PARENT_TAG`].
    pub parent_point: Option<String>,
}

/// This account's snapshots tagged with `point` (in `status`, when given).
async fn snapshots_of(
    c: &Cloud,
    point: &str,
    status: Option<&str>,
) -> Result<aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput, StepError> {
    let mut filters = vec![Filter::builder()
        .name(format!("tag:{POINT_TAG}"))
        .values(point)
        .build()];
    if let Some(s) = status {
        filters.push(Filter::builder().name("status").values(s).build());
    }
    c.ec2
        .describe_snapshots()
        .owner_ids("self")
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeSnapshots", point, e))
}

/// The snapshot tagged with `point`: a completed one (any attempt's), else one that
/// `attempt` started and that is still being written (a retried step; rewriting its
/// blocks is harmless). Another attempt's unfinished snapshot is never reused: it may be
/// dead (a failed build), and EBS would refuse its blocks.
pub async fn find_snapshot(
    c: &Cloud,
    point: &str,
    attempt: &str,
) -> Result<Option<FoundSnapshot>, StepError> {
    let out = snapshots_of(c, point, None).await?;
    let tag = |s: &aws_sdk_ec2::types::Snapshot, key: &str| {
        s.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    let pick = |want: &str| {
        out.snapshots()
            .iter()
            .filter(|s| want == "completed" || tag(s, ATTEMPT_TAG).as_deref() == Some(attempt))
            .find(|s| s.state().map(|st| st.as_str()) == Some(want))
            .and_then(|s| {
                let parent = tag(s, PARENT_TAG).filter(|v| v != NO_PARENT);
                Some(FoundSnapshot {
                    id: s.snapshot_id()?.to_string(),
                    completed: want == "completed",
                    parent_point: parent,
                })
            })
    };
    Ok(pick("completed").or_else(|| pick("pending")))
}

/// Seconds a build lock lasts unless refreshed: each step refreshes it, and a `write`
/// of one range takes minutes at most.
pub const LOCK_TTL_S: i64 = 15 * 60;

/// The lock on builds of `host`'s `point`, held by `attempt`; `None` without a table.
pub fn build_lock<'a>(
    c: &'a Cloud,
    host: &str,
    point: &str,
    attempt: &'a str,
) -> Option<ferry_aws::lock::Lock<'a>> {
    Some(ferry_aws::lock::Lock {
        client: &c.ddb,
        table: c.table.as_deref()?,
        key: keys::build_lock(host, point),
        holder: attempt,
        ttl_s: LOCK_TTL_S,
    })
}

/// Deletes the unfinished snapshots of `point` that other attempts started (left by
/// builds that died without cleaning up). Only with the point's build lock held.
pub async fn delete_stale(c: &Cloud, point: &str, attempt: &str) -> Result<(), StepError> {
    let out = snapshots_of(c, point, Some("pending")).await?;
    for s in out.snapshots() {
        let theirs = s
            .tags()
            .iter()
            .find(|t| t.key() == Some(ATTEMPT_TAG))
            .and_then(|t| t.value());
        if theirs == Some(attempt) {
            continue;
        }
        if let Some(sid) = s.snapshot_id() {
            tracing::info!(
                snapshot = sid,
                point,
                "deleting an unfinished snapshot of an earlier attempt"
            );
            delete_unfinished(c, sid).await?;
        }
    }
    Ok(())
}

/// The AMI registered for `host`'s `point`.
pub async fn find_image(c: &Cloud, host: &str, point: &str) -> Result<Option<String>, StepError> {
    let name = image_name(host, point);
    let found = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(&name).build())
        .send()
        .await
        .map_err(|e| sdk_error("DescribeImages", &name, e))?;
    Ok(found
        .images()
        .first()
        .and_then(|i| i.image_id())
        .map(str::to_string))
}

/// Deletes a snapshot that was never completed; a completed one is kept (a later try
/// registers it), a missing one is already gone.
pub async fn delete_unfinished(c: &Cloud, sid: &str) -> Result<bool, StepError> {
    let out = c.ec2.describe_snapshots().snapshot_ids(sid).send().await;
    let snap = match out {
        Ok(o) => o.snapshots().first().cloned(),
        Err(e) => {
            let f = ferry_aws::sdk_failure(&e);
            if f.is_not_found() {
                return Ok(false);
            }
            return Err(sdk_error("DescribeSnapshots", sid, e));
        }
    };
    let Some(snap) = snap else {
        return Ok(false);
    };
    if snap.state().map(|s| s.as_str()) == Some("completed") {
        return Ok(false);
    }
    c.ec2
        .delete_snapshot()
        .snapshot_id(sid)
        .send()
        .await
        .map_err(|e| sdk_error("DeleteSnapshot", sid, e))?;
    Ok(true)
}

/// Marks the point's record as built, naming its snapshot and image. A point that was
/// captured without a records table has no record to mark; that is not an error.
pub async fn record_image(
    c: &Cloud,
    host: &str,
    point: &str,
    snapshot_id: &str,
    image_id: &str,
) -> Result<(), StepError> {
    let Some(table) = &c.table else {
        return Ok(());
    };
    let what = format!("point {point} of host {host} in table {table}");
    let key = keys::point(host, point);
    let r = c
        .ddb
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.pk))
        .key("sk", AttributeValue::S(key.sk))
        .condition_expression("attribute_exists(pk)")
        .update_expression("SET #state = :s, snapshot_id = :snap, image_id = :ami")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":s", AttributeValue::S("image-built".into()))
        .expression_attribute_values(":snap", AttributeValue::S(snapshot_id.into()))
        .expression_attribute_values(":ami", AttributeValue::S(image_id.into()))
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if ferry_aws::sdk_failure(&e).is("ConditionalCheckFailedException") => {
            tracing::warn!(host, point, "no record of this point; image not recorded");
            Ok(())
        }
        Err(e) => Err(sdk_error("UpdateItem", &what, e)),
    }
}

/// A snapshot to start for a point.
pub struct NewSnapshot<'a> {
    pub point: &'a str,
    pub host: &'a str,
    /// The build attempt: with the point, it makes the idempotency token.
    pub attempt: &'a str,
    pub size_gib: i64,
    /// (parent snapshot, parent point): the new snapshot is its child.
    pub parent: Option<(&'a str, &'a str)>,
}

/// StartSnapshot's idempotency token: the same for every retry of one attempt's call
/// (EBS answers it with the snapshot it started), new for every attempt (a build after
/// a failed one must not get the failed one's snapshot back). At most 64 characters.
pub fn client_token(point: &str, attempt: &str) -> String {
    let id = ferry_core::ChunkId::of(format!("{point}\n{attempt}").as_bytes());
    id.to_hex()[..48].to_string()
}

/// Starts the point's snapshot with the EBS direct APIs, tagged with its point, host,
/// attempt and parent point; returns its id.
pub async fn start_snapshot(c: &Cloud, s: &NewSnapshot<'_>) -> Result<String, StepError> {
    let tag = |k: &str, v: &str| EbsTag::builder().key(k).value(v).build();
    let started = c
        .ebs
        .start_snapshot()
        .volume_size(s.size_gib)
        .set_parent_snapshot_id(s.parent.map(|(sid, _)| sid.to_string()))
        .client_token(client_token(s.point, s.attempt))
        .timeout(60)
        .description(format!("Ferry point {} of host {}", s.point, s.host))
        .tags(tag(POINT_TAG, s.point))
        .tags(tag(HOST_TAG, s.host))
        .tags(tag(ATTEMPT_TAG, s.attempt))
        .tags(tag(
            PARENT_TAG,
            s.parent.map(|(_, pp)| pp).unwrap_or(NO_PARENT),
        ))
        .send()
        .await
        .map_err(|e| sdk_error("StartSnapshot", s.point, e))?;
    started
        .snapshot_id()
        .map(str::to_string)
        .ok_or_else(|| StepError::Retryable("StartSnapshot returned no id".into()))
}

/// Writes one 512 KiB block with its SHA-256.
pub async fn put_block(c: &Cloud, sid: &str, index: u64, data: Vec<u8>) -> Result<(), StepError> {
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

pub async fn complete_snapshot(c: &Cloud, sid: &str, blocks_written: u64) -> Result<(), StepError> {
    c.ebs
        .complete_snapshot()
        .snapshot_id(sid)
        .changed_blocks_count(blocks_written as i32)
        .send()
        .await
        .map_err(|e| sdk_error("CompleteSnapshot", sid, e))?;
    Ok(())
}

/// An AMI to register on a point's snapshot.
pub struct NewImage<'a> {
    pub name: String,
    pub host: &'a str,
    pub point: &'a str,
    /// EC2's architecture name (`x86_64`, `arm64`, `i386`).
    pub arch: &'static str,
    /// `None`: EC2's default for the architecture.
    pub boot: Option<BootMode>,
    pub snapshot_id: &'a str,
}

/// Registers the AMI: root device `/dev/xvda` on the snapshot, ENA, tagged with its
/// point and host; returns its id.
pub async fn register_image(c: &Cloud, i: &NewImage<'_>) -> Result<String, StepError> {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let boot = i.boot.map(|b| match b {
        BootMode::Uefi => BootModeValues::Uefi,
        BootMode::LegacyBios => BootModeValues::LegacyBios,
    });
    let out = c
        .ec2
        .register_image()
        .name(&i.name)
        .description(format!("Ferry point {} of host {}", i.point, i.host))
        .architecture(ArchitectureValues::from(i.arch))
        .set_boot_mode(boot)
        .root_device_name("/dev/xvda")
        .virtualization_type("hvm")
        .ena_support(true)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(i.snapshot_id)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(tag(POINT_TAG, i.point))
                .tags(tag(HOST_TAG, i.host))
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error("RegisterImage", &i.name, e))?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| StepError::Retryable("RegisterImage returned no id".into()))
}
