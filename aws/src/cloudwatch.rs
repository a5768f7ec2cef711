//! CloudWatch as Ferry uses it: metrics published in batches, and alarms (metric and
//! composite) written from `ferry_core::alarms` specs and read back as plain data, so
//! that `ferry protect` can tell what it changes and `ferry dr status` what they say.

use std::time::SystemTime;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StandardUnit, Statistic, Tag,
};
use aws_sdk_cloudwatch::Client;
use ferry_core::alarms::{AlarmKind, AlarmSpec, MetricAlarm};

use crate::CallError;

/// One value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    /// `Seconds`, `Count`, or `None` for no unit.
    pub unit: Option<&'static str>,
}

/// Publishes `data` in `namespace` at `at`, in as few calls as CloudWatch allows.
pub async fn put_metrics(
    client: &Client,
    namespace: &str,
    data: &[Datum],
    at: SystemTime,
) -> Result<(), CallError> {
    for batch in data.chunks(500) {
        let datums = batch
            .iter()
            .map(|d| {
                MetricDatum::builder()
                    .metric_name(&d.metric)
                    .set_dimensions(Some(dims(&d.dimensions)))
                    .value(d.value)
                    .timestamp(DateTime::from(at))
                    .unit(StandardUnit::from(d.unit.unwrap_or("None")))
                    .build()
            })
            .collect();
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(datums))
            .send()
            .await
            .map_err(|e| CallError::new("PutMetricData", namespace, &e))?;
    }
    Ok(())
}

fn dims(d: &[(String, String)]) -> Vec<Dimension> {
    d.iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

/// An alarm as CloudWatch holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub kind: AlarmKind,
    pub actions: Vec<String>,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
    /// RFC 3339.
    pub updated: Option<String>,
}

impl Alarm {
    /// Whether it is configured as `spec` says (tags aside).
    pub fn matches(&self, spec: &AlarmSpec) -> bool {
        self.description == spec.description
            && self.kind == spec.kind
            && self.actions == spec.actions
    }
}

fn rfc3339(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| {
        t.fmt(aws_sdk_cloudwatch::primitives::DateTimeFormat::DateTime)
            .ok()
    })
}

/// Every alarm (metric and composite) whose name starts with `prefix`.
pub async fn alarms(client: &Client, prefix: &str) -> Result<Vec<Alarm>, CallError> {
    let mut out = Vec::new();
    let mut pages = client
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CallError::new("DescribeAlarms", prefix, &e))?;
        for a in page.metric_alarms() {
            out.push(Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                arn: a.alarm_arn().unwrap_or_default().to_string(),
                description: a.alarm_description().unwrap_or_default().to_string(),
                kind: AlarmKind::Metric(MetricAlarm {
                    namespace: a.namespace().unwrap_or_default().to_string(),
                    metric: a.metric_name().unwrap_or_default().to_string(),
                    dimensions: a
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_string(),
                                d.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    statistic: a
                        .statistic()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    period_s: a.period().unwrap_or(0) as u32,
                    evaluation_periods: a.evaluation_periods().unwrap_or(0) as u32,
                    datapoints_to_alarm: a
                        .datapoints_to_alarm()
                        .or(a.evaluation_periods())
                        .unwrap_or(0) as u32,
                    threshold: a.threshold().unwrap_or(0.0),
                    comparison: a
                        .comparison_operator()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                    treat_missing: a.treat_missing_data().unwrap_or("missing").to_string(),
                }),
                actions: a.alarm_actions().to_vec(),
                state: a
                    .state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                updated: rfc3339(a.state_updated_timestamp()),
            });
        }
        for a in page.composite_alarms() {
            out.push(Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                arn: a.alarm_arn().unwrap_or_default().to_string(),
                description: a.alarm_description().unwrap_or_default().to_string(),
                kind: AlarmKind::Composite {
                    rule: a.alarm_rule().unwrap_or_default().to_string(),
                },
                actions: a.alarm_actions().to_vec(),
                state: a
                    .state_value()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                updated: rfc3339(a.state_updated_timestamp()),
            });
        }
    }
    Ok(out)
}

fn tags(spec: &AlarmSpec) -> Vec<Tag> {
    spec.tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Creates or replaces an alarm as `spec` says, with its tags (CloudWatch ignores tags
/// on an update, so they are set again by TagResource).
pub async fn put_alarm(
    client: &Client,
    spec: &AlarmSpec,
    existing_arn: Option<&str>,
) -> Result<(), CallError> {
    match &spec.kind {
        AlarmKind::Metric(m) => {
            client
                .put_metric_alarm()
                .alarm_name(&spec.name)
                .alarm_description(&spec.description)
                .namespace(&m.namespace)
                .metric_name(&m.metric)
                .set_dimensions(Some(dims(&m.dimensions)))
                .statistic(Statistic::from(m.statistic.as_str()))
                .period(m.period_s as i32)
                .evaluation_periods(m.evaluation_periods as i32)
                .datapoints_to_alarm(m.datapoints_to_alarm as i32)
                .threshold(m.threshold)
                .comparison_operator(ComparisonOperator::from(m.comparison.as_str()))
                .treat_missing_data(&m.treat_missing)
                .set_alarm_actions(Some(spec.actions.clone()))
                .set_tags(Some(tags(spec)))
                .send()
                .await
                .map_err(|e| CallError::new("PutMetricAlarm", &spec.name, &e))?;
        }
        AlarmKind::Composite { rule } => {
            client
                .put_composite_alarm()
                .alarm_name(&spec.name)
                .alarm_description(&spec.description)
                .alarm_rule(rule)
                .set_alarm_actions(Some(spec.actions.clone()))
                .set_tags(Some(tags(spec)))
                .send()
                .await
                .map_err(|e| CallError::new("PutCompositeAlarm", &spec.name, &e))?;
        }
    }
    if let Some(arn) = existing_arn {
        client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags(spec)))
            .send()
            .await
            .map_err(|e| CallError::new("TagResource", &spec.name, &e))?;
    }
    Ok(())
}

/// Deletes alarms (composites first, as CloudWatch requires).
pub async fn delete_alarms(client: &Client, names: &[String]) -> Result<(), CallError> {
    if names.is_empty() {
        return Ok(());
    }
    client
        .delete_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| CallError::new("DeleteAlarms", names.join(", "), &e))?;
    Ok(())
}

/// Publishes one value, at `at`; `high_resolution` for alarms with periods under a
/// minute (10 s, 30 s).
pub async fn put_value(
    client: &Client,
    namespace: &str,
    d: &Datum,
    at: SystemTime,
    high_resolution: bool,
) -> Result<(), CallError> {
    let datum = MetricDatum::builder()
        .metric_name(&d.metric)
        .set_dimensions(Some(dims(&d.dimensions)))
        .value(d.value)
        .timestamp(DateTime::from(at))
        .unit(StandardUnit::from(d.unit.unwrap_or("None")))
        .storage_resolution(if high_resolution { 1 } else { 60 })
        .build();
    client
        .put_metric_data()
        .namespace(namespace)
        .metric_data(datum)
        .send()
        .await
        .map_err(|e| CallError::new("PutMetricData", namespace, &e))?;
    Ok(())
}
