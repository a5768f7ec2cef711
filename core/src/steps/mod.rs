//! The step contract: typed inputs and outputs of every state-machine step and of every
//! execution the appliance starts, shared by the functions that implement them, the
//! appliance, and the tests. JSON field names are the ones the Step Functions
//! definitions use in their paths; `docs/contract.md` lists them all in one table.
//!
//! - [`instance`]: the launch function (`launch`, `describe`, `terminate`).
//! - [`build_image`]: the build-image function (`plan`, `write`, `finish`, `abandon`)
//!   and the build-image state machine's input.
//! - [`migrate`]: the migrate state machine's input.
//! - [`failover`]: the failover state machine (failovers and drills): its input, the
//!   `dr` function's steps, the run item.
//! - [`failback`]: the failback state machine: the `dr` function's failback steps, the
//!   appliance's work items, the failback run item.
//! - [`burst`]: the burst and scale-in state machines: the `burst` function's steps and
//!   the run item.

pub mod build_image;
pub mod burst;
pub mod failback;
pub mod failover;
pub mod instance;
pub mod migrate;

pub use instance::{InstanceRequest, InstanceState, LaunchSpec};

use serde::{Deserialize, Serialize};

/// What the appliance reads from the output of any run (an image build or a
/// migration): the fields the state machines' last states share, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    pub summary: Option<String>,
    pub snapshot_id: Option<String>,
    pub image_id: Option<String>,
    pub instance_id: Option<String>,
    pub blocks_total: Option<u64>,
    pub blocks_written: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::build_image::ImageReady;
    use super::migrate::Migrated;
    use super::*;

    /// The keys a definition's `Parameters` gives a state, without the `.$` suffixes.
    fn state_keys(def: &str, state: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(def).unwrap();
        let mut keys: Vec<String> = v["States"][state]["Parameters"]
            .as_object()
            .unwrap_or_else(|| panic!("no state {state}"))
            .keys()
            .map(|k| k.trim_end_matches(".$").to_string())
            .collect();
        keys.sort();
        keys
    }

    /// `v` with every `key.$` path replaced by a sample value, at any depth.
    pub(super) fn fill(
        v: &serde_json::Value,
        sample: &dyn Fn(&str) -> serde_json::Value,
    ) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| match k.strip_suffix(".$") {
                        Some(k) => (k.to_string(), sample(k)),
                        None => (k.clone(), fill(v, sample)),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Every Task state's parameters, in the definition and its Maps' iterations.
    pub(super) fn tasks(v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        for (name, s) in v["States"].as_object().into_iter().flatten() {
            if s["Type"] == "Task" {
                out.push((name.clone(), s.clone()));
            }
            if s["ItemProcessor"].is_object() {
                tasks(&s["ItemProcessor"], out);
            }
        }
    }

    /// A record's field names as it serialises, sorted.
    pub(super) fn field_names(v: &impl Serialize) -> Vec<String> {
        let mut keys: Vec<String> = serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn outputs_are_what_the_definitions_end_with() {
        let ready = ImageReady {
            summary: "s".into(),
            host: "h".into(),
            point: "p".into(),
            snapshot_id: "snap".into(),
            parent_snapshot_id: None,
            image_id: "ami".into(),
            blocks_total: 1,
            blocks_written: 1,
        };
        let def = include_str!("../../../statemachines/build-image.asl.json");
        assert_eq!(state_keys(def, "ImageReady"), field_names(&ready));
        let migrated = Migrated {
            summary: "s".into(),
            host: "h".into(),
            point: "p".into(),
            snapshot_id: "snap".into(),
            image_id: "ami".into(),
            instance_id: "i".into(),
        };
        let def = include_str!("../../../statemachines/migrate.asl.json");
        assert_eq!(state_keys(def, "Migrated"), field_names(&migrated));
        // Both read as a run's output.
        let out: RunOutput = serde_json::from_value(serde_json::to_value(&ready).unwrap()).unwrap();
        assert_eq!(out.blocks_written, Some(1));
        let out: RunOutput =
            serde_json::from_value(serde_json::to_value(&migrated).unwrap()).unwrap();
        assert_eq!(out.instance_id.as_deref(), Some("i"));
    }

    #[test]
    fn run_items_use_the_key_families() {
        let def: String = include_str!("../../../statemachines/migrate.asl.json")
            .split_whitespace()
            .collect();
        let pk = format!("States.Format('{}{{}}',$.host)", crate::keys::HOST_PREFIX);
        let sk = format!("States.Format('{}{{}}',$.run_id)", crate::keys::RUN_PREFIX);
        assert!(def.contains(&pk) && def.contains(&sk));
        assert!(def.contains(&format!(
            "\"kind\":{{\"S\":\"{}\"}}",
            crate::keys::kinds::RUN
        )));
    }

    /// Every way a state can go on: Next, Default, each Choice and each Catch.
    fn edges(state: &serde_json::Value) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in ["Next", "Default"] {
            out.extend(state[k].as_str().map(str::to_string));
        }
        for list in ["Choices", "Catch"] {
            for c in state[list].as_array().into_iter().flatten() {
                out.extend(c["Next"].as_str().map(str::to_string));
            }
        }
        out
    }

    /// Whether the graph of `states` minus `removed` has a cycle.
    fn has_cycle(states: &serde_json::Map<String, serde_json::Value>, removed: &[String]) -> bool {
        fn visit(
            n: &str,
            states: &serde_json::Map<String, serde_json::Value>,
            removed: &[String],
            mark: &mut std::collections::HashMap<String, u8>,
        ) -> bool {
            match mark.get(n) {
                Some(1) => return true,
                Some(_) => return false,
                None => {}
            }
            mark.insert(n.to_string(), 1);
            for m in edges(&states[n]) {
                if !removed.contains(&m) && visit(&m, states, removed, mark) {
                    return true;
                }
            }
            mark.insert(n.to_string(), 2);
            false
        }
        let mut mark = std::collections::HashMap::new();
        states
            .keys()
            .filter(|k| !removed.contains(k))
            .any(|k| visit(k, states, removed, &mut mark))
    }

    #[test]
    fn every_loop_in_a_definition_is_capped() {
        /// Every state graph of a definition: its own and each Map's iterator's.
        fn graphs(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
            out.push(v["States"].clone());
            for s in v["States"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, s)| s)
            {
                for k in ["Iterator", "ItemProcessor"] {
                    if s[k].is_object() {
                        graphs(&s[k], out);
                    }
                }
            }
        }
        for def in [
            include_str!("../../../statemachines/migrate.asl.json"),
            include_str!("../../../statemachines/build-image.asl.json"),
            include_str!("../../../statemachines/failover.asl.json"),
            include_str!("../../../statemachines/failback.asl.json"),
            include_str!("../../../statemachines/burst.asl.json"),
            include_str!("../../../statemachines/scale-in.asl.json"),
        ] {
            let v: serde_json::Value = serde_json::from_str(def).unwrap();
            let mut all = Vec::new();
            graphs(&v, &mut all);
            for states in &all {
                let states = states.as_object().unwrap();
                // A capped Choice: one of its rules ends the loop on a counter.
                let capped: Vec<String> = states
                    .iter()
                    .filter(|(_, s)| {
                        s["Choices"].as_array().into_iter().flatten().any(|c| {
                            [
                                "NumericGreaterThan",
                                "NumericGreaterThanPath",
                                "NumericGreaterThanEqualsPath",
                            ]
                            .iter()
                            .any(|k| c.get(*k).is_some())
                                && c["Variable"]
                                    .as_str()
                                    .is_some_and(|p| p.starts_with("$.polls"))
                        })
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                assert!(
                    !has_cycle(states, &capped),
                    "a loop without a cap in {}",
                    v["Comment"]
                );
            }
        }
        // The check sees a loop when there is one.
        let looping: serde_json::Value = serde_json::json!({
            "A": {"Type": "Wait", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.s", "StringEquals": "x", "Next": "A"}], "Default": "C"},
            "C": {"Type": "Succeed"}
        });
        assert!(has_cycle(looping.as_object().unwrap(), &[]));
    }
}

/// Error names a step fails with, as the definitions match them in `Retry` and `Catch`.
pub mod errors {
    /// Worth retrying: throttling, timeouts, a service having a bad moment.
    pub const RETRYABLE: &str = "Retryable";
    /// Retrying cannot help: bad input, a missing resource, a refused request.
    pub const NON_RETRYABLE: &str = "NonRetryable";
    /// The group's lock is held by another run: the run stops at once, touching
    /// nothing (no clean-up, no release: none of it is this run's).
    pub const GROUP_LOCKED: &str = "GroupLocked";
    /// A host of the group has no point with a built image (at the time asked).
    pub const NO_RECOVERY_POINT: &str = "NoRecoveryPoint";
    /// A drill stopped because a failover of its group started.
    pub const DRILL_PREEMPTED: &str = "DrillPreempted";
    /// A drill ran past its time limit.
    pub const DRILL_TIME_LIMIT: &str = "DrillTimeLimit";
    /// A launched instance stopped or terminated instead of running.
    pub const TARGET_DID_NOT_START: &str = "TargetDidNotStart";
    /// A failback was asked of a group that is not failed over.
    pub const NOT_FAILED_OVER: &str = "NotFailedOver";
    /// An operator aborted a failback before its cutover.
    pub const FAILBACK_ABORTED: &str = "FailbackAborted";
    /// The appliance could not do a failback task (capture, write, hook, health).
    pub const FAILBACK_WORK_FAILED: &str = "FailbackWorkFailed";
    /// A run of the same kind (burst, scale-in) holds the tier: this alarm adds
    /// nothing (repeated alarms do not stack).
    pub const ALREADY_RUNNING: &str = "AlreadyRunning";
    /// A run of the other kind holds the tier: worth waiting for.
    pub const TIER_BUSY: &str = "TierBusy";
    /// The tier's golden host has no point with a built image.
    pub const NO_IMAGE: &str = "NoImage";
    /// A resource the tier names (target group, Auto Scaling group, launch template)
    /// does not exist.
    pub const NOT_FOUND: &str = "NotFound";
    /// The burst's instances were not in service and healthy in time.
    pub const CAPACITY_TIMEOUT: &str = "CapacityTimeout";
}
