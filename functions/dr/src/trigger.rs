//! The failover trigger: EventBridge hands a group's failover alarm going to ALARM to
//! this function (the template's rule), which starts the failover state machine as
//! `failover-<group>-<UTC time>` with the alarm as the trigger. (EventBridge could
//! start the state machine itself, but then the execution would be named by a UUID:
//! operators find runs by name in the console.) A second alarm starts a second
//! execution, which the group's lock stops at once, naming the run that holds it.

use ferry_core::alarms::group_of_failover_alarm;
use ferry_core::names::{execution_name, utc_stamp};
use ferry_core::steps::failover::{FailoverInput, Mode};
use ferry_fn::StepError;
use serde::Serialize;

pub use ferry_core::alarm_event::{alarm_time, AlarmEvent};
use time::OffsetDateTime;

use crate::Dr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub group: Option<String>,
    pub execution_arn: Option<String>,
    pub name: Option<String>,
    /// Why nothing was started (an alarm that is not a failover alarm, a state that is
    /// not ALARM).
    pub ignored: Option<String>,
}

/// The execution's input for an alarm event, and the group; `Err` says why it is not
/// a failover.
pub fn input_for(
    event: &AlarmEvent,
    now: OffsetDateTime,
) -> Result<(String, FailoverInput), String> {
    let d = &event.detail;
    let group = group_of_failover_alarm(&d.alarm_name)
        .ok_or_else(|| format!("alarm {} is not a group's failover alarm", d.alarm_name))?;
    if d.state.value != "ALARM" {
        return Err(format!(
            "alarm {} went to {}, not ALARM",
            d.alarm_name, d.state.value
        ));
    }
    Ok((
        group.to_string(),
        FailoverInput {
            group: group.to_string(),
            mode: Mode::Failover,
            at: None,
            trigger: event.trigger(now),
        },
    ))
}

pub async fn trigger(dr: &Dr, event: AlarmEvent) -> Result<Started, StepError> {
    let now = OffsetDateTime::now_utc();
    let (group, input) = match input_for(&event, now) {
        Ok(x) => x,
        Err(why) => {
            tracing::info!("{why}: nothing to start");
            return Ok(Started {
                group: None,
                execution_arn: None,
                name: None,
                ignored: Some(why),
            });
        }
    };
    // A redelivered event in the same second finds its execution (`start` returns it).
    let name = execution_name("failover", &group, &[&utc_stamp(now)]);
    let (arn, existed) = dr
        .sfn
        .start(&dr.settings.failover_state_machine, &name, &input)
        .await
        .map_err(|e| match e {
            ferry_aws::sfn::SfnError::Call(c) => StepError::from(c),
            other => StepError::NonRetryable(other.to_string()),
        })?;
    tracing::warn!(group = %group, execution = %name, existed, alarm = %event.detail.alarm_name, "failover started by alarm");
    Ok(Started {
        group: Some(group),
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
            "version": "0", "id": "x", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "time": "2026-11-30T12:00:05Z",
            "detail": {"alarmName": name, "state": {"value": value, "reason": "r",
                       "timestamp": "2026-11-30T12:00:01.123+0000"},
                       "previousState": {"value": "OK"}}
        }))
        .unwrap()
    }

    #[test]
    fn a_failover_alarm_going_to_alarm_starts_its_group() {
        let now = time::macros::datetime!(2026-11-30 12:00:07 UTC);
        let (g, input) = input_for(&event("ferry-shop-failover", "ALARM"), now).unwrap();
        assert_eq!(g, "shop");
        assert_eq!(input.mode, Mode::Failover);
        assert_eq!(input.trigger.alarm.as_deref(), Some("ferry-shop-failover"));
        assert!(
            input.trigger.at.starts_with("2026-11-30T12:00:01.123"),
            "{}",
            input.trigger.at
        );
        assert!(input_for(&event("ferry-shop-failover", "OK"), now).is_err());
        assert!(input_for(&event("ferry-shop-db1-rpo-at-risk", "ALARM"), now).is_err());
    }
}
