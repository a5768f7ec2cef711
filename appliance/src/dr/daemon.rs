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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use ferry_aws::cloudwatch::{put_metrics, Datum};
use ferry_aws::dynamodb::Table;
use ferry_core::alarms::{dimensions, metrics, NAMESPACE};
use ferry_core::group::GroupRecord;
use ferry_core::keys::{self, kinds, locks};
use ferry_core::names::parse_utc_stamp;
use ferry_core::records::PointRecord;
use ferry_core::steps::failover::{parse_rfc3339, rfc3339, seconds_between};
use ferry_store::repo::Repository;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use super::config::GroupConfig;
use super::schedule::{backoff, SyncPolicy};
use crate::capture::{capture_host, CaptureOptions};
use crate::cloud::executions::Cloud;
use crate::ctx::Ctx;
use crate::host::Host;
use crate::progress::Progress;
use crate::shutdown::Shutdown;

/// How long one health check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the age of each host's newest built point is looked up, and among how
/// many of its newest points (none built among them: no age is published, which the
/// RPO alarm counts as at risk).
const AGE_EVERY: Duration = Duration::from_secs(15);
const AGE_POINTS: usize = 50;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonReport {
    pub groups: Vec<String>,
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
type FailedOver = watch::Receiver<Option<String>>;

pub struct DaemonOptions {
    pub groups: Vec<String>,
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
    let mut groups = Vec::new();
    for g in &ctx.settings.groups {
        if !opts.groups.is_empty() && !opts.groups.contains(&g.name) {
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
    anyhow::ensure!(!groups.is_empty(), "no [[group]] to protect in the config");
    for n in &opts.groups {
        anyhow::ensure!(
            ctx.settings.groups.iter().any(|g| &g.name == n),
            "no group {n:?} in the config"
        );
    }
    let repo = Arc::new(ctx.repo().await?);
    let counters = Arc::new(Counters::default());
    let mut tasks = tokio::task::JoinSet::new();
    let names: Vec<String> = groups.iter().map(|g| g.record.name.clone()).collect();
    tracing::info!(groups = ?names, "daemon started");
    for g in groups {
        let g = Arc::new(g);
        let initial = failed_over(&table, &g.record.name).await?;
        let (tx, rx) = watch::channel(initial);
        let watch_ctx = WatchCtx {
            table: table.clone(),
            cloudwatch: ctx.aws().await.cloudwatch.clone(),
            group: g.clone(),
            failed_over: tx,
            shutdown: ctx.shutdown.clone(),
            counters: counters.clone(),
        };
        let span = tracing::info_span!("watch", group = %g.record.name);
        tasks.spawn(watch_group(watch_ctx).instrument(span));
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
                let sync = SyncCtx {
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
                tasks.spawn(sync_host(ctx_ref(ctx).await, sync).instrument(span));
            }
        }
    }
    ctx.shutdown.requested().await;
    tracing::info!("stopping: waiting for captures in flight to stop");
    while tasks.join_next().await.is_some() {}
    Ok(DaemonReport {
        groups: names,
        syncs: counters.syncs.load(Ordering::Relaxed),
        sync_failures: counters.failures.load(Ordering::Relaxed),
        probe_rounds: counters.rounds.load(Ordering::Relaxed),
    })
}

/// What a sync task needs of the command's context: clients of the process's one SDK
/// configuration.
#[derive(Clone)]
struct CtxRef {
    sfn: ferry_aws::sfn::Sfn,
    aws: ferry_aws::AwsSettings,
    records: Option<crate::records::Records>,
}

async fn ctx_ref(ctx: &Ctx) -> CtxRef {
    CtxRef {
        sfn: ctx.aws().await.sfn.clone(),
        aws: ctx.settings.aws.clone(),
        records: ctx.records().await,
    }
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

struct SyncCtx {
    ctx_shutdown: Shutdown,
    repo: Arc<Repository>,
    host: Host,
    policy: SyncPolicy,
    permits: Arc<Semaphore>,
    failed_over: FailedOver,
    counters: Arc<Counters>,
    accept_new_host_key: bool,
}

/// The newest point's capture time, from its id.
async fn last_point(repo: &Repository, host: &str) -> Option<OffsetDateTime> {
    match repo.list_points(host).await {
        Ok(ids) => ids.last().and_then(|p| parse_utc_stamp(p)),
        Err(e) => {
            tracing::warn!("cannot list the points of {host}: {e:#}");
            None
        }
    }
}

/// Sleeps until `t`, or until a shutdown or a change of the failover state.
async fn sleep_until(t: OffsetDateTime, s: &mut SyncCtx) {
    let wait = (t - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let wait = Duration::try_from(wait)
        .unwrap_or_default()
        .min(Duration::from_secs(60));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = s.ctx_shutdown.requested() => {}
        _ = s.failed_over.changed() => {}
    }
}

/// A shutdown for one capture: the daemon's, or the group failing over.
fn capture_shutdown(s: &SyncCtx) -> (Shutdown, tokio::task::JoinHandle<()>) {
    let (trigger, shutdown) = Shutdown::new();
    let global = s.ctx_shutdown.clone();
    let mut fo = s.failed_over.clone();
    let watcher = tokio::spawn(async move {
        tokio::select! {
            _ = global.requested() => {}
            _ = fo.wait_for(|v| v.is_some()) => {}
        }
        trigger.request();
    });
    (shutdown, watcher)
}

async fn sync_host(c: CtxRef, mut s: SyncCtx) {
    let name = s.host.name.clone();
    let mut failures: u32 = 0;
    let mut retry_at: Option<OffsetDateTime> = None;
    let progress = Progress::new(true);
    while !s.ctx_shutdown.is_requested() {
        let held = s.failed_over.borrow().clone();
        if let Some(run) = held {
            tracing::info!(run = %run, "the group is failed over (or failing over): not syncing");
            tokio::select! {
                _ = s.ctx_shutdown.requested() => break,
                _ = s.failed_over.wait_for(|v| v.is_none()) => continue,
            }
        }
        let now = OffsetDateTime::now_utc();
        let last = last_point(&s.repo, &name).await;
        let mut due = s.policy.next_sync(last, now);
        if let Some(r) = retry_at {
            due = due.max(s.policy.allowed_from(r));
        }
        if due > now {
            sleep_until(due, &mut s).await;
            continue;
        }
        let Ok(_permit) = s.permits.clone().acquire_owned().await else {
            break;
        };
        if s.ctx_shutdown.is_requested() || s.failed_over.borrow().is_some() {
            continue;
        }
        let (shutdown, watcher) = capture_shutdown(&s);
        let opts = CaptureOptions {
            accept_new_host_key: s.accept_new_host_key,
            shutdown,
        };
        tracing::info!("sync starts");
        let r = capture_host(
            s.repo.clone(),
            c.records.as_ref(),
            &s.host,
            &opts,
            &progress,
        )
        .await;
        watcher.abort();
        match r {
            Ok(rep) => {
                failures = 0;
                retry_at = None;
                s.counters.syncs.fetch_add(1, Ordering::Relaxed);
                let span = tracing::info_span!("point", point = %rep.point);
                let _g = span.enter();
                tracing::info!(
                    bytes_new = rep.stats.bytes_new,
                    bytes_uploaded = rep.stats.bytes_uploaded,
                    duration_s = rep.stats.duration_s,
                    "captured"
                );
                if let Some(e) = &rep.after_point_error {
                    tracing::warn!("{e}");
                }
                let cloud = Cloud::new(&c.sfn, &c.aws);
                match cloud.start_image(&name, &rep.point).await {
                    Ok(arn) => tracing::info!(execution = %arn, "image build started"),
                    Err(e) => tracing::warn!("the image build did not start: {e:#} (the next sync's point will be built)"),
                }
            }
            Err(e) if s.ctx_shutdown.is_requested() || s.failed_over.borrow().is_some() => {
                tracing::info!("capture stopped, no point written: {e:#}");
            }
            Err(e) => {
                failures += 1;
                s.counters.failures.fetch_add(1, Ordering::Relaxed);
                let wait = backoff(s.policy.period(now), failures);
                retry_at = Some(OffsetDateTime::now_utc() + wait);
                tracing::error!(failures, retry_in_s = wait.as_secs(), "sync failed: {e:#}");
            }
        }
    }
    tracing::info!("stopped");
}

struct WatchCtx {
    table: Table,
    cloudwatch: aws_sdk_cloudwatch::Client,
    group: Arc<Protected>,
    failed_over: watch::Sender<Option<String>>,
    shutdown: Shutdown,
    counters: Arc<Counters>,
}

/// Whether the origin is healthy: every tier has a host whose checks all answer.
async fn probe_origin(g: &Protected) -> (bool, Vec<String>) {
    let mut failing = Vec::new();
    let mut healthy = true;
    for t in &g.record.tiers {
        let mut tier_up = false;
        for h in &t.hosts {
            let addr = g
                .hosts
                .iter()
                .find(|x| x.name == h.host)
                .map(Host::service_address)
                .unwrap_or_default();
            let probed = ferry_probe::probe_all(&h.health, &addr, PROBE_TIMEOUT).await;
            let bad: Vec<String> = probed
                .into_iter()
                .filter_map(|p| p.result.err().map(|e| e.to_string()))
                .collect();
            if bad.is_empty() {
                tier_up = true;
            } else {
                failing.extend(bad.into_iter().map(|b| format!("{}: {b}", h.host)));
            }
        }
        healthy &= tier_up;
    }
    (healthy, failing)
}

/// Seconds since the newest point of `host` with a built image was captured.
async fn point_age(table: &Table, host: &str, now: OffsetDateTime) -> Option<f64> {
    let points: Vec<PointRecord> = table
        .query(&keys::host_pk(host), keys::POINT_PREFIX, true, AGE_POINTS)
        .await
        .map_err(|e| tracing::warn!(host, "cannot read the points: {e}"))
        .ok()?;
    let newest = points.into_iter().find(|p| p.image_id.is_some())?;
    Some(seconds_between(parse_rfc3339(&newest.created)?, now))
}

async fn watch_group(w: WatchCtx) {
    let g = &w.group;
    let name = g.record.name.clone();
    let every = g.config.probe_interval();
    let mut was_healthy: Option<bool> = None;
    let mut ages: Vec<(String, f64)> = Vec::new();
    let mut ages_at: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = w.shutdown.requested() => break,
        }
        let now = OffsetDateTime::now_utc();
        let (healthy, failing) = probe_origin(g).await;
        if was_healthy != Some(healthy) {
            match healthy {
                true => tracing::info!("origin healthy"),
                false => tracing::warn!(failing = ?failing, "origin unhealthy"),
            }
            was_healthy = Some(healthy);
        }
        if ages_at.is_none_or(|t| t.elapsed() >= AGE_EVERY) {
            ages.clear();
            for h in g.record.hosts() {
                if let Some(a) = point_age(&w.table, &h.host, now).await {
                    ages.push((h.host.clone(), a));
                }
            }
            ages_at = Some(std::time::Instant::now());
        }
        let group_dim = (dimensions::GROUP.to_string(), name.clone());
        let mut data = vec![
            Datum {
                metric: metrics::HEARTBEAT.into(),
                dimensions: vec![group_dim.clone()],
                value: 1.0,
                unit: Some("Count"),
            },
            Datum {
                metric: metrics::ORIGIN_HEALTHY.into(),
                dimensions: vec![group_dim.clone()],
                value: if healthy { 1.0 } else { 0.0 },
                unit: None,
            },
        ];
        data.extend(ages.iter().map(|(h, a)| Datum {
            metric: metrics::RECOVERY_POINT_AGE.into(),
            dimensions: vec![group_dim.clone(), (dimensions::HOST.to_string(), h.clone())],
            value: *a,
            unit: Some("Seconds"),
        }));
        if let Err(e) = put_metrics(&w.cloudwatch, NAMESPACE, &data, SystemTime::now()).await {
            tracing::warn!("cannot publish the metrics: {e}");
        }
        let mut fields = serde_json::Map::new();
        fields.insert("appliance_healthy".into(), healthy.into());
        if healthy {
            fields.insert("appliance_last_healthy".into(), rfc3339(now).into());
        }
        if let Err(e) = w
            .table
            .set(&keys::group_origin(&name), kinds::ORIGIN, &fields)
            .await
        {
            tracing::warn!("cannot record the origin's health: {e}");
        }
        match failed_over(&w.table, &name).await {
            Ok(state) => {
                let changed = *w.failed_over.borrow() != state;
                if changed {
                    match &state {
                        Some(run) => {
                            tracing::warn!(run = %run, "the group is failing over: syncing stops")
                        }
                        None => {
                            tracing::info!("the group is no longer failed over: syncing resumes")
                        }
                    }
                    w.failed_over.send_replace(state);
                }
            }
            Err(e) => tracing::warn!("{e:#}"),
        }
        w.counters.rounds.fetch_add(1, Ordering::Relaxed);
    }
}
