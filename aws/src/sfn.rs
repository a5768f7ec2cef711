//! Step Functions as the appliance uses it: find a state machine, start, describe, list
//! executions and read their histories, all as plain data.

use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sfn::types::ExecutionStatus;

use crate::CallError;

#[derive(Clone)]
pub struct Sfn {
    client: aws_sdk_sfn::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum SfnError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(
        "no state machine named {0}: deploy infra/template.yaml, or set it in [aws] of the config"
    )]
    NoStateMachine(String),
    #[error("execution input does not serialise: {0}")]
    Input(#[from] serde_json::Error),
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

/// What DescribeExecution says beyond [`ExecutionInfo`].
#[derive(Debug, Clone)]
pub struct Described {
    pub running: bool,
    pub output: serde_json::Value,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// A history event, reduced to what the appliance reads from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Entered {
        name: String,
        at: f64,
    },
    Exited {
        name: String,
        at: f64,
    },
    /// A task or Lambda step failed: its error name and cause.
    StepFailed {
        error: String,
        cause: String,
    },
    Other,
}

fn rfc3339(t: &DateTime) -> Option<String> {
    t.fmt(DateTimeFormat::DateTime).ok()
}

fn info(
    arn: &str,
    name: &str,
    sm: &str,
    status: &ExecutionStatus,
    start: &DateTime,
    stop: Option<&DateTime>,
) -> ExecutionInfo {
    ExecutionInfo {
        execution_arn: arn.to_string(),
        name: name.to_string(),
        state_machine: sm.to_string(),
        status: status.as_str().to_string(),
        started: rfc3339(start),
        stopped: stop.and_then(rfc3339),
        duration_s: stop.map(|s| s.as_secs_f64() - start.as_secs_f64()),
        started_epoch: start.as_secs_f64(),
    }
}

fn event(e: &aws_sdk_sfn::types::HistoryEvent) -> Event {
    let at = e.timestamp().as_secs_f64();
    if let Some(d) = e.state_entered_event_details() {
        return Event::Entered {
            name: d.name().to_string(),
            at,
        };
    }
    if let Some(d) = e.state_exited_event_details() {
        return Event::Exited {
            name: d.name().to_string(),
            at,
        };
    }
    let failed = |error: Option<&str>, cause: Option<&str>| Event::StepFailed {
        error: error.unwrap_or_default().to_string(),
        cause: cause.unwrap_or_default().to_string(),
    };
    if let Some(d) = e.task_failed_event_details() {
        return failed(d.error(), d.cause());
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        return failed(d.error(), d.cause());
    }
    Event::Other
}

/// `arn:...:stateMachine:NAME` + execution name -> `arn:...:execution:NAME:EXEC`.
pub fn execution_arn(state_machine: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

impl Sfn {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Sfn { client }
    }

    /// A state machine's ARN from its name (or the ARN itself).
    pub async fn state_machine(&self, name_or_arn: &str) -> Result<String, SfnError> {
        if name_or_arn.starts_with("arn:") {
            return Ok(name_or_arn.to_string());
        }
        let mut pages = self.client.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CallError::new("ListStateMachines", name_or_arn, &e))?;
            if let Some(sm) = page
                .state_machines()
                .iter()
                .find(|s| s.name() == name_or_arn)
            {
                return Ok(sm.state_machine_arn().to_string());
            }
        }
        Err(SfnError::NoStateMachine(name_or_arn.to_string()))
    }

    /// Starts an execution; one of the same name that already exists is returned
    /// instead (a retried command follows the run it started before), with `true`.
    pub async fn start(
        &self,
        state_machine: &str,
        name: &str,
        input: &impl serde::Serialize,
    ) -> Result<(String, bool), SfnError> {
        let r = self
            .client
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(serde_json::to_string(input)?)
            .send()
            .await;
        match r {
            Ok(out) => Ok((out.execution_arn().to_string(), false)),
            Err(e) => {
                let err =
                    CallError::new("StartExecution", format!("{name} of {state_machine}"), &e);
                if err.failure.is("ExecutionAlreadyExists") {
                    return Ok((execution_arn(state_machine, name), true));
                }
                Err(err.into())
            }
        }
    }

    pub async fn describe(&self, arn: &str) -> Result<(ExecutionInfo, Described), SfnError> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| CallError::new("DescribeExecution", arn, &e))?;
        let i = info(
            d.execution_arn(),
            d.name().unwrap_or_default(),
            d.state_machine_arn(),
            d.status(),
            d.start_date(),
            d.stop_date(),
        );
        let described = Described {
            running: d.status() == &ExecutionStatus::Running,
            output: d
                .output()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or(serde_json::Value::Null),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        };
        Ok((i, described))
    }

    /// The whole history, oldest first.
    pub async fn history(&self, arn: &str) -> Result<Vec<Event>, SfnError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CallError::new("GetExecutionHistory", arn, &e))?;
            out.extend(page.events().iter().map(event));
        }
        Ok(out)
    }

    /// Executions of a state machine, newest first.
    pub async fn list(
        &self,
        state_machine: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionInfo>, SfnError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(state_machine)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CallError::new("ListExecutions of", state_machine, &e))?;
            for e in page.executions() {
                out.push(info(
                    e.execution_arn(),
                    e.name(),
                    e.state_machine_arn(),
                    e.status(),
                    e.start_date(),
                    e.stop_date(),
                ));
            }
            if out.len() >= limit {
                break;
            }
        }
        out.sort_by(|a, b| b.started_epoch.total_cmp(&a.started_epoch));
        out.truncate(limit);
        Ok(out)
    }

    /// Answers a task that waits for its token (`.waitForTaskToken`) with its output.
    /// `Ok(false)`: the task is gone (timed out, or its execution ended).
    pub async fn task_success(
        &self,
        token: &str,
        output: &impl serde::Serialize,
    ) -> Result<bool, SfnError> {
        let r = self
            .client
            .send_task_success()
            .task_token(token)
            .output(serde_json::to_string(output)?)
            .send()
            .await;
        task_gone(r.map(|_| ()), "SendTaskSuccess")
    }

    /// Fails a waiting task with an error name (what the definition's `Catch` matches)
    /// and a cause. `Ok(false)`: the task is gone.
    pub async fn task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<bool, SfnError> {
        let r = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await;
        task_gone(r.map(|_| ()), "SendTaskFailure")
    }

    /// Tells a waiting task its worker is alive. `Ok(false)`: the task is gone (its
    /// heartbeat timed out and it was sent again, or the execution ended): stop its work.
    pub async fn task_heartbeat(&self, token: &str) -> Result<bool, SfnError> {
        let r = self
            .client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await;
        task_gone(r.map(|_| ()), "SendTaskHeartbeat")
    }
}

/// A task callback's result: `false` when the service says the task no longer waits.
fn task_gone<E, R>(
    r: Result<(), aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    call: &'static str,
) -> Result<bool, SfnError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match r {
        Ok(()) => Ok(true),
        Err(e) => {
            let err = CallError::new(call, "a task token", &e);
            if ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"]
                .iter()
                .any(|c| err.failure.is(c))
            {
                return Ok(false);
            }
            Err(err.into())
        }
    }
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
