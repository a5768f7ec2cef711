//! Elasticity inside AWS: target tracking launches and terminates burst instances
//! without any run of Ferry's, and Auto Scaling registers instances only in instance
//! target groups. Its "EC2 Instance Launch Successful" / "Terminate Successful" events
//! (the template's rule) bring the tier's IP targets and AWS record set in step with
//! the instances in service. Never during a scale-in: it is withdrawing instances that
//! are still in service, and would see them put back.

use ferry_core::burst::RunKind;
use ferry_core::keys;
use ferry_fn::StepError;
use serde::{Deserialize, Serialize};

use crate::{begin, capacity, traffic, Burst};

/// The parts of an Auto Scaling instance event the sync reads.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: InstanceDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstanceDetail {
    #[serde(rename = "AutoScalingGroupName")]
    pub group: String,
    #[serde(rename = "EC2InstanceId", default)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Synced {
    pub tier: Option<String>,
    pub registered: Vec<String>,
    pub ignored: Option<String>,
}

fn ignored(why: String) -> Synced {
    tracing::info!("{why}: nothing to sync");
    Synced {
        tier: None,
        registered: Vec::new(),
        ignored: Some(why),
    }
}

pub async fn sync(b: &Burst, e: InstanceEvent) -> Result<Synced, StepError> {
    let Some(tier) = e.detail.group.strip_prefix("ferry-burst-") else {
        return Ok(ignored(format!(
            "group {} is not a burst tier's",
            e.detail.group
        )));
    };
    let lock = ferry_aws::lock::held(&b.ddb, &b.settings.table, &keys::burst_lock(tier))
        .await
        .map_err(|e| StepError::NonRetryable(e.to_string()))?;
    if let Some(l) = lock.filter(|l| {
        l.holder
            .starts_with(&format!("{}-", RunKind::ScaleIn.as_str()))
    }) {
        return Ok(ignored(format!("{} is scaling tier {tier} in", l.holder)));
    }
    let t = b.tier(tier).await?;
    let g = begin::group(b, &t).await?;
    let instances = capacity::with_details(b, &g).await?;
    // Whatever serves now (`desired` 0: the record set follows the instances).
    let (registered, _) = traffic::admit(b, &t, &instances, 0).await?;
    tracing::info!(tier, event = %e.detail_type, instance = ?e.detail.instance_id, registered = ?registered, "tier's traffic in step with its instances");
    Ok(Synced {
        tier: Some(tier.to_string()),
        registered,
        ignored: None,
    })
}
