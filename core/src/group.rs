//! A protection group as `ferry protect` records it (`GROUP#<name>` / `GROUP`):
//! everything a failover needs, kept in AWS so that a failover needs nothing from the
//! site (which may be gone, appliance included). The appliance turns `[[group]]` of
//! `ferry.toml` into this, with every default resolved.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    pub name: String,
    /// Recovery point objective: the most data, in seconds of writes, a failover may lose.
    pub rpo_s: u64,
    /// Recovery time objective: alarm to traffic switched, in seconds.
    pub rto_s: u64,
    /// In boot order: a tier is launched only once the one before it is ready.
    pub tiers: Vec<TierRecord>,
    /// Where drills run; none: the group cannot be drilled.
    pub drill: Option<DrillSettings>,
    pub traffic: TrafficSwitch,
    /// Seconds between two checks of a tier's launched instances.
    pub poll_s: u64,
    /// How long a tier may take to be ready before the run gives up.
    pub tier_timeout_s: u64,
    /// What the AWS-side probe checks of the origin (its public endpoint), if
    /// anything: without it the group fails over by hand only, since one observer (the
    /// appliance) alone must not decide.
    pub aws_probe: Option<AwsProbe>,
    /// The group's CloudWatch alarms, as `ferry protect` created them.
    pub alarms: Alarms,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRecord {
    pub name: String,
    pub ready: Readiness,
    pub hosts: Vec<HostLaunch>,
}

/// When a launched tier counts as up, so that the next one may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// Running with both EC2 status checks passed.
    #[default]
    StatusChecks,
    /// Running, status checks passed, and every host's health checks answer at its
    /// recovery address (probed from inside the VPC).
    Health,
}

/// How one host is launched in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLaunch {
    pub host: String,
    pub instance_type: String,
    pub subnet_id: String,
    /// A fixed private address (the source's own, or a given one); none: the subnet's.
    pub private_ip: Option<String>,
    pub security_group_ids: Vec<String>,
    /// What "healthy" means for this host, on the origin and once recovered.
    pub health: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    /// A drill still running after this long is stopped and cleaned up.
    pub time_limit_s: u64,
}

/// What a failover switches from the origin to the recovery instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSwitch {
    pub dns: Vec<DnsSwitch>,
    pub target_groups: Vec<TargetGroupSwitch>,
}

/// A Route 53 record set, UPSERTed to the recovery addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSwitch {
    pub zone_id: String,
    /// Fully qualified, e.g. `shop.example.com.`.
    pub name: String,
    /// `A` or `AAAA`.
    pub record_type: String,
    pub ttl: u64,
    /// What the record holds while the origin serves.
    pub origin: Vec<String>,
    /// Hosts whose recovery instances' private addresses the record points at.
    pub recovery_hosts: Vec<String>,
    /// Fixed recovery addresses (an Elastic IP, say), besides those hosts'.
    pub recovery: Vec<String>,
}

/// An ELBv2 target group: the recovery instances are registered, the origin's IP
/// targets deregistered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupSwitch {
    pub arn: String,
    /// Target port; none: the target group's own.
    pub port: Option<u16>,
    /// The origin's IP targets, deregistered once the recovery instances are in.
    pub origin: Vec<String>,
    pub recovery_hosts: Vec<String>,
}

/// The origin's public endpoint as the AWS-side probe checks it every minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsProbe {
    pub check: HealthCheck,
    /// Address or DNS name the probe connects to.
    pub address: String,
}

/// A protected group in the list of groups (`GROUPS` / `<name>`): what the AWS-side
/// probe reads every minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub group: String,
    pub probe: Option<AwsProbe>,
}

/// The names of a group's alarms (see `ferry_core::alarms` for what each watches).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// The composite alarm whose ALARM starts a failover; none without an AWS probe.
    pub failover: Option<String>,
    /// Every other alarm of the group (its failover alarm's children, RPO at risk).
    pub others: Vec<String>,
}

impl GroupRecord {
    pub fn hosts(&self) -> impl Iterator<Item = &HostLaunch> {
        self.tiers.iter().flat_map(|t| t.hosts.iter())
    }

    pub fn host(&self, name: &str) -> Option<&HostLaunch> {
        self.hosts().find(|h| h.host == name)
    }
}

/// One health check of a host, at whatever address the host has (the origin's, or
/// its recovery instance's). Written `tcp:3306`, `http://ADDR:8080/health` or
/// `https://ADDR/` (the address in a URL is the origin's; probes use the host's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HealthCheck {
    Tcp { port: u16 },
    Http { tls: bool, port: u16, path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("health check {text:?}: {why} (write tcp:PORT, http://ADDR[:PORT]/PATH or https://ADDR[:PORT]/PATH)")]
pub struct BadHealthCheck {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for HealthCheck {
    type Err = BadHealthCheck;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadHealthCheck {
            text: s.to_string(),
            why,
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        if let Some(p) = s.strip_prefix("tcp:") {
            return Ok(HealthCheck::Tcp {
                port: port(p).ok_or_else(|| bad("not a port"))?,
            });
        }
        let (tls, rest) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => return Err(bad("unknown kind")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // `[v6]:port`, `host:port` or a bare host.
        let port_text = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => Some(&authority[i + 1..]),
            _ => None,
        };
        let host_len = authority.len() - port_text.map_or(0, |p| p.len() + 1);
        if host_len == 0 {
            return Err(bad("no address"));
        }
        let port = match port_text {
            Some(p) => port(p).ok_or_else(|| bad("not a port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(HealthCheck::Http {
            tls,
            port,
            path: path.to_string(),
        })
    }
}

impl TryFrom<String> for HealthCheck {
    type Error = BadHealthCheck;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<HealthCheck> for String {
    fn from(h: HealthCheck) -> String {
        h.to_string()
    }
}

impl HealthCheck {
    pub fn port(&self) -> u16 {
        match self {
            HealthCheck::Tcp { port } | HealthCheck::Http { port, .. } => *port,
        }
    }

    /// The check as it is written with `addr` as the address (for logs and reports).
    pub fn at(&self, addr: &str) -> String {
        let addr = match addr.contains(':') {
            true => format!("[{addr}]"),
            false => addr.to_string(),
        };
        match self {
            HealthCheck::Tcp { port } => format!("tcp://{addr}:{port}"),
            HealthCheck::Http { tls, port, path } => {
                let scheme = if *tls { "https" } else { "http" };
                format!("{scheme}://{addr}:{port}{path}")
            }
        }
    }
}

impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthCheck::Tcp { port } => write!(f, "tcp:{port}"),
            HealthCheck::Http { .. } => f.write_str(&self.at("ADDR")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_parse_and_print_back() {
        assert_eq!("tcp:3306".parse(), Ok(HealthCheck::Tcp { port: 3306 }));
        assert_eq!(
            "http://10.0.0.5:8080/health".parse(),
            Ok(HealthCheck::Http {
                tls: false,
                port: 8080,
                path: "/health".into()
            })
        );
        let h: HealthCheck = "https://shop.example.com".parse().unwrap();
        assert_eq!(h.port(), 443);
        assert_eq!(h.at("10.1.2.3"), "https://10.1.2.3:443/");
        let h: HealthCheck = "http://[fd00::5]:81/x".parse().unwrap();
        assert_eq!(h.at("fd00::6"), "http://[fd00::6]:81/x");
        // Stored as its text, read back the same.
        let s = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<HealthCheck>(&s).unwrap(), h);
        for bad in [
            "tcp:0",
            "tcp:x",
            "udp:53",
            "http://:80/",
            "http://h:99999/",
            "ftp://h/",
        ] {
            let e = bad.parse::<HealthCheck>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("tcp:PORT"), "{e}");
        }
    }
}
