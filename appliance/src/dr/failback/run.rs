//! `ferry failback GROUP`: start the group's failback (or resume the one running: a
//! restarted appliance picks up where the state machine is), work its tasks, follow
//! it state by state, and report what it recorded. `--abort`: stop a failback before
//! its cutover; the group stays FAILED_OVER, and origin disks left part-written are
//! named.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ferry_aws::sfn::ExecutionInfo;
use ferry_core::keys;
use ferry_core::names::{execution_name, host_label, utc_stamp};
use ferry_core::steps::failback::{phases, FailbackInput, FailbackRecord};
use ferry_core::steps::failover::{rfc3339, Trigger};
use serde::Serialize;
use time::OffsetDateTime;

use super::worker::{Mode, Worker};
use crate::cloud::follow::follow;
use crate::ctx::Ctx;
use crate::report::Report;

/// What `ferry failback` prints.
#[derive(Debug, Clone, Serialize)]
pub struct FailbackRun {
    pub execution_arn: String,
    pub name: String,
    pub group: String,
    pub status: String,
    /// This invocation resumed a failback already running.
    pub resumed: bool,
    /// This invocation asked the run to abort (`--abort`).
    pub abort: bool,
    /// The run ended aborted.
    pub aborted: bool,
    pub started: Option<String>,
    pub stopped: Option<String>,
    pub duration_s: Option<f64>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The run item (passes, bytes, the cutover window), when recorded.
    pub run: Option<FailbackRecord>,
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

impl Report for FailbackRun {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let took = self
            .duration_s
            .map(|d| format!(" in {d:.1}s"))
            .unwrap_or_default();
        writeln!(out, "{} {}: {}{took}", self.name, self.group, self.status)?;
        if let Some(r) = &self.run {
            writeln!(out, "  {}", r.summary)?;
            for p in r.passes.values() {
                writeln!(
                    out,
                    "  pass {} {:<10} {:<8} read {:>8.1} MiB  uploaded {:>7.2} MiB  written {:>7.2} MiB  capture {:.1} s  write {:.1} s",
                    p.pass,
                    p.host,
                    p.outcome,
                    mib(p.bytes_read),
                    mib(p.bytes_uploaded),
                    mib(p.origin_bytes_written),
                    p.capture_s,
                    p.write_s
                )?;
            }
            if let Some(c) = r.cutover_s {
                writeln!(out, "  cutover window (application down): {c:.1} s")?;
            }
        }
        if let (Some(e), Some(c)) = (&self.error, &self.cause) {
            writeln!(out, "  failed: {e}: {c}")?;
        }
        Ok(())
    }

    fn exit_code(&self) -> ExitCode {
        // `--abort` succeeds when the run ended aborted; a failback succeeds when it
        // came home.
        match (self.status.as_str(), self.abort && self.aborted) {
            ("SUCCEEDED", _) | (_, true) => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    }
}

/// The group's failback execution still running, if any.
async fn running(ctx: &Ctx, sm: &str, group: &str) -> Result<Option<ExecutionInfo>> {
    let prefix = format!("failback-{}-", host_label(group));
    let list = ctx.aws().await.sfn.list(sm, 100).await?;
    Ok(list
        .into_iter()
        .find(|e| e.status == "RUNNING" && e.name.starts_with(&prefix)))
}

pub async fn run(ctx: &Ctx, group: &str, abort: bool) -> Result<FailbackRun> {
    let cfg = ctx.settings.group(group)?;
    let table = ctx
        .aws_table()
        .await
        .context("a failback records its run in DynamoDB: set [aws] table")?;
    let sfn = ctx.aws().await.sfn.clone();
    let sm = sfn
        .state_machine(ctx.settings.aws.failback_state_machine())
        .await?;
    let show = !ctx.json();
    let existing = running(ctx, &sm, group).await?;
    let (arn, name, resumed) = match (existing, abort) {
        (Some(e), _) => {
            if show {
                eprintln!("failback {group}: resuming execution {}", e.name);
            }
            (e.execution_arn, e.name, true)
        }
        (None, true) => bail!("no failback of group {group} is running: nothing to abort"),
        (None, false) => {
            let now = OffsetDateTime::now_utc();
            let name = execution_name("failback", group, &[&utc_stamp(now)]);
            let input = FailbackInput {
                group: group.to_string(),
                trigger: Trigger {
                    kind: "manual".into(),
                    alarm: None,
                    at: rfc3339(now),
                    reason: Some(format!("ferry failback {group}")),
                },
                heartbeat_s: cfg.failback_heartbeat().as_secs().max(1),
            };
            let (arn, _) = sfn.start(&sm, &name, &input).await?;
            if show {
                eprintln!("failback {group}: execution {name}");
            }
            (arn, name, false)
        }
    };
    if abort {
        let key = keys::group_run(group, &name);
        let mut fields = serde_json::Map::new();
        fields.insert(
            "abort_requested".into(),
            rfc3339(OffsetDateTime::now_utc()).into(),
        );
        let asked = table
            .update_if(
                &key,
                &fields,
                None,
                "phase = :first",
                &[(":first", phases::FIRST_PASS.into())],
            )
            .await
            .with_context(|| format!("asking failback {name} to abort"))?;
        if !asked {
            bail!("failback {name} of group {group} is past the start of its cutover (or has no run item yet): it cannot be aborted; let it finish");
        }
        if show {
            eprintln!("failback {group}: abort asked; the run stops at its next step and hands the group back");
        }
    }
    let queue = ferry_aws::sqs::Queue::open(
        ferry_aws::clients::sqs(ctx.sdk().await),
        ctx.settings.aws.failback_queue(),
    )
    .await
    .context(
        "opening the failback work queue (the template's FailbackQueueUrl; [aws] failback_queue)",
    )?;
    let worker = Worker {
        ctx,
        sfn: sfn.clone(),
        queue,
        table: table.clone(),
        group: group.to_string(),
        mode: if abort { Mode::Abort } else { Mode::Work },
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let followed = async {
        let f = follow(&sfn, &arn, show).await;
        let _ = done_tx.send(());
        f
    };
    let stop = async {
        tokio::select! {
            _ = done_rx => {}
            _ = ctx.shutdown.requested() => {}
        }
    };
    let (f, ()) = tokio::join!(
        async {
            tokio::select! {
                f = followed => Some(f),
                _ = ctx.shutdown.requested() => None,
            }
        },
        worker.serve(stop)
    );
    let Some(f) = f else {
        bail!("stopped: failback {name} goes on in AWS and waits for the appliance; run `ferry failback {group}` to resume it, or `--abort` before its cutover");
    };
    let f = f.with_context(|| format!("following execution {name}"))?;
    let run: Option<FailbackRecord> = table
        .get(&keys::group_run(group, &name))
        .await
        .map_err(|e| tracing::warn!("cannot read the run item: {e}"))
        .ok()
        .flatten();
    // A task's failure cause may be lost on the way (the run item keeps it).
    let (error, cause) = f.failure();
    let cause = match &error {
        Some(_) => cause.or_else(|| run.as_ref().and_then(|r| r.cause.clone())),
        None => None,
    };
    Ok(FailbackRun {
        execution_arn: f.info.execution_arn,
        name: f.info.name,
        group: group.to_string(),
        abort,
        aborted: run.as_ref().is_some_and(|r| r.status == "aborted"),
        status: f.info.status,
        resumed,
        started: f.info.started,
        stopped: f.info.stopped,
        duration_s: f.info.duration_s,
        error,
        cause,
        run,
    })
}
