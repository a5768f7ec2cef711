//! A burst's capacity: desired capacity raised (never above the group's max), the
//! in-service instances registered in an IP target group beside the on-prem servers
//! (Auto Scaling registers instances only in instance target groups), and the check
//! that they are all in service and healthy there.

use ferry_aws::{autoscaling, elbv2, launch_template};
use ferry_core::burst::{capacity_ready, targets_to_sync, BurstTier, GroupInstance};
use ferry_core::steps::burst::{Capacity, RaiseRequest};
use ferry_fn::StepError;

use crate::{begin, Burst};

/// The group's instances with their addresses and images.
pub async fn with_details(
    b: &Burst,
    g: &autoscaling::Group,
) -> Result<Vec<GroupInstance>, StepError> {
    let ids: Vec<String> = g.instances.iter().map(|i| i.instance_id.clone()).collect();
    let details = launch_template::instance_details(&b.ec2, &ids).await?;
    Ok(g.instances
        .iter()
        .map(|i| {
            let d = details.iter().find(|d| d.0 == i.instance_id);
            GroupInstance {
                private_ip: d.and_then(|d| d.1.clone()),
                image_id: d.and_then(|d| d.2.clone()),
                ..i.clone()
            }
        })
        .collect())
}

pub async fn raise(b: &Burst, req: RaiseRequest) -> Result<Capacity, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    // A scale-in that failed mid-way may have left scaling suspended.
    if g.suspended
        .iter()
        .any(|p| p == autoscaling::ALARM_NOTIFICATION)
    {
        autoscaling::resume(&b.autoscaling, &g.name, autoscaling::ALARM_NOTIFICATION).await?;
    }
    let desired = req.desired.min(g.max);
    if desired > g.desired {
        autoscaling::set_desired(&b.autoscaling, &g.name, desired).await?;
        tracing::warn!(tier = %tier.tier, run = %req.run_id, from = g.desired, to = desired, "desired capacity raised");
    }
    Ok(Capacity {
        ready: false,
        desired: desired.max(g.desired),
        in_service: g.instances.iter().filter(|i| i.in_service()).count() as u32,
        instance_ids: Vec::new(),
        instances: Vec::new(),
        registered: Vec::new(),
    })
}

/// Registers in-service instances missing from an IP target group and removes targets
/// of instances that are gone (never an on-prem server). Returns what was registered.
pub async fn sync_targets(
    b: &Burst,
    tier: &BurstTier,
    instances: &[GroupInstance],
) -> Result<Vec<String>, StepError> {
    if tier.target_type != "ip" {
        return Ok(Vec::new());
    }
    let registered = elbv2::health(&b.elbv2, &tier.target_group_arn).await?;
    let (add, remove) = targets_to_sync(tier, instances, &registered);
    elbv2::register(&b.elbv2, &tier.target_group_arn, &add, Some(tier.port)).await?;
    elbv2::deregister(&b.elbv2, &tier.target_group_arn, &remove, Some(tier.port)).await?;
    Ok(add)
}

pub async fn check(b: &Burst, req: RaiseRequest) -> Result<Capacity, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    let instances = with_details(b, &g).await?;
    let registered = sync_targets(b, &tier, &instances).await?;
    let health = elbv2::health(&b.elbv2, &tier.target_group_arn).await?;
    let ready = capacity_ready(&tier, &instances, &health, req.desired);
    Ok(Capacity {
        ready,
        desired: req.desired,
        in_service: instances.iter().filter(|i| i.in_service()).count() as u32,
        instance_ids: instances
            .iter()
            .filter(|i| i.in_service())
            .map(|i| i.instance_id.clone())
            .collect(),
        instances,
        registered,
    })
}
