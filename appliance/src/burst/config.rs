//! `[[burst]]` of `ferry.toml`: a tier that bursts into AWS, as the operator writes it,
//! checked (each error one line naming the tier and the key), and turned into the
//! record the burst function reads ([`BurstTier`]) with every default resolved.

use std::time::Duration;

use anyhow::{bail, Result};
use ferry_core::burst::{resource_name, BurstTier, TemplateSpec, WeightedDns};
use serde::Deserialize;

/// How the tier's on-prem load is measured, on each of its hosts, over SSH with stock
/// tools (nothing installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    /// Busy share of all CPUs, % (`/proc/stat`, between two samples).
    Cpu,
    /// One-minute load average per CPU (`/proc/loadavg`, `nproc`).
    Loadavg,
    /// Established TCP connections to the service port (`/proc/net/tcp{,6}`).
    Connections,
    /// `load_command`'s first number, run on the host.
    Command,
    /// The first number of `load_url`'s answer, fetched by the appliance.
    Url,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstConfig {
    pub tier: String,
    /// The on-prem servers of the tier (`[[host]]` names): sampled for load, and
    /// registered as IP targets in the target group.
    pub hosts: Vec<String>,
    /// The host whose newest built image the tier launches in AWS (default: the first
    /// of `hosts`).
    pub golden: Option<String>,
    /// The hybrid target group (IP targets: the on-prem servers and the AWS
    /// instances), or an instance target group (the Auto Scaling group registers).
    pub target_group: Option<String>,
    /// Route 53 weighted records, where there is no load balancer in AWS (either or
    /// both of `target_group` and `dns`).
    pub dns: Option<DnsConfig>,
    /// The service port targets are registered on (and connections counted on).
    pub port: u16,
    /// The on-prem servers' addresses in the target group (default: each host's SSH
    /// address).
    #[serde(default)]
    pub onprem_addresses: Vec<String>,
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Default: discovery's sizing of the golden host, else t3.medium.
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    pub instance_profile: Option<String>,
    /// Instances in AWS: never fewer than `min` (default 0), never more than `max`.
    #[serde(default)]
    pub min: u32,
    pub max: u32,
    /// What a burst asks for (default `max`).
    pub burst_capacity: Option<u32>,
    pub load: LoadKind,
    pub load_command: Option<String>,
    pub load_url: Option<String>,
    /// Burst when the load is above `burst_above` for `burst_periods` periods; scale in
    /// when it is below `scale_in_below` for `scale_in_periods`.
    pub burst_above: f64,
    pub burst_periods: Option<u32>,
    pub scale_in_below: f64,
    pub scale_in_periods: Option<u32>,
    /// The alarms' period (default 60 s; 10 s or 30 s publish high-resolution data).
    #[serde(default, deserialize_with = "duration")]
    pub period: Option<Duration>,
    /// How often the daemon samples and publishes the load (default 10 s).
    #[serde(default, deserialize_with = "duration")]
    pub sample_every: Option<Duration>,
    /// Target tracking inside AWS: average CPU of the burst instances (default 60 %).
    pub target_cpu: Option<f64>,
    /// The Auto Scaling group's cooldown (default 300 s).
    #[serde(default, deserialize_with = "duration")]
    pub cooldown: Option<Duration>,
    /// How often a burst checks its capacity (default 5 s) and how long it may take
    /// (default 10 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub poll: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub burst_timeout: Option<Duration>,
}

/// `[burst.dns]`: the tier's name, split between the on-prem servers and the AWS
/// instances by weight.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The hosted zone id.
    pub zone: String,
    pub name: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    #[serde(default = "default_weight")]
    pub onprem_weight: u32,
    #[serde(default = "default_weight")]
    pub aws_weight: u32,
}

fn default_ttl() -> u32 {
    60
}

fn default_weight() -> u32 {
    100
}

/// The instance type when neither the tier nor discovery names one.
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.medium";

impl BurstConfig {
    pub fn golden(&self) -> &str {
        self.golden
            .as_deref()
            .or(self.hosts.first().map(String::as_str))
            .unwrap_or_default()
    }

    pub fn period(&self) -> Duration {
        self.period.unwrap_or(Duration::from_secs(60))
    }

    pub fn sample_every(&self) -> Duration {
        self.sample_every.unwrap_or(Duration::from_secs(10))
    }

    pub fn burst_periods(&self) -> u32 {
        self.burst_periods.unwrap_or(3)
    }

    pub fn scale_in_periods(&self) -> u32 {
        self.scale_in_periods.unwrap_or(10)
    }

    /// Each error names the tier and the key.
    pub fn check(&self, hosts: &[&str]) -> Result<()> {
        let t = &self.tier;
        if t.is_empty()
            || t.len() > 40
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!(
                "burst tier {t:?}: `tier` may only hold letters, digits, '-' and '_' (at most 40)"
            );
        }
        if self.hosts.is_empty() {
            bail!("burst tier {t}: `hosts` names no on-prem server");
        }
        for h in self.hosts.iter().chain(self.golden.iter()) {
            if !hosts.contains(&h.as_str()) {
                bail!("burst tier {t}: host {h} is not a [[host]] of the config");
            }
        }
        match (&self.target_group, &self.dns) {
            (None, None) => {
                bail!("burst tier {t}: no traffic to share: set `target_group` or [burst.dns]")
            }
            (Some(tg), _) if !tg.starts_with("arn:") || !tg.contains(":targetgroup/") => {
                bail!("burst tier {t}: `target_group` must be a target group ARN")
            }
            (_, Some(d)) if d.zone.is_empty() || d.name.is_empty() || d.aws_weight == 0 => {
                bail!(
                    "burst tier {t}: [burst.dns] needs `zone`, `name` and an `aws_weight` above 0"
                )
            }
            _ => {}
        }
        if self.subnets.is_empty() {
            bail!("burst tier {t}: `subnets` names no subnet to launch into");
        }
        if self.max == 0 || self.min > self.max {
            bail!(
                "burst tier {t}: need 0 <= min <= max and max >= 1 (min {}, max {})",
                self.min,
                self.max
            );
        }
        if let Some(c) = self.burst_capacity {
            if c == 0 || c > self.max {
                bail!(
                    "burst tier {t}: `burst_capacity` must be 1..=max ({})",
                    self.max
                );
            }
        }
        if self.scale_in_below >= self.burst_above {
            bail!(
                "burst tier {t}: `scale_in_below` ({}) must be below `burst_above` ({}), or the tier would scale in while it bursts",
                self.scale_in_below, self.burst_above
            );
        }
        match (self.load, &self.load_command, &self.load_url) {
            (LoadKind::Command, None, _) => {
                bail!("burst tier {t}: load = \"command\" needs `load_command`")
            }
            (LoadKind::Url, _, None) => bail!("burst tier {t}: load = \"url\" needs `load_url`"),
            (LoadKind::Url, _, Some(u))
                if !u.starts_with("http://") && !u.starts_with("https://") =>
            {
                bail!("burst tier {t}: `load_url` must be http:// or https://")
            }
            _ => {}
        }
        let p = self.period().as_secs();
        if !(p == 10 || p == 30 || (p >= 60 && p.is_multiple_of(60))) {
            bail!("burst tier {t}: `period` must be 10s, 30s or a multiple of 60s (CloudWatch's alarm periods)");
        }
        if self.sample_every() > self.period() || self.sample_every() < Duration::from_secs(1) {
            bail!("burst tier {t}: `sample_every` must be between 1s and the period");
        }
        if !self.onprem_addresses.is_empty() && self.onprem_addresses.len() != self.hosts.len() {
            bail!("burst tier {t}: `onprem_addresses` must give one address per host");
        }
        Ok(())
    }

    /// The record the burst function reads. `addresses` are the on-prem servers'
    /// target addresses, `sized` the golden host's discovered instance type, `tg_type`
    /// the target group's type (empty without one).
    pub fn record(
        &self,
        addresses: Vec<String>,
        sized: Option<String>,
        tg_type: &str,
    ) -> BurstTier {
        let poll = self.poll.unwrap_or(Duration::from_secs(5)).as_secs().max(1) as u32;
        let timeout = self
            .burst_timeout
            .unwrap_or(Duration::from_secs(600))
            .as_secs() as u32;
        BurstTier {
            tier: self.tier.clone(),
            golden: self.golden().to_string(),
            launch_template: resource_name(&self.tier),
            auto_scaling_group: resource_name(&self.tier),
            template: TemplateSpec {
                instance_type: self
                    .instance_type
                    .clone()
                    .or(sized)
                    .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string()),
                security_group_ids: self.security_groups.clone(),
                key_name: self.key_name.clone(),
                instance_profile: self.instance_profile.clone(),
            },
            subnets: self.subnets.clone(),
            target_group_arn: self.target_group.clone(),
            target_type: tg_type.to_string(),
            dns: self.dns.as_ref().map(|d| WeightedDns {
                zone: d.zone.clone(),
                name: d.name.clone(),
                ttl: d.ttl,
                onprem_weight: d.onprem_weight,
                aws_weight: d.aws_weight,
            }),
            port: self.port,
            onprem: addresses,
            min: self.min,
            max: self.max,
            burst_capacity: self.burst_capacity.unwrap_or(self.max),
            poll_s: poll,
            max_polls: (timeout / poll).max(1),
            target_cpu: self.target_cpu.unwrap_or(60.0),
            cooldown_s: self.cooldown.unwrap_or(Duration::from_secs(300)).as_secs() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/abc";

    fn parse(extra: &str) -> BurstConfig {
        toml::from_str(&format!(
            r#"
tier = "web"
hosts = ["web1", "web2"]
target_group = "{TG}"
port = 8080
subnets = ["subnet-1"]
max = 4
load = "connections"
burst_above = 50
scale_in_below = 10
{extra}
"#
        ))
        .unwrap()
    }

    #[test]
    fn defaults_resolve_into_the_record() {
        let c = parse("");
        c.check(&["web1", "web2"]).unwrap();
        let r = c.record(
            vec!["10.0.0.1".into(), "10.0.0.2".into()],
            Some("c7i.large".into()),
            "ip",
        );
        assert_eq!(r.golden, "web1");
        assert_eq!(r.template.instance_type, "c7i.large");
        assert_eq!((r.min, r.max, r.burst_capacity), (0, 4, 4));
        assert_eq!(r.auto_scaling_group, "ferry-burst-web");
        assert_eq!((r.poll_s, r.max_polls), (5, 120));
        let r =
            parse("instance_type = \"t3.small\"\nburst_capacity = 2").record(vec![], None, "ip");
        assert_eq!(r.template.instance_type, "t3.small");
        assert_eq!(r.burst_capacity, 2);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let err = |extra: &str, hosts: &[&str]| parse(extra).check(hosts).unwrap_err().to_string();
        assert!(err("", &["web1"]).contains("host web2"));
        assert!(err("min = 5", &["web1", "web2"]).contains("min <= max"));
        assert!(err("burst_capacity = 9", &["web1", "web2"]).contains("burst_capacity"));
        assert!(err("period = \"45s\"", &["web1", "web2"]).contains("period"));
        let mut c = parse("");
        c.load = LoadKind::Command;
        assert!(c
            .check(&["web1", "web2"])
            .unwrap_err()
            .to_string()
            .contains("load_command"));
        c.load = LoadKind::Url;
        c.load_url = Some("ftp://x".into());
        assert!(c
            .check(&["web1", "web2"])
            .unwrap_err()
            .to_string()
            .contains("load_url"));
        c.load = LoadKind::Connections;
        c.scale_in_below = 60.0;
        assert!(c
            .check(&["web1", "web2"])
            .unwrap_err()
            .to_string()
            .contains("scale_in_below"));
        c.scale_in_below = 1.0;
        c.target_group = None;
        assert!(c
            .check(&["web1", "web2"])
            .unwrap_err()
            .to_string()
            .contains("[burst.dns]"));
    }

    #[test]
    fn weighted_dns_instead_of_a_target_group() {
        let mut d = parse("[dns]\nzone = \"Z1\"\nname = \"www.shop.example.\"");
        d.target_group = None;
        d.check(&["web1", "web2"]).unwrap();
        let r = d.record(vec!["10.0.0.1".into()], None, "");
        assert_eq!(r.target_group_arn, None);
        let dns = r.dns.unwrap();
        assert_eq!((dns.ttl, dns.onprem_weight, dns.aws_weight), (60, 100, 100));
    }
}
