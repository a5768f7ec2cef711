//! The end of a burst or scale-in: the run item (`BURST#<tier>` / `RUN#<run id>`) with
//! its times (run start and alarm to capacity in service, or to the instances gone),
//! scaling resumed after a scale-in, the tier's lock released. A failed run is recorded
//! with its reason the same way.

use ferry_aws::autoscaling;
use ferry_core::burst::RunKind;
use ferry_core::keys::{self, kinds};
use ferry_core::steps::burst::{BurstRun, FailRequest, FinishRequest};
use ferry_core::steps::failover::{parse_rfc3339, rfc3339};
use ferry_fn::StepError;
use time::OffsetDateTime;

use crate::{table_error, Burst};

fn seconds(from: &str, to: OffsetDateTime) -> Option<f64> {
    parse_rfc3339(from).map(|f| ((to - f).as_seconds_f64() * 10.0).round() / 10.0)
}

async fn put(b: &Burst, run: &BurstRun) -> Result<(), StepError> {
    b.table
        .put(&keys::burst_run(&run.tier, &run.run_id), kinds::RUN, run)
        .await
        .map_err(table_error)
}

/// After a scale-in (done or failed), target tracking may scale out again.
async fn resume_scaling(b: &Burst, tier: &str) -> Result<(), StepError> {
    let t = b.tier(tier).await?;
    if let Some(g) = autoscaling::group(&b.autoscaling, &t.auto_scaling_group).await? {
        if g.suspended
            .iter()
            .any(|p| p == autoscaling::ALARM_NOTIFICATION)
        {
            autoscaling::resume(&b.autoscaling, &g.name, autoscaling::ALARM_NOTIFICATION).await?;
        }
    }
    Ok(())
}

async fn release(b: &Burst, tier: &str, run_id: &str) -> Result<(), StepError> {
    b.lock(tier, run_id).release().await.map_err(|e| match e {
        ferry_aws::lock::LockError::Call(c) => c.into(),
        other => StepError::NonRetryable(other.to_string()),
    })
}

pub async fn finish(b: &Burst, req: FinishRequest) -> Result<BurstRun, StepError> {
    let now = OffsetDateTime::now_utc();
    if req.kind == RunKind::ScaleIn {
        resume_scaling(b, &req.tier).await?;
    }
    let summary = match req.kind {
        RunKind::Burst if req.desired <= req.desired_before => format!(
            "tier {} already had {} instance(s) asked for in AWS: nothing added",
            req.tier, req.desired_before
        ),
        RunKind::Burst => format!(
            "tier {} burst from {} to {} instance(s) in AWS from {}, in service",
            req.tier,
            req.desired_before,
            req.desired,
            req.image_id.as_deref().unwrap_or("its image")
        ),
        RunKind::ScaleIn if req.instances.is_empty() => format!(
            "tier {} had nothing in AWS above its minimum ({})",
            req.tier, req.desired
        ),
        RunKind::ScaleIn => format!(
            "tier {} scaled in from {} to {} instance(s) in AWS; {} drained and terminated",
            req.tier,
            req.desired_before,
            req.desired,
            req.instances.join(", ")
        ),
    };
    let run = BurstRun {
        run_id: req.run_id.clone(),
        tier: req.tier.clone(),
        run_kind: req.kind,
        status: "succeeded".into(),
        execution_arn: req.execution_arn,
        run_s: seconds(&req.started, now),
        alarm_to_done_s: seconds(&req.trigger.at, now),
        trigger: req.trigger,
        started: req.started,
        finished: rfc3339(now),
        desired_before: Some(req.desired_before),
        desired: Some(req.desired),
        image_id: req.image_id,
        instances: req.instances,
        error: None,
        cause: None,
        summary,
    };
    put(b, &run).await?;
    release(b, &req.tier, &req.run_id).await?;
    tracing::warn!(tier = %run.tier, run = %run.run_id, "{}", run.summary);
    Ok(run)
}

pub async fn fail(b: &Burst, req: FailRequest) -> Result<BurstRun, StepError> {
    let now = OffsetDateTime::now_utc();
    if req.kind == RunKind::ScaleIn {
        if let Err(e) = resume_scaling(b, &req.tier).await {
            tracing::error!(tier = %req.tier, "cannot resume scaling after the failed scale-in: {e}");
        }
    }
    let (error, cause) = req.error.reason();
    let run = BurstRun {
        run_id: req.run_id.clone(),
        tier: req.tier.clone(),
        run_kind: req.kind,
        status: "failed".into(),
        execution_arn: req.execution_arn,
        started: req.trigger.at.clone(),
        trigger: req.trigger,
        finished: rfc3339(now),
        desired_before: None,
        desired: None,
        image_id: None,
        instances: Vec::new(),
        run_s: None,
        alarm_to_done_s: None,
        summary: format!(
            "{} of tier {} failed ({error}): {cause}",
            req.kind.as_str(),
            req.tier
        ),
        error: Some(error),
        cause: Some(cause),
    };
    put(b, &run).await?;
    release(b, &req.tier, &req.run_id).await?;
    tracing::error!(tier = %run.tier, run = %run.run_id, "{}", run.summary);
    Ok(run)
}
