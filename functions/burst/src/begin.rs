//! `begin` of a burst and of a scale-in: take the tier's lock (a run of the same kind
//! holding it ends this one at once: repeated alarms do not stack; a run of the other
//! kind is waited for), then check everything the run needs before it changes
//! anything, and plan.

use ferry_aws::autoscaling;
use ferry_aws::lock::LockError;
use ferry_core::burst::{burst_desired, scale_in_victims, BurstTier, RunKind};
use ferry_core::steps::burst::{BeginRequest, BurstPlan, ScaleInPlan};
use ferry_core::steps::errors;
use ferry_core::steps::failover::rfc3339;
use ferry_fn::StepError;
use time::OffsetDateTime;

use crate::{capacity, image, traffic, Burst};

async fn lock(b: &Burst, req: &BeginRequest, kind: RunKind) -> Result<(), StepError> {
    match b
        .lock(&req.tier, &req.run_id)
        .take_in(Some(kind.lock_state()))
        .await
    {
        Ok(()) => Ok(()),
        Err(LockError::Held { holder, .. }) => {
            let same = holder.starts_with(&format!("{}-", kind.as_str()));
            match same {
                true => Err(StepError::named(
                    errors::ALREADY_RUNNING,
                    format!(
                        "{holder} is already running for tier {}: this alarm adds nothing",
                        req.tier
                    ),
                )),
                false => Err(StepError::named(
                    errors::TIER_BUSY,
                    format!("tier {} is held by {holder}: waiting for it", req.tier),
                )),
            }
        }
        Err(LockError::Preempted { by }) => Err(StepError::NonRetryable(format!(
            "tier {} was taken over by {by}",
            req.tier
        ))),
        Err(LockError::Call(c)) => Err(c.into()),
    }
}

fn not_found(what: String) -> StepError {
    StepError::named(errors::NOT_FOUND, format!("{what}: nothing was changed"))
}

pub async fn group(b: &Burst, tier: &BurstTier) -> Result<autoscaling::Group, StepError> {
    autoscaling::group(&b.autoscaling, &tier.auto_scaling_group)
        .await?
        .ok_or_else(|| {
            not_found(format!(
                "Auto Scaling group {} of tier {} does not exist: run `ferry burst setup {}`",
                tier.auto_scaling_group, tier.tier, tier.tier
            ))
        })
}

pub async fn burst(b: &Burst, req: BeginRequest) -> Result<BurstPlan, StepError> {
    let tier = b.tier(&req.tier).await?;
    lock(b, &req, RunKind::Burst).await?;
    let (point, image_id) = image::newest(b, &tier.golden).await?.ok_or_else(|| {
        StepError::named(
            errors::NO_IMAGE,
            format!(
                "golden host {} of tier {} has no built image yet: capture it and let its image build finish; nothing was changed",
                tier.golden, tier.tier
            ),
        )
    })?;
    traffic::target_group_delay(b, &tier).await?;
    if ferry_aws::launch_template::latest(&b.ec2, &tier.launch_template)
        .await?
        .is_none()
    {
        return Err(not_found(format!(
            "launch template {} of tier {} does not exist: run `ferry burst setup {}`",
            tier.launch_template, tier.tier, tier.tier
        )));
    }
    let g = group(b, &tier).await?;
    let desired = burst_desired(g.desired, &tier);
    tracing::info!(tier = %tier.tier, run = %req.run_id, from = g.desired, to = desired, image = %image_id, "burst planned");
    Ok(BurstPlan {
        run_id: req.run_id,
        tier: tier.tier.clone(),
        started: rfc3339(OffsetDateTime::now_utc()),
        image_id,
        point,
        desired_before: g.desired,
        desired,
        max: tier.max,
        poll_s: tier.poll_s,
        max_polls: tier.max_polls,
    })
}

pub async fn scale_in(b: &Burst, req: BeginRequest) -> Result<ScaleInPlan, StepError> {
    let tier = b.tier(&req.tier).await?;
    lock(b, &req, RunKind::ScaleIn).await?;
    let drain_s = traffic::drain_s(b, &tier).await?;
    let g = group(b, &tier).await?;
    let instances = capacity::with_details(b, &g).await?;
    let victims = scale_in_victims(&instances, tier.min);
    let victim_targets = traffic::targets_of(&tier, &victims);
    tracing::info!(tier = %tier.tier, run = %req.run_id, victims = victims.len(), "scale-in planned");
    Ok(ScaleInPlan {
        run_id: req.run_id,
        tier: tier.tier.clone(),
        started: rfc3339(OffsetDateTime::now_utc()),
        desired_before: g.desired,
        min: tier.min,
        any: !victims.is_empty() || g.desired > tier.min,
        victims: victims.into_iter().map(|i| i.instance_id).collect(),
        victim_targets,
        drain_s,
        poll_s: tier.poll_s,
        max_polls: tier.max_polls,
    })
}
