//! The failover state machine (`statemachines/failover.asl.json`, `ferry-failover`):
//! its input, the `dr` function's steps and what they return, and the run item it
//! records. One machine runs both a failover and a drill ([`Mode`]).
//!
//! TakeGroupLock (`begin`: lock, recovery points, plan) -> RecoverTiers (a Map over
//! the plan's tiers, one at a time: launch the tier's hosts with the launch function,
//! then `check_tier` until ready) -> SwitchTraffic (`switch_traffic`; not in a drill)
//! -> RecordRun (`finish`). A drill removes what it launched before `finish`; any
//! failure cleans up what the run launched and records why (`fail`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::InstanceRequest;
use crate::group::Readiness;

/// A failover switches traffic and leaves the group FAILED_OVER; a drill launches into
/// the drill subnet, verifies, removes everything and switches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Failover,
    Drill,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Failover => "failover",
            Mode::Drill => "drill",
        }
    }
}

/// The state machine's input: what the trigger function, `ferry failover` and `ferry
/// drill` start it with. The run id is the execution's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverInput {
    pub group: String,
    pub mode: Mode,
    /// Use each host's newest built point at or before this time (RFC 3339); none: the
    /// newest built point.
    pub at: Option<String>,
    pub trigger: Trigger,
}

/// What started the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `alarm` (the group's failover alarm, through EventBridge) or `manual`.
    pub kind: String,
    /// The alarm's name.
    pub alarm: Option<String>,
    /// When the alarm went to ALARM, or when the operator asked (RFC 3339): where the
    /// RTO is measured from.
    pub at: String,
    pub reason: Option<String>,
}

/// A step of the `dr` function.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DrRequest {
    Begin(BeginRequest),
    CheckTier(CheckTierRequest),
    SwitchTraffic(RunRef),
    Finish(FinishRequest),
    Fail(FailRequest),
    FailbackBegin(super::failback::FailbackBeginRequest),
    FailbackCutover(super::failback::FailbackRef),
    SwitchHome(super::failback::FailbackRef),
    FailbackFinish(super::failback::FailbackFinishRequest),
    FailbackFail(super::failback::FailbackFailRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    pub run_id: String,
    pub group: String,
    pub mode: Mode,
    pub at: Option<String>,
    pub trigger: Trigger,
}

/// A run, as the steps after `begin` name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    pub run_id: String,
    pub group: String,
    pub mode: Mode,
}

/// `begin`'s answer: the group's lock is this run's, and this is what it launches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub run_id: String,
    pub group: String,
    pub mode: Mode,
    /// When `begin` ran (RFC 3339).
    pub started: String,
    /// The trigger's time: where the RTO is measured from.
    pub alarm_at: String,
    /// The failure time the RPO is measured to: when the appliance last saw the origin
    /// healthy, or the trigger's time when it recorded nothing later.
    pub failed_at: String,
    /// Seconds between two checks of a tier, and how many checks before giving up.
    pub poll_s: u64,
    pub max_polls: u64,
    /// A drill's time limit (RFC 3339): past it, the drill is stopped and cleaned up.
    pub deadline: Option<String>,
    pub tiers: Vec<TierPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPlan {
    pub tier: String,
    pub ready: Readiness,
    pub hosts: Vec<HostPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPlan {
    pub host: String,
    pub point: String,
    /// The point's capture time (RFC 3339).
    pub point_created: String,
    pub image_id: String,
    /// The launch function's request, as the tier's Map passes it on.
    pub launch: InstanceRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTierRequest {
    pub run_id: String,
    pub group: String,
    pub mode: Mode,
    pub deadline: Option<String>,
    pub tier: TierPlan,
}

/// `check_tier`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierCheck {
    pub tier: String,
    pub ready: bool,
    /// What it still waits for, in one line (`db1: pending`, `db1: tcp://10.0.1.5:3306
    /// refused`).
    pub waiting_for: Option<String>,
    /// RFC 3339.
    pub checked_at: String,
    pub hosts: Vec<HostCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCheck {
    pub host: String,
    pub instance_id: Option<String>,
    pub state: String,
    pub status_checks: Option<String>,
    pub private_ip: Option<String>,
    /// Health checks at the recovery address: all answered (`Some(true)`), not all
    /// (`Some(false)`), not asked (`None`: the tier is ready on status checks).
    pub healthy: Option<bool>,
}

/// `switch_traffic`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switched {
    /// RFC 3339: where the RTO ends.
    pub switched_at: String,
    /// `name -> addresses` of each record set UPSERTed.
    pub dns: Vec<SwitchedRecord>,
    /// Target groups: the targets registered and deregistered.
    pub target_groups: Vec<SwitchedTargets>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchedRecord {
    pub name: String,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchedTargets {
    pub arn: String,
    pub registered: Vec<String>,
    pub deregistered: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    pub run_id: String,
    /// The execution, whose history gives each state's duration.
    pub execution_arn: String,
    pub plan: Plan,
    /// The last check of each tier, in boot order (the Map's results).
    pub tiers: Vec<TierCheck>,
    pub switched: Option<Switched>,
}

/// The error a failed state hands to its `Catch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepFailure {
    /// (error name, cause) as a run records them: the cause a Lambda step fails with is
    /// its JSON error document, of which the message is kept; no name reads `Failed`.
    pub fn reason(&self) -> (String, String) {
        let cause = serde_json::from_str::<serde_json::Value>(&self.cause)
            .ok()
            .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.cause.clone());
        let error = match self.error.as_str() {
            "" => "Failed".to_string(),
            e => e.to_string(),
        };
        (error, cause)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub run_id: String,
    pub group: String,
    pub mode: Mode,
    pub execution_arn: String,
    pub error: StepFailure,
}

/// The run item (`GROUP#<group>` / `RUN#<run id>`), and `finish`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub group: String,
    /// `failover` or `drill`.
    pub run_type: String,
    /// `running`, `failed-over`, `drilled` or `failed`.
    pub status: String,
    /// One line for the console.
    pub summary: String,
    pub trigger: Trigger,
    pub started: String,
    pub finished: Option<String>,
    pub alarm_at: Option<String>,
    pub failed_at: Option<String>,
    pub traffic_switched_at: Option<String>,
    /// Achieved: trigger to traffic switched (a drill: to every tier ready).
    pub rto_s: Option<f64>,
    pub rto_target_s: Option<u64>,
    pub rpo_target_s: Option<u64>,
    /// The worst host's achieved RPO.
    pub rpo_s: Option<f64>,
    pub hosts: Vec<HostOutcome>,
    pub tiers: Vec<TierOutcome>,
    /// Each state's time, from the execution history.
    pub states: Vec<StateSpan>,
    pub switched: Option<Switched>,
    /// A drill: instance-seconds run and what they cost at the list price.
    pub instance_seconds: Option<f64>,
    pub cost_usd: Option<f64>,
    pub price_source: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl RunRecord {
    /// A run that has just started: what it is and what started it, nothing achieved yet.
    pub fn started(
        run_id: &str,
        group: &str,
        mode: Mode,
        trigger: Trigger,
        started: String,
    ) -> Self {
        RunRecord {
            run_id: run_id.to_string(),
            group: group.to_string(),
            run_type: mode.as_str().to_string(),
            status: "running".into(),
            summary: String::new(),
            trigger,
            started,
            finished: None,
            alarm_at: None,
            failed_at: None,
            traffic_switched_at: None,
            rto_s: None,
            rto_target_s: None,
            rpo_target_s: None,
            rpo_s: None,
            hosts: Vec::new(),
            tiers: Vec::new(),
            states: Vec::new(),
            switched: None,
            instance_seconds: None,
            cost_usd: None,
            price_source: None,
            error: None,
            cause: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostOutcome {
    pub host: String,
    pub tier: String,
    pub point: String,
    pub point_created: String,
    pub image_id: String,
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    pub private_ip: Option<String>,
    /// Achieved: the failure time minus the point's capture time.
    pub rpo_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierOutcome {
    pub tier: String,
    /// RFC 3339.
    pub ready_at: String,
    /// From the run's start.
    pub ready_after_s: f64,
}

/// The time spent in one state (summed over its visits: Map iterations, poll loops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSpan {
    pub name: String,
    pub seconds: f64,
    pub visits: u32,
}

/// A recovery point as `begin` sees it in the point records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointChoice {
    pub point: String,
    pub created: OffsetDateTime,
    pub image_id: Option<String>,
}

/// The point a host recovers from: the newest with a built image, at or before `at`.
pub fn choose_point(points: &[PointChoice], at: Option<OffsetDateTime>) -> Option<&PointChoice> {
    points
        .iter()
        .filter(|p| p.image_id.is_some())
        .filter(|p| at.is_none_or(|at| p.created <= at))
        .max_by_key(|p| p.created)
}

/// Seconds from `from` to `to`, never negative (clocks of two machines).
pub fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    ((to - from).as_seconds_f64()).max(0.0)
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn p(id: &str, created: OffsetDateTime, built: bool) -> PointChoice {
        PointChoice {
            point: id.into(),
            created,
            image_id: built.then(|| format!("ami-{id}")),
        }
    }

    #[test]
    fn the_newest_built_point_at_or_before_the_time_is_chosen() {
        let points = [
            p("a", datetime!(2026-11-30 10:00 UTC), true),
            p("b", datetime!(2026-11-30 11:00 UTC), true),
            p("c", datetime!(2026-11-30 12:00 UTC), false),
        ];
        assert_eq!(choose_point(&points, None).unwrap().point, "b");
        let at = Some(datetime!(2026-11-30 10:30 UTC));
        assert_eq!(choose_point(&points, at).unwrap().point, "a");
        assert!(choose_point(&points, Some(datetime!(2026-11-30 09:00 UTC))).is_none());
        assert!(choose_point(&points[2..], None).is_none());
        assert_eq!(
            seconds_between(
                datetime!(2026-11-30 11:00 UTC),
                datetime!(2026-11-30 11:05 UTC)
            ),
            300.0
        );
        assert_eq!(
            seconds_between(
                datetime!(2026-11-30 11:05 UTC),
                datetime!(2026-11-30 11:00 UTC)
            ),
            0.0
        );
    }

    /// Every Task state's payload, with each `.$` path replaced by a sample value of
    /// the right shape, as the definition would hand it to its function.
    fn payloads(v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        for (name, s) in v["States"].as_object().into_iter().flatten() {
            if let Some(p) = s["Parameters"]["Payload"].as_object() {
                out.push((name.clone(), serde_json::Value::Object(p.clone())));
            }
            for k in ["Iterator", "ItemProcessor"] {
                if s[k].is_object() {
                    payloads(&s[k], out);
                }
            }
        }
    }

    fn sample(key: &str) -> serde_json::Value {
        let tier = serde_json::json!({"tier": "db", "ready": "health", "hosts": [{
            "host": "db1", "point": "p", "point_created": "2026-11-30T12:00:00Z", "image_id": "ami-1",
            "launch": {"action": "launch", "run_id": "r", "host": "db1", "image_id": "ami-1",
                       "instance_type": "t3.small", "subnet_id": "subnet-1"}}]});
        match key {
            "mode" => "drill".into(),
            "at" | "deadline" | "switched" => serde_json::Value::Null,
            "trigger" => {
                serde_json::json!({"kind": "manual", "alarm": null, "at": "2026-11-30T12:00:00Z", "reason": null})
            }
            "tier" => tier,
            "tiers" => serde_json::json!([]),
            "error" => serde_json::json!({"Error": "NonRetryable", "Cause": "x"}),
            "plan" => serde_json::json!({"run_id": "r", "group": "g", "mode": "failover",
                "started": "2026-11-30T12:00:00Z", "alarm_at": "2026-11-30T12:00:00Z",
                "failed_at": "2026-11-30T12:00:00Z", "poll_s": 1, "max_polls": 1, "deadline": null,
                "tiers": [tier]}),
            _ => "x".into(),
        }
    }

    #[test]
    fn every_dr_step_of_the_definition_reads_as_a_request() {
        let def: serde_json::Value =
            serde_json::from_str(include_str!("../../../statemachines/failover.asl.json")).unwrap();
        let mut all = Vec::new();
        payloads(&def, &mut all);
        let mut actions = Vec::new();
        for (state, p) in all {
            let Some(action) = p.get("action").and_then(|a| a.as_str()).map(str::to_string) else {
                continue;
            };
            let filled: serde_json::Map<String, serde_json::Value> = p
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| match k.strip_suffix(".$") {
                    Some(k) => (k.to_string(), sample(k)),
                    None => (k.clone(), v.clone()),
                })
                .collect();
            let v = serde_json::Value::Object(filled);
            if ["terminate_run"].contains(&action.as_str()) {
                serde_json::from_value::<crate::steps::InstanceRequest>(v)
                    .unwrap_or_else(|e| panic!("{state}: {e}"));
            } else {
                serde_json::from_value::<DrRequest>(v).unwrap_or_else(|e| panic!("{state}: {e}"));
            }
            actions.push(action);
        }
        for a in [
            "begin",
            "check_tier",
            "switch_traffic",
            "finish",
            "fail",
            "terminate_run",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} is never called");
        }
        // The plan `begin` returns is what the definition keeps of it.
        let kept: Vec<String> = def["States"]["TakeGroupLock"]["ResultSelector"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.trim_end_matches(".$").to_string())
            .collect();
        let plan: Plan = serde_json::from_value(sample("plan")).unwrap();
        let mut fields: Vec<String> = serde_json::to_value(&plan)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        fields.sort();
        let mut kept = kept;
        kept.sort();
        assert_eq!(kept, fields);
    }

    #[test]
    fn the_input_is_what_the_definition_reads() {
        let def = include_str!("../../../statemachines/failover.asl.json");
        let i = FailoverInput {
            group: "shop".into(),
            mode: Mode::Failover,
            at: None,
            trigger: Trigger {
                kind: "manual".into(),
                alarm: None,
                at: "t".into(),
                reason: None,
            },
        };
        let v = serde_json::to_value(&i).unwrap();
        for path in ["$.group", "$.mode", "$.at", "$.trigger"] {
            assert!(
                def.contains(&format!("\"{path}\"")),
                "{path} not read by the definition"
            );
            assert!(v.get(&path[2..]).is_some(), "{path} missing from the input");
        }
    }

    #[test]
    fn requests_read_as_the_definition_writes_them() {
        let r: DrRequest = serde_json::from_value(serde_json::json!({
            "action": "begin", "run_id": "failover-shop-20261130T120000Z", "group": "shop",
            "mode": "failover", "at": null,
            "trigger": {"kind": "alarm", "alarm": "ferry-shop-failover", "at": "2026-11-30T12:00:00Z", "reason": null}
        }))
        .unwrap();
        assert!(matches!(r, DrRequest::Begin(b) if b.mode == Mode::Failover));
        let f: StepFailure =
            serde_json::from_value(serde_json::json!({"Error": "NonRetryable", "Cause": "x"}))
                .unwrap();
        assert_eq!(f.cause, "x");
    }
}
