//! What the build-image steps take and return. The state machine
//! (`statemachines/build-image.asl.json`) calls `plan`, then one `write` per range in a
//! Map state, then `finish`; on failure `abandon` removes the unfinished snapshot. Its
//! own input is [`BuildImageInput`] (what `ferry image` and `capture --image` start it
//! with).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum BuildImageRequest {
    Plan(PlanRequest),
    Write(WriteRange),
    Finish(FinishRequest),
    Abandon(AbandonRequest),
}

/// The build-image state machine's input (what `ferry image` and `capture --image`
/// start it with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildImageInput {
    pub host: String,
    /// Default: the host's newest point.
    #[serde(default)]
    pub point: Option<String>,
}

/// The `plan` step's request: the execution's input and the execution's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub host: String,
    #[serde(default)]
    pub point: Option<String>,
    /// This build attempt (the execution's name): a snapshot started by an attempt is
    /// that attempt's own, so a retried step finds it and a new attempt after a failed
    /// one starts afresh instead of reusing a dead snapshot.
    pub attempt: String,
}

/// Blocks of range `range` (`range * range_blocks ..`, up to the image's end) of the
/// point's image into `snapshot_id`. The Map builds it from the plan and the item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRange {
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    /// The parent point whose snapshot `snapshot_id` names as parent: only blocks that
    /// differ from it are written.
    pub parent_point: Option<String>,
    pub range: u32,
    pub range_blocks: u64,
    /// The build attempt, which holds the point's build lock and refreshes it.
    pub attempt: String,
}

impl WriteRange {
    /// The block indexes `first..end` this range covers in an image of `blocks_total`.
    pub fn blocks(&self, blocks_total: u64) -> (u64, u64) {
        let first = u64::from(self.range) * self.range_blocks;
        (
            first.min(blocks_total),
            (first + self.range_blocks).min(blocks_total),
        )
    }
}

/// At most this many Map items, however large the image: ranges grow instead. With the
/// items (range numbers) and the Map's results (block counts) both in the execution's
/// state, this keeps it far below Step Functions' 256 KiB, up to EBS's 64 TiB.
pub const MAX_RANGES: u64 = 10_000;

/// Blocks per range for an image of `blocks_total`: `wanted`, or more when the image
/// would otherwise need more than [`MAX_RANGES`] ranges.
pub fn range_blocks(blocks_total: u64, wanted: u64) -> u64 {
    wanted.max(1).max(blocks_total.div_ceil(MAX_RANGES))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub host: String,
    pub point: String,
    /// The snapshot being built (or already built). `None` only when the AMI exists.
    pub snapshot_id: Option<String>,
    pub parent_snapshot_id: Option<String>,
    pub parent_point: Option<String>,
    pub image_id: Option<String>,
    pub blocks_total: u64,
    /// Blocks the ranges may write (before comparing bytes).
    pub blocks_planned: u64,
    pub range_blocks: u64,
    /// The Map's items: the numbers of the ranges that hold blocks to write.
    pub ranges: Vec<u32>,
    pub attempt: String,
}

impl Plan {
    /// The `write` request of one Map item, as the definition's `ItemSelector` makes it.
    pub fn write(&self, range: u32) -> Option<WriteRange> {
        Some(WriteRange {
            host: self.host.clone(),
            point: self.point.clone(),
            snapshot_id: self.snapshot_id.clone()?,
            parent_point: self.parent_point.clone(),
            range,
            range_blocks: self.range_blocks,
            attempt: self.attempt.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub blocks_written: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    pub host: String,
    pub point: String,
    pub attempt: String,
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub parent_snapshot_id: Option<String>,
    /// The Map's results: blocks written by each range.
    #[serde(default)]
    pub writes: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbandonRequest {
    pub snapshot_id: Option<String>,
    /// The plan's host and point and the attempt: its build lock is released.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub point: Option<String>,
    pub attempt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildImageResult {
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    pub image_id: String,
    pub parent_snapshot_id: Option<String>,
    pub blocks_written: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    /// The unfinished snapshot that was deleted, if any.
    pub deleted: Option<String>,
}

/// The build-image state machine's output (its `ImageReady` state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageReady {
    /// One line for the console.
    pub summary: String,
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    pub parent_snapshot_id: Option<String>,
    pub image_id: String,
    pub blocks_total: u64,
    pub blocks_written: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_grow_so_that_the_state_stays_small_up_to_64_tib() {
        assert_eq!(range_blocks(1000, 4096), 4096);
        assert_eq!(range_blocks(1000, 0), 1);
        // EBS's largest volume, every block written.
        let total = (64u64 << 40) / (512 << 10);
        let per = range_blocks(total, 4096);
        let n = total.div_ceil(per);
        assert!(n <= MAX_RANGES, "{n} ranges");
        let plan = Plan {
            host: "h".repeat(64),
            point: "20261124T120000Z-00000001".into(),
            snapshot_id: Some("snap-0123456789abcdef0".into()),
            parent_snapshot_id: Some("snap-0123456789abcdef1".into()),
            parent_point: Some("20261124T110000Z-00000001".into()),
            image_id: None,
            blocks_total: total,
            blocks_planned: total,
            range_blocks: per,
            ranges: (0..n as u32).collect(),
            attempt: "image-".repeat(14),
        };
        let writes: Vec<u64> = vec![per; n as usize];
        let state =
            serde_json::to_vec(&plan).unwrap().len() + serde_json::to_vec(&writes).unwrap().len();
        assert!(state < 200 << 10, "plan and results take {state} bytes");
        // The last range ends at the image's end.
        let last = plan.write(n as u32 - 1).unwrap().blocks(total);
        assert_eq!(last.1, total);
        assert!(last.0 < last.1);
    }

    #[test]
    fn requests_read_as_the_state_machine_sends_them() {
        let r: BuildImageRequest =
            serde_json::from_str(r#"{"action":"plan","host":"web1","point":null,"attempt":"a"}"#)
                .unwrap();
        assert!(matches!(r, BuildImageRequest::Plan(p) if p.host == "web1" && p.point.is_none()));
        assert!(
            serde_json::from_str::<BuildImageRequest>(r#"{"action":"plan","host":"web1"}"#)
                .is_err(),
            "a plan without its attempt"
        );
        // What the definition's ItemSelector makes of the plan and one item.
        let item = serde_json::json!({
            "action": "write", "host": "web1", "point": "p2", "snapshot_id": "snap-1",
            "parent_point": "p1", "range": 3, "range_blocks": 256, "attempt": "a"
        });
        let back: BuildImageRequest = serde_json::from_value(item).unwrap();
        let BuildImageRequest::Write(w) = back else {
            panic!("not a write")
        };
        assert_eq!(w.blocks(1000), (768, 1000));
        let bad = serde_json::from_str::<BuildImageRequest>(r#"{"action":"plan","hots":"x"}"#);
        assert!(bad.is_err());
    }
}
