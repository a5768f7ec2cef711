//! Where traffic reaches the tier: a hybrid target group (the on-prem servers and the
//! AWS instances side by side) and/or Route 53 weighted records (a record set of the
//! on-prem servers and one of the AWS instances). Instances are admitted once in
//! service, and withdrawn before they go.

use ferry_aws::{elbv2, route53};
use ferry_core::burst::{
    capacity_ready, scale_in_left, target_id, targets_to_sync, BurstTier, GroupInstance,
    WeightedDns, AWS_SET,
};
use ferry_core::steps::errors;
use ferry_fn::StepError;

use crate::Burst;

/// The target group's deregistration delay, checking that it exists (none configured:
/// 0).
pub async fn target_group_delay(b: &Burst, tier: &BurstTier) -> Result<u32, StepError> {
    let Some(arn) = &tier.target_group_arn else {
        return Ok(0);
    };
    let (_, delay) = elbv2::describe(&b.elbv2, arn).await?.ok_or_else(|| {
        StepError::named(
            errors::NOT_FOUND,
            format!(
                "target group {arn} of tier {} does not exist: nothing was changed",
                tier.tier
            ),
        )
    })?;
    Ok(delay)
}

/// How long a drain waits: the target group's delay, or the records' TTL, whichever
/// is longer.
pub async fn drain_s(b: &Burst, tier: &BurstTier) -> Result<u32, StepError> {
    let tg = target_group_delay(b, tier).await?;
    Ok(tg.max(tier.dns.as_ref().map(|d| d.ttl).unwrap_or(0)))
}

/// Makes the AWS record set hold `addresses` (deleted when there are none).
async fn set_aws_record(
    b: &Burst,
    d: &WeightedDns,
    mut addresses: Vec<String>,
) -> Result<(), StepError> {
    addresses.sort();
    let have = route53::weighted(&b.route53, &d.zone, &d.name, AWS_SET).await?;
    match (have, addresses.is_empty()) {
        (None, true) => {}
        (Some(h), true) => {
            route53::change_weighted(&b.route53, &d.zone, &d.name, AWS_SET, &h, true).await?
        }
        (h, false) => {
            let want = route53::Weighted {
                weight: d.aws_weight as i64,
                ttl: d.ttl as i64,
                values: addresses,
            };
            if h.as_ref() != Some(&want) {
                route53::change_weighted(&b.route53, &d.zone, &d.name, AWS_SET, &want, false)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Registers the in-service instances (IP target group: Auto Scaling registers only
/// by instance id) and says whether `desired` of them serve; once they do, the AWS
/// record set holds their addresses. Returns (targets registered, ready).
pub async fn admit(
    b: &Burst,
    tier: &BurstTier,
    instances: &[GroupInstance],
    desired: u32,
) -> Result<(Vec<String>, bool), StepError> {
    let serving: Vec<&GroupInstance> = instances.iter().filter(|i| i.in_service()).collect();
    let mut registered = Vec::new();
    let mut ready = serving.len() as u32 >= desired;
    if let Some(arn) = &tier.target_group_arn {
        if tier.target_type == "ip" {
            let have = elbv2::health(&b.elbv2, arn).await?;
            let (add, remove) = targets_to_sync(tier, instances, &have);
            elbv2::register(&b.elbv2, arn, &add, Some(tier.port)).await?;
            elbv2::deregister(&b.elbv2, arn, &remove, Some(tier.port)).await?;
            registered = add;
        }
        let health = elbv2::health(&b.elbv2, arn).await?;
        ready = capacity_ready(tier, instances, &health, desired);
    }
    if let (true, Some(d)) = (ready, &tier.dns) {
        let addresses = serving
            .iter()
            .filter_map(|i| i.private_ip.clone())
            .collect();
        set_aws_record(b, d, addresses).await?;
    }
    Ok((registered, ready))
}

/// Takes the victims out of the traffic: their targets deregistered, their addresses
/// out of the AWS record set (which goes when it would be empty). Returns the targets
/// the target group held.
pub async fn withdraw(
    b: &Burst,
    tier: &BurstTier,
    victim_targets: &[String],
) -> Result<Vec<String>, StepError> {
    let mut held = Vec::new();
    if let Some(arn) = &tier.target_group_arn {
        held = elbv2::registered(&b.elbv2, arn).await?;
        let present: Vec<String> = victim_targets
            .iter()
            .filter(|t| held.contains(t))
            .cloned()
            .collect();
        let port = (tier.target_type == "ip").then_some(tier.port);
        elbv2::deregister(&b.elbv2, arn, &present, port).await?;
    }
    if let Some(d) = &tier.dns {
        if let Some(h) = route53::weighted(&b.route53, &d.zone, &d.name, AWS_SET).await? {
            let keep = h
                .values
                .into_iter()
                .filter(|v| !victim_targets.contains(v))
                .collect();
            set_aws_record(b, d, keep).await?;
        }
    }
    Ok(held)
}

/// What is left of the victims: instances in the group, targets in the target group,
/// addresses in the AWS record set. Returns (left, the target group's targets).
pub async fn left(
    b: &Burst,
    tier: &BurstTier,
    victims: &[String],
    victim_targets: &[String],
    instances: &[GroupInstance],
) -> Result<(Vec<String>, Vec<String>), StepError> {
    let health = match &tier.target_group_arn {
        Some(arn) => elbv2::health(&b.elbv2, arn).await?,
        None => Vec::new(),
    };
    let mut left = scale_in_left(victims, instances, &health, victim_targets);
    if let Some(d) = &tier.dns {
        if let Some(h) = route53::weighted(&b.route53, &d.zone, &d.name, AWS_SET).await? {
            left.extend(
                h.values
                    .iter()
                    .filter(|v| victim_targets.contains(v))
                    .map(|v| format!("address {v} in {} ({AWS_SET})", d.name)),
            );
        }
    }
    Ok((left, health.into_iter().map(|t| t.id).collect()))
}

/// The target id of each instance (for a scale-in's victims).
pub fn targets_of(tier: &BurstTier, instances: &[GroupInstance]) -> Vec<String> {
    instances
        .iter()
        .filter_map(|i| target_id(tier, i))
        .collect()
}
