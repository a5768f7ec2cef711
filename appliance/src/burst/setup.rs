//! `ferry burst setup TIER`: everything a burst needs in AWS, made to match the config,
//! saying what changed; a second run with the same config changes nothing.
//!
//! In order, each checked before anything is written: the target group exists (when
//! the tier has one); the golden host has a built image. Then: the launch template (a new version, written in
//! full, when the image or the spec differs), the Auto Scaling group (min capacity,
//! `$Latest` of the template, the target group attached when it takes instances), the
//! target-tracking policy (scale-out only), the on-prem servers registered as IP
//! targets and/or their weighted record set, the two alarms, and the tier's record for
//! the burst function.

use anyhow::{bail, Context, Result};
use ferry_aws::{autoscaling, cloudwatch, elbv2, launch_template, route53};
use ferry_core::burst::{BurstAlarms, BurstTier, ONPREM_SET, TIER_TAG};
use ferry_core::keys::{self, kinds};
use serde::Serialize;

use super::config::BurstConfig;
use crate::ctx::Ctx;

/// What `ferry burst setup` did.
#[derive(Debug, Clone, Serialize)]
pub struct SetUp {
    pub tier: String,
    pub image_id: String,
    pub point: String,
    pub launch_template: String,
    pub auto_scaling_group: String,
    pub target_group: Option<String>,
    /// The weighted record's name, where the tier shares traffic by DNS.
    pub dns: Option<String>,
    /// One line per change; empty when everything already matched.
    pub changes: Vec<String>,
}

/// The newest point of `host` with a built image: (point, image id).
pub async fn newest_image(
    table: &ferry_aws::dynamodb::Table,
    host: &str,
) -> Result<Option<(String, String)>> {
    table
        .newest_image(host, 200)
        .await
        .with_context(|| format!("reading the points of host {host}"))
}

/// The on-prem servers' target addresses: as configured, else each host's SSH address.
pub fn onprem_addresses(ctx: &Ctx, c: &BurstConfig) -> Result<Vec<String>> {
    if !c.onprem_addresses.is_empty() {
        return Ok(c.onprem_addresses.clone());
    }
    c.hosts
        .iter()
        .map(|h| {
            let host = ctx.settings.host(h)?;
            host.ipv4_address().with_context(|| {
                format!(
                    "burst tier {}: host {h} has no IPv4 SSH address to register: set `onprem_addresses`",
                    c.tier
                )
            })
        })
        .collect()
}

fn tags(tier: &str) -> Vec<(String, String)> {
    vec![
        (TIER_TAG.to_string(), tier.to_string()),
        ("Name".to_string(), format!("ferry-burst-{tier}")),
    ]
}

pub async fn setup(ctx: &Ctx, c: &BurstConfig) -> Result<SetUp> {
    let table = ctx
        .aws_table()
        .await
        .context("ferry burst setup records the tier in DynamoDB: set [aws] table")?;
    let aws = ctx.aws().await;
    let t = &c.tier;
    let tg_type = match &c.target_group {
        None => String::new(),
        Some(arn) => match elbv2::describe(&aws.elbv2, arn)
            .await
            .with_context(|| format!("burst tier {t}: reading target group {arn}"))?
        {
            Some((kind, _)) => kind,
            None => bail!("burst tier {t}: target group {arn} does not exist: nothing was changed"),
        },
    };
    let Some((point, image_id)) = newest_image(&table, c.golden()).await? else {
        bail!(
            "burst tier {t}: golden host {} has no built image yet: capture it (`ferry capture {}`) and let its image build finish; nothing was changed",
            c.golden(),
            c.golden()
        );
    };
    let found = crate::dr::protect::discovered(ctx, &table, &[c.golden()]).await;
    let sized = found.get(c.golden()).and_then(|d| d.instance_type.clone());
    let record = c.record(onprem_addresses(ctx, c)?, sized, &tg_type);
    let mut changes = Vec::new();

    // The launch template, every version in full.
    let lt = &record.launch_template;
    match launch_template::latest(&aws.ec2, lt).await? {
        None => {
            launch_template::create(&aws.ec2, lt, &record.template, &image_id, &tags(t)).await?;
            changes.push(format!(
                "launch template {lt} created ({image_id}, {})",
                record.template.instance_type
            ));
        }
        Some(v)
            if v.image_id.as_deref() != Some(image_id.as_str()) || v.spec != record.template =>
        {
            let n =
                launch_template::new_version(&aws.ec2, lt, &record.template, &image_id, &tags(t))
                    .await?;
            changes.push(format!(
                "launch template {lt} version {n} ({image_id}, {}; was {} {})",
                record.template.instance_type,
                v.image_id.as_deref().unwrap_or("-"),
                v.spec.instance_type
            ));
        }
        Some(_) => {}
    }

    // The Auto Scaling group.
    let spec = autoscaling::GroupSpec {
        name: record.auto_scaling_group.clone(),
        launch_template: lt.clone(),
        min: record.min,
        max: record.max,
        subnets: record.subnets.clone(),
        target_groups: match (tg_type.as_str(), &record.target_group_arn) {
            ("instance", Some(arn)) => vec![arn.clone()],
            _ => Vec::new(),
        },
        cooldown_s: record.cooldown_s,
        tags: tags(t),
    };
    match autoscaling::group(&aws.autoscaling, &spec.name).await? {
        None => {
            autoscaling::create_group(&aws.autoscaling, &spec).await?;
            changes.push(format!(
                "Auto Scaling group {} created (min {}, max {})",
                spec.name, spec.min, spec.max
            ));
        }
        Some(g) => {
            if g.min != spec.min
                || g.max != spec.max
                || g.subnets != spec.subnets
                || g.cooldown_s != spec.cooldown_s
                || g.launch_template.as_ref().map(|l| l.0.as_str()) != Some(lt.as_str())
            {
                autoscaling::update_group(&aws.autoscaling, &spec).await?;
                changes.push(format!(
                    "Auto Scaling group {} updated (min {} -> {}, max {} -> {})",
                    spec.name, g.min, spec.min, g.max, spec.max
                ));
            }
            let missing: Vec<String> = spec
                .target_groups
                .iter()
                .filter(|a| !g.target_groups.contains(a))
                .cloned()
                .collect();
            if !missing.is_empty() {
                autoscaling::attach_target_groups(&aws.autoscaling, &spec.name, &missing).await?;
                changes.push(format!("target group attached to {}", spec.name));
            }
        }
    }

    // Target tracking inside AWS: scale-out only (the scale-in run drains first).
    let policy = format!("ferry-burst-{t}-target-cpu");
    let have = autoscaling::policies(&aws.autoscaling, &spec.name).await?;
    let same = have
        .iter()
        .any(|p| p.name == policy && p.target == Some(record.target_cpu) && p.disable_scale_in);
    if !same {
        let arn = autoscaling::put_target_tracking(
            &aws.autoscaling,
            &spec.name,
            &policy,
            record.target_cpu,
        )
        .await?;
        changes.push(format!(
            "target-tracking policy {policy} (average CPU {} %, scale-out only){}",
            record.target_cpu,
            arn.map(|a| format!(": {a}")).unwrap_or_default()
        ));
    }

    // The on-prem servers as IP targets.
    if let (Some(arn), "ip") = (&record.target_group_arn, tg_type.as_str()) {
        let registered = elbv2::registered(&aws.elbv2, arn).await?;
        let missing: Vec<String> = record
            .onprem
            .iter()
            .filter(|a| !registered.contains(a))
            .cloned()
            .collect();
        if !missing.is_empty() {
            elbv2::register(&aws.elbv2, arn, &missing, Some(record.port)).await?;
            changes.push(format!(
                "on-prem targets registered: {}",
                missing.join(", ")
            ));
        }
    }
    // The on-prem servers' weighted record set.
    if let Some(d) = &record.dns {
        let mut values = record.onprem.clone();
        values.sort();
        let want = route53::Weighted {
            weight: d.onprem_weight as i64,
            ttl: d.ttl as i64,
            values,
        };
        let have = route53::weighted(&aws.route53, &d.zone, &d.name, ONPREM_SET).await?;
        if have.as_ref() != Some(&want) {
            route53::change_weighted(&aws.route53, &d.zone, &d.name, ONPREM_SET, &want, false)
                .await?;
            changes.push(format!(
                "weighted record {} ({ONPREM_SET}, weight {}): {}",
                d.name,
                d.onprem_weight,
                want.values.join(", ")
            ));
        }
    }

    // The alarms the template's rule starts bursts and scale-ins from.
    let specs = BurstAlarms {
        tier: t,
        period_s: c.period().as_secs() as u32,
        burst_above: c.burst_above,
        burst_periods: c.burst_periods(),
        scale_in_below: c.scale_in_below,
        scale_in_periods: c.scale_in_periods(),
    }
    .specs();
    let existing = cloudwatch::alarms(&aws.cloudwatch, &format!("ferry-burst-{t}-")).await?;
    for spec in &specs {
        let have = existing.iter().find(|a| a.name == spec.name);
        if have.is_some_and(|a| a.matches(spec)) {
            continue;
        }
        cloudwatch::put_alarm(&aws.cloudwatch, spec, have.map(|a| a.arn.as_str())).await?;
        changes.push(format!(
            "alarm {} {}",
            spec.name,
            if have.is_some() { "updated" } else { "created" }
        ));
    }

    // The record the burst function reads.
    let key = keys::burst_tier(t);
    let old: Option<BurstTier> = table
        .get(&key)
        .await
        .with_context(|| format!("reading burst tier {t}"))?;
    if old.as_ref() != Some(&record) {
        table
            .put(&key, kinds::BURST_TIER, &record)
            .await
            .with_context(|| format!("recording burst tier {t}"))?;
        changes.push(format!(
            "tier record {}",
            if old.is_some() { "updated" } else { "created" }
        ));
    }
    Ok(SetUp {
        tier: t.clone(),
        image_id,
        point,
        launch_template: lt.clone(),
        auto_scaling_group: spec.name,
        target_group: record.target_group_arn,
        dns: record.dns.map(|d| d.name),
        changes,
    })
}
