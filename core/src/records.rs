//! Records of the one DynamoDB table: hosts and their recovery points.
//!
//! Their keys are in [`crate::keys`]. The store stays the source of truth; these records
//! are what the cloud side and the console read without opening the store.

use serde::{Deserialize, Serialize};

use crate::manifest::{CaptureStats, Consistency, PointMeta};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    /// `user@addr:port`, or `None` for a disk read on the appliance itself.
    pub ssh: Option<String>,
    /// SHA-256 fingerprint of the pinned host key, as OpenSSH prints it.
    pub host_key: Option<String>,
    pub disk: String,
    pub snapshot: String,
    pub tier: Option<String>,
    pub group: Option<String>,
    pub last_point: Option<String>,
}

/// Where a point is in its life. Set by the appliance (`captured`) and later by the
/// cloud functions (image built, launched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointState {
    Captured,
    /// `build-image` made its EBS snapshot and AMI (`snapshot_id`, `image_id`).
    ImageBuilt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub host: String,
    pub point: String,
    /// RFC 3339.
    pub created: String,
    pub image_size: u64,
    pub manifest_key: String,
    pub consistency: Consistency,
    pub image_blake3: String,
    pub state: PointState,
    pub stats: CaptureStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

impl PointRecord {
    pub fn from_meta(meta: &PointMeta, manifest_key: String) -> Self {
        PointRecord {
            host: meta.host.clone(),
            point: meta.point.clone(),
            created: meta
                .created
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            image_size: meta.image_size,
            manifest_key,
            consistency: meta.consistency,
            image_blake3: meta.image_blake3.clone(),
            state: PointState::Captured,
            stats: meta.stats.clone(),
            snapshot_id: None,
            image_id: None,
        }
    }
}
