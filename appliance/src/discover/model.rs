//! What discovery learns about each host, as stored (JSON, DynamoDB) and reported.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::parse::disks::{BlockDevice, Filesystem};
use super::parse::ip::{Interface, Route};
use super::parse::os::OsRelease;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    /// The host cannot be migrated as it is.
    Blocker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, for scripts: `unreachable`, `tool-missing`, `unreadable`, `arch`, ...
    pub code: String,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        Finding {
            severity,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drivers {
    /// `modinfo nvme` found the module (or it is built in); `None`: could not tell.
    pub nvme: Option<bool>,
    pub ena: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: Option<String>,
    pub os: Option<OsRelease>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    /// `uefi` or `bios`.
    pub boot_mode: Option<String>,
    pub cpus: Option<u32>,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
    pub block_devices: Vec<BlockDevice>,
    pub filesystems: Vec<Filesystem>,
    pub interfaces: Vec<Interface>,
    pub default_route: Option<Route>,
    pub drivers: Drivers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub ip: IpAddr,
    pub port: u16,
    pub process: Option<String>,
}

/// An established TCP connection as the host saw it, and in how many samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub process: Option<String>,
    pub samples: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub samples: u32,
    pub interval_s: f64,
    pub cpu_percent: Summary,
    /// CPUs' worth of busy time (cpu_percent x CPUs).
    pub cpu_cores: Summary,
    pub memory_used_bytes: Summary,
    pub disk_read_bps: Summary,
    pub disk_write_bps: Summary,
    pub net_rx_bps: Summary,
    pub net_tx_bps: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sizing {
    pub instance_type: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub hourly_usd: f64,
    /// What it had to fit: CPUs and memory with headroom.
    pub needed_vcpus: f64,
    pub needed_memory_bytes: u64,
    /// Why: `p95 CPU ...` or `allocated ...` when there were no samples.
    pub basis: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub host: String,
    /// The address discovery reached it at.
    pub address: Option<String>,
    pub reachable: bool,
    pub inventory: Option<Inventory>,
    pub listeners: Vec<Listener>,
    pub connections: Vec<Conn>,
    pub performance: Option<Performance>,
    pub tier: Option<String>,
    pub sizing: Option<Sizing>,
    pub findings: Vec<Finding>,
}

impl HostReport {
    /// Every address the host answers on (its interfaces and the one discovery used).
    pub fn addresses(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .inventory
            .iter()
            .flat_map(|i| &i.interfaces)
            .flat_map(|i| &i.addresses)
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .filter(|ip: &IpAddr| !ip.is_loopback())
            .collect();
        if let Some(ip) = self.address.as_ref().and_then(|a| a.parse().ok()) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }

    /// Whether `port` on `ip` is one of the host's listening sockets.
    pub fn listens_on(&self, ip: IpAddr, port: u16) -> Option<&Listener> {
        self.listeners
            .iter()
            .find(|l| l.port == port && (l.ip == ip || l.ip.is_unspecified()))
    }
}

/// Nearest-rank percentiles of `v` (empty: zeros).
pub fn summarize(v: &[f64]) -> Summary {
    if v.is_empty() {
        return Summary::default();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Summary {
        p50: rank(0.50),
        p95: rank(0.95),
        max: s[s.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarize(&v);
        assert_eq!((s.p50, s.p95, s.max), (10.0, 19.0, 20.0));
        assert_eq!(summarize(&[]), Summary::default());
        assert_eq!(summarize(&[3.0]).p95, 3.0);
    }
}
