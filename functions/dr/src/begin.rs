//! `begin`: take the group's lock (a second failover is refused at once, naming the
//! holder; a failover preempts a running drill; a drill never starts beside a
//! failover), choose each host's recovery point (the newest with a built image, or the
//! newest at or before the time asked), and plan the launches tier by tier.

use ferry_aws::lock::LockError;
use ferry_core::group::GroupRecord;
use ferry_core::keys::locks;
use ferry_core::steps::errors;
use ferry_core::steps::failover::{
    choose_point, parse_rfc3339, rfc3339, BeginRequest, HostPlan, Mode, Plan, RunRecord, TierPlan,
};
use ferry_core::steps::{InstanceRequest, LaunchSpec};
use ferry_fn::StepError;
use time::OffsetDateTime;

use crate::records::{self, Origin};
use crate::Dr;

pub use ferry_core::keys::locks::{FAILED_OVER, FAILING_OVER};

pub fn lock_error(group: &str, e: LockError) -> StepError {
    match e {
        LockError::Held { holder, expires } => {
            let until = match expires >= ferry_aws::lock::FOREVER {
                true => "until it is failed back".to_string(),
                false => format!(
                    "until {}",
                    OffsetDateTime::from_unix_timestamp(expires)
                        .map(rfc3339)
                        .unwrap_or_else(|_| expires.to_string())
                ),
            };
            StepError::named(
                errors::GROUP_LOCKED,
                format!("group {group} is locked by run {holder} ({until}): nothing was launched"),
            )
        }
        LockError::Preempted { by } => StepError::named(
            errors::DRILL_PREEMPTED,
            format!("the drill of group {group} was preempted by {by}: a failover goes first; the drill removes what it launched"),
        ),
        LockError::Call(c) => c.into(),
    }
}

/// Takes the locks the run needs; returns nothing else of the group's state.
async fn lock(dr: &Dr, req: &BeginRequest) -> Result<(), StepError> {
    let g = &req.group;
    match req.mode {
        Mode::Failover => {
            dr.lock(g, locks::FAILOVER, &req.run_id)
                .take_in(Some(FAILING_OVER))
                .await
                .map_err(|e| lock_error(g, e))?;
            // A drill of the group stops and cleans up: the failover goes on beside it.
            if dr
                .lock(g, locks::DRILL, &req.run_id)
                .preempt()
                .await
                .map_err(|e| lock_error(g, e))?
            {
                tracing::warn!(group = %g, run = %req.run_id, "a drill of the group is running: preempted");
            }
        }
        Mode::Drill => {
            let key = ferry_core::keys::group_lock(g, locks::FAILOVER);
            let failover = ferry_aws::lock::held(&dr.ddb, &dr.settings.table, &key)
                .await
                .map_err(|e| lock_error(g, e))?;
            if let Some(f) = failover {
                return Err(StepError::named(
                    errors::GROUP_LOCKED,
                    format!(
                        "group {g} is {} (run {}): no drill while it is",
                        f.state.as_deref().unwrap_or(FAILING_OVER),
                        f.holder
                    ),
                ));
            }
            dr.lock(g, locks::DRILL, &req.run_id)
                .take()
                .await
                .map_err(|e| lock_error(g, e))?;
        }
    }
    Ok(())
}

/// The failure time the RPO is measured to: the last moment an observer saw the origin
/// healthy, no later than the trigger; the trigger's time when none saw it since.
pub fn failed_at(origin: &Origin, trigger: OffsetDateTime) -> OffsetDateTime {
    [&origin.appliance_last_healthy, &origin.aws_last_reachable]
        .into_iter()
        .flatten()
        .filter_map(|t| parse_rfc3339(t))
        .filter(|t| *t <= trigger)
        .max()
        .unwrap_or(trigger)
}

/// Everything `begin` decides once the lock is taken, from the group and the points.
pub fn plan(
    req: &BeginRequest,
    group: &GroupRecord,
    chosen: &[(String, ferry_core::steps::failover::PointChoice)],
    now: OffsetDateTime,
    failed_at: OffsetDateTime,
) -> Result<Plan, StepError> {
    let drill = match req.mode {
        Mode::Drill => Some(group.drill.as_ref().ok_or_else(|| {
            StepError::NonRetryable(format!(
                "group {} has no drill subnet: set `drill_subnet` in its [[group]] and run `ferry protect {}`",
                group.name, group.name
            ))
        })?),
        Mode::Failover => None,
    };
    let tiers = group
        .tiers
        .iter()
        .map(|t| TierPlan {
            tier: t.name.clone(),
            ready: t.ready,
            hosts: t
                .hosts
                .iter()
                .filter_map(|h| {
                    let (_, p) = chosen.iter().find(|(host, _)| host == &h.host)?;
                    let image_id = p.image_id.clone()?;
                    let (subnet_id, private_ip, security_group_ids) = match drill {
                        // A drill runs beside the origin (and its recovery addresses):
                        // in the drill subnet, with addresses the subnet gives.
                        Some(d) => (
                            d.subnet_id.clone(),
                            None,
                            match d.security_group_ids.is_empty() {
                                true => h.security_group_ids.clone(),
                                false => d.security_group_ids.clone(),
                            },
                        ),
                        None => (
                            h.subnet_id.clone(),
                            h.private_ip.clone(),
                            h.security_group_ids.clone(),
                        ),
                    };
                    Some(HostPlan {
                        host: h.host.clone(),
                        point: p.point.clone(),
                        point_created: rfc3339(p.created),
                        image_id: image_id.clone(),
                        launch: InstanceRequest::Launch(LaunchSpec {
                            run_id: req.run_id.clone(),
                            host: h.host.clone(),
                            image_id,
                            instance_type: h.instance_type.clone(),
                            subnet_id,
                            private_ip,
                            security_group_ids,
                            group: Some(group.name.clone()),
                        }),
                    })
                })
                .collect(),
        })
        .collect();
    let poll_s = group.poll_s.max(1);
    Ok(Plan {
        run_id: req.run_id.clone(),
        group: group.name.clone(),
        mode: req.mode,
        started: rfc3339(now),
        alarm_at: req.trigger.at.clone(),
        failed_at: rfc3339(failed_at),
        poll_s,
        max_polls: group.tier_timeout_s.div_ceil(poll_s).max(1),
        deadline: drill.map(|d| rfc3339(now + time::Duration::seconds(d.time_limit_s as i64))),
        tiers,
    })
}

pub async fn begin(dr: &Dr, req: BeginRequest) -> Result<Plan, StepError> {
    let now = OffsetDateTime::now_utc();
    let group = records::group(dr, &req.group).await?;
    lock(dr, &req).await?;
    let at = match &req.at {
        Some(a) => Some(parse_rfc3339(a).ok_or_else(|| {
            StepError::NonRetryable(format!("`at` {a:?} is not an RFC 3339 time"))
        })?),
        None => None,
    };
    let mut chosen = Vec::new();
    let mut missing = Vec::new();
    for h in group.hosts() {
        let points = records::points(dr, &h.host).await?;
        match choose_point(&points, at) {
            Some(p) => chosen.push((h.host.clone(), p.clone())),
            None => missing.push(match points.first() {
                None => format!("{} has no recovery point", h.host),
                Some(newest) => format!(
                    "{} has no point with a built image{} (newest point {} {})",
                    h.host,
                    req.at
                        .as_ref()
                        .map(|a| format!(" at or before {a}"))
                        .unwrap_or_default(),
                    newest.point,
                    if newest.image_id.is_some() {
                        "is built"
                    } else {
                        "is not built yet"
                    }
                ),
            }),
        }
    }
    if !missing.is_empty() {
        return Err(StepError::named(
            errors::NO_RECOVERY_POINT,
            format!("{}: nothing was launched", missing.join("; ")),
        ));
    }
    let trigger_at = parse_rfc3339(&req.trigger.at).unwrap_or(now);
    let origin = records::origin(dr, &req.group).await?;
    let plan = plan(&req, &group, &chosen, now, failed_at(&origin, trigger_at))?;
    let mut run = RunRecord::started(
        &req.run_id,
        &req.group,
        req.mode,
        req.trigger.clone(),
        plan.started.clone(),
    );
    run.summary = format!(
        "{} of {}: {} hosts in {} tiers",
        req.mode.as_str(),
        req.group,
        chosen.len(),
        plan.tiers.len()
    );
    run.alarm_at = Some(plan.alarm_at.clone());
    run.failed_at = Some(plan.failed_at.clone());
    run.rto_target_s = Some(group.rto_s);
    run.rpo_target_s = Some(group.rpo_s);
    records::put_run(dr, &run).await?;
    tracing::info!(group = %req.group, run = %req.run_id, mode = req.mode.as_str(), "begun");
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_failure_is_the_last_time_anyone_saw_the_origin_up() {
        let trigger = datetime!(2026-11-30 12:00 UTC);
        let o = Origin {
            appliance_last_healthy: Some("2026-11-30T11:56:00Z".into()),
            aws_last_reachable: Some("2026-11-30T11:57:00Z".into()),
            ..Default::default()
        };
        assert_eq!(failed_at(&o, trigger), datetime!(2026-11-30 11:57 UTC));
        // Never later than the trigger; nothing seen: the trigger.
        let later = Origin {
            appliance_last_healthy: Some("2026-11-30T12:05:00Z".into()),
            ..Default::default()
        };
        assert_eq!(failed_at(&later, trigger), trigger);
        assert_eq!(failed_at(&Origin::default(), trigger), trigger);
    }
}
