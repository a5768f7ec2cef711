//! The failback steps the function takes (the disk work is the appliance's):
//! `failback_begin` hands the group's FAILED_OVER lock to the run and plans what goes
//! home; `failback_cutover` marks the point of no abort; `failback_finish` records
//! the run and releases the lock (the group is PROTECTED again); `failback_fail`
//! records why a run stopped and hands the lock back to the failover run.

use ferry_aws::lock::LockError;
use ferry_core::keys::{self, kinds, locks};
use ferry_core::steps::errors;
use ferry_core::steps::failback::{
    orders, pass_key, phases, Cutover, FailbackBeginRequest, FailbackFailRequest,
    FailbackFinishRequest, FailbackPlan, FailbackRecord, FailbackRef, HostHome, PassReport,
    TierHome,
};
use ferry_core::steps::failover::{parse_rfc3339, rfc3339, seconds_between, RunRecord};
use ferry_fn::StepError;
use ferry_fn_launch::handler::{run_instances, tag};
use time::OffsetDateTime;

use crate::records::{self, table_error};
use crate::Dr;

async fn record(dr: &Dr, group: &str, run_id: &str) -> Result<Option<FailbackRecord>, StepError> {
    dr.table
        .get(&keys::group_run(group, run_id))
        .await
        .map_err(table_error)
}

async fn put(dr: &Dr, r: &FailbackRecord) -> Result<(), StepError> {
    dr.table
        .put(&keys::group_run(&r.group, &r.run_id), kinds::RUN, r)
        .await
        .map_err(table_error)
}

fn locked(group: &str, e: LockError) -> StepError {
    crate::begin::lock_error(group, e)
}

/// Which failover run the group is failed over by, from its lock: only a group that
/// failed over (or whose last failback failed after its cutover) can fail back.
async fn failed_over_by(dr: &Dr, req: &FailbackBeginRequest) -> Result<String, StepError> {
    let g = &req.group;
    let lock = dr.lock(g, locks::FAILOVER, &req.run_id);
    let state = lock.read().await.map_err(|e| locked(g, e))?;
    let Some(l) = state.filter(|l| l.held(ferry_aws::lock::now())) else {
        return Err(StepError::named(
            errors::NOT_FAILED_OVER,
            format!("group {g} is not failed over (its lock is free): nothing to fail back"),
        ));
    };
    if l.holder == req.run_id {
        // A retried begin: the lock is this run's already.
        let r = record(dr, g, &req.run_id).await?.ok_or_else(|| {
            StepError::NonRetryable(format!(
                "run {} holds group {g} but has no run item",
                req.run_id
            ))
        })?;
        return Ok(r.failover_run);
    }
    match l.state.as_deref() {
        Some(locks::FAILED_OVER) | Some(locks::FAILBACK_FAILED) => Ok(l.holder),
        Some(locks::FAILING_BACK) => Err(StepError::named(
            errors::GROUP_LOCKED,
            format!(
                "group {g} is failing back already (run {}): one failback at a time",
                l.holder
            ),
        )),
        other => Err(StepError::named(
            errors::NOT_FAILED_OVER,
            format!(
                "group {g} is {} (run {}), not failed over: nothing to fail back",
                other.unwrap_or("locked"),
                l.holder
            ),
        )),
    }
}

pub async fn begin(dr: &Dr, req: FailbackBeginRequest) -> Result<FailbackPlan, StepError> {
    let g = &req.group;
    let group = records::group(dr, g).await?;
    let failover_run = failed_over_by(dr, &req).await?;
    let run: RunRecord = records::run(dr, g, &failover_run).await?.ok_or_else(|| {
        StepError::NonRetryable(format!(
            "group {g}: failover run {failover_run} has no run item"
        ))
    })?;
    let running = run_instances(&dr.ec2, &failover_run, None, &["running"]).await?;
    let mut missing = Vec::new();
    let mut boot_order = Vec::new();
    for t in &group.tiers {
        let mut hosts = Vec::new();
        for h in &t.hosts {
            let launched = run.hosts.iter().find(|o| o.host == h.host);
            let instance = running
                .iter()
                .find(|i| tag(i, ferry_core::tags::HOST) == Some(h.host.as_str()));
            match (
                launched,
                instance.and_then(|i| Some((i.instance_id()?, i.private_ip_address()?))),
            ) {
                (Some(o), Some((id, ip))) => hosts.push(HostHome {
                    host: h.host.clone(),
                    tier: t.name.clone(),
                    instance_id: id.to_string(),
                    recovery_ip: ip.to_string(),
                    launched_point: o.point.clone(),
                }),
                _ => missing.push(h.host.clone()),
            }
        }
        boot_order.push(TierHome {
            tier: t.name.clone(),
            hosts,
            timeout_s: group.tier_timeout_s,
        });
    }
    if !missing.is_empty() {
        return Err(StepError::NonRetryable(format!(
            "group {g}: no running recovery instance of {} from failover run {failover_run}: nothing was touched",
            missing.join(", ")
        )));
    }
    let (hosts, tiers_out, tiers_in) = orders(boot_order);
    let existing = record(dr, g, &req.run_id).await?;
    let plan = FailbackPlan {
        run_id: req.run_id.clone(),
        group: g.clone(),
        failover_run: failover_run.clone(),
        started: existing
            .as_ref()
            .map(|r| r.started.clone())
            .unwrap_or_else(|| rfc3339(OffsetDateTime::now_utc())),
        heartbeat_s: req.heartbeat_s.max(5),
        hosts,
        tiers_out,
        tiers_in,
    };
    if existing.is_none() {
        put(dr, &FailbackRecord::started(&plan, req.trigger.clone())).await?;
    }
    dr.lock(g, locks::FAILOVER, &failover_run)
        .hand_over(
            &req.run_id,
            locks::FAILING_BACK,
            &[locks::FAILED_OVER, locks::FAILBACK_FAILED],
        )
        .await
        .map_err(|e| locked(g, e))?;
    tracing::info!(group = %g, run = %req.run_id, failover = %failover_run, "failback begun");
    Ok(plan)
}

/// From here the run cannot be aborted: refused (as `FailbackAborted`) when an abort
/// was asked first.
pub async fn cutover(dr: &Dr, req: FailbackRef) -> Result<Cutover, StepError> {
    let now = rfc3339(OffsetDateTime::now_utc());
    let key = keys::group_run(&req.group, &req.run_id);
    let mut fields = serde_json::Map::new();
    fields.insert("phase".into(), phases::CUTOVER.into());
    fields.insert("cutover_started".into(), now.clone().into());
    let done = dr
        .table
        .update_if(
            &key,
            &fields,
            None,
            "attribute_not_exists(abort_requested)",
            &[],
        )
        .await
        .map_err(table_error)?;
    if !done {
        let r = record(dr, &req.group, &req.run_id).await?;
        if let Some(started) = r.as_ref().and_then(|r| r.cutover_started.clone()) {
            // A retried step: the cutover began already.
            if r.as_ref().is_some_and(|r| r.phase == phases::CUTOVER) {
                return Ok(Cutover { started });
            }
        }
        return Err(StepError::named(
            errors::FAILBACK_ABORTED,
            format!(
                "failback {} of group {} was aborted before its cutover",
                req.run_id, req.group
            ),
        ));
    }
    tracing::info!(group = %req.group, run = %req.run_id, "cutover begins");
    Ok(Cutover { started: now })
}

fn sum(passes: &[&PassReport], f: impl Fn(&PassReport) -> u64) -> u64 {
    passes.iter().map(|p| f(p)).sum()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

pub async fn finish(dr: &Dr, req: FailbackFinishRequest) -> Result<FailbackRecord, StepError> {
    let plan = &req.plan;
    let mut r = record(dr, &plan.group, &plan.run_id)
        .await?
        .ok_or_else(|| StepError::NonRetryable(format!("run {} has no run item", plan.run_id)))?;
    for p in req.first_pass.iter().chain(&req.final_pass) {
        r.passes.insert(pass_key(&p.host, p.pass), p.clone());
    }
    let now = OffsetDateTime::now_utc();
    let passes: Vec<&PassReport> = r.passes.values().collect();
    r.bytes_uploaded = Some(sum(&passes, |p| p.bytes_uploaded));
    r.origin_bytes_written = Some(sum(&passes, |p| p.origin_bytes_written));
    r.cutover_started = Some(req.cutover.started.clone());
    let ended = req
        .started
        .iter()
        .filter_map(|t| parse_rfc3339(&t.done_at))
        .max()
        .unwrap_or(now);
    r.cutover_ended = Some(rfc3339(ended));
    r.cutover_s = parse_rfc3339(&req.cutover.started)
        .map(|s| (seconds_between(s, ended) * 1000.0).round() / 1000.0);
    r.switched = Some(req.switched.clone());
    r.stopped = req.stopped.clone();
    r.started_tiers = req.started.clone();
    r.status = "failed-back".into();
    r.finished = Some(rfc3339(now));
    r.summary = format!(
        "group {} is home: {} hosts, cutover {:.1} s, {} uploaded, {} written to the origin",
        plan.group,
        plan.hosts.len(),
        r.cutover_s.unwrap_or(0.0),
        mib(r.bytes_uploaded.unwrap_or(0)),
        mib(r.origin_bytes_written.unwrap_or(0))
    );
    put(dr, &r).await?;
    dr.lock(&plan.group, locks::FAILOVER, &plan.run_id)
        .release()
        .await
        .map_err(|e| locked(&plan.group, e))?;
    tracing::info!(group = %plan.group, run = %plan.run_id, "failed back");
    Ok(r)
}

/// `None` when the run stopped before it began (no run item, the lock never handed
/// over): nothing to record or hand back.
pub async fn fail(dr: &Dr, req: FailbackFailRequest) -> Result<Option<FailbackRecord>, StepError> {
    let Some(mut r) = record(dr, &req.group, &req.run_id).await? else {
        tracing::warn!(group = %req.group, run = %req.run_id, error = %req.error.error, "failback stopped before it began");
        return Ok(None);
    };
    let after_cutover = r.phase == phases::CUTOVER;
    let state = match after_cutover {
        true => locks::FAILBACK_FAILED,
        false => locks::FAILED_OVER,
    };
    dr.lock(&req.group, locks::FAILOVER, &req.run_id)
        .hand_over(&r.failover_run, state, &[locks::FAILING_BACK])
        .await
        .or_else(|e| match e {
            // Never handed to this run (begin stopped first): nothing to hand back.
            LockError::Held { .. } => Ok(()),
            e => Err(e),
        })
        .map_err(|e| locked(&req.group, e))?;
    let aborted = req.error.error == errors::FAILBACK_ABORTED;
    r.status = if aborted { "aborted" } else { "failed" }.into();
    r.finished = Some(rfc3339(OffsetDateTime::now_utc()));
    r.error = Some(req.error.error.clone());
    r.cause = Some(req.error.cause.clone());
    let partial: Vec<String> = r
        .partial_hosts()
        .iter()
        .map(|(h, b)| format!("{h} ({})", mib(*b)))
        .collect();
    let origin = match partial.is_empty() {
        true => "no origin disk was left part-written".to_string(),
        false => format!(
            "origin disks left part-written (not a consistent image; the next failback compares against them): {}",
            partial.join(", ")
        ),
    };
    r.summary = match (aborted, after_cutover) {
        (true, _) => format!(
            "failback of {} aborted before its cutover: the group runs in AWS as before (FAILED_OVER); {origin}",
            req.group
        ),
        (false, false) => format!(
            "failback of {} failed before its cutover: the group runs in AWS as before (FAILED_OVER); {origin}",
            req.group
        ),
        (false, true) => format!(
            "failback of {} failed during its cutover: see `switched` for where traffic points; run `ferry failback {}` again",
            req.group, req.group
        ),
    };
    put(dr, &r).await?;
    tracing::warn!(group = %req.group, run = %req.run_id, error = %req.error.error, "failback stopped");
    Ok(Some(r))
}
