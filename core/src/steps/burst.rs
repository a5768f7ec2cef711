//! The burst and scale-in state machines: their input, the `burst` function's steps
//! (`action`), and the run item (`BURST#<tier>` / `RUN#<run id>`).

use serde::{Deserialize, Serialize};

use super::failover::{StepFailure, Trigger};
use crate::burst::{GroupInstance, RunKind};

/// The input of `burst-<tier>-<UTC>` and `scale-in-<tier>-<UTC>` executions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstInput {
    pub tier: String,
    pub trigger: Trigger,
}

/// A step of the `burst` function.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BurstRequest {
    /// Take the tier's lock, check what the run needs, plan the capacity.
    BurstBegin(BeginRequest),
    /// The launch template's newest version names the golden host's newest image.
    UseNewestImage(ImageRequest),
    /// Raise the Auto Scaling group's desired capacity.
    Raise(RaiseRequest),
    /// Register the in-service instances (IP target groups) and check capacity.
    CheckCapacity(RaiseRequest),
    ScaleInBegin(BeginRequest),
    /// Deregister the victims' targets (the drain starts).
    Drain(VictimsRequest),
    /// Terminate the drained instances, desired capacity down to min.
    Lower(VictimsRequest),
    /// Whether the victims are gone from the group and the target group.
    CheckGone(VictimsRequest),
    /// The run item; the lock released.
    Finish(FinishRequest),
    /// The failed run's item; the lock released.
    Fail(FailRequest),
    /// After an image build: the tiers whose golden host it was get the new image.
    Roll(RollRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    pub run_id: String,
    pub tier: String,
    pub trigger: Trigger,
}

/// What a burst's `begin` decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BurstPlan {
    pub run_id: String,
    pub tier: String,
    /// RFC 3339.
    pub started: String,
    pub image_id: String,
    pub point: String,
    pub desired_before: u32,
    pub desired: u32,
    pub max: u32,
    pub poll_s: u32,
    pub max_polls: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    pub run_id: String,
    pub tier: String,
    pub image_id: String,
}

/// The launch template after `use_newest_image` or a roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateState {
    pub tier: String,
    pub version: i64,
    pub image_id: String,
    /// Whether a new version was written.
    pub rolled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaiseRequest {
    pub run_id: String,
    pub tier: String,
    pub desired: u32,
}

/// The group as a capacity check saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub ready: bool,
    pub desired: u32,
    pub in_service: u32,
    /// The in-service instances' ids.
    pub instance_ids: Vec<String>,
    pub instances: Vec<GroupInstance>,
    /// The targets registered by this check.
    pub registered: Vec<String>,
}

/// What a scale-in's `begin` decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleInPlan {
    pub run_id: String,
    pub tier: String,
    pub started: String,
    pub desired_before: u32,
    pub min: u32,
    pub victims: Vec<String>,
    /// The victims' targets in the target group.
    pub victim_targets: Vec<String>,
    /// Whether there is anything to scale in.
    pub any: bool,
    pub drain_s: u32,
    pub poll_s: u32,
    pub max_polls: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VictimsRequest {
    pub run_id: String,
    pub tier: String,
    pub victims: Vec<String>,
    pub victim_targets: Vec<String>,
}

/// What is left of a scale-in's victims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gone {
    pub gone: bool,
    pub left: Vec<String>,
    /// The target group's targets as the check saw them.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    pub run_id: String,
    pub tier: String,
    pub kind: RunKind,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub started: String,
    pub desired_before: u32,
    pub desired: u32,
    #[serde(default)]
    pub image_id: Option<String>,
    /// The instances launched (burst) or terminated (scale-in).
    pub instances: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub run_id: String,
    pub tier: String,
    pub kind: RunKind,
    pub execution_arn: String,
    pub trigger: Trigger,
    /// The Catch's `{Error, Cause}`.
    pub error: StepFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    pub host: String,
    pub point: String,
    pub image_id: String,
}

/// The tiers a roll updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rolled {
    pub tiers: Vec<TemplateState>,
}

/// A burst or scale-in run: `BURST#<tier>` / `RUN#<run id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstRun {
    pub run_id: String,
    pub tier: String,
    /// `burst` or `scale-in` (every item's `kind` is the table's: `run`).
    pub run_kind: RunKind,
    /// `succeeded`, `failed`.
    pub status: String,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub started: String,
    pub finished: String,
    #[serde(default)]
    pub desired_before: Option<u32>,
    #[serde(default)]
    pub desired: Option<u32>,
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub instances: Vec<String>,
    /// From the run's start to its capacity in service (burst) or its instances gone
    /// (scale-in).
    #[serde(default)]
    pub run_s: Option<f64>,
    /// From the alarm to the same moment.
    #[serde(default)]
    pub alarm_to_done_s: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    pub summary: String,
}
