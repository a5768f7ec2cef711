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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::tests::{field_names, fill, tasks};
    use serde_json::{json, Value};

    fn sample(key: &str) -> Value {
        match key {
            "trigger" => json!({"kind": "alarm", "alarm": "ferry-burst-web-out",
                "at": "2026-11-30T12:00:00Z", "reason": null}),
            "desired" | "desired_before" | "min" | "max" | "poll_s" | "max_polls" | "drain_s" => {
                2.into()
            }
            "victims" | "victim_targets" | "instances" => json!(["i-1"]),
            "any" => true.into(),
            "error" => json!({"Error": "NotFound", "Cause": "x"}),
            _ => "x".into(),
        }
    }

    fn definition(name: &str) -> Value {
        let text = match name {
            "burst" => include_str!("../../../statemachines/burst.asl.json"),
            "scale-in" => include_str!("../../../statemachines/scale-in.asl.json"),
            _ => include_str!("../../../statemachines/build-image.asl.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    /// The fields a state's ResultSelector keeps, sorted.
    fn kept(def: &Value, state: &str) -> Vec<String> {
        let mut k: Vec<String> = def["States"][state]["ResultSelector"]
            .as_object()
            .unwrap_or_else(|| panic!("{state} keeps nothing"))
            .keys()
            .map(|k| k.trim_end_matches(".$").to_string())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn every_burst_step_reads_as_its_request_and_keeps_its_answer() {
        let mut seen = Vec::new();
        for name in ["burst", "scale-in", "build-image"] {
            let def = definition(name);
            let mut all = Vec::new();
            tasks(&def, &mut all);
            for (state, t) in all {
                let fn_arn = t["Parameters"]["FunctionName"].as_str().unwrap_or("");
                if !fn_arn.contains("BurstFunctionArn") {
                    continue;
                }
                let v = fill(&t["Parameters"]["Payload"], &sample);
                let action = v["action"].as_str().unwrap().to_string();
                serde_json::from_value::<BurstRequest>(v)
                    .unwrap_or_else(|e| panic!("{name}/{state}: {e}"));
                seen.push(action);
            }
        }
        for a in [
            "burst_begin",
            "use_newest_image",
            "raise",
            "check_capacity",
            "scale_in_begin",
            "drain",
            "lower",
            "check_gone",
            "finish",
            "fail",
            "roll",
        ] {
            assert!(seen.iter().any(|x| x == a), "{a} is never called");
        }
        let plan = BurstPlan {
            run_id: "r".into(),
            tier: "web".into(),
            started: "t".into(),
            image_id: "ami".into(),
            point: "p".into(),
            desired_before: 0,
            desired: 2,
            max: 2,
            poll_s: 1,
            max_polls: 9,
        };
        assert_eq!(
            kept(&definition("burst"), "TakeTierLock"),
            field_names(&plan)
        );
        let plan = ScaleInPlan {
            run_id: "r".into(),
            tier: "web".into(),
            started: "t".into(),
            desired_before: 2,
            min: 0,
            victims: vec![],
            victim_targets: vec![],
            any: true,
            drain_s: 2,
            poll_s: 1,
            max_polls: 9,
        };
        assert_eq!(
            kept(&definition("scale-in"), "TakeTierLock"),
            field_names(&plan)
        );
        // Each run's input is what its first state reads.
        let input = BurstInput {
            tier: "web".into(),
            trigger: serde_json::from_value(sample("trigger")).unwrap(),
        };
        for name in ["burst", "scale-in"] {
            let payload = &definition(name)["States"]["TakeTierLock"]["Parameters"]["Payload"];
            for k in field_names(&input) {
                assert_eq!(payload[format!("{k}.$")], format!("$.{k}"), "{name}: {k}");
            }
        }
    }
}
