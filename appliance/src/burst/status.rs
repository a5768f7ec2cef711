//! `ferry burst status [TIER]`: per tier, the capacity on-prem and in AWS, the alarms'
//! states, the image the launch template launches against the golden host's newest
//! built one, and the last runs.

use anyhow::{Context, Result};
use ferry_aws::{autoscaling, cloudwatch, elbv2, launch_template, route53};
use ferry_core::burst::{burst_alarm_name, scale_in_alarm_name, BurstTier, AWS_SET, ONPREM_SET};
use ferry_core::keys;
use ferry_core::steps::burst::BurstRun;
use serde::Serialize;

use super::setup::newest_image;
use crate::ctx::Ctx;

/// How many runs of a tier the status lists.
const RUNS_SHOWN: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct TierStatus {
    pub tier: String,
    pub golden: String,
    /// On-prem servers registered in the target group, and how many are healthy.
    pub onprem_targets: usize,
    pub onprem_healthy: usize,
    /// The Auto Scaling group: desired, in service, min, max.
    pub aws_desired: u32,
    pub aws_in_service: u32,
    pub aws_min: u32,
    pub aws_max: u32,
    /// AWS instances registered in the target group.
    pub aws_targets: usize,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`, or `missing`.
    pub burst_alarm: String,
    pub scale_in_alarm: String,
    /// What the launch template's newest version launches, and the newest built image.
    pub image_in_use: Option<String>,
    pub template_version: Option<i64>,
    pub newest_image: Option<String>,
    pub newest_point: Option<String>,
    /// Whether a lock is held (a burst or scale-in running), by which run.
    pub running: Option<String>,
    /// The weighted records' addresses, where the tier shares traffic by DNS.
    pub dns: Option<DnsStatus>,
    /// What a burst would fail on now (a target group gone).
    pub problems: Vec<String>,
    pub runs: Vec<BurstRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsStatus {
    pub name: String,
    pub onprem: Vec<String>,
    pub aws: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BurstStatus {
    pub tiers: Vec<TierStatus>,
}

async fn tier_status(ctx: &Ctx, tier: &BurstTier) -> Result<TierStatus> {
    let aws = ctx.aws().await;
    let table = ctx.aws_table().await.context("no [aws] table")?;
    let t = &tier.tier;
    let group = autoscaling::group(&aws.autoscaling, &tier.auto_scaling_group).await?;
    let mut problems = Vec::new();
    let health = match &tier.target_group_arn {
        Some(arn) => match elbv2::health(&aws.elbv2, arn).await {
            Ok(h) => h,
            Err(e) if e.failure.is_not_found() => {
                problems.push(format!("target group {arn} does not exist"));
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        },
        None => Vec::new(),
    };
    let dns = match &tier.dns {
        Some(d) => Some(DnsStatus {
            name: d.name.clone(),
            onprem: route53::weighted(&aws.route53, &d.zone, &d.name, ONPREM_SET)
                .await?
                .map(|w| w.values)
                .unwrap_or_default(),
            aws: route53::weighted(&aws.route53, &d.zone, &d.name, AWS_SET)
                .await?
                .map(|w| w.values)
                .unwrap_or_default(),
        }),
        None => None,
    };
    let onprem: Vec<_> = health
        .iter()
        .filter(|h| tier.onprem.contains(&h.id))
        .collect();
    let alarms = cloudwatch::alarms(&aws.cloudwatch, &format!("ferry-burst-{t}-")).await?;
    let state = |name: String| {
        alarms
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.state.clone())
            .unwrap_or_else(|| "missing".into())
    };
    let lt = launch_template::latest(&aws.ec2, &tier.launch_template).await?;
    let newest = newest_image(&table, &tier.golden).await?;
    let lock = ferry_aws::lock::held(table.client(), table.name(), &keys::burst_lock(t))
        .await
        .with_context(|| format!("reading the lock of tier {t}"))?;
    let mut runs: Vec<BurstRun> = table
        .query(&keys::burst_pk(t), keys::RUN_PREFIX, true, 100)
        .await
        .with_context(|| format!("reading the runs of tier {t}"))?;
    runs.sort_by(|a, b| b.started.cmp(&a.started));
    runs.truncate(RUNS_SHOWN);
    Ok(TierStatus {
        tier: t.clone(),
        golden: tier.golden.clone(),
        onprem_targets: onprem.len(),
        onprem_healthy: onprem.iter().filter(|h| h.state == "healthy").count(),
        aws_desired: group.as_ref().map(|g| g.desired).unwrap_or(0),
        aws_in_service: group
            .as_ref()
            .map(|g| g.instances.iter().filter(|i| i.in_service()).count() as u32)
            .unwrap_or(0),
        aws_min: group.as_ref().map(|g| g.min).unwrap_or(tier.min),
        aws_max: group.as_ref().map(|g| g.max).unwrap_or(tier.max),
        aws_targets: health.len() - onprem.len(),
        burst_alarm: state(burst_alarm_name(t)),
        scale_in_alarm: state(scale_in_alarm_name(t)),
        image_in_use: lt.as_ref().and_then(|v| v.image_id.clone()),
        template_version: lt.as_ref().map(|v| v.version),
        newest_image: newest.as_ref().map(|n| n.1.clone()),
        newest_point: newest.map(|n| n.0),
        running: lock.map(|l| l.holder),
        dns,
        problems,
        runs,
    })
}

pub async fn status(ctx: &Ctx, tier: Option<&str>) -> Result<BurstStatus> {
    let table = ctx
        .aws_table()
        .await
        .context("ferry burst status reads the tiers from DynamoDB: set [aws] table")?;
    let mut tiers: Vec<BurstTier> = table
        .query(keys::BURSTS, "", false, usize::MAX)
        .await
        .context("reading the burst tiers")?;
    if let Some(t) = tier {
        tiers.retain(|x| x.tier == t);
        if tiers.is_empty() {
            anyhow::bail!("tier {t} is not set up for burst: run `ferry burst setup {t}`");
        }
    }
    let mut out = Vec::new();
    for t in &tiers {
        out.push(tier_status(ctx, t).await?);
    }
    Ok(BurstStatus { tiers: out })
}
