//! `ferry failover` and `ferry drill`: start the failover state machine by hand (the
//! same machine the group's alarm starts), follow it state by state, and report what
//! it recorded.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ferry_core::keys;
use ferry_core::names::{execution_name, utc_stamp};
use ferry_core::steps::failover::{
    parse_rfc3339, rfc3339, FailoverInput, Mode, RunRecord, Trigger,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::cloud::follow::follow;
use crate::ctx::Ctx;
use crate::report::Report;

/// What `ferry failover` and `ferry drill` print.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRun {
    pub execution_arn: String,
    pub name: String,
    pub group: String,
    pub mode: Mode,
    pub status: String,
    pub summary: Option<String>,
    pub started: Option<String>,
    pub stopped: Option<String>,
    pub duration_s: Option<f64>,
    /// The failing step's error name and cause.
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The run item as the state machine recorded it (hosts, points, achieved RPO and
    /// RTO, each state's time, a drill's cost), when the records table is configured.
    pub run: Option<RunRecord>,
}

impl Report for GroupRun {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let took = self
            .duration_s
            .map(|d| format!(" in {d:.1}s"))
            .unwrap_or_default();
        writeln!(out, "{} {}: {}{took}", self.name, self.group, self.status)?;
        if let Some(s) = self
            .run
            .as_ref()
            .map(|r| &r.summary)
            .or(self.summary.as_ref())
        {
            writeln!(out, "  {s}")?;
        }
        if let Some(r) = &self.run {
            for h in &r.hosts {
                writeln!(
                    out,
                    "  {:<12} {:<6} point {} -> {} {} {}  RPO {:.0} s",
                    h.host,
                    h.tier,
                    h.point,
                    h.image_id,
                    h.instance_id.as_deref().unwrap_or("-"),
                    h.private_ip.as_deref().unwrap_or("-"),
                    h.rpo_s
                )?;
            }
            for t in &r.tiers {
                writeln!(
                    out,
                    "  tier {:<8} ready after {:.1} s",
                    t.tier, t.ready_after_s
                )?;
            }
        }
        if let (Some(e), Some(c)) = (&self.error, &self.cause) {
            writeln!(out, "  failed: {e}: {c}")?;
        }
        Ok(())
    }

    fn exit_code(&self) -> ExitCode {
        match self.status.as_str() {
            "SUCCEEDED" => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    }
}

/// Starts a failover or drill of `group` and follows it to its end.
pub async fn run(
    ctx: &Ctx,
    group: &str,
    mode: Mode,
    at: Option<&str>,
    show: bool,
) -> Result<GroupRun> {
    let at = match at {
        Some(a) => Some(rfc3339(parse_rfc3339(a).with_context(|| {
            format!("--at {a:?} is not an RFC 3339 time (e.g. 2026-11-30T12:00:00Z)")
        })?)),
        None => None,
    };
    let sfn = &ctx.aws().await.sfn;
    let sm = sfn
        .state_machine(ctx.settings.aws.failover_state_machine())
        .await?;
    let now = OffsetDateTime::now_utc();
    let name = execution_name(mode.as_str(), group, &[&utc_stamp(now)]);
    let input = FailoverInput {
        group: group.to_string(),
        mode,
        at,
        trigger: Trigger {
            kind: "manual".into(),
            alarm: None,
            at: rfc3339(now),
            reason: Some(format!("ferry {} {group}", mode.as_str())),
        },
    };
    let (arn, _) = sfn.start(&sm, &name, &input).await?;
    if show {
        eprintln!("{} {group}: execution {name}", mode.as_str());
    }
    let f = follow(sfn, &arn, show)
        .await
        .with_context(|| format!("following execution {name}"))?;
    let run = match ctx.aws_table().await {
        Some(t) => t
            .get::<RunRecord>(&keys::group_run(group, &name))
            .await
            .map_err(|e| tracing::warn!("cannot read the run item: {e}"))
            .ok()
            .flatten(),
        None => None,
    };
    let (error, cause) = f.failure();
    Ok(GroupRun {
        execution_arn: f.info.execution_arn,
        name: f.info.name,
        group: group.to_string(),
        mode,
        status: f.info.status,
        summary: f
            .described
            .output
            .get("summary")
            .and_then(|s| s.as_str())
            .map(str::to_string),
        started: f.info.started,
        stopped: f.info.stopped,
        duration_s: f.info.duration_s,
        error,
        cause,
        run,
    })
}
