//! The parts of CloudWatch's "Alarm State Change" event (as EventBridge delivers it)
//! that Ferry's triggers read, and CloudWatch's way of writing times.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::steps::failover::{parse_rfc3339, rfc3339, Trigger};

/// The parts of a "CloudWatch Alarm State Change" event the trigger reads.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmEvent {
    pub time: Option<String>,
    pub detail: AlarmDetail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDetail {
    pub alarm_name: String,
    pub state: AlarmState,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlarmState {
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// As CloudWatch writes it: `2026-11-30T12:00:00.000+0000`.
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// CloudWatch's timestamps (`+0000` offsets, milliseconds), or RFC 3339.
pub fn alarm_time(s: &str) -> Option<OffsetDateTime> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s, &fmt).ok()
}

impl AlarmEvent {
    /// When the alarm changed state: its own timestamp, else the event's time, else
    /// `now`.
    pub fn at(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.detail
            .state
            .timestamp
            .as_deref()
            .and_then(alarm_time)
            .or_else(|| self.time.as_deref().and_then(alarm_time))
            .unwrap_or(now)
    }

    /// The run's trigger: this alarm, at the time it changed state.
    pub fn trigger(&self, now: OffsetDateTime) -> Trigger {
        Trigger {
            kind: "alarm".into(),
            alarm: Some(self.detail.alarm_name.clone()),
            at: rfc3339(self.at(now)),
            reason: self.detail.state.reason.clone(),
        }
    }
}
