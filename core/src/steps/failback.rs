//! The failback state machine (`statemachines/failback.asl.json`, `ferry-failback`):
//! its input, the `dr` function's failback steps, the work the appliance does for it
//! (a message per task on the work queue, answered with the task token), and the run
//! item it records.
//!
//! TakeGroupLock (`failback_begin`: the FAILED_OVER lock handed to this run, the
//! recovery instances of the failover run, the plan) -> FirstPass (per host, by the
//! appliance: capture the recovery instance, delta-write the origin) -> BeginCutover
//! (`failback_cutover`: no abort from here) -> StopRecoveryTiers (reverse boot order,
//! the pre-cutover hooks) -> FinalPass -> SwitchTrafficHome (`switch_home`) ->
//! StartOriginTiers (boot order, the post-cutover hooks, health) ->
//! TerminateRecoveryInstances -> RecordFailback (`failback_finish`: the lock released,
//! the group PROTECTED). Any failure: `failback_fail` hands the lock back.

use serde::{Deserialize, Serialize};

use super::failover::{StepFailure, Switched, Trigger};

/// The state machine's input (`ferry failback GROUP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackInput {
    pub group: String,
    pub trigger: Trigger,
    /// Seconds a task of the appliance may go without a heartbeat.
    pub heartbeat_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackBeginRequest {
    pub run_id: String,
    pub group: String,
    pub trigger: Trigger,
    pub heartbeat_s: u64,
}

/// One host going home: where its recovery instance is, and the point it was
/// launched from (the parent of its first capture).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostHome {
    pub host: String,
    pub tier: String,
    pub instance_id: String,
    pub recovery_ip: String,
    pub launched_point: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierHome {
    pub tier: String,
    pub hosts: Vec<HostHome>,
    /// How long the tier's origin hosts may take to answer their health checks.
    pub timeout_s: u64,
}

/// `failback_begin`'s answer: the lock is this run's, and this is what goes home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackPlan {
    pub run_id: String,
    pub group: String,
    /// The failover run whose recovery instances go home (and that gets the lock back
    /// if this run stops before its cutover).
    pub failover_run: String,
    /// RFC 3339.
    pub started: String,
    /// A task of the appliance that sends no heartbeat for this long is given up and
    /// sent again (the appliance died or lost its connection).
    pub heartbeat_s: u64,
    /// Every host, in reverse boot order.
    pub hosts: Vec<HostHome>,
    /// Tiers in reverse boot order: the order the recovery side stops in.
    pub tiers_out: Vec<TierHome>,
    /// Tiers in boot order: the order the origin starts in.
    pub tiers_in: Vec<TierHome>,
}

/// A failback run as the steps after `failback_begin` name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackRef {
    pub run_id: String,
    pub group: String,
}

/// What one task of the appliance is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkStep {
    /// Capture the host's recovery instance, then write what differs to its origin.
    Pass { pass: u32, host: HostHome },
    /// Run the tier's pre-cutover hook on its recovery instances.
    StopTier { tier: TierHome },
    /// Run the tier's post-cutover hook on its origin hosts, then wait for their health
    /// checks.
    StartTier { tier: TierHome },
}

/// A message on the work queue: the task token the appliance answers with, and the
/// work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    pub task_token: String,
    pub run_id: String,
    pub group: String,
    pub heartbeat_s: u64,
    pub step: WorkStep,
}

/// One pass over one host, as the appliance reports it (the task's output, and in the
/// run item under `passes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassReport {
    pub host: String,
    pub pass: u32,
    /// The point captured from the recovery instance, and its parent.
    pub point: Option<String>,
    pub parent: Option<String>,
    pub image_size: u64,
    /// Read from the recovery instance, new in the store, uploaded.
    pub bytes_read: u64,
    pub bytes_new: u64,
    pub bytes_uploaded: u64,
    /// Read from the origin's disk to compare, and written to it.
    pub origin_bytes_read: u64,
    pub origin_bytes_written: u64,
    pub origin_ranges_written: u64,
    pub capture_s: f64,
    pub write_s: f64,
    /// `done`; `partial`: stopped part-way (aborted or failed), the origin holds part of
    /// the point's bytes.
    pub outcome: String,
    pub error: Option<String>,
}

impl PassReport {
    /// A pass that stopped part-way (aborted, failed, given up) after writing
    /// `origin_bytes_written` bytes to the origin: nothing else of it counts.
    pub fn partial(host: &str, pass: u32, origin_bytes_written: u64, error: String) -> Self {
        PassReport {
            host: host.to_string(),
            pass,
            point: None,
            parent: None,
            image_size: 0,
            bytes_read: 0,
            bytes_new: 0,
            bytes_uploaded: 0,
            origin_bytes_read: 0,
            origin_bytes_written,
            origin_ranges_written: 0,
            capture_s: 0.0,
            write_s: 0.0,
            outcome: "partial".into(),
            error: Some(error),
        }
    }
}

/// A hook run on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    pub host: String,
    pub address: String,
    pub command: String,
    pub exit_status: u32,
    pub duration_s: f64,
}

/// A tier stopped on the recovery side or started at the origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierDone {
    pub tier: String,
    /// RFC 3339: when the hooks had run (and, when starting, every health check
    /// answered).
    pub done_at: String,
    pub hooks: Vec<HookRun>,
    /// Starting: seconds from the hooks' end until the tier was healthy.
    pub healthy_after_s: Option<f64>,
}

/// `failback_cutover`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutover {
    /// RFC 3339: from here the application is stopping.
    pub started: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackFinishRequest {
    pub run_id: String,
    pub execution_arn: String,
    pub plan: FailbackPlan,
    pub first_pass: Vec<PassReport>,
    pub cutover: Cutover,
    pub stopped: Vec<TierDone>,
    pub final_pass: Vec<PassReport>,
    pub switched: Switched,
    pub started: Vec<TierDone>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailbackFailRequest {
    pub run_id: String,
    pub group: String,
    pub execution_arn: String,
    pub error: StepFailure,
}

/// Where a failback run is: `first-pass` may be aborted; from `cutover` on it may not.
pub mod phases {
    pub const FIRST_PASS: &str = "first-pass";
    pub const CUTOVER: &str = "cutover";
}

/// The run item of a failback (`GROUP#<group>` / `RUN#<run id>`), and
/// `failback_finish`'s answer. The fields every run item shares come first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailbackRecord {
    pub run_id: String,
    pub group: String,
    /// `failback`.
    pub run_type: String,
    /// `running`, `failed-back`, `aborted` or `failed`.
    pub status: String,
    pub summary: String,
    pub trigger: Trigger,
    pub started: String,
    pub finished: Option<String>,
    pub failover_run: String,
    /// [`phases`].
    pub phase: String,
    /// RFC 3339: an operator asked to abort (`ferry failback --abort`).
    #[serde(default)]
    pub abort_requested: Option<String>,
    pub cutover_started: Option<String>,
    pub cutover_ended: Option<String>,
    /// The application down: the first pre-cutover hook to the last tier healthy at
    /// the origin.
    pub cutover_s: Option<f64>,
    /// Every pass of every host, by `<host>/<pass>` (the appliance writes each as it
    /// ends, also one stopped part-way).
    #[serde(default)]
    pub passes: std::collections::BTreeMap<String, PassReport>,
    pub bytes_uploaded: Option<u64>,
    pub origin_bytes_written: Option<u64>,
    pub switched: Option<Switched>,
    pub stopped: Vec<TierDone>,
    pub started_tiers: Vec<TierDone>,
    pub hosts: Vec<HostHome>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl FailbackRecord {
    pub fn started(plan: &FailbackPlan, trigger: Trigger) -> Self {
        FailbackRecord {
            run_id: plan.run_id.clone(),
            group: plan.group.clone(),
            run_type: "failback".into(),
            status: "running".into(),
            summary: format!(
                "failing back group {} from run {}",
                plan.group, plan.failover_run
            ),
            trigger,
            started: plan.started.clone(),
            finished: None,
            failover_run: plan.failover_run.clone(),
            phase: phases::FIRST_PASS.into(),
            abort_requested: None,
            cutover_started: None,
            cutover_ended: None,
            cutover_s: None,
            passes: Default::default(),
            bytes_uploaded: None,
            origin_bytes_written: None,
            switched: None,
            stopped: Vec::new(),
            started_tiers: Vec::new(),
            hosts: plan.hosts.clone(),
            error: None,
            cause: None,
        }
    }

    /// The passes stopped part-way: the origin hosts whose disks hold part of a point.
    pub fn partial_hosts(&self) -> Vec<(&str, u64)> {
        let mut out: Vec<(&str, u64)> = Vec::new();
        for p in self.passes.values().filter(|p| p.outcome != "done") {
            if !self
                .passes
                .values()
                .any(|d| d.host == p.host && d.outcome == "done" && d.pass >= p.pass)
            {
                out.push((&p.host, p.origin_bytes_written));
            }
        }
        out
    }
}

/// The key of a pass in [`FailbackRecord::passes`].
pub fn pass_key(host: &str, pass: u32) -> String {
    format!("{host}/{pass}")
}

/// The plan's orders: every host in reverse boot order, tiers out (reverse boot
/// order: web stops first, so no request reaches a tier whose dependencies are
/// stopping; db last, once nothing writes to it) and in (boot order: db starts first,
/// web last, once what it calls answers).
pub fn orders(boot_order: Vec<TierHome>) -> (Vec<HostHome>, Vec<TierHome>, Vec<TierHome>) {
    let tiers_in = boot_order;
    let tiers_out: Vec<TierHome> = tiers_in.iter().rev().cloned().collect();
    let hosts = tiers_out.iter().flat_map(|t| t.hosts.clone()).collect();
    (hosts, tiers_out, tiers_in)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::tests::{fill, tasks};

    fn host(h: &str, t: &str) -> HostHome {
        HostHome {
            host: h.into(),
            tier: t.into(),
            instance_id: format!("i-{h}"),
            recovery_ip: "10.0.0.1".into(),
            launched_point: "p".into(),
        }
    }

    fn tier(t: &str, hosts: &[&str]) -> TierHome {
        TierHome {
            tier: t.into(),
            hosts: hosts.iter().map(|h| host(h, t)).collect(),
            timeout_s: 60,
        }
    }

    fn definition() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../statemachines/failback.asl.json")).unwrap()
    }

    /// A sample value of the right shape for a field the definition fills from a path.
    fn sample(key: &str) -> serde_json::Value {
        let host = serde_json::json!({"host": "db1", "tier": "db", "instance_id": "i-1",
            "recovery_ip": "10.0.0.1", "launched_point": "p"});
        let tier = serde_json::json!({"tier": "db", "hosts": [host.clone()], "timeout_s": 60});
        match key {
            "trigger" => serde_json::json!({"kind": "manual", "alarm": null,
                "at": "2026-11-30T12:00:00Z", "reason": null}),
            "heartbeat_s" => 30.into(),
            "host" => host,
            "tier" => tier,
            "plan" => serde_json::json!({"run_id": "r", "group": "g", "failover_run": "f",
                "started": "2026-11-30T12:00:00Z", "heartbeat_s": 30, "hosts": [host],
                "tiers_out": [tier.clone()], "tiers_in": [tier]}),
            "first_pass" | "final_pass" | "stopped" | "started" => serde_json::json!([]),
            "cutover" => serde_json::json!({"started": "2026-11-30T12:00:00Z"}),
            "switched" => serde_json::json!({"switched_at": "2026-11-30T12:00:00Z", "dns": [],
                "target_groups": []}),
            "error" => serde_json::json!({"Error": "FailbackAborted", "Cause": "x"}),
            _ => "x".into(),
        }
    }

    #[test]
    fn every_step_of_the_definition_reads_as_its_request() {
        let def = definition();
        let mut all = Vec::new();
        tasks(&def, &mut all);
        let fill = |v: &serde_json::Value| fill(v, &sample);
        let mut seen = Vec::new();
        for (state, t) in all {
            let params = &t["Parameters"];
            if let Some(p) = params.get("Payload") {
                let v = fill(p);
                let action = v["action"].as_str().unwrap().to_string();
                if action == "terminate_run" {
                    serde_json::from_value::<crate::steps::InstanceRequest>(v)
                        .unwrap_or_else(|e| panic!("{state}: {e}"));
                } else {
                    serde_json::from_value::<crate::steps::failover::DrRequest>(v)
                        .unwrap_or_else(|e| panic!("{state}: {e}"));
                }
                seen.push(action);
            } else {
                // A task of the appliance: the message it reads from the work queue.
                let body = fill(&params["MessageBody"]);
                let work: Work =
                    serde_json::from_value(body).unwrap_or_else(|e| panic!("{state}: {e}"));
                seen.push(match work.step {
                    WorkStep::Pass { pass, .. } => format!("pass {pass}"),
                    WorkStep::StopTier { .. } => "stop_tier".into(),
                    WorkStep::StartTier { .. } => "start_tier".into(),
                });
                assert!(
                    t["HeartbeatSecondsPath"].is_string(),
                    "{state}: no heartbeat"
                );
            }
        }
        for a in [
            "failback_begin",
            "failback_cutover",
            "switch_home",
            "failback_finish",
            "failback_fail",
            "terminate_run",
            "pass 1",
            "pass 2",
            "stop_tier",
            "start_tier",
        ] {
            assert!(seen.iter().any(|x| x == a), "{a} is never called");
        }
        // The plan `failback_begin` returns is what the definition keeps of it.
        let mut kept: Vec<String> = def["States"]["TakeGroupLock"]["ResultSelector"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.trim_end_matches(".$").to_string())
            .collect();
        kept.sort();
        let plan: FailbackPlan = serde_json::from_value(sample("plan")).unwrap();
        assert_eq!(kept, crate::steps::tests::field_names(&plan));
        // The input is what TakeGroupLock reads.
        let input = FailbackInput {
            group: "shop".into(),
            trigger: serde_json::from_value(sample("trigger")).unwrap(),
            heartbeat_s: 30,
        };
        let payload = &def["States"]["TakeGroupLock"]["Parameters"]["Payload"];
        for k in serde_json::to_value(&input)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
        {
            assert_eq!(payload[format!("{k}.$")], format!("$.{k}"), "{k}");
        }
    }

    #[test]
    fn the_web_tier_leaves_first_and_comes_home_last() {
        let (hosts, out, inn) = orders(vec![
            tier("db", &["db1"]),
            tier("app", &["app1", "app2"]),
            tier("web", &["web1"]),
        ]);
        let names = |ts: &[TierHome]| ts.iter().map(|t| t.tier.clone()).collect::<Vec<_>>();
        assert_eq!(names(&out), ["web", "app", "db"]);
        assert_eq!(names(&inn), ["db", "app", "web"]);
        let hs: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(hs, ["web1", "app1", "app2", "db1"]);
    }

    fn pass(h: &str, n: u32, outcome: &str, written: u64) -> PassReport {
        let mut p = PassReport::partial(h, n, written, String::new());
        p.outcome = outcome.into();
        p
    }

    #[test]
    fn a_host_is_partial_until_a_later_pass_completes() {
        let plan = FailbackPlan {
            run_id: "failback-shop-x".into(),
            group: "shop".into(),
            failover_run: "failover-shop-y".into(),
            started: "2026-11-30T00:00:00Z".into(),
            heartbeat_s: 30,
            hosts: vec![],
            tiers_out: vec![],
            tiers_in: vec![],
        };
        let trigger = Trigger {
            kind: "manual".into(),
            alarm: None,
            at: "2026-11-30T00:00:00Z".into(),
            reason: None,
        };
        let mut r = FailbackRecord::started(&plan, trigger);
        r.passes
            .insert(pass_key("db1", 1), pass("db1", 1, "partial", 5));
        r.passes
            .insert(pass_key("web1", 1), pass("web1", 1, "partial", 7));
        r.passes
            .insert(pass_key("web1", 1), pass("web1", 1, "done", 9));
        assert_eq!(r.partial_hosts(), vec![("db1", 5)]);
    }
}
