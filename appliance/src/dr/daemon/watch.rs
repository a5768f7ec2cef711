//! One task per protected group: every `probe_interval`, the origin's health checks
//! (healthy: every tier has a host whose checks all answer), the metrics (heartbeat,
//! `OriginHealthy`, each host's `RecoveryPointAge`), what the appliance saw recorded
//! where a failover reads the failure time, and whether the group is failing over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_aws::cloudwatch::{put_metrics, Datum};
use ferry_aws::dynamodb::Table;
use ferry_core::alarms::{dimensions, metrics, NAMESPACE};
use ferry_core::keys::{self, kinds};
use ferry_core::records::PointRecord;
use ferry_core::steps::failover::{parse_rfc3339, rfc3339, seconds_between};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{failed_over, Counters, Protected};
use crate::host::Host;
use crate::shutdown::Shutdown;

/// How long one health check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the age of each host's newest built point is looked up, and among how
/// many of its newest points (none built among them: no age is published, which the
/// RPO alarm counts as at risk).
const AGE_EVERY: Duration = Duration::from_secs(15);
const AGE_POINTS: usize = 50;

pub(super) struct WatchCtx {
    pub(super) table: Table,
    pub(super) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(super) group: Arc<Protected>,
    pub(super) failed_over: watch::Sender<Option<String>>,
    pub(super) shutdown: Shutdown,
    pub(super) counters: Arc<Counters>,
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

pub(super) async fn watch_group(w: WatchCtx) {
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
