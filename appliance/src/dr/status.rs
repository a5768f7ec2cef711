//! `ferry dr status [GROUP]`: per group its state (PROTECTED, FAILING_OVER,
//! FAILED_OVER, FAILING_BACK, FAILBACK_FAILED, DRILL), per host its newest point and newest point with a built image
//! against the RPO target and its next sync, the group's alarms, and its last runs with
//! their achieved RPO and RTO.

use std::io::Write;

use anyhow::{Context, Result};
use ferry_aws::dynamodb::Table;
use ferry_core::group::GroupRecord;
use ferry_core::keys::{self, locks};
use ferry_core::records::PointRecord;
use ferry_core::steps::failover::{parse_rfc3339, rfc3339, seconds_between};
use serde::Serialize;
use time::OffsetDateTime;

use crate::ctx::Ctx;
use crate::report::Report;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub group: String,
    /// `PROTECTED`, `FAILING_OVER`, `FAILED_OVER`, `FAILING_BACK`, `FAILBACK_FAILED`, `DRILL`, or `NOT_PROTECTED` (in the
    /// config, never recorded by `ferry protect`).
    pub state: String,
    /// The run holding the group (failing over, failed over, drilling).
    pub held_by: Option<String>,
    pub rpo_target_s: Option<u64>,
    pub rto_target_s: Option<u64>,
    /// `automatic` or `manual`.
    pub failover: Option<String>,
    pub hosts: Vec<HostStatus>,
    pub alarms: Vec<AlarmStatus>,
    pub runs: Vec<RunSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub tier: String,
    pub last_point: Option<String>,
    pub last_point_age_s: Option<f64>,
    /// Whether the newest point's AMI is built.
    pub image_built: bool,
    /// The point a failover would use now, and its age (the recovery point age).
    pub recovery_point: Option<String>,
    pub recovery_point_age_s: Option<f64>,
    /// The recovery point is younger than the RPO target.
    pub within_rpo: bool,
    /// When the daemon syncs it next (RFC 3339); none while the group is failed over
    /// or when it is not in this config.
    pub next_sync: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmStatus {
    pub name: String,
    pub state: String,
    pub reason: String,
    pub updated: Option<String>,
}

/// Any run item of a group (failover, drill, failback), as the status lists it: the
/// fields they share, and what each kind adds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub run_type: String,
    pub status: String,
    pub started: String,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub rto_s: Option<f64>,
    #[serde(default)]
    pub rpo_s: Option<f64>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// A failback's cutover window (application down).
    #[serde(default)]
    pub cutover_s: Option<f64>,
    #[serde(default)]
    pub summary: String,
}

async fn lock(
    table: &Table,
    group: &str,
    kind: &str,
) -> Result<Option<ferry_aws::lock::LockState>> {
    let l = ferry_aws::lock::Lock {
        client: table.client(),
        table: table.name(),
        key: keys::group_lock(group, kind),
        holder: "",
        ttl_s: 0,
    };
    Ok(l.read()
        .await
        .with_context(|| format!("reading the {kind} lock of group {group}"))?
        .filter(|l| l.held(ferry_aws::lock::now())))
}

async fn group_status(
    ctx: &Ctx,
    table: &Table,
    name: &str,
    now: OffsetDateTime,
) -> Result<GroupStatus> {
    let record: Option<GroupRecord> = table
        .get(&keys::group(name))
        .await
        .with_context(|| format!("reading group {name}"))?;
    let failover = lock(table, name, locks::FAILOVER).await?;
    let drill = lock(table, name, locks::DRILL).await?;
    let (state, held_by) = match (&record, &failover, &drill) {
        (_, Some(f), _) if f.state.as_deref() == Some(crate::dr::FAILED_OVER) => {
            ("FAILED_OVER", Some(f.holder.clone()))
        }
        (_, Some(f), _) if f.state.as_deref() == Some(locks::FAILING_BACK) => {
            ("FAILING_BACK", Some(f.holder.clone()))
        }
        (_, Some(f), _) if f.state.as_deref() == Some(locks::FAILBACK_FAILED) => {
            ("FAILBACK_FAILED", Some(f.holder.clone()))
        }
        (_, Some(f), _) => ("FAILING_OVER", Some(f.holder.clone())),
        (_, None, Some(d)) => ("DRILL", Some(d.holder.clone())),
        (Some(_), None, None) => ("PROTECTED", None),
        (None, None, None) => ("NOT_PROTECTED", None),
    };
    let config = ctx.settings.groups.iter().find(|g| g.name == name);
    let mut hosts = Vec::new();
    let tiers: Vec<(String, Vec<String>)> = match (&record, config) {
        (Some(r), _) => r
            .tiers
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.hosts.iter().map(|h| h.host.clone()).collect(),
                )
            })
            .collect(),
        (None, Some(c)) => c
            .tiers
            .iter()
            .map(|t| (t.name.clone(), t.hosts.clone()))
            .collect(),
        (None, None) => anyhow::bail!("no group {name:?}: not in the config and not protected"),
    };
    let rpo = record
        .as_ref()
        .map(|r| r.rpo_s)
        .or(config.map(|c| c.rpo.as_secs()));
    for (tier, names) in &tiers {
        for h in names {
            let points: Vec<PointRecord> = table
                .query(&keys::host_pk(h), keys::POINT_PREFIX, true, 200)
                .await
                .with_context(|| format!("reading the points of {h}"))?;
            let age = |p: &PointRecord| parse_rfc3339(&p.created).map(|c| seconds_between(c, now));
            let last = points.first();
            let built = points.iter().find(|p| p.image_id.is_some());
            let recovery_age = built.and_then(age);
            let next_sync = match (config, held_by.is_some() && state != "DRILL") {
                (Some(c), false) => c
                    .tiers
                    .iter()
                    .find(|t| t.hosts.contains(h))
                    .and_then(|t| c.policy(t).ok())
                    .map(|p| {
                        rfc3339(p.next_sync(last.and_then(|l| parse_rfc3339(&l.created)), now))
                    }),
                _ => None,
            };
            hosts.push(HostStatus {
                host: h.clone(),
                tier: tier.clone(),
                last_point: last.map(|p| p.point.clone()),
                last_point_age_s: last.and_then(age),
                image_built: last.is_some_and(|p| p.image_id.is_some()),
                recovery_point: built.map(|p| p.point.clone()),
                recovery_point_age_s: recovery_age,
                within_rpo: matches!((recovery_age, rpo), (Some(a), Some(r)) if a <= r as f64),
                next_sync,
            });
        }
    }
    let mut alarms = Vec::new();
    if let Some(r) = &record {
        let names: Vec<&String> = r
            .alarms
            .failover
            .iter()
            .chain(r.alarms.others.iter())
            .collect();
        let all = ferry_aws::cloudwatch::alarms(
            &ctx.aws().await.cloudwatch,
            &ferry_core::alarms::alarm_prefix(name),
        )
        .await
        .with_context(|| format!("reading the alarms of group {name}"))?;
        for n in names {
            match all.iter().find(|a| &a.name == n) {
                Some(a) => alarms.push(AlarmStatus {
                    name: a.name.clone(),
                    state: a.state.clone(),
                    reason: a.reason.clone(),
                    updated: a.updated.clone(),
                }),
                None => alarms.push(AlarmStatus {
                    name: n.clone(),
                    state: "MISSING".into(),
                    reason: format!("not in CloudWatch: run `ferry protect {name}`"),
                    updated: None,
                }),
            }
        }
    }
    let mut runs: Vec<RunSummary> = table
        .query(&keys::group_pk(name), keys::RUN_PREFIX, true, 200)
        .await
        .with_context(|| format!("reading the runs of group {name}"))?;
    runs.sort_by(|a, b| b.started.cmp(&a.started));
    runs.truncate(5);
    Ok(GroupStatus {
        group: name.to_string(),
        state: state.to_string(),
        held_by,
        rpo_target_s: rpo,
        rto_target_s: record
            .as_ref()
            .map(|r| r.rto_s)
            .or(config.map(|c| c.rto.as_secs())),
        failover: record.as_ref().map(|r| {
            if r.aws_probe.is_some() {
                "automatic"
            } else {
                "manual"
            }
            .to_string()
        }),
        hosts,
        alarms,
        runs,
    })
}

pub async fn status(ctx: &Ctx, group: Option<&str>) -> Result<Status> {
    let table = ctx
        .aws_table()
        .await
        .context("ferry dr status reads the groups from DynamoDB: set [aws] table")?;
    let now = OffsetDateTime::now_utc();
    let names: Vec<String> = match group {
        Some(g) => vec![g.to_string()],
        None => {
            let mut n: Vec<String> = ctx.settings.groups.iter().map(|g| g.name.clone()).collect();
            let listed: Vec<ferry_core::group::GroupEntry> = table
                .query(keys::GROUPS, "", false, 1000)
                .await
                .context("listing the protected groups")?;
            for e in listed {
                if !n.contains(&e.group) {
                    n.push(e.group);
                }
            }
            n
        }
    };
    let mut groups = Vec::new();
    for n in &names {
        groups.push(group_status(ctx, &table, n, now).await?);
    }
    Ok(Status { groups })
}

fn secs(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.0}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

impl Report for Status {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for g in &self.groups {
            writeln!(
                out,
                "{}: {}{}  (RPO target {}, RTO target {}, failover {})",
                g.group,
                g.state,
                g.held_by
                    .as_ref()
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_default(),
                secs(g.rpo_target_s.map(|s| s as f64)),
                secs(g.rto_target_s.map(|s| s as f64)),
                g.failover.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "  {:<12} {:<6} {:<28} {:>6} {:<5} {:>9} {:<4} next sync",
                "host", "tier", "last point", "age", "built", "recovery", "RPO"
            )?;
            for h in &g.hosts {
                writeln!(
                    out,
                    "  {:<12} {:<6} {:<28} {:>6} {:<5} {:>9} {:<4} {}",
                    h.host,
                    h.tier,
                    h.last_point.as_deref().unwrap_or("-"),
                    secs(h.last_point_age_s),
                    if h.image_built { "yes" } else { "no" },
                    secs(h.recovery_point_age_s),
                    if h.within_rpo { "ok" } else { "LATE" },
                    h.next_sync.as_deref().unwrap_or("-")
                )?;
            }
            for a in &g.alarms {
                writeln!(out, "  alarm {:<40} {}", a.name, a.state)?;
            }
            for r in &g.runs {
                let figures = match r.run_type.as_str() {
                    "failback" => format!("cutover {:>6}", secs(r.cutover_s)),
                    _ => format!("RTO {:>6} RPO {:>6}", secs(r.rto_s), secs(r.rpo_s)),
                };
                writeln!(
                    out,
                    "  run {:<44} {:<11} {figures}{}",
                    r.run_id,
                    r.status,
                    r.cost_usd
                        .map(|c| format!(" cost ${c:.4}"))
                        .unwrap_or_default()
                )?;
            }
        }
        Ok(())
    }
}
