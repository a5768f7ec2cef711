//! A burst's capacity: desired capacity raised (never above the group's max), and the
//! check that the instances are in service and admitted to the traffic (see
//! [`crate::traffic`]).

use ferry_aws::{autoscaling, launch_template};
use ferry_core::burst::GroupInstance;
use ferry_core::steps::burst::{Capacity, RaiseRequest};
use ferry_fn::StepError;

use crate::{begin, traffic, Burst};

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

pub async fn check(b: &Burst, req: RaiseRequest) -> Result<Capacity, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    let instances = with_details(b, &g).await?;
    let (registered, ready) = traffic::admit(b, &tier, &instances, req.desired).await?;
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
