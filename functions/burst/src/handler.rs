//! What arrives, and where it goes: a step of the burst or scale-in state machine
//! (`action`), an alarm state change (the trigger), or an Auto Scaling instance event
//! (the sync). The answer is the step's output
//! as JSON.

use ferry_core::steps::burst::BurstRequest;
use ferry_fn::StepError;
use serde::Serialize;
use serde_json::Value;

use crate::{begin, capacity, finish, image, scale_in, sync, trigger, Burst};

fn json(v: impl Serialize) -> Result<Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::NonRetryable(format!("output: {e}")))
}

pub async fn handle(b: &Burst, payload: Value) -> Result<Value, StepError> {
    if payload.get("action").is_some() {
        let req: BurstRequest = serde_json::from_value(payload)
            .map_err(|e| StepError::NonRetryable(format!("not a burst step: {e}")))?;
        return match req {
            BurstRequest::BurstBegin(r) => json(begin::burst(b, r).await?),
            BurstRequest::UseNewestImage(r) => json(image::use_newest(b, r).await?),
            BurstRequest::Raise(r) => json(capacity::raise(b, r).await?),
            BurstRequest::CheckCapacity(r) => json(capacity::check(b, r).await?),
            BurstRequest::ScaleInBegin(r) => json(begin::scale_in(b, r).await?),
            BurstRequest::Drain(r) => json(scale_in::drain(b, r).await?),
            BurstRequest::Lower(r) => json(scale_in::lower(b, r).await?),
            BurstRequest::CheckGone(r) => json(scale_in::check_gone(b, r).await?),
            BurstRequest::Finish(r) => json(finish::finish(b, r).await?),
            BurstRequest::Fail(r) => json(finish::fail(b, r).await?),
            BurstRequest::Roll(r) => json(image::roll(b, r).await?),
        };
    }
    match payload.get("detail-type").and_then(Value::as_str) {
        Some("CloudWatch Alarm State Change") => {
            let e: trigger::AlarmEvent = serde_json::from_value(payload)
                .map_err(|e| StepError::NonRetryable(format!("not an alarm event: {e}")))?;
            json(trigger::trigger(b, e).await?)
        }
        Some("EC2 Instance Launch Successful" | "EC2 Instance Terminate Successful") => {
            let e: sync::InstanceEvent = serde_json::from_value(payload)
                .map_err(|e| StepError::NonRetryable(format!("not an instance event: {e}")))?;
            json(sync::sync(b, e).await?)
        }
        other => Err(StepError::NonRetryable(format!(
            "the burst function takes a step (`action`), an alarm state change or an Auto Scaling instance event, not {}",
            other.unwrap_or("this")
        ))),
    }
}
