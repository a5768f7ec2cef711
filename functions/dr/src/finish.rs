//! `finish`: the run item with what the run achieved (each host's point and RPO, the
//! RTO, each tier's time, each state's time from the execution's history, a drill's
//! instance-hours and cost), then the lock: kept as FAILED_OVER after a failover,
//! released after a drill. `fail`: the same item for a run that failed, with why, and
//! the lock released.

use std::collections::BTreeMap;

use ferry_aws::sfn::Event;
use ferry_core::keys::locks;
use ferry_core::steps::failover::{
    parse_rfc3339, rfc3339, seconds_between, FailRequest, FinishRequest, HostOutcome, Mode,
    RunRecord, StateSpan, TierOutcome, Trigger,
};
use ferry_fn::StepError;
use ferry_fn_launch::handler::{run_instances, tag, ANY_STATE};
use time::OffsetDateTime;

use crate::begin::FAILED_OVER;
use crate::{records, Dr};

/// Each state's time: every visit's entry to its exit, summed, in the order the states
/// were first entered. Parallel visits (a Map's iterations) pair first-in, first-out.
pub fn spans(events: &[Event]) -> Vec<StateSpan> {
    let mut open: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut out: Vec<StateSpan> = Vec::new();
    for e in events {
        match e {
            Event::Entered { name, at } => {
                open.entry(name).or_default().push(*at);
                if !out.iter().any(|s| &s.name == name) {
                    out.push(StateSpan {
                        name: name.clone(),
                        seconds: 0.0,
                        visits: 0,
                    });
                }
            }
            Event::Exited { name, at } => {
                let Some(start) = open
                    .get_mut(name.as_str())
                    .filter(|v| !v.is_empty())
                    .map(|v| v.remove(0))
                else {
                    continue;
                };
                if let Some(s) = out.iter_mut().find(|s| &s.name == name) {
                    s.seconds += (at - start).max(0.0);
                    s.visits += 1;
                }
            }
            _ => {}
        }
    }
    for s in &mut out {
        s.seconds = (s.seconds * 1000.0).round() / 1000.0;
    }
    out
}

async fn states(dr: &Dr, execution_arn: &str) -> Vec<StateSpan> {
    match dr.sfn.history(execution_arn).await {
        Ok(events) => spans(&events),
        Err(e) => {
            tracing::warn!(execution = %execution_arn, "no state times: {e}");
            Vec::new()
        }
    }
}

fn secs(from: &str, to: &str) -> Option<f64> {
    Some(seconds_between(parse_rfc3339(from)?, parse_rfc3339(to)?))
}

pub async fn finish(dr: &Dr, req: FinishRequest) -> Result<RunRecord, StepError> {
    let plan = &req.plan;
    let now = OffsetDateTime::now_utc();
    let group = records::group(dr, &plan.group).await?;
    let instances = run_instances(&dr.ec2, &plan.run_id, None, &ANY_STATE).await?;
    let host_of =
        |i: &aws_sdk_ec2::types::Instance| tag(i, ferry_core::tags::HOST).map(str::to_string);
    let mut hosts = Vec::new();
    for t in &plan.tiers {
        for h in &t.hosts {
            // The instance the tier's last check found (a drill's is terminated by now).
            let checked = req
                .tiers
                .iter()
                .flat_map(|c| c.hosts.iter())
                .find(|c| c.host == h.host);
            let inst = instances.iter().find(|i| {
                host_of(i).as_deref() == Some(h.host.as_str())
                    && checked
                        .and_then(|c| c.instance_id.as_deref())
                        .is_none_or(|id| i.instance_id() == Some(id))
            });
            hosts.push(HostOutcome {
                host: h.host.clone(),
                tier: t.tier.clone(),
                point: h.point.clone(),
                point_created: h.point_created.clone(),
                image_id: h.image_id.clone(),
                instance_id: inst.and_then(|i| i.instance_id().map(str::to_string)),
                instance_type: inst.and_then(|i| i.instance_type().map(|t| t.as_str().to_string())),
                private_ip: inst
                    .and_then(|i| i.private_ip_address().map(str::to_string))
                    .or_else(|| checked.and_then(|c| c.private_ip.clone())),
                rpo_s: secs(&h.point_created, &plan.failed_at).unwrap_or(0.0),
            });
        }
    }
    let tiers: Vec<TierOutcome> = req
        .tiers
        .iter()
        .map(|c| TierOutcome {
            tier: c.tier.clone(),
            ready_at: c.checked_at.clone(),
            ready_after_s: secs(&plan.started, &c.checked_at).unwrap_or(0.0),
        })
        .collect();
    let switched_at = req.switched.as_ref().map(|s| s.switched_at.clone());
    let rto_s = match plan.mode {
        Mode::Failover => switched_at.as_deref().and_then(|s| secs(&plan.alarm_at, s)),
        Mode::Drill => tiers.last().and_then(|t| secs(&plan.alarm_at, &t.ready_at)),
    };
    let rpo_s = hosts
        .iter()
        .map(|h| h.rpo_s)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let (instance_seconds, cost_usd, price_source) = match plan.mode {
        Mode::Drill => {
            let (s, c, src) = drill_cost(&instances, now);
            (Some(s), Some(c), Some(src))
        }
        Mode::Failover => (None, None, None),
    };
    let status = match plan.mode {
        Mode::Failover => FAILED_OVER,
        Mode::Drill => "drilled",
    };
    let rto_text = rto_s
        .map(|r| format!("{r:.0} s"))
        .unwrap_or_else(|| "?".into());
    let rpo_text = rpo_s
        .map(|r| format!("{r:.0} s"))
        .unwrap_or_else(|| "?".into());
    let summary = match plan.mode {
        Mode::Failover => format!(
            "{} failed over: {} hosts in {} tiers, traffic switched; RTO {rto_text} (target {} s), worst RPO {rpo_text} (target {} s)",
            plan.group, hosts.len(), tiers.len(), group.rto_s, group.rpo_s
        ),
        Mode::Drill => format!(
            "drill of {}: {} hosts in {} tiers up in {rto_text} (RTO target {} s), all removed; cost ${:.4}",
            plan.group, hosts.len(), tiers.len(), group.rto_s, cost_usd.unwrap_or(0.0)
        ),
    };
    let run = RunRecord {
        run_id: plan.run_id.clone(),
        group: plan.group.clone(),
        run_type: plan.mode.as_str().to_string(),
        status: status.to_string(),
        summary,
        trigger: records::run(dr, &plan.group, &plan.run_id)
            .await?
            .map(|r| r.trigger)
            .unwrap_or_else(|| Trigger {
                kind: "manual".into(),
                alarm: None,
                at: plan.alarm_at.clone(),
                reason: None,
            }),
        started: plan.started.clone(),
        finished: Some(rfc3339(now)),
        alarm_at: Some(plan.alarm_at.clone()),
        failed_at: Some(plan.failed_at.clone()),
        traffic_switched_at: switched_at,
        rto_s,
        rto_target_s: Some(group.rto_s),
        rpo_target_s: Some(group.rpo_s),
        rpo_s,
        hosts,
        tiers,
        states: states(dr, &req.execution_arn).await,
        switched: req.switched.clone(),
        instance_seconds,
        cost_usd,
        price_source,
        error: None,
        cause: None,
    };
    records::put_run(dr, &run).await?;
    match plan.mode {
        Mode::Failover => dr
            .lock(&plan.group, locks::FAILOVER, &plan.run_id)
            .keep(FAILED_OVER)
            .await
            .map_err(|e| crate::begin::lock_error(&plan.group, e))?,
        Mode::Drill => dr
            .lock(&plan.group, locks::DRILL, &plan.run_id)
            .release()
            .await
            .map_err(|e| crate::begin::lock_error(&plan.group, e))?,
    }
    tracing::info!(group = %plan.group, run = %plan.run_id, status, "recorded");
    Ok(run)
}

/// Instance-seconds of the run's instances (launch to `end`) and their cost at the
/// list price, with the price list's source.
fn drill_cost(
    instances: &[aws_sdk_ec2::types::Instance],
    end: OffsetDateTime,
) -> (f64, f64, String) {
    let prices = ferry_core::prices::price_list().ok();
    let mut seconds = 0.0;
    let mut cost = 0.0;
    for i in instances {
        let Some(launched) = i
            .launch_time()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
        else {
            continue;
        };
        let s = seconds_between(launched, end);
        seconds += s;
        let hourly = i
            .instance_type()
            .and_then(|t| prices.as_ref()?.hourly.get(t.as_str()).copied())
            .unwrap_or(0.0);
        cost += ferry_core::prices::cost_usd(hourly, s);
    }
    let source = prices
        .map(|p| format!("{} ({})", p.source, p.data_date))
        .unwrap_or_else(|| "no price list".into());
    (seconds, cost, source)
}

pub async fn fail(dr: &Dr, req: FailRequest) -> Result<RunRecord, StepError> {
    let now = OffsetDateTime::now_utc();
    let mut run = match records::run(dr, &req.group, &req.run_id).await? {
        Some(r) => r,
        None => RunRecord::started(
            &req.run_id,
            &req.group,
            req.mode,
            Trigger {
                kind: "unknown".into(),
                alarm: None,
                at: rfc3339(now),
                reason: None,
            },
            rfc3339(now),
        ),
    };
    let (error, cause) = req.error.reason();
    run.status = "failed".into();
    run.summary = format!(
        "{} of {} failed ({error}): {cause}; what it launched was removed",
        req.mode.as_str(),
        req.group
    );
    run.finished = Some(rfc3339(now));
    run.states = states(dr, &req.execution_arn).await;
    run.error = Some(error);
    run.cause = Some(cause);
    records::put_run(dr, &run).await?;
    let kind = match req.mode {
        Mode::Failover => locks::FAILOVER,
        Mode::Drill => locks::DRILL,
    };
    dr.lock(&req.group, kind, &req.run_id)
        .release()
        .await
        .map_err(|e| crate::begin::lock_error(&req.group, e))?;
    tracing::warn!(group = %req.group, run = %req.run_id, error = ?run.error, cause = ?run.cause, "run failed");
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_sum_visits_and_pair_parallel_iterations() {
        let e = |entered: bool, name: &str, at: f64| match entered {
            true => Event::Entered {
                name: name.into(),
                at,
            },
            false => Event::Exited {
                name: name.into(),
                at,
            },
        };
        let events = vec![
            e(true, "TakeGroupLock", 0.0),
            e(false, "TakeGroupLock", 1.0),
            e(true, "LaunchHost", 1.0),
            e(true, "LaunchHost", 1.5),
            e(false, "LaunchHost", 2.0),
            e(false, "LaunchHost", 3.5),
            e(true, "WaitForTier", 3.5),
            e(false, "WaitForTier", 4.5),
            e(true, "WaitForTier", 5.0),
            e(false, "WaitForTier", 6.0),
            Event::Other,
            e(true, "RecordRun", 6.0),
        ];
        let s = spans(&events);
        let get = |n: &str| s.iter().find(|x| x.name == n).unwrap().clone();
        assert_eq!(s[0].name, "TakeGroupLock");
        assert_eq!(
            (get("LaunchHost").seconds, get("LaunchHost").visits),
            (3.0, 2)
        );
        assert_eq!(
            (get("WaitForTier").seconds, get("WaitForTier").visits),
            (2.0, 2)
        );
        // Still running: listed, no time yet.
        assert_eq!(get("RecordRun").visits, 0);
    }
}
