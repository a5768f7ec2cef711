//! `ferry daemon`: the appliance's long-running mode. For every protected group it
//! runs each tier's sync policy (capture, then start the AMI build of the new point, so
//! that an image is ready before a failover needs it), probes the origin's health
//! every few seconds, and publishes what it sees to CloudWatch: a heartbeat,
//! `OriginHealthy` per group and `RecoveryPointAge` per host.
//!
//! One task per host syncs it, so a failing host never stops the others: it backs off
//! and tries again. A group that is failing over or failed over is not synced (its
//! origin must never be captured over what now runs in AWS; failback is its own
//! procedure), and a capture of it in flight stops. The schedule comes from the newest
//! point in the store, so a daemon killed (even with SIGKILL) and started again goes on
//! where it was. SIGTERM stops everything within seconds; a capture in flight leaves no
//! point.
//!
//! While a group is failing back, the daemon also works its failback tasks, so that a
//! restarted appliance resumes a failback by itself.
//!
//! - [`sync`]: one task per host: its schedule, its captures, its image builds.
//! - [`watch`]: one task per group: origin probes, metrics, the failover state.
//! - [`failback`]: a failing-back group's tasks worked.
//!
//! It also publishes the on-prem load of every `[[burst]]` tier
//! ([`crate::burst::publish`]); a config may hold only burst tiers.

mod failback;
mod sync;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use ferry_aws::dynamodb::Table;
use ferry_core::group::GroupRecord;
use ferry_core::keys::{self, locks};
use serde::Serialize;
use tokio::sync::{watch as channel, Semaphore};
use tracing::Instrument;

use super::config::GroupConfig;
use crate::ctx::Ctx;
use crate::host::Host;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonReport {
    pub groups: Vec<String>,
    pub burst_tiers: Vec<String>,
    pub load_samples: u64,
    pub load_published: u64,
    pub syncs: u64,
    pub sync_failures: u64,
    pub probe_rounds: u64,
}

#[derive(Default)]
struct Counters {
    syncs: AtomicU64,
    failures: AtomicU64,
    rounds: AtomicU64,
}

/// Whether a group is failing over or failed over: the run that holds its lock.
type FailedOver = channel::Receiver<Option<String>>;

pub struct DaemonOptions {
    pub groups: Vec<String>,
    /// Burst tiers to publish the load of (default: all, unless groups are named).
    pub tiers: Vec<String>,
    pub accept_new_host_key: bool,
}

/// A group as the daemon runs it.
struct Protected {
    config: GroupConfig,
    record: GroupRecord,
    hosts: Vec<Host>,
}

pub async fn run(ctx: &Ctx, opts: DaemonOptions) -> Result<DaemonReport> {
    let table = ctx
        .aws_table()
        .await
        .context("ferry daemon reads and writes the group's state in DynamoDB: set [aws] table")?;
    for n in &opts.groups {
        anyhow::ensure!(
            ctx.settings.groups.iter().any(|g| &g.name == n),
            "no group {n:?} in the config"
        );
    }
    for t in &opts.tiers {
        ctx.settings.burst(t)?;
    }
    let mut groups = Vec::new();
    for g in &ctx.settings.groups {
        let named = !opts.groups.is_empty() || !opts.tiers.is_empty();
        if named && !opts.groups.contains(&g.name) {
            continue;
        }
        let record: GroupRecord = table
            .get(&keys::group(&g.name))
            .await
            .with_context(|| format!("reading group {}", g.name))?
            .with_context(|| {
                format!(
                    "group {} is not protected yet: run `ferry protect {}` first",
                    g.name, g.name
                )
            })?;
        let hosts = g
            .host_names()
            .map(|n| ctx.settings.host(n))
            .collect::<Result<Vec<_>>>()?;
        groups.push(Protected {
            config: g.clone(),
            record,
            hosts,
        });
    }
    let bursts = burst_publishers(ctx, &opts).await?;
    anyhow::ensure!(
        !groups.is_empty() || !bursts.is_empty(),
        "no [[group]] to protect and no [[burst]] tier in the config"
    );
    let repo = Arc::new(ctx.repo().await?);
    let counters = Arc::new(Counters::default());
    let mut tasks = tokio::task::JoinSet::new();
    let names: Vec<String> = groups.iter().map(|g| g.record.name.clone()).collect();
    let tiers: Vec<String> = bursts.iter().map(|b| b.config.tier.clone()).collect();
    tracing::info!(groups = ?names, burst_tiers = ?tiers, "daemon started");
    let published = Arc::new(crate::burst::publish::Published::default());
    for mut b in bursts {
        b.counters = published.clone();
        let span = tracing::info_span!("burst", tier = %b.config.tier);
        tasks.spawn(crate::burst::publish::publish_tier(b).instrument(span));
    }
    for g in groups {
        let g = Arc::new(g);
        let initial = failed_over(&table, &g.record.name).await?;
        let (tx, rx) = channel::channel(initial);
        let watch_ctx = watch::WatchCtx {
            table: table.clone(),
            cloudwatch: ctx.aws().await.cloudwatch.clone(),
            group: g.clone(),
            failed_over: tx,
            shutdown: ctx.shutdown.clone(),
            counters: counters.clone(),
        };
        let span = tracing::info_span!("watch", group = %g.record.name);
        tasks.spawn(watch::watch_group(watch_ctx).instrument(span));
        for t in &g.config.tiers {
            let policy = g.config.policy(t)?;
            let permits = Arc::new(Semaphore::new(policy.max_syncs));
            for h in &t.hosts {
                let host = g
                    .hosts
                    .iter()
                    .find(|x| &x.name == h)
                    .cloned()
                    .with_context(|| format!("no host {h}"))?;
                let sync = sync::SyncCtx {
                    ctx_shutdown: ctx.shutdown.clone(),
                    repo: repo.clone(),
                    host,
                    policy: policy.clone(),
                    permits: permits.clone(),
                    failed_over: rx.clone(),
                    counters: counters.clone(),
                    accept_new_host_key: opts.accept_new_host_key,
                };
                let span =
                    tracing::info_span!("sync", group = %g.record.name, tier = %t.name, host = %h);
                tasks.spawn(sync::sync_host(sync::CtxRef::of(ctx).await, sync).instrument(span));
            }
        }
    }
    // Until shutdown, in this task (the workers borrow the context).
    failback::serve(ctx, &table, &names).await;
    ctx.shutdown.requested().await;
    tracing::info!("stopping: waiting for captures in flight to stop");
    while tasks.join_next().await.is_some() {}
    Ok(DaemonReport {
        groups: names,
        burst_tiers: tiers,
        load_samples: published.samples.load(Ordering::Relaxed),
        load_published: published.published.load(Ordering::Relaxed),
        syncs: counters.syncs.load(Ordering::Relaxed),
        sync_failures: counters.failures.load(Ordering::Relaxed),
        probe_rounds: counters.rounds.load(Ordering::Relaxed),
    })
}

/// The run holding the group's failover lock, if any (the group is failing over or
/// failed over).
async fn failed_over(table: &Table, group: &str) -> Result<Option<String>> {
    let key = keys::group_lock(group, locks::FAILOVER);
    Ok(ferry_aws::lock::held(table.client(), table.name(), &key)
        .await
        .with_context(|| format!("reading the failover lock of group {group}"))?
        .map(|l| l.holder))
}

/// A publisher per `[[burst]]` tier (all, or those named in `--tier`).
async fn burst_publishers(
    ctx: &Ctx,
    opts: &DaemonOptions,
) -> Result<Vec<crate::burst::publish::Publisher>> {
    let mut out = Vec::new();
    for c in &ctx.settings.bursts {
        let named = !opts.groups.is_empty() || !opts.tiers.is_empty();
        if named && !opts.tiers.contains(&c.tier) {
            continue;
        }
        let addresses = crate::burst::setup::onprem_addresses(ctx, c)?;
        let hosts = c
            .hosts
            .iter()
            .zip(addresses)
            .map(|(h, a)| Ok((ctx.settings.host(h)?, a.parse().ok())))
            .collect::<Result<Vec<_>>>()?;
        out.push(crate::burst::publish::Publisher {
            config: c.clone(),
            hosts,
            cloudwatch: ctx.aws().await.cloudwatch.clone(),
            shutdown: ctx.shutdown.clone(),
            accept_new_host_key: opts.accept_new_host_key,
            counters: Default::default(),
        });
    }
    Ok(out)
}
