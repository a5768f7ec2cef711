//! One task per host of a protected group: waits for the host's next sync (its tier's
//! policy, from its newest point), takes a permit of the tier (at most `max_syncs` at
//! once), captures, starts the new point's AMI build; backs off after a failure; does
//! nothing while its group is failing over or failed over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::names::parse_utc_stamp;
use ferry_store::repo::Repository;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::{Counters, FailedOver};
use crate::capture::{capture_host, CaptureOptions};
use crate::cloud::executions::Cloud;
use crate::ctx::Ctx;
use crate::dr::schedule::{backoff, SyncPolicy};
use crate::host::Host;
use crate::progress::Progress;
use crate::shutdown::Shutdown;

/// What a sync task needs of the command's context: clients of the process's one SDK
/// configuration.
#[derive(Clone)]
pub(super) struct CtxRef {
    sfn: ferry_aws::sfn::Sfn,
    aws: ferry_aws::AwsSettings,
    records: Option<crate::records::Records>,
}

impl CtxRef {
    pub(super) async fn of(ctx: &Ctx) -> CtxRef {
        CtxRef {
            sfn: ctx.aws().await.sfn.clone(),
            aws: ctx.settings.aws.clone(),
            records: ctx.records().await,
        }
    }
}

pub(super) struct SyncCtx {
    pub(super) ctx_shutdown: Shutdown,
    pub(super) repo: Arc<Repository>,
    pub(super) host: Host,
    pub(super) policy: SyncPolicy,
    pub(super) permits: Arc<Semaphore>,
    pub(super) failed_over: FailedOver,
    pub(super) counters: Arc<Counters>,
    pub(super) accept_new_host_key: bool,
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

pub(super) async fn sync_host(c: CtxRef, mut s: SyncCtx) {
    let name = s.host.name.clone();
    let mut failures: u32 = 0;
    let mut retry_at: Option<OffsetDateTime> = None;
    // The host's last image build started: at most one in flight per host, so that
    // short sync intervals never queue builds faster than they finish.
    let mut building: Option<String> = None;
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
            derived: None,
            parent: None,
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
                let running = match &building {
                    Some(arn) => c.sfn.describe(arn).await.is_ok_and(|(_, d)| d.running),
                    None => false,
                };
                if running {
                    tracing::info!(
                        execution = building.as_deref().unwrap_or_default(),
                        "the host's previous image build is still running: a later sync's point is built"
                    );
                } else {
                    let cloud = Cloud::new(&c.sfn, &c.aws);
                    match cloud.start_image(&name, &rep.point).await {
                        Ok(arn) => {
                            tracing::info!(execution = %arn, "image build started");
                            building = Some(arn);
                        }
                        Err(e) => tracing::warn!("the image build did not start: {e:#} (the next sync's point will be built)"),
                    }
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
