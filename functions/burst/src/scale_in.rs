//! A scale-in: drain (the victims out of the traffic, target tracking's scale-outs
//! suspended so that nothing launches into a tier being emptied), then terminate them
//! (each with the group's desired capacity lowered, so none is replaced), then check
//! that they are gone from the group and the target group.

use ferry_aws::autoscaling;
use ferry_core::steps::burst::{Gone, VictimsRequest};
use ferry_fn::StepError;

use crate::{begin, traffic, Burst};

pub async fn drain(b: &Burst, req: VictimsRequest) -> Result<Gone, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    if !g
        .suspended
        .iter()
        .any(|p| p == autoscaling::ALARM_NOTIFICATION)
    {
        autoscaling::suspend(&b.autoscaling, &g.name, autoscaling::ALARM_NOTIFICATION).await?;
    }
    let registered = traffic::withdraw(b, &tier, &req.victim_targets).await?;
    tracing::warn!(tier = %tier.tier, run = %req.run_id, targets = ?req.victim_targets, "draining");
    Ok(Gone {
        gone: false,
        left: req.victims.clone(),
        targets: registered,
    })
}

pub async fn lower(b: &Burst, req: VictimsRequest) -> Result<Gone, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    for id in &req.victims {
        if g.instances
            .iter()
            .any(|i| &i.instance_id == id && !i.lifecycle.starts_with("Terminat"))
        {
            autoscaling::terminate(&b.autoscaling, id).await?;
        }
    }
    // Whatever else raised it meanwhile: the tier goes back to its minimum.
    let g = begin::group(b, &tier).await?;
    if g.desired > tier.min {
        autoscaling::set_desired(&b.autoscaling, &g.name, tier.min).await?;
    }
    tracing::warn!(tier = %tier.tier, run = %req.run_id, terminated = ?req.victims, "capacity lowered to {}", tier.min);
    Ok(Gone {
        gone: false,
        left: req.victims.clone(),
        targets: Vec::new(),
    })
}

pub async fn check_gone(b: &Burst, req: VictimsRequest) -> Result<Gone, StepError> {
    let tier = b.tier(&req.tier).await?;
    let g = begin::group(b, &tier).await?;
    // A terminated instance leaves the group's list once it is gone.
    let (left, targets) =
        traffic::left(b, &tier, &req.victims, &req.victim_targets, &g.instances).await?;
    Ok(Gone {
        gone: left.is_empty(),
        left,
        targets,
    })
}
