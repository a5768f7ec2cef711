//! `[[group]]` of `ferry.toml`: a protection group as the operator writes it, checked
//! (each error one line naming the group and the key), and turned into the record a
//! failover reads ([`GroupRecord`]) with every default resolved: the launch subnet and
//! security groups from the group, the instance type from discovery's sizing, the
//! health checks from the services discovery found listening.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ferry_core::group::{
    AwsProbe, DnsSwitch, DrillSettings, GroupRecord, HealthCheck, HostLaunch, Readiness,
    TargetGroupSwitch, TierRecord, TrafficSwitch,
};
use serde::Deserialize;

use super::schedule::{SyncPolicy, Window};
use crate::host::Host;

/// The instance type when neither the host, discovery nor the group names one.
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.medium";

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    /// Recovery point objective (`15m`).
    #[serde(deserialize_with = "duration")]
    pub rpo: Duration,
    /// Recovery time objective (`30m`).
    #[serde(deserialize_with = "duration")]
    pub rto: Duration,
    /// Tiers in boot order.
    #[serde(rename = "tier")]
    pub tiers: Vec<TierConfig>,
    /// Default launch subnet and security groups of the group's hosts.
    pub subnet: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Default instance type when discovery sized nothing.
    pub instance_type: Option<String>,
    /// Launch settings and health checks per host.
    #[serde(default, rename = "host")]
    pub hosts: BTreeMap<String, HostLaunchConfig>,
    pub drill_subnet: Option<String>,
    #[serde(default)]
    pub drill_security_groups: Vec<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub drill_time_limit: Option<Duration>,
    /// The origin's public endpoint, probed from AWS (`tcp://203.0.113.10:443`,
    /// `https://shop.example.com/health`); without it, failover is by hand only.
    pub public_endpoint: Option<String>,
    /// How often the appliance probes the origin (default 5 s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub probe_interval: Option<Duration>,
    /// The alarms' period (default 60 s) and how many periods the origin must be down
    /// (default 3).
    #[serde(default, deserialize_with = "opt_duration")]
    pub period: Option<Duration>,
    pub failover_after: Option<u32>,
    /// How often a failover checks a launched tier (default 10 s), and how long a tier
    /// may take (default 15 minutes).
    #[serde(default, deserialize_with = "opt_duration")]
    pub poll: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub tier_timeout: Option<Duration>,
    #[serde(default)]
    pub dns: Vec<DnsConfig>,
    #[serde(default)]
    pub target_group: Vec<TargetGroupConfig>,
    /// How long a failback task of the appliance may go without a heartbeat before the
    /// state machine gives it up and sends it again (default 60 s).
    #[serde(default, deserialize_with = "opt_duration")]
    pub failback_heartbeat: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    pub name: String,
    pub hosts: Vec<String>,
    /// Sync every `interval` (`15m`), or at `cron` times (`*/15 * * * *`, UTC).
    #[serde(default, deserialize_with = "opt_duration")]
    pub interval: Option<Duration>,
    pub cron: Option<String>,
    /// Windows when no sync may start (`Mon-Fri 09:00-17:00`, `22:00-06:00`; UTC).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// At most this many of the tier's hosts sync at once (default 1).
    pub max_syncs: Option<usize>,
    /// When the tier counts as up in a failover (default `status-checks`).
    #[serde(default)]
    pub ready: Readiness,
    /// Failback: run over SSH on the tier's recovery instances before the final pass
    /// (stop the application: `systemctl stop shop`, `fsfreeze -f /srv`).
    pub pre_cutover: Option<String>,
    /// Failback: run over SSH on the tier's origin hosts once their disks hold the
    /// final pass (start the application, or reboot into the written disk).
    pub post_cutover: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLaunchConfig {
    pub instance_type: Option<String>,
    pub subnet: Option<String>,
    /// `source` (the host's own SSH address) or an address.
    pub private_ip: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub health: Option<Vec<HealthCheck>>,
    /// Failback: the disk of the host's recovery instance, as it sees it (default
    /// `/dev/nvme0n1`, the root volume on Nitro instances).
    pub recovery_disk: Option<String>,
    /// Failback: the SSH port of the recovery instance (default: the origin's, since it
    /// runs the origin's own sshd configuration).
    pub recovery_ssh_port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    pub zone: String,
    pub name: String,
    #[serde(default = "default_record_type", rename = "type")]
    pub record_type: String,
    #[serde(default = "default_ttl")]
    pub ttl: u64,
    #[serde(default)]
    pub origin: Vec<String>,
    #[serde(default)]
    pub recovery_hosts: Vec<String>,
    #[serde(default)]
    pub recovery: Vec<String>,
}

fn default_record_type() -> String {
    "A".into()
}

fn default_ttl() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupConfig {
    pub arn: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub origin: Vec<String>,
    pub recovery_hosts: Vec<String>,
}

/// What discovery knows of a host: its sizing and its listening ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    pub instance_type: Option<String>,
    pub listening: Vec<u16>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 40
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl GroupConfig {
    pub fn probe_interval(&self) -> Duration {
        self.probe_interval.unwrap_or(Duration::from_secs(5))
    }

    pub fn period(&self) -> Duration {
        self.period.unwrap_or(Duration::from_secs(60))
    }

    pub fn failback_heartbeat(&self) -> Duration {
        self.failback_heartbeat.unwrap_or(Duration::from_secs(60))
    }

    pub fn failover_after(&self) -> u32 {
        self.failover_after.unwrap_or(3)
    }

    pub fn host_names(&self) -> impl Iterator<Item = &str> {
        self.tiers
            .iter()
            .flat_map(|t| t.hosts.iter().map(String::as_str))
    }

    /// The tier's sync policy (checked by [`GroupConfig::check`]).
    pub fn policy(&self, tier: &TierConfig) -> Result<SyncPolicy> {
        let windows = tier
            .exclude
            .iter()
            .map(|w| w.parse::<Window>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("group {} tier {}: exclude: {e}", self.name, tier.name))?;
        SyncPolicy::new(
            tier.interval,
            tier.cron.as_deref(),
            windows,
            tier.max_syncs.unwrap_or(1),
        )
        .map_err(|e| anyhow!("group {} tier {}: {e}", self.name, tier.name))
    }

    /// Everything that can be checked without AWS, given the `[[host]]` names; each
    /// error is one line.
    pub fn check(&self, hosts: &[&str]) -> Result<()> {
        let g = &self.name;
        if !valid_name(g) {
            bail!("group name {g:?} may only hold letters, digits, '-' and '_' (at most 40)");
        }
        if self.rpo.is_zero() || self.rto.is_zero() {
            bail!("group {g}: rpo and rto must be more than zero");
        }
        if self.tiers.is_empty() {
            bail!("group {g}: no [[group.tier]]");
        }
        let mut seen = HashSet::new();
        let mut tiers = HashSet::new();
        for t in &self.tiers {
            if !tiers.insert(t.name.as_str()) {
                bail!("group {g}: tier {} is declared twice", t.name);
            }
            if t.hosts.is_empty() {
                bail!("group {g} tier {}: no hosts", t.name);
            }
            for (key, hook) in [
                ("pre_cutover", &t.pre_cutover),
                ("post_cutover", &t.post_cutover),
            ] {
                if hook.as_deref().is_some_and(|c| c.trim().is_empty()) {
                    bail!(
                        "group {g} tier {}: {key} is empty (leave it out for no hook)",
                        t.name
                    );
                }
            }
            self.policy(t)?;
            for h in &t.hosts {
                if !seen.insert(h.as_str()) {
                    bail!("group {g}: host {h} is in two tiers");
                }
                if !hosts.contains(&h.as_str()) {
                    bail!("group {g} tier {}: no [[host]] named {h}", t.name);
                }
            }
        }
        for (h, c) in &self.hosts {
            if !seen.contains(h.as_str()) {
                bail!("group {g}: [group.host.{h}] is not in any tier");
            }
            if c.subnet.is_none() && self.subnet.is_none() {
                bail!("group {g}: host {h} has no subnet (set `subnet` in the group or the host)");
            }
            if let Some(d) = &c.recovery_disk {
                if !d.starts_with('/') {
                    bail!("group {g}: host {h}: recovery_disk {d:?} is not an absolute path");
                }
            }
            if c.recovery_ssh_port == Some(0) {
                bail!("group {g}: host {h}: recovery_ssh_port 0 is not a port");
            }
            if let Some(ip) = &c.private_ip {
                if ip != "source" && ip.parse::<std::net::IpAddr>().is_err() {
                    bail!(
                        "group {g}: host {h}: private_ip {ip:?} is neither `source` nor an address"
                    );
                }
            }
        }
        if self.subnet.is_none() {
            if let Some(h) = self
                .host_names()
                .find(|h| self.hosts.get(*h).is_none_or(|c| c.subnet.is_none()))
            {
                bail!("group {g}: host {h} has no subnet (set `subnet` in the group or in [group.host.{h}])");
            }
        }
        let named = |list: &[String], what: &str| -> Result<()> {
            match list.iter().find(|h| !seen.contains(h.as_str())) {
                Some(h) => bail!("group {g}: {what} names {h}, which is not in the group"),
                None => Ok(()),
            }
        };
        for d in &self.dns {
            named(&d.recovery_hosts, &format!("dns {}", d.name))?;
            if !matches!(d.record_type.as_str(), "A" | "AAAA") {
                bail!("group {g}: dns {}: type must be A or AAAA", d.name);
            }
            if d.recovery_hosts.is_empty() && d.recovery.is_empty() {
                bail!(
                    "group {g}: dns {}: no recovery_hosts or recovery addresses",
                    d.name
                );
            }
        }
        for t in &self.target_group {
            named(&t.recovery_hosts, &format!("target_group {}", t.arn))?;
        }
        if let Some(e) = &self.public_endpoint {
            probe_of(e).with_context(|| format!("group {g}: public_endpoint"))?;
        }
        if self.failback_heartbeat().as_secs() < 5 {
            bail!("group {g}: failback_heartbeat must be at least 5s");
        }
        let p = self.period().as_secs();
        if !(p == 10 || p == 30 || (p >= 60 && p.is_multiple_of(60))) {
            bail!("group {g}: period must be 10s, 30s or a multiple of 60s");
        }
        if self.failover_after() == 0 {
            bail!("group {g}: failover_after must be at least 1");
        }
        Ok(())
    }

    /// The record `ferry protect` writes: every default resolved.
    pub fn record(
        &self,
        hosts: &[Host],
        discovered: &BTreeMap<String, Discovered>,
    ) -> Result<GroupRecord> {
        self.check(&hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>())?;
        let g = &self.name;
        let mut tiers = Vec::new();
        for t in &self.tiers {
            let mut launches = Vec::new();
            for name in &t.hosts {
                let h = hosts
                    .iter()
                    .find(|x| &x.name == name)
                    .with_context(|| format!("group {g}: no host {name}"))?;
                let c = self.hosts.get(name).cloned().unwrap_or_default();
                let d = discovered.get(name).cloned().unwrap_or_default();
                let private_ip = match c.private_ip.as_deref() {
                    Some("source") => Some(h.ipv4_address().with_context(|| {
                        format!("group {g}: host {name}: private_ip = \"source\" needs an IPv4 SSH address")
                    })?),
                    other => other.map(str::to_string),
                };
                let health = match c.health {
                    Some(h) if !h.is_empty() => h,
                    _ => default_health(h, &d),
                };
                launches.push(HostLaunch {
                    host: name.clone(),
                    instance_type: c
                        .instance_type
                        .or(d.instance_type)
                        .or_else(|| self.instance_type.clone())
                        .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.into()),
                    subnet_id: c
                        .subnet
                        .or_else(|| self.subnet.clone())
                        .with_context(|| format!("group {g}: host {name} has no subnet"))?,
                    private_ip,
                    security_group_ids: c
                        .security_groups
                        .unwrap_or_else(|| self.security_groups.clone()),
                    health,
                });
            }
            tiers.push(TierRecord {
                name: t.name.clone(),
                ready: t.ready,
                hosts: launches,
            });
        }
        Ok(GroupRecord {
            name: g.clone(),
            rpo_s: self.rpo.as_secs(),
            rto_s: self.rto.as_secs(),
            tiers,
            drill: self.drill_subnet.as_ref().map(|s| DrillSettings {
                subnet_id: s.clone(),
                security_group_ids: self.drill_security_groups.clone(),
                time_limit_s: self
                    .drill_time_limit
                    .unwrap_or(Duration::from_secs(3600))
                    .as_secs(),
            }),
            traffic: TrafficSwitch {
                dns: self
                    .dns
                    .iter()
                    .map(|d| DnsSwitch {
                        zone_id: d.zone.clone(),
                        name: d.name.clone(),
                        record_type: d.record_type.clone(),
                        ttl: d.ttl,
                        origin: d.origin.clone(),
                        recovery_hosts: d.recovery_hosts.clone(),
                        recovery: d.recovery.clone(),
                    })
                    .collect(),
                target_groups: self
                    .target_group
                    .iter()
                    .map(|t| TargetGroupSwitch {
                        arn: t.arn.clone(),
                        port: t.port,
                        origin: t.origin.clone(),
                        recovery_hosts: t.recovery_hosts.clone(),
                    })
                    .collect(),
            },
            poll_s: self
                .poll
                .unwrap_or(Duration::from_secs(10))
                .as_secs()
                .max(1),
            tier_timeout_s: self
                .tier_timeout
                .unwrap_or(Duration::from_secs(900))
                .as_secs(),
            aws_probe: self.public_endpoint.as_deref().map(probe_of).transpose()?,
            alarms: Default::default(),
        })
    }
}

/// The services discovery found listening (the SSH port only when nothing else
/// listens), else the host's SSH port.
fn default_health(h: &Host, d: &Discovered) -> Vec<HealthCheck> {
    let ssh = h.ssh_port().unwrap_or(22);
    let mut ports: Vec<u16> = d.listening.iter().copied().filter(|p| *p != ssh).collect();
    ports.sort();
    ports.dedup();
    if ports.is_empty() {
        ports.push(ssh);
    }
    ports
        .into_iter()
        .map(|port| HealthCheck::Tcp { port })
        .collect()
}

/// `tcp://ADDR:PORT` or an http(s) URL, as the AWS-side probe checks it.
pub fn probe_of(endpoint: &str) -> Result<AwsProbe> {
    let (check, rest) = match endpoint.strip_prefix("tcp://") {
        Some(r) => {
            let (_, port) = r
                .rsplit_once(':')
                .with_context(|| format!("{endpoint:?}: tcp://ADDR:PORT needs a port"))?;
            (format!("tcp:{port}").parse::<HealthCheck>()?, r)
        }
        None => (
            endpoint.parse::<HealthCheck>()?,
            endpoint
                .split_once("://")
                .map(|(_, r)| r)
                .unwrap_or(endpoint),
        ),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let address = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
        None => authority
            .rsplit_once(':')
            .map(|(a, _)| a)
            .unwrap_or(authority)
            .to_string(),
    };
    if address.is_empty() {
        bail!("{endpoint:?} has no address");
    }
    Ok(AwsProbe { check, address })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    const CONFIG: &str = r#"
store = "file:///x"
[[host]]
name = "db1"
ssh = "root@10.0.0.5:22"
identity = "k"
disk = "/dev/sda"
[[host]]
name = "web1"
ssh = "root@10.0.0.7:2222"
identity = "k"
disk = "/dev/sda"

[[group]]
name = "shop"
rpo = "15m"
rto = "30m"
subnet = "subnet-a"
security_groups = ["sg-1"]
drill_subnet = "subnet-d"
public_endpoint = "tcp://203.0.113.10:443"
[[group.tier]]
name = "db"
hosts = ["db1"]
interval = "10m"
exclude = ["Mon-Fri 09:00-17:00"]
ready = "health"
[[group.tier]]
name = "web"
hosts = ["web1"]
cron = "*/30 * * * *"
max_syncs = 2
[group.host.db1]
private_ip = "source"
health = ["tcp:3306"]
instance_type = "r6i.large"
[[group.dns]]
zone = "Z1"
name = "shop.example.com"
origin = ["203.0.113.10"]
recovery_hosts = ["web1"]
"#;

    #[test]
    fn a_group_resolves_its_defaults() {
        let s = Settings::parse(CONFIG).unwrap();
        let hosts = s.all_hosts().unwrap();
        let g = &s.groups[0];
        let discovered: BTreeMap<String, Discovered> = [(
            "web1".to_string(),
            Discovered {
                instance_type: Some("c7i.large".into()),
                listening: vec![2222, 443, 80],
            },
        )]
        .into_iter()
        .collect();
        let r = g.record(&hosts, &discovered).unwrap();
        assert_eq!((r.rpo_s, r.rto_s), (900, 1800));
        let db = r.host("db1").unwrap();
        assert_eq!(db.private_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(db.instance_type, "r6i.large");
        assert_eq!(db.health, vec![HealthCheck::Tcp { port: 3306 }]);
        assert_eq!(db.subnet_id, "subnet-a");
        let web = r.host("web1").unwrap();
        // Discovery sizes it and says what listens (not SSH).
        assert_eq!(web.instance_type, "c7i.large");
        assert_eq!(
            web.health,
            vec![
                HealthCheck::Tcp { port: 80 },
                HealthCheck::Tcp { port: 443 }
            ]
        );
        assert_eq!(web.security_group_ids, vec!["sg-1"]);
        assert_eq!(web.private_ip, None);
        assert_eq!(r.tiers[0].ready, Readiness::Health);
        assert_eq!(r.drill.as_ref().unwrap().subnet_id, "subnet-d");
        assert_eq!(r.aws_probe.as_ref().unwrap().address, "203.0.113.10");
        assert_eq!(r.traffic.dns[0].record_type, "A");
        // Without discovery and health: the SSH port, the default type.
        let bare = g.record(&hosts, &BTreeMap::new()).unwrap();
        let web = bare.host("web1").unwrap();
        assert_eq!(web.health, vec![HealthCheck::Tcp { port: 2222 }]);
        assert_eq!(web.instance_type, DEFAULT_INSTANCE_TYPE);
    }

    #[test]
    fn bad_groups_are_one_line_naming_what_is_wrong() {
        let cases = [
            (
                "hosts = [\"db1\"]\ninterval = \"10m\"",
                "hosts = [\"db9\"]\ninterval = \"10m\"",
                "no [[host]] named db9",
            ),
            (
                "interval = \"10m\"\nexclude",
                "cron = \"bad cron\"\nexclude",
                "cron",
            ),
            (
                "exclude = [\"Mon-Fri 09:00-17:00\"]",
                "exclude = [\"Someday 09:00\"]",
                "exclude",
            ),
            ("health = [\"tcp:3306\"]", "health = [\"udp:53\"]", "udp:53"),
            (
                "recovery_hosts = [\"web1\"]",
                "recovery_hosts = [\"lb1\"]",
                "lb1",
            ),
            (
                "public_endpoint = \"tcp://203.0.113.10:443\"",
                "public_endpoint = \"tcp://203.0.113.10\"",
                "public_endpoint",
            ),
            ("rpo = \"15m\"", "rpo = \"soon\"", "soon"),
            (
                "hosts = [\"web1\"]\ncron",
                "hosts = [\"db1\"]\ncron",
                "in two tiers",
            ),
            (
                "health = [\"tcp:3306\"]",
                "health = [\"tcp:3306\"]\nrecovery_disk = \"nvme0n1\"",
                "recovery_disk",
            ),
            (
                "hosts = [\"web1\"]\ncron",
                "hosts = [\"web1\"]\npre_cutover = \" \"\ncron",
                "pre_cutover is empty",
            ),
            (
                "rpo = \"15m\"",
                "rpo = \"15m\"\nfailback_heartbeat = \"1s\"",
                "failback_heartbeat",
            ),
        ];
        for (from, to, want) in cases {
            assert!(CONFIG.contains(from), "{from}");
            let text = CONFIG.replacen(from, to, 1);
            let e = Settings::parse(&text).map(|_| ()).unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(want) && !e.contains('\n'), "{to}: {e}");
        }
        // Both an interval and a cron, or neither.
        let both = CONFIG.replacen(
            "interval = \"10m\"",
            "interval = \"10m\"\ncron = \"* * * * *\"",
            1,
        );
        assert!(format!("{:#}", Settings::parse(&both).unwrap_err()).contains("interval or a cron"));
    }

    #[test]
    fn public_endpoints_name_an_address_and_a_check() {
        let p = probe_of("https://shop.example.com/health").unwrap();
        assert_eq!(p.address, "shop.example.com");
        assert_eq!(
            p.check.at(&p.address),
            "https://shop.example.com:443/health"
        );
        let p = probe_of("tcp://[2001:db8::1]:443").unwrap();
        assert_eq!((p.address.as_str(), p.check.port()), ("2001:db8::1", 443));
        assert!(probe_of("tcp://").is_err());
    }
}
