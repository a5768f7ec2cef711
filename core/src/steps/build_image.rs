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

/// The `plan` step's request; also the build-image state machine's input, which the
/// definition hands to `plan` as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub host: String,
    /// Default: the host's newest point.
    #[serde(default)]
    pub point: Option<String>,
}

/// The build-image state machine's input.
pub type BuildImageInput = PlanRequest;

/// Blocks `first..end` of the point's image into `snapshot_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRange {
    pub host: String,
    pub point: String,
    pub snapshot_id: String,
    /// The parent point whose snapshot `snapshot_id` names as parent: only blocks that
    /// differ from it are written.
    pub parent_point: Option<String>,
    pub first: u64,
    pub end: u64,
    /// Blocks in the range that may differ (before comparing bytes); for the operator.
    #[serde(default)]
    pub candidates: u64,
}

/// One Map item: a whole `write` request, so the Map passes each item to the function
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeItem {
    pub action: &'static str,
    #[serde(flatten)]
    pub range: WriteRange,
}

impl RangeItem {
    pub fn new(range: WriteRange) -> Self {
        RangeItem {
            action: "write",
            range,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub host: String,
    pub point: String,
    /// The snapshot being built (or already built). `None` only when the AMI exists.
    pub snapshot_id: Option<String>,
    pub parent_snapshot_id: Option<String>,
    pub image_id: Option<String>,
    pub blocks_total: u64,
    /// Blocks the ranges may write (before comparing bytes).
    pub blocks_planned: u64,
    pub ranges: Vec<RangeItem>,
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
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub parent_snapshot_id: Option<String>,
    /// The Map's results.
    #[serde(default)]
    pub writes: Vec<Written>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbandonRequest {
    pub snapshot_id: Option<String>,
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

/// Splits blocks `0..total` into ranges of `per` block indexes, keeping only ranges
/// that hold at least one of `candidates` (sorted); returns `(first, end, count)`.
pub fn split_ranges(candidates: &[u64], total: u64, per: u64) -> Vec<(u64, u64, u64)> {
    let per = per.max(1);
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for &b in candidates.iter().filter(|&&b| b < total) {
        let first = b / per * per;
        match out.last_mut() {
            Some(r) if r.0 == first => r.2 += 1,
            _ => out.push((first, (first + per).min(total), 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_candidate_once_and_skip_empty_spans() {
        let c = [0, 1, 5, 300, 301, 1023];
        assert_eq!(
            split_ranges(&c, 1024, 256),
            vec![(0, 256, 3), (256, 512, 2), (768, 1024, 1)]
        );
        assert_eq!(split_ranges(&c, 1000, 4096), vec![(0, 1000, 5)]);
        assert!(split_ranges(&[], 10, 4).is_empty());
    }

    #[test]
    fn requests_read_as_the_state_machine_sends_them() {
        let r: BuildImageRequest =
            serde_json::from_str(r#"{"action":"plan","host":"web1","point":null}"#).unwrap();
        assert!(matches!(r, BuildImageRequest::Plan(p) if p.host == "web1" && p.point.is_none()));
        let range = WriteRange {
            host: "web1".into(),
            point: "p2".into(),
            snapshot_id: "snap-1".into(),
            parent_point: Some("p1".into()),
            first: 0,
            end: 256,
            candidates: 7,
        };
        let item = serde_json::to_value(RangeItem::new(range.clone())).unwrap();
        assert_eq!(item["action"], "write");
        // The Map hands the item over as it is.
        let back: BuildImageRequest = serde_json::from_value(item).unwrap();
        assert!(matches!(back, BuildImageRequest::Write(w) if w == range));
        let bad = serde_json::from_str::<BuildImageRequest>(r#"{"action":"plan","hots":"x"}"#);
        assert!(bad.is_err());
    }
}
