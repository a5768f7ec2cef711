//! The daemon's side of burst: one task per tier samples its on-prem hosts every
//! `sample_every` and publishes the tier's load (`Ferry/Burst` `Load`, dimension
//! `Tier`), one PutMetricData call per sample. A host that cannot be sampled is left
//! out of that sample (and logged); a sample with no host is not published, so the
//! alarms see missing data, which changes neither of them.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use ferry_aws::cloudwatch::{self, Datum};
use ferry_core::burst::{LOAD_METRIC, NAMESPACE, TIER_DIMENSION};

use super::config::BurstConfig;
use super::load::{tier_value, Sampled};
use crate::host::Host;
use crate::shutdown::Shutdown;

/// Samples taken and values published, over all tiers.
#[derive(Default)]
pub struct Published {
    pub samples: AtomicU64,
    pub published: AtomicU64,
    pub failures: AtomicU64,
}

pub struct Publisher {
    pub config: BurstConfig,
    pub hosts: Vec<(Host, Option<IpAddr>)>,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub shutdown: Shutdown,
    pub accept_new_host_key: bool,
    pub counters: Arc<Published>,
}

pub async fn publish_tier(p: Publisher) {
    let c = &p.config;
    let mut hosts: Vec<Sampled> = p
        .hosts
        .iter()
        .map(|(h, a)| Sampled::new(h.clone(), *a))
        .collect();
    let high_res = c.period().as_secs() < 60;
    let mut tick = tokio::time::interval(c.sample_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(tier = %c.tier, every = ?c.sample_every(), "publishing the tier's load");
    loop {
        tokio::select! {
            _ = p.shutdown.requested() => break,
            _ = tick.tick() => {}
        }
        let mut values = Vec::new();
        for h in &mut hosts {
            match h.sample(c, p.accept_new_host_key).await {
                Ok(Some(v)) => values.push(v),
                Ok(None) => {}
                Err(e) => {
                    p.counters.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(tier = %c.tier, host = %h.host.name, "cannot sample the load: {e:#}");
                }
            }
        }
        p.counters.samples.fetch_add(1, Ordering::Relaxed);
        let Some(value) = tier_value(&values) else {
            continue;
        };
        let datum = Datum {
            metric: LOAD_METRIC.to_string(),
            dimensions: vec![(TIER_DIMENSION.to_string(), c.tier.clone())],
            value,
            unit: None,
        };
        match cloudwatch::put_value(
            &p.cloudwatch,
            NAMESPACE,
            &datum,
            SystemTime::now(),
            high_res,
        )
        .await
        {
            Ok(()) => {
                p.counters.published.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(tier = %c.tier, value, hosts = values.len(), "load published");
            }
            Err(e) => {
                p.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(tier = %c.tier, "cannot publish the load: {e}");
            }
        }
    }
    for h in &mut hosts {
        h.close().await;
    }
}
