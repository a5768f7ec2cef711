//! The burst trigger: EventBridge hands a tier's alarm going to ALARM to this function
//! (the template's rule), which starts `burst-<tier>-<UTC>` (the burst alarm: load
//! above the burst threshold) or `scale-in-<tier>-<UTC>` (the scale-in alarm: load
//! below the scale-in threshold). A repeated alarm starts an execution that the tier's
//! lock ends at once, adding nothing.

pub use ferry_core::alarm_event::AlarmEvent;
use ferry_core::burst::{alarm_tier, RunKind};
use ferry_core::names::{execution_name, utc_stamp};
use ferry_core::steps::burst::BurstInput;
use ferry_fn::StepError;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Burst;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub tier: Option<String>,
    pub kind: Option<RunKind>,
    pub execution_arn: Option<String>,
    pub name: Option<String>,
    /// Why nothing was started.
    pub ignored: Option<String>,
}

/// The run an alarm event asks for; `Err` says why there is none.
pub fn input_for(event: &AlarmEvent, now: OffsetDateTime) -> Result<(RunKind, BurstInput), String> {
    let d = &event.detail;
    let (tier, kind) = alarm_tier(&d.alarm_name)
        .ok_or_else(|| format!("alarm {} is not a burst tier's alarm", d.alarm_name))?;
    if d.state.value != "ALARM" {
        return Err(format!(
            "alarm {} went to {}, not ALARM",
            d.alarm_name, d.state.value
        ));
    }
    Ok((
        kind,
        BurstInput {
            tier: tier.to_string(),
            trigger: event.trigger(now),
        },
    ))
}

pub async fn trigger(b: &Burst, event: AlarmEvent) -> Result<Started, StepError> {
    let now = OffsetDateTime::now_utc();
    let (kind, input) = match input_for(&event, now) {
        Ok(x) => x,
        Err(why) => {
            tracing::info!("{why}: nothing to start");
            return Ok(Started {
                tier: None,
                kind: None,
                execution_arn: None,
                name: None,
                ignored: Some(why),
            });
        }
    };
    let machine = match kind {
        RunKind::Burst => &b.settings.burst_state_machine,
        RunKind::ScaleIn => &b.settings.scale_in_state_machine,
    };
    // A redelivered event in the same second finds its execution (`start` returns it).
    let name = execution_name(kind.as_str(), &input.tier, &[&utc_stamp(now)]);
    let (arn, existed) = b
        .sfn
        .start(machine, &name, &input)
        .await
        .map_err(|e| match e {
            ferry_aws::sfn::SfnError::Call(c) => StepError::from(c),
            other => StepError::NonRetryable(other.to_string()),
        })?;
    tracing::warn!(tier = %input.tier, execution = %name, existed, alarm = %event.detail.alarm_name, "{} started by alarm", kind.as_str());
    Ok(Started {
        tier: Some(input.tier),
        kind: Some(kind),
        execution_arn: Some(arn),
        name: Some(name),
        ignored: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, value: &str) -> AlarmEvent {
        serde_json::from_value(serde_json::json!({
            "time": "2026-11-30T12:00:05Z",
            "detail": {"alarmName": name, "state": {"value": value, "reason": "r",
                       "timestamp": "2026-11-30T12:00:01.123+0000"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_tiers_alarms_start_its_burst_and_its_scale_in() {
        let now = time::macros::datetime!(2026-11-30 12:00:07 UTC);
        let (k, input) = input_for(&event("ferry-burst-web-out", "ALARM"), now).unwrap();
        assert_eq!((k, input.tier.as_str()), (RunKind::Burst, "web"));
        assert!(input.trigger.at.starts_with("2026-11-30T12:00:01.123"));
        let (k, _) = input_for(&event("ferry-burst-web-in", "ALARM"), now).unwrap();
        assert_eq!(k, RunKind::ScaleIn);
        assert!(input_for(&event("ferry-burst-web-out", "OK"), now).is_err());
        assert!(input_for(&event("ferry-shop-failover", "ALARM"), now).is_err());
    }
}
