//! Hybrid burst: a tier's definition as `ferry burst setup` records it, the names of
//! what it creates in AWS, and the pure decisions of a burst and a scale-in (how many
//! instances, which to drain, when capacity is there, when the target group is back to
//! the on-prem servers alone).

use serde::{Deserialize, Serialize};

use crate::alarms::{AlarmKind, AlarmSpec, MetricAlarm};

/// CloudWatch namespace of the tiers' load metric.
pub const NAMESPACE: &str = "Ferry/Burst";
/// The load metric's name, with dimension [`TIER_DIMENSION`].
pub const LOAD_METRIC: &str = "Load";
pub const TIER_DIMENSION: &str = "Tier";
/// Tag on everything setup creates: the tier's name.
pub const TIER_TAG: &str = "ferry:burst-tier";

/// `ferry-burst-<tier>`: the launch template and the Auto Scaling group.
pub fn resource_name(tier: &str) -> String {
    format!("ferry-burst-{tier}")
}

/// The alarm that starts a burst: load above the burst threshold.
pub fn burst_alarm_name(tier: &str) -> String {
    format!("ferry-burst-{tier}-out")
}

/// The alarm that starts a scale-in: load below the scale-in threshold.
pub fn scale_in_alarm_name(tier: &str) -> String {
    format!("ferry-burst-{tier}-in")
}

/// What an alarm of a tier asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    Burst,
    ScaleIn,
}

impl RunKind {
    /// The execution name's prefix and the state machine's short name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Burst => "burst",
            RunKind::ScaleIn => "scale-in",
        }
    }

    /// What the tier's lock says while a run of this kind holds it.
    pub fn lock_state(self) -> &'static str {
        match self {
            RunKind::Burst => "bursting",
            RunKind::ScaleIn => "scaling-in",
        }
    }
}

/// The tier and the run an alarm name asks for (`ferry-burst-web-out` -> web, burst).
pub fn alarm_tier(name: &str) -> Option<(&str, RunKind)> {
    let rest = name.strip_prefix("ferry-burst-")?;
    if let Some(t) = rest.strip_suffix("-out") {
        return (!t.is_empty()).then_some((t, RunKind::Burst));
    }
    let t = rest.strip_suffix("-in")?;
    (!t.is_empty()).then_some((t, RunKind::ScaleIn))
}

/// What the launch template says besides the image: written in full into every
/// version, so that a new image changes the image alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    pub instance_type: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub instance_profile: Option<String>,
}

/// A burst tier: `BURSTS` / `<tier>`. Everything a burst or a scale-in needs, so that
/// neither needs anything from the site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurstTier {
    pub tier: String,
    /// The host whose newest built image the tier launches.
    pub golden: String,
    pub launch_template: String,
    pub auto_scaling_group: String,
    pub template: TemplateSpec,
    pub subnets: Vec<String>,
    /// The hybrid target group, where the tier has a load balancer in AWS.
    #[serde(default)]
    pub target_group_arn: Option<String>,
    /// `ip` (on-prem servers and AWS instances by address: Ferry registers the
    /// instances) or `instance` (the Auto Scaling group registers them); empty
    /// without a target group.
    #[serde(default)]
    pub target_type: String,
    /// Weighted DNS records, where there is no load balancer in AWS.
    #[serde(default)]
    pub dns: Option<WeightedDns>,
    /// The service port the targets are registered on.
    pub port: u16,
    /// The on-prem servers' addresses, registered as IP targets.
    #[serde(default)]
    pub onprem: Vec<String>,
    pub min: u32,
    pub max: u32,
    /// The capacity a burst asks for (bounded by `max`).
    pub burst_capacity: u32,
    /// Seconds between capacity checks, and how many a run makes before giving up.
    pub poll_s: u32,
    pub max_polls: u32,
    /// The target-tracking policy's target (average CPU of the AWS instances, %).
    pub target_cpu: f64,
    /// Cooldown between the Auto Scaling group's own scaling activities.
    pub cooldown_s: u32,
}

/// What a tier's two alarms watch: the load metric, over `period_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstAlarms<'a> {
    pub tier: &'a str,
    pub period_s: u32,
    pub burst_above: f64,
    pub burst_periods: u32,
    pub scale_in_below: f64,
    pub scale_in_periods: u32,
}

impl BurstAlarms<'_> {
    /// The burst alarm (load above the threshold for N periods) and the scale-in alarm
    /// (below the other for M periods). Missing data changes neither: a silent
    /// appliance neither bursts nor empties the tier.
    pub fn specs(&self) -> Vec<AlarmSpec> {
        let one =
            |name: String, role: &str, threshold: f64, periods: u32, cmp: &str, what: String| {
                AlarmSpec {
                    name,
                    description: what,
                    kind: AlarmKind::Metric(MetricAlarm {
                        namespace: NAMESPACE.to_string(),
                        metric: LOAD_METRIC.to_string(),
                        dimensions: vec![(TIER_DIMENSION.to_string(), self.tier.to_string())],
                        statistic: "Average".into(),
                        period_s: self.period_s,
                        evaluation_periods: periods,
                        datapoints_to_alarm: periods,
                        threshold,
                        comparison: cmp.into(),
                        treat_missing: "missing".into(),
                    }),
                    actions: Vec::new(),
                    tags: vec![
                        (TIER_TAG.to_string(), self.tier.to_string()),
                        (crate::alarms::tags::ROLE.to_string(), role.to_string()),
                    ],
                }
            };
        vec![
            one(
                burst_alarm_name(self.tier),
                "burst",
                self.burst_above,
                self.burst_periods,
                "GreaterThanThreshold",
                format!(
                    "Ferry: tier {} bursts into AWS when its on-prem load is above {} for {} periods of {} s.",
                    self.tier, self.burst_above, self.burst_periods, self.period_s
                ),
            ),
            one(
                scale_in_alarm_name(self.tier),
                "scale-in",
                self.scale_in_below,
                self.scale_in_periods,
                "LessThanThreshold",
                format!(
                    "Ferry: tier {} scales in from AWS when its on-prem load is below {} for {} periods of {} s.",
                    self.tier, self.scale_in_below, self.scale_in_periods, self.period_s
                ),
            ),
        ]
    }
}

/// A tier's traffic split by Route 53 weighted records: one record set of the on-prem
/// servers ([`ONPREM_SET`]), and one of the burst instances ([`AWS_SET`]) that exists
/// only while the tier has instances in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedDns {
    pub zone: String,
    pub name: String,
    pub ttl: u32,
    pub onprem_weight: u32,
    pub aws_weight: u32,
}

/// Set identifiers of the weighted record sets.
pub const ONPREM_SET: &str = "ferry-onprem";
pub const AWS_SET: &str = "ferry-aws";

/// The desired capacity a burst sets: at least `burst_capacity`, never below what is
/// already asked (target tracking may have gone higher), never above `max`. A second
/// alarm during a burst therefore adds nothing.
pub fn burst_desired(current: u32, tier: &BurstTier) -> u32 {
    current.max(tier.burst_capacity).min(tier.max)
}

/// One instance of the Auto Scaling group as the steps see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInstance {
    pub instance_id: String,
    /// `InService`, `Pending`, `Terminating`, ...
    pub lifecycle: String,
    /// `Healthy` or `Unhealthy`.
    pub health: String,
    #[serde(default)]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub image_id: Option<String>,
}

impl GroupInstance {
    pub fn in_service(&self) -> bool {
        self.lifecycle == "InService" && self.health == "Healthy"
    }
}

/// The target id an instance is registered with in the tier's target group.
pub fn target_id(tier: &BurstTier, i: &GroupInstance) -> Option<String> {
    match tier.target_type.as_str() {
        "instance" => Some(i.instance_id.clone()),
        // An IP target, or an address in the weighted record.
        _ => i.private_ip.clone(),
    }
}

/// The instances a scale-in drains and terminates: all above `min`, newest launches
/// first (instance ids do not sort by time, so the ones not in service go first, then
/// the highest ids), keeping `min` in service.
pub fn scale_in_victims(instances: &[GroupInstance], min: u32) -> Vec<GroupInstance> {
    let mut sorted: Vec<&GroupInstance> = instances
        .iter()
        .filter(|i| !i.lifecycle.starts_with("Terminat"))
        .collect();
    // Kept first: in service, lowest id.
    sorted.sort_by(|a, b| {
        b.in_service()
            .cmp(&a.in_service())
            .then(a.instance_id.cmp(&b.instance_id))
    });
    sorted.into_iter().skip(min as usize).cloned().collect()
}

/// Health of one registered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub id: String,
    /// `healthy`, `initial`, `draining`, `unhealthy`, `unused`.
    pub state: String,
}

/// Whether a burst has its capacity: `desired` instances in service, each registered
/// and healthy in the target group.
pub fn capacity_ready(
    tier: &BurstTier,
    instances: &[GroupInstance],
    targets: &[TargetHealth],
    desired: u32,
) -> bool {
    let ready = instances
        .iter()
        .filter(|i| i.in_service())
        .filter(|i| {
            target_id(tier, i)
                .is_some_and(|id| targets.iter().any(|t| t.id == id && t.state == "healthy"))
        })
        .count();
    ready as u32 >= desired
}

/// What the target group should hold beyond the on-prem servers: the in-service
/// instances' targets. Returns (to register, to deregister); on-prem targets are never
/// touched.
pub fn targets_to_sync(
    tier: &BurstTier,
    instances: &[GroupInstance],
    registered: &[TargetHealth],
) -> (Vec<String>, Vec<String>) {
    let want: Vec<String> = instances
        .iter()
        .filter(|i| i.in_service())
        .filter_map(|i| target_id(tier, i))
        .collect();
    let add = want
        .iter()
        .filter(|w| !registered.iter().any(|r| &r.id == *w))
        .cloned()
        .collect();
    let remove = registered
        .iter()
        .filter(|r| r.state != "draining")
        .filter(|r| !want.contains(&r.id) && !tier.onprem.contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    (add, remove)
}

/// Whether a scale-in is done: none of the victims is still an instance of the group or
/// a target, and the target group holds only the on-prem servers and the kept
/// instances. Returns what is still left, for the run's record.
pub fn scale_in_left(
    victims: &[String],
    instances: &[GroupInstance],
    registered: &[TargetHealth],
    victim_targets: &[String],
) -> Vec<String> {
    let mut left: Vec<String> = instances
        .iter()
        .filter(|i| victims.contains(&i.instance_id))
        .map(|i| format!("instance {} ({})", i.instance_id, i.lifecycle))
        .collect();
    left.extend(
        registered
            .iter()
            .filter(|r| victim_targets.contains(&r.id))
            .map(|r| format!("target {} ({})", r.id, r.state)),
    );
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier() -> BurstTier {
        BurstTier {
            tier: "web".into(),
            golden: "web1".into(),
            launch_template: resource_name("web"),
            auto_scaling_group: resource_name("web"),
            template: TemplateSpec {
                instance_type: "t3.small".into(),
                security_group_ids: vec![],
                key_name: None,
                instance_profile: None,
            },
            subnets: vec!["subnet-1".into()],
            target_group_arn: Some("arn:tg".into()),
            target_type: "ip".into(),
            dns: None,
            port: 80,
            onprem: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            min: 0,
            max: 3,
            burst_capacity: 2,
            poll_s: 5,
            max_polls: 60,
            target_cpu: 60.0,
            cooldown_s: 120,
        }
    }

    fn inst(id: &str, lifecycle: &str, ip: &str) -> GroupInstance {
        GroupInstance {
            instance_id: id.into(),
            lifecycle: lifecycle.into(),
            health: "Healthy".into(),
            private_ip: Some(ip.into()),
            image_id: Some("ami-1".into()),
        }
    }

    fn target(id: &str, state: &str) -> TargetHealth {
        TargetHealth {
            id: id.into(),
            state: state.into(),
        }
    }

    #[test]
    fn alarm_names_say_tier_and_kind() {
        assert_eq!(
            alarm_tier(&burst_alarm_name("web")),
            Some(("web", RunKind::Burst))
        );
        assert_eq!(
            alarm_tier(&scale_in_alarm_name("shop-web")),
            Some(("shop-web", RunKind::ScaleIn))
        );
        assert_eq!(alarm_tier("ferry-shop-failover"), None);
        assert_eq!(alarm_tier("ferry-burst--out"), None);
    }

    #[test]
    fn a_burst_asks_for_its_capacity_bounded_by_max_and_never_less_than_now() {
        let mut t = tier();
        assert_eq!(burst_desired(0, &t), 2);
        // A second alarm while two run: nothing more.
        assert_eq!(burst_desired(2, &t), 2);
        // Target tracking went to 3: kept.
        assert_eq!(burst_desired(3, &t), 3);
        t.burst_capacity = 9;
        assert_eq!(burst_desired(0, &t), 3);
        assert_eq!(burst_desired(7, &t), 3);
    }

    #[test]
    fn capacity_is_there_when_enough_instances_serve_healthy_targets() {
        let t = tier();
        let instances = vec![
            inst("i-1", "InService", "10.1.0.5"),
            inst("i-2", "Pending", "10.1.0.6"),
        ];
        let targets = vec![target("10.0.0.1", "healthy"), target("10.1.0.5", "healthy")];
        assert!(capacity_ready(&t, &instances, &targets, 1));
        assert!(!capacity_ready(&t, &instances, &targets, 2));
        let initial = vec![target("10.1.0.5", "initial")];
        assert!(!capacity_ready(&t, &instances, &initial, 1));
    }

    #[test]
    fn sync_registers_serving_instances_and_never_touches_onprem() {
        let t = tier();
        let instances = vec![
            inst("i-1", "InService", "10.1.0.5"),
            inst("i-2", "Pending", "10.1.0.6"),
        ];
        let registered = vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "unhealthy"),
            target("10.1.0.9", "healthy"),
            target("10.1.0.8", "draining"),
        ];
        let (add, remove) = targets_to_sync(&t, &instances, &registered);
        assert_eq!(add, vec!["10.1.0.5".to_string()]);
        assert_eq!(remove, vec!["10.1.0.9".to_string()]);
    }

    #[test]
    fn scale_in_keeps_min_in_service_and_drains_the_rest() {
        let instances = vec![
            inst("i-3", "InService", "10.1.0.7"),
            inst("i-1", "InService", "10.1.0.5"),
            inst("i-2", "Pending", "10.1.0.6"),
            inst("i-4", "Terminating", "10.1.0.8"),
        ];
        let ids = |v: Vec<GroupInstance>| v.into_iter().map(|i| i.instance_id).collect::<Vec<_>>();
        assert_eq!(ids(scale_in_victims(&instances, 0)), ["i-1", "i-3", "i-2"]);
        assert_eq!(ids(scale_in_victims(&instances, 1)), ["i-3", "i-2"]);
        assert!(scale_in_victims(&instances, 5).is_empty());
    }

    #[test]
    fn scale_in_is_done_when_no_victim_is_an_instance_or_a_target() {
        let victims = vec!["i-1".to_string()];
        let vt = vec!["10.1.0.5".to_string()];
        let onprem = vec![target("10.0.0.1", "healthy")];
        assert!(scale_in_left(&victims, &[], &onprem, &vt).is_empty());
        let left = scale_in_left(
            &victims,
            &[inst("i-1", "Terminating", "10.1.0.5")],
            &[target("10.1.0.5", "draining")],
            &vt,
        );
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
