//! What arrives, and where it goes: a step of the failover or failback state machine
//! (`action`),
//! an alarm state change (the failover trigger), or the minute's scheduled event (the
//! AWS-side probe). The answer is the step's output as JSON.

use ferry_core::steps::failover::DrRequest;
use ferry_fn::StepError;
use serde::Serialize;
use serde_json::Value;

use crate::{begin, check, failback, finish, probe, switch, trigger, Dr};

fn json(v: impl Serialize) -> Result<Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::NonRetryable(format!("output: {e}")))
}

pub async fn handle(dr: &Dr, payload: Value) -> Result<Value, StepError> {
    if payload.get("action").is_some() {
        let req: DrRequest = serde_json::from_value(payload)
            .map_err(|e| StepError::NonRetryable(format!("not a dr step: {e}")))?;
        return match req {
            DrRequest::Begin(r) => json(begin::begin(dr, r).await?),
            DrRequest::CheckTier(r) => json(check::check_tier(dr, r).await?),
            DrRequest::SwitchTraffic(r) => json(switch::switch_traffic(dr, r).await?),
            DrRequest::Finish(r) => json(finish::finish(dr, r).await?),
            DrRequest::Fail(r) => json(finish::fail(dr, r).await?),
            DrRequest::FailbackBegin(r) => json(failback::begin(dr, r).await?),
            DrRequest::FailbackCutover(r) => json(failback::cutover(dr, r).await?),
            DrRequest::SwitchHome(r) => json(switch::switch_home(dr, r).await?),
            DrRequest::FailbackFinish(r) => json(failback::finish(dr, r).await?),
            DrRequest::FailbackFail(r) => json(failback::fail(dr, r).await?),
        };
    }
    match payload.get("detail-type").and_then(Value::as_str) {
        Some("CloudWatch Alarm State Change") => {
            let e: trigger::AlarmEvent = serde_json::from_value(payload)
                .map_err(|e| StepError::NonRetryable(format!("not an alarm event: {e}")))?;
            json(trigger::trigger(dr, e).await?)
        }
        Some("Scheduled Event") => json(probe::probe(dr).await?),
        other => Err(StepError::NonRetryable(format!(
            "the dr function takes a step (`action`), an alarm state change or a scheduled event, not {}",
            other.unwrap_or("this")
        ))),
    }
}
