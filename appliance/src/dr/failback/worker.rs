//! The appliance as a worker of the failback state machine: it takes the group's tasks
//! from the work queue (long polling), does each (passes at once, up to the queue's
//! batch), sends heartbeats while it works, and answers with the task's token.
//!
//! A task whose token no longer answers (its heartbeat timed out while this process
//! was stopped or cut off, and the state machine sent it again) is dropped at once: the
//! newer message does the work, and since every pass compares before it writes, what
//! was written before converges. An abort (`ferry failback --abort`) stops a pass at
//! its next heartbeat: what it had written is recorded as partial, and the task fails
//! as `FailbackAborted`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_aws::dynamodb::Table;
use ferry_aws::sfn::Sfn;
use ferry_aws::sqs::{Message, Queue};
use ferry_core::group::GroupRecord;
use ferry_core::keys;
use ferry_core::steps::errors;
use ferry_core::steps::failback::{pass_key, FailbackRecord, PassReport, Work, WorkStep};
use serde_json::Value;

use super::work::{self, PassProgress};
use crate::ctx::Ctx;
use crate::shutdown::Shutdown;

/// What the worker does with the group's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Do them.
    Work,
    /// Fail every task of this run as aborted (`ferry failback --abort`).
    Abort,
}

pub struct Worker<'a> {
    pub ctx: &'a Ctx,
    pub sfn: Sfn,
    pub queue: Queue,
    pub table: Table,
    pub group: String,
    pub mode: Mode,
}

/// Why a task's work stopped before it ended.
enum Interrupted {
    /// Its token answers no more.
    Gone,
    /// An operator aborted the run.
    Aborted,
}

/// How a task ended.
enum Outcome {
    Done(Value),
    Failed {
        error: &'static str,
        cause: String,
    },
    /// The task is gone (its token answers no more): nothing to answer.
    Gone,
}

impl Worker<'_> {
    /// Serves the group's tasks until `stop` resolves (tasks in hand are finished
    /// first only if they end before it).
    pub async fn serve(&self, stop: impl std::future::Future<Output = ()>) {
        use futures::stream::{FuturesUnordered, StreamExt};
        tokio::pin!(stop);
        let mut jobs = FuturesUnordered::new();
        let mut recv = Box::pin(self.queue.receive(2, 10));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(()) = jobs.next(), if !jobs.is_empty() => {}
                batch = &mut recv => {
                    match batch {
                        Ok(b) => {
                            for m in b {
                                if let Some(work) = self.take(&m).await {
                                    jobs.push(self.handle(work));
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("reading the failback queue: {e}");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    recv = Box::pin(self.queue.receive(2, 10));
                }
            }
        }
    }

    /// The message's work if it is this group's (deleted from the queue: its token is
    /// what matters from here); another group's is handed back at once.
    async fn take(&self, m: &Message) -> Option<Work> {
        let work: Work = match serde_json::from_str(&m.body) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("dropping a message that is not failback work: {e}");
                let _ = self.queue.delete(m).await;
                return None;
            }
        };
        if work.group != self.group {
            if let Err(e) = self.queue.hand_back(m).await {
                tracing::warn!("handing back a task of group {}: {e}", work.group);
            }
            return None;
        }
        if let Err(e) = self.queue.delete(m).await {
            tracing::warn!("deleting a taken task: {e}");
        }
        Some(work)
    }

    async fn handle(&self, work: Work) {
        let what = describe(&work.step);
        // A stale message (its task given up and sent again) answers no heartbeat.
        match self.sfn.task_heartbeat(&work.task_token).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(run = %work.run_id, "{what}: the task was given up and sent again; skipping this copy");
                return;
            }
            Err(e) => tracing::warn!(run = %work.run_id, "{what}: first heartbeat failed: {e}"),
        }
        let outcome = match self.mode {
            Mode::Abort => Outcome::Failed {
                error: errors::FAILBACK_ABORTED,
                cause: format!("failback {} was aborted before its cutover", work.run_id),
            },
            Mode::Work => {
                if !self.ctx.json() {
                    eprintln!("  working: {what}");
                }
                self.work(&work).await
            }
        };
        let answered = match &outcome {
            Outcome::Done(v) => self.sfn.task_success(&work.task_token, v).await,
            Outcome::Failed { error, cause } => {
                tracing::warn!(run = %work.run_id, error, "{what}: {cause}");
                if !self.ctx.json() {
                    eprintln!("  failed: {what}: {cause}");
                }
                self.sfn.task_failure(&work.task_token, error, cause).await
            }
            Outcome::Gone => Ok(false),
        };
        match answered {
            Ok(true) => tracing::info!(run = %work.run_id, "{what}: answered"),
            Ok(false) => {
                tracing::info!(run = %work.run_id, "{what}: the task was given up meanwhile")
            }
            Err(e) => tracing::warn!(run = %work.run_id, "{what}: answering the task: {e}"),
        }
    }

    /// Does the work, sending heartbeats; a pass also watches for an abort.
    async fn work(&self, work: &Work) -> Outcome {
        let every = Duration::from_secs((work.heartbeat_s / 3).max(1));
        let (trigger, shutdown) = Shutdown::new();
        let progress = PassProgress::default();
        let job = self.step(work, &progress, shutdown);
        tokio::pin!(job);
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        let stopped = loop {
            tokio::select! {
                r = &mut job => break Ok(r),
                _ = ticks.tick() => {
                    match self.sfn.task_heartbeat(&work.task_token).await {
                        Ok(true) => {}
                        Ok(false) => break Err(Interrupted::Gone),
                        Err(e) => tracing::warn!(run = %work.run_id, "heartbeat: {e}"),
                    }
                    if matches!(work.step, WorkStep::Pass { .. }) && self.abort_asked(work).await {
                        break Err(Interrupted::Aborted);
                    }
                }
            }
        };
        let (pass, host) = match &work.step {
            WorkStep::Pass { pass, host } => (Some(*pass), Some(host.host.clone())),
            _ => (None, None),
        };
        let partial = |error: String| {
            PassReport::partial(
                host.as_deref().unwrap_or_default(),
                pass.unwrap_or(0),
                progress.origin_bytes_written.load(Ordering::Relaxed),
                error,
            )
        };
        match stopped {
            Ok(Ok(v)) => {
                if pass.is_some() {
                    if let Ok(report) = serde_json::from_value::<PassReport>(v.clone()) {
                        self.record(work, &report).await;
                    }
                }
                Outcome::Done(v)
            }
            Ok(Err(e)) => {
                let cause = format!("{e:#}");
                if pass.is_some() {
                    self.record(work, &partial(cause.clone())).await;
                }
                Outcome::Failed {
                    error: errors::FAILBACK_WORK_FAILED,
                    cause,
                }
            }
            Err(why) => {
                // Stops a capture in flight; the job itself ends when this returns.
                trigger.request();
                match why {
                    Interrupted::Aborted => {
                        let cause =
                            format!("failback {} was aborted before its cutover", work.run_id);
                        self.record(work, &partial(cause.clone())).await;
                        Outcome::Failed {
                            error: errors::FAILBACK_ABORTED,
                            cause,
                        }
                    }
                    Interrupted::Gone => Outcome::Gone,
                }
            }
        }
    }

    async fn step(
        &self,
        work: &Work,
        progress: &PassProgress,
        shutdown: Shutdown,
    ) -> Result<Value> {
        let g = &work.group;
        Ok(match &work.step {
            WorkStep::Pass { pass, host } => {
                let base = self.written_before(work, &host.host, *pass).await;
                serde_json::to_value(
                    work::pass(
                        self.ctx,
                        g,
                        host,
                        *pass,
                        base.as_deref(),
                        progress,
                        shutdown,
                    )
                    .await?,
                )?
            }
            WorkStep::StopTier { tier } => {
                serde_json::to_value(work::stop_tier(self.ctx, g, tier).await?)?
            }
            WorkStep::StartTier { tier } => {
                let record: GroupRecord =
                    self.table.get(&keys::group(g)).await?.with_context(|| {
                        format!("group {g} is not recorded: run `ferry protect {g}`")
                    })?;
                serde_json::to_value(work::start_tier(self.ctx, g, &record, tier).await?)?
            }
        })
    }

    /// The point the pass before wrote to the host's origin and read back, if it did.
    async fn written_before(&self, work: &Work, host: &str, pass: u32) -> Option<String> {
        if pass < 2 {
            return None;
        }
        let r = self
            .table
            .get::<FailbackRecord>(&keys::group_run(&work.group, &work.run_id))
            .await
            .ok()??;
        let before = r.passes.get(&pass_key(host, pass - 1))?;
        (before.outcome == "done").then(|| before.point.clone())?
    }

    async fn abort_asked(&self, work: &Work) -> bool {
        match self
            .table
            .get::<FailbackRecord>(&keys::group_run(&work.group, &work.run_id))
            .await
        {
            Ok(Some(r)) => r.abort_requested.is_some(),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(run = %work.run_id, "reading the run item: {e}");
                false
            }
        }
    }

    /// Records a pass in the run item (`passes`), complete or stopped part-way.
    async fn record(&self, work: &Work, report: &PassReport) {
        let key = keys::group_run(&work.group, &work.run_id);
        let value = match serde_json::to_value(report) {
            Ok(v) => v,
            Err(_) => return,
        };
        let entry = pass_key(&report.host, report.pass);
        if let Err(e) = self
            .table
            .update_if(
                &key,
                &serde_json::Map::new(),
                Some(("passes", &entry, &value)),
                "attribute_exists(passes)",
                &[],
            )
            .await
        {
            tracing::warn!(run = %work.run_id, "recording pass {entry}: {e}");
        }
    }
}

fn describe(step: &WorkStep) -> String {
    match step {
        WorkStep::Pass { pass, host } => format!(
            "pass {pass} of {} (recovery instance {} at {})",
            host.host, host.instance_id, host.recovery_ip
        ),
        WorkStep::StopTier { tier } => format!("pre-cutover hook of tier {}", tier.tier),
        WorkStep::StartTier { tier } => {
            format!("post-cutover hook and health of tier {}", tier.tier)
        }
    }
}
