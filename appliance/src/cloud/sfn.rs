//! Step Functions calls, with errors that name the state machine or execution.

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};

pub struct Sfn {
    pub client: aws_sdk_sfn::Client,
}

/// One execution as `ferry runs` and the follow loop see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub state_machine: String,
    pub status: String,
    /// RFC 3339.
    pub started: Option<String>,
    pub stopped: Option<String>,
    pub duration_s: Option<f64>,
    #[serde(skip)]
    pub started_epoch: f64,
}

fn rfc3339(t: &aws_sdk_sfn::primitives::DateTime) -> Option<String> {
    t.fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
        .ok()
}

fn seconds(a: &aws_sdk_sfn::primitives::DateTime, b: &aws_sdk_sfn::primitives::DateTime) -> f64 {
    b.as_secs_f64() - a.as_secs_f64()
}

impl Sfn {
    /// A state machine's ARN from its name (or the ARN itself).
    pub async fn state_machine(&self, name_or_arn: &str) -> Result<String> {
        if name_or_arn.starts_with("arn:") {
            return Ok(name_or_arn.to_string());
        }
        let mut pages = self.client.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
                .context("ListStateMachines")?;
            if let Some(sm) = page
                .state_machines()
                .iter()
                .find(|s| s.name() == name_or_arn)
            {
                return Ok(sm.state_machine_arn().to_string());
            }
        }
        bail!("no state machine named {name_or_arn}: deploy infra/template.yaml, or set it in [aws] of the config")
    }

    /// Starts an execution; one of the same name that already exists is returned
    /// instead (a retried command follows the run it started before), with `true`.
    pub async fn start(
        &self,
        state_machine: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<(String, bool)> {
        let r = self
            .client
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match r {
            Ok(out) => Ok((out.execution_arn().to_string(), false)),
            Err(e) if e.code() == Some("ExecutionAlreadyExists") => {
                Ok((execution_arn(state_machine, name), true))
            }
            Err(e) => Err(anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("StartExecution {name} of {state_machine}")),
        }
    }

    pub async fn describe(&self, arn: &str) -> Result<(ExecutionInfo, Described)> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("DescribeExecution {arn}"))?;
        let info = ExecutionInfo {
            execution_arn: d.execution_arn().to_string(),
            name: d.name().unwrap_or_default().to_string(),
            state_machine: d.state_machine_arn().to_string(),
            status: d.status().as_str().to_string(),
            started: rfc3339(d.start_date()),
            stopped: d.stop_date().and_then(rfc3339),
            duration_s: d.stop_date().map(|s| seconds(d.start_date(), s)),
            started_epoch: d.start_date().as_secs_f64(),
        };
        let described = Described {
            running: d.status() == &ExecutionStatus::Running,
            output: d
                .output()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or(serde_json::Value::Null),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        };
        Ok((info, described))
    }

    /// The whole history, oldest first.
    pub async fn history(&self, arn: &str) -> Result<Vec<HistoryEvent>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("GetExecutionHistory {arn}"))?;
            out.extend(page.events().iter().cloned());
        }
        Ok(out)
    }

    /// Executions of a state machine, newest first.
    pub async fn list(&self, state_machine: &str, limit: usize) -> Result<Vec<ExecutionInfo>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(state_machine)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("ListExecutions of {state_machine}"))?;
            for e in page.executions() {
                out.push(ExecutionInfo {
                    execution_arn: e.execution_arn().to_string(),
                    name: e.name().to_string(),
                    state_machine: e.state_machine_arn().to_string(),
                    status: e.status().as_str().to_string(),
                    started: rfc3339(e.start_date()),
                    stopped: e.stop_date().and_then(rfc3339),
                    duration_s: e.stop_date().map(|s| seconds(e.start_date(), s)),
                    started_epoch: e.start_date().as_secs_f64(),
                });
            }
            if out.len() >= limit {
                break;
            }
        }
        out.sort_by(|a, b| b.started_epoch.total_cmp(&a.started_epoch));
        out.truncate(limit);
        Ok(out)
    }
}

/// What DescribeExecution says beyond [`ExecutionInfo`].
#[derive(Debug, Clone)]
pub struct Described {
    pub running: bool,
    pub output: serde_json::Value,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// `arn:...:stateMachine:NAME` + execution name -> `arn:...:execution:NAME:EXEC`.
pub fn execution_arn(state_machine: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_follow_the_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:ferry-migrate",
                "migrate-web1-20261124T120000Z"
            ),
            "arn:aws:states:us-east-1:123456789012:execution:ferry-migrate:migrate-web1-20261124T120000Z"
        );
    }
}
