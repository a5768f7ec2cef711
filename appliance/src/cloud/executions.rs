//! Image builds, migrations and the list of runs: which execution each starts, with
//! what (typed) input, and what it reports.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ferry_aws::sfn::{execution_arn, Described, ExecutionInfo, Sfn};
use ferry_aws::AwsSettings;
use ferry_core::steps::build_image::BuildImageInput;
use ferry_core::steps::migrate::{MigrateInput, Target};
use ferry_core::steps::RunOutput;
use ferry_store::Repository;
use serde::Serialize;
use serde_json::Value;

use super::follow::{follow, Finished, StateTiming};
use super::{execution_name, is_run_of};
use crate::report::Report;

pub const DEFAULT_INSTANCE_TYPE: &str = "t3.medium";

pub struct Cloud<'a> {
    sfn: &'a Sfn,
    migrate: String,
    build_image: String,
    failover: String,
    failback: String,
    /// The burst and scale-in state machines.
    bursts: [String; 2],
}

/// What `ferry image` and `ferry migrate` print.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub execution_arn: String,
    pub name: String,
    pub status: String,
    pub host: String,
    pub point: String,
    pub snapshot_id: Option<String>,
    pub image_id: Option<String>,
    pub instance_id: Option<String>,
    pub blocks_written: Option<u64>,
    pub blocks_total: Option<u64>,
    pub summary: Option<String>,
    pub started: Option<String>,
    pub stopped: Option<String>,
    pub duration_s: Option<f64>,
    pub states: Vec<StateTiming>,
    /// Why it failed: the failing step's error name and cause.
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED" || self.status == "RUNNING"
    }
}

/// An image build or a migration; fails the command unless it succeeded (or, not
/// waited for, is running).
impl Report for RunReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let took = self
            .duration_s
            .map(|d| format!(" in {d:.1}s"))
            .unwrap_or_default();
        writeln!(out, "{} {}: {}{took}", self.name, self.host, self.status)?;
        match &self.summary {
            Some(s) => writeln!(out, "  {s}")?,
            None => {
                let chain: Vec<String> = [
                    Some(format!("point {}", self.point)),
                    self.snapshot_id.as_ref().map(|s| format!("snapshot {s}")),
                    self.image_id.as_ref().map(|s| format!("image {s}")),
                    self.instance_id.as_ref().map(|s| format!("instance {s}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                writeln!(out, "  {}", chain.join(" -> "))?;
            }
        }
        if let (Some(e), c) = (&self.error, &self.cause) {
            writeln!(out, "  failed: {e}: {}", c.as_deref().unwrap_or(""))?;
        }
        writeln!(
            out,
            "  history: aws stepfunctions get-execution-history --execution-arn {}",
            self.execution_arn
        )
    }

    fn exit_code(&self) -> ExitCode {
        match self.succeeded() {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    }
}

/// The run's output as the contract types it; a run without one (failed, running)
/// reads as empty.
fn output(v: &Value) -> RunOutput {
    if v.is_null() {
        return RunOutput::default();
    }
    serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        tracing::warn!("the run's output is not a run output: {e}");
        RunOutput::default()
    })
}

fn report(host: &str, point: &str, f: Finished) -> RunReport {
    let out = output(&f.described.output);
    let (error, cause) = match (&f.step_error, &f.described.error) {
        (_, None) if f.info.status == "SUCCEEDED" => (None, None),
        (Some((e, c)), _) => (Some(e.clone()), Some(c.clone())),
        (None, e) => (e.clone(), f.described.cause.clone()),
    };
    RunReport {
        execution_arn: f.info.execution_arn,
        name: f.info.name,
        status: f.info.status,
        host: host.to_string(),
        point: point.to_string(),
        snapshot_id: out.snapshot_id,
        image_id: out.image_id,
        instance_id: out.instance_id,
        blocks_written: out.blocks_written,
        blocks_total: out.blocks_total,
        summary: out.summary,
        started: f.info.started,
        stopped: f.info.stopped,
        duration_s: f.info.duration_s,
        states: f.states,
        error,
        cause,
    }
}

fn utc_now() -> String {
    ferry_core::names::utc_stamp(time::OffsetDateTime::now_utc())
}

impl<'a> Cloud<'a> {
    pub fn new(sfn: &'a Sfn, aws: &AwsSettings) -> Self {
        Cloud {
            sfn,
            migrate: aws.migrate_state_machine().to_string(),
            build_image: aws.build_image_state_machine().to_string(),
            failover: aws.failover_state_machine().to_string(),
            failback: aws.failback_state_machine().to_string(),
            bursts: [
                aws.burst_state_machine().to_string(),
                aws.scale_in_state_machine().to_string(),
            ],
        }
    }

    fn image_execution_name(host: &str, point: &str) -> String {
        execution_name("image", host, &[point])
    }

    /// Starts the build of `point`'s image; returns the execution ARN.
    /// An earlier build of the point that is running or succeeded is followed instead;
    /// after a failed one (names stay taken), a new build gets a time suffix.
    pub async fn start_image(&self, host: &str, point: &str) -> Result<String> {
        let sm = self.sfn.state_machine(&self.build_image).await?;
        let input = BuildImageInput {
            host: host.to_string(),
            point: Some(point.to_string()),
        };
        let name = Self::image_execution_name(host, point);
        let (arn, existed) = self.sfn.start(&sm, &name, &input).await?;
        if !existed
            || matches!(
                self.sfn.describe(&arn).await?.0.status.as_str(),
                "RUNNING" | "SUCCEEDED"
            )
        {
            return Ok(arn);
        }
        let retry = execution_name("image", host, &[point, &utc_now()]);
        Ok(self.sfn.start(&sm, &retry, &input).await?.0)
    }

    /// `ferry image`: builds (or finds) the AMI of a point.
    pub async fn image(
        &self,
        repo: &Repository,
        host: &str,
        point: Option<&str>,
        wait: bool,
        show: bool,
    ) -> Result<RunReport> {
        let m = repo.resolve_point(host, point).await?;
        let point = m.meta.point;
        let arn = self.start_image(host, &point).await?;
        if !wait {
            let (info, _) = self.sfn.describe(&arn).await?;
            return Ok(report(
                host,
                &point,
                Finished {
                    info,
                    described: Described {
                        running: true,
                        output: Value::Null,
                        error: None,
                        cause: None,
                    },
                    states: Vec::new(),
                    step_error: None,
                },
            ));
        }
        let f = follow(self.sfn, &arn, show).await?;
        Ok(report(host, &point, f))
    }

    /// `ferry migrate`: builds the image of the point (or waits for the build that a
    /// capture started), launches it into `target`, verifies it, records the cutover.
    pub async fn migrate(
        &self,
        repo: &Repository,
        host: &str,
        point: Option<&str>,
        target: &Target,
        show: bool,
    ) -> Result<RunReport> {
        let m = repo.resolve_point(host, point).await?;
        let point = m.meta.point;
        // An image build of this point already under way: let it finish first, so that
        // the migration reuses its AMI instead of building beside it.
        let build_sm = self.sfn.state_machine(&self.build_image).await?;
        let build = execution_arn(&build_sm, &Self::image_execution_name(host, &point));
        if let Ok((_, d)) = self.sfn.describe(&build).await {
            if d.running {
                if show {
                    eprintln!("waiting for the image build of point {point} to finish");
                }
                follow(self.sfn, &build, show).await?;
            }
        }
        let sm = self.sfn.state_machine(&self.migrate).await?;
        let name = execution_name("migrate", host, &[&utc_now()]);
        let input = MigrateInput {
            run_id: name.clone(),
            host: host.to_string(),
            point: Some(point.clone()),
            target: target.clone(),
        };
        let (arn, _) = self.sfn.start(&sm, &name, &input).await?;
        if show {
            eprintln!("migrate {host}: execution {name}");
        }
        let f = follow(self.sfn, &arn, show)
            .await
            .with_context(|| format!("following execution {name}"))?;
        Ok(report(host, &point, f))
    }

    /// `ferry runs`: executions of both state machines, newest first; with `host`, only
    /// that host's (executions are named `<kind>-<host>-...`).
    pub async fn runs(&self, host: Option<&str>, limit: usize) -> Result<Vec<ExecutionInfo>> {
        let mut all = Vec::new();
        for sm in [&self.migrate, &self.build_image] {
            let arn = self.sfn.state_machine(sm).await?;
            all.extend(self.sfn.list(&arn, usize::MAX).await?);
        }
        // Failovers, drills and failbacks are a group's, bursts and scale-ins a tier's,
        // not a host's: listed without a host.
        if host.is_none() {
            for sm in [
                &self.failover,
                &self.failback,
                &self.bursts[0],
                &self.bursts[1],
            ] {
                match self.sfn.state_machine(sm).await {
                    Ok(arn) => all.extend(self.sfn.list(&arn, usize::MAX).await?),
                    Err(ferry_aws::sfn::SfnError::NoStateMachine(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if let Some(h) = host {
            all.retain(|e| is_run_of(&e.name, h));
        }
        all.sort_by(|a, b| b.started_epoch.total_cmp(&a.started_epoch));
        all.truncate(limit);
        Ok(all)
    }
}
