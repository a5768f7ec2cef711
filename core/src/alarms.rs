//! A protection group's CloudWatch alarms, defined once: the metrics the appliance and
//! the AWS-side probe publish, the alarms `ferry protect` creates on them, and the
//! names the failover trigger reads back.
//!
//! Failing over on one observer's word is how split brain starts, so the failover
//! alarm is a composite of two views of the origin:
//!
//! - from AWS: `OriginReachableFromAws` (the `dr` function probes the origin's public
//!   endpoint every minute) below 1 for N periods;
//! - from the site: the appliance's `OriginHealthy` below 1 for N periods, **or** its
//!   `Heartbeat` missing for N periods (a dead site takes the appliance with it).
//!
//! `failover = ALARM(from AWS) AND (ALARM(appliance says down) OR ALARM(appliance
//! silent))`: a dead appliance beside a healthy origin does not fail over (AWS still
//! reaches the origin), a dead site does (AWS cannot reach it and the appliance is
//! silent), and an origin down under a live appliance does (both say so). Missing data
//! from the AWS probe or from `OriginHealthy` is not evidence of failure.
//!
//! Besides, per host: **RPO at risk** when `RecoveryPointAge` (the age of the newest
//! point with a built image) exceeds the group's RPO target; it notifies, and never
//! fails over.

/// The namespace of every metric Ferry publishes.
pub const NAMESPACE: &str = "Ferry";

pub mod metrics {
    /// 1 per probe round of the appliance, per group.
    pub const HEARTBEAT: &str = "Heartbeat";
    /// 1 when the appliance finds the origin healthy (every tier has a host whose
    /// checks all answer), else 0.
    pub const ORIGIN_HEALTHY: &str = "OriginHealthy";
    /// 1 when the AWS-side probe reaches the origin's public endpoint, else 0.
    pub const ORIGIN_REACHABLE_FROM_AWS: &str = "OriginReachableFromAws";
    /// Seconds since the capture of the host's newest point with a built image.
    pub const RECOVERY_POINT_AGE: &str = "RecoveryPointAge";
}

pub mod dimensions {
    pub const GROUP: &str = "Group";
    pub const HOST: &str = "Host";
}

/// Tag keys on every alarm of a group.
pub mod tags {
    pub const GROUP: &str = crate::tags::GROUP;
    /// `failover`, `aws-view`, `appliance-view`, `appliance-silent`, `rpo`.
    pub const ROLE: &str = "ferry:alarm";
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub kind: AlarmKind,
    /// ARNs notified on ALARM (the SNS topic).
    pub actions: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlarmKind {
    Metric(MetricAlarm),
    Composite { rule: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    /// `Ferry` (groups) or `Ferry/Burst` (burst tiers).
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    /// `Maximum`, `Minimum`, `Sum`, ...
    pub statistic: String,
    pub period_s: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    /// `LessThanThreshold`, `GreaterThanThreshold`.
    pub comparison: String,
    /// `breaching`, `notBreaching`, `missing`, `ignore`.
    pub treat_missing: String,
}

/// What the alarms of one group depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAlarms<'a> {
    pub group: &'a str,
    pub hosts: Vec<&'a str>,
    pub rpo_s: u64,
    /// CloudWatch period and how many of them the origin must be down.
    pub period_s: u32,
    pub periods: u32,
    /// Whether the AWS-side probe watches the origin; without it, no failover alarm.
    pub aws_probe: bool,
    /// The SNS topic notified (RPO at risk, appliance silent, failover).
    pub notify: Option<&'a str>,
}

pub fn failover_alarm_name(group: &str) -> String {
    format!("ferry-{group}-failover")
}

/// The group a failover alarm's name is of (`ferry-<group>-failover`).
pub fn group_of_failover_alarm(name: &str) -> Option<&str> {
    name.strip_prefix("ferry-")?
        .strip_suffix("-failover")
        .filter(|g| !g.is_empty())
}

/// Every alarm name of `group` starts with this.
pub fn alarm_prefix(group: &str) -> String {
    format!("ferry-{group}-")
}

impl GroupAlarms<'_> {
    fn spec(
        &self,
        role: &str,
        name: String,
        description: String,
        kind: AlarmKind,
        notify: bool,
    ) -> AlarmSpec {
        AlarmSpec {
            name,
            description,
            kind,
            actions: match (notify, self.notify) {
                (true, Some(t)) => vec![t.to_string()],
                _ => Vec::new(),
            },
            tags: vec![
                (tags::GROUP.to_string(), self.group.to_string()),
                (tags::ROLE.to_string(), role.to_string()),
            ],
        }
    }

    fn down(&self, metric: &str, treat_missing: &str) -> AlarmKind {
        AlarmKind::Metric(MetricAlarm {
            namespace: NAMESPACE.to_string(),
            metric: metric.to_string(),
            dimensions: vec![(dimensions::GROUP.to_string(), self.group.to_string())],
            // A period counts only when every sample in it said "down".
            statistic: if metric == metrics::HEARTBEAT {
                "Sum"
            } else {
                "Maximum"
            }
            .to_string(),
            period_s: self.period_s,
            evaluation_periods: self.periods,
            datapoints_to_alarm: self.periods,
            threshold: 1.0,
            comparison: "LessThanThreshold".to_string(),
            treat_missing: treat_missing.to_string(),
        })
    }

    /// The alarms, children before the composite that names them.
    pub fn specs(&self) -> Vec<AlarmSpec> {
        let g = self.group;
        let p = self.periods;
        let secs = self.period_s * p;
        let mut out = Vec::new();
        for h in &self.hosts {
            out.push(self.spec(
                "rpo",
                format!("{}{h}-rpo-at-risk", alarm_prefix(g)),
                format!("Host {h} of group {g}: its newest recovery point with a built image is older than the RPO target of {} s.", self.rpo_s),
                AlarmKind::Metric(MetricAlarm {
                    namespace: NAMESPACE.to_string(),
                    metric: metrics::RECOVERY_POINT_AGE.to_string(),
                    dimensions: vec![
                        (dimensions::GROUP.to_string(), g.to_string()),
                        (dimensions::HOST.to_string(), h.to_string()),
                    ],
                    statistic: "Maximum".to_string(),
                    period_s: self.period_s,
                    evaluation_periods: 1,
                    datapoints_to_alarm: 1,
                    threshold: self.rpo_s as f64,
                    comparison: "GreaterThanThreshold".to_string(),
                    // No age published means no new points either.
                    treat_missing: "breaching".to_string(),
                }),
                true,
            ));
        }
        let silent = format!("{}appliance-silent", alarm_prefix(g));
        out.push(self.spec(
            "appliance-silent",
            silent.clone(),
            format!("No heartbeat from the appliance protecting {g} for {secs} s: the appliance, or the whole site, is down."),
            self.down(metrics::HEARTBEAT, "breaching"),
            true,
        ));
        let site = format!("{}origin-down-appliance", alarm_prefix(g));
        out.push(self.spec(
            "appliance-view",
            site.clone(),
            format!(
                "The appliance found the origin of {g} unhealthy for {p} periods of {} s.",
                self.period_s
            ),
            self.down(metrics::ORIGIN_HEALTHY, "notBreaching"),
            false,
        ));
        if self.aws_probe {
            let aws = format!("{}origin-down-aws", alarm_prefix(g));
            out.push(self.spec(
                "aws-view",
                aws.clone(),
                format!(
                    "AWS could not reach the public endpoint of {g} for {p} periods of {} s.",
                    self.period_s
                ),
                self.down(metrics::ORIGIN_REACHABLE_FROM_AWS, "notBreaching"),
                false,
            ));
            out.push(self.spec(
                "failover",
                failover_alarm_name(g),
                format!("Fail {g} over to AWS: unreachable from AWS, and the appliance finds it down or is silent itself."),
                AlarmKind::Composite {
                    rule: format!("ALARM(\"{aws}\") AND (ALARM(\"{site}\") OR ALARM(\"{silent}\"))"),
                },
                true,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(aws_probe: bool) -> Vec<AlarmSpec> {
        GroupAlarms {
            group: "shop",
            hosts: vec!["db1", "web1"],
            rpo_s: 900,
            period_s: 60,
            periods: 3,
            aws_probe,
            notify: Some("arn:aws:sns:us-east-1:1:ferry"),
        }
        .specs()
    }

    #[test]
    fn the_failover_alarm_needs_aws_and_the_site_and_comes_last() {
        let specs = group(true);
        let last = specs.last().unwrap();
        assert_eq!(last.name, "ferry-shop-failover");
        let AlarmKind::Composite { rule } = &last.kind else {
            panic!()
        };
        assert_eq!(
            rule,
            r#"ALARM("ferry-shop-origin-down-aws") AND (ALARM("ferry-shop-origin-down-appliance") OR ALARM("ferry-shop-appliance-silent"))"#
        );
        // Every child is defined before the composite names it.
        for child in [
            "origin-down-aws",
            "origin-down-appliance",
            "appliance-silent",
        ] {
            assert!(specs[..specs.len() - 1]
                .iter()
                .any(|s| s.name.ends_with(child)));
        }
        assert_eq!(group_of_failover_alarm(&last.name), Some("shop"));
        assert_eq!(group_of_failover_alarm("ferry-a-b-failover"), Some("a-b"));
        assert_eq!(group_of_failover_alarm("ferry--failover"), None);
        assert_eq!(group_of_failover_alarm("ferry-shop-db1-rpo-at-risk"), None);
        // Missing heartbeats count against the appliance; missing probe data does not
        // count against the origin.
        let kind = |n: &str| {
            specs
                .iter()
                .find(|s| s.name.ends_with(n))
                .map(|s| s.kind.clone())
        };
        let Some(AlarmKind::Metric(hb)) = kind("appliance-silent") else {
            panic!()
        };
        assert_eq!(
            (hb.treat_missing.as_str(), hb.statistic.as_str()),
            ("breaching", "Sum")
        );
        let Some(AlarmKind::Metric(aws)) = kind("origin-down-aws") else {
            panic!()
        };
        assert_eq!(aws.treat_missing, "notBreaching");
        assert_eq!((aws.evaluation_periods, aws.datapoints_to_alarm), (3, 3));
        let Some(AlarmKind::Metric(rpo)) = kind("db1-rpo-at-risk") else {
            panic!()
        };
        assert_eq!(
            (rpo.threshold, rpo.comparison.as_str()),
            (900.0, "GreaterThanThreshold")
        );
        assert!(specs
            .iter()
            .all(|s| s.tags.contains(&("ferry:group".into(), "shop".into()))));
    }

    #[test]
    fn without_an_aws_view_there_is_no_failover_alarm() {
        let specs = group(false);
        assert!(specs
            .iter()
            .all(|s| !matches!(s.kind, AlarmKind::Composite { .. })));
        assert!(!specs.iter().any(|s| s.name == "ferry-shop-failover"));
    }
}
