//! A tier's on-prem load, sampled agentlessly: one short command per host over the
//! SSH session the sampler keeps open (the same kernel tables discovery reads), or the
//! user's command, or a URL the appliance fetches. The tier's value is the mean over
//! its hosts that answered, so thresholds are per-server figures.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use super::config::{BurstConfig, LoadKind};
use crate::discover::parse::{procfs, ss};
use crate::host::Host;
use crate::ssh::SshSession;

/// The command a host runs for one sample of `kind`.
pub fn command(c: &BurstConfig) -> Option<String> {
    match c.load {
        LoadKind::Cpu => Some("head -n1 /proc/stat".into()),
        LoadKind::Loadavg => Some("cat /proc/loadavg; nproc".into()),
        LoadKind::Connections => Some("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null".into()),
        LoadKind::Command => c.load_command.clone(),
        LoadKind::Url => None,
    }
}

/// The first number in `text` (`"load: 12.5 req/s"` -> 12.5).
pub fn first_number(text: &str) -> Option<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|w| !w.is_empty() && w.chars().any(|c| c.is_ascii_digit()))
        .find_map(|w| w.parse::<f64>().ok())
}

/// The 1-minute load average per CPU, from `/proc/loadavg` and `nproc`.
pub fn loadavg_per_cpu(text: &str) -> Option<f64> {
    let mut lines = text.lines();
    let load: f64 = lines.next()?.split_whitespace().next()?.parse().ok()?;
    let cpus: f64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(1.0);
    Some(load / cpus.max(1.0))
}

/// Established connections whose local end is `port` (and `addr`, when given: hosts
/// that share a kernel, or a server with several addresses, count only the one the
/// load balancer uses).
pub fn connections(text: &str, port: u16, addr: Option<IpAddr>) -> Result<f64> {
    let sockets = ss::proc_net_tcp(text).map_err(|e| anyhow!("{e}"))?;
    Ok(sockets
        .iter()
        .filter(|s| s.established() && s.local.port() == port)
        .filter(|s| addr.is_none_or(|a| s.local.ip() == a))
        .count() as f64)
}

/// CPU busy % between two `/proc/stat` samples (busy, total jiffies).
pub fn cpu_busy(prev: (u64, u64), now: (u64, u64)) -> Option<f64> {
    let total = now.1.checked_sub(prev.1)?;
    let busy = now.0.checked_sub(prev.0)?;
    (total > 0).then(|| 100.0 * busy as f64 / total as f64)
}

/// One host of a tier, as the sampler keeps it between samples.
pub struct Sampled {
    pub host: Host,
    /// The address its connections are counted on.
    pub address: Option<IpAddr>,
    session: Option<SshSession>,
    prev_cpu: Option<(u64, u64)>,
}

impl Sampled {
    pub fn new(host: Host, address: Option<IpAddr>) -> Self {
        Sampled {
            host,
            address,
            session: None,
            prev_cpu: None,
        }
    }

    async fn session(&mut self, accept_new: bool) -> Result<&SshSession> {
        if self.session.is_none() {
            let target = self
                .host
                .ssh_target(accept_new)
                .with_context(|| format!("host {} has no ssh address to sample", self.host.name))?;
            self.session = Some(SshSession::connect(&target).await?);
        }
        self.session
            .as_ref()
            .with_context(|| format!("host {}: no session", self.host.name))
    }

    /// One sample; `Ok(None)` when there is no value yet (the first CPU sample).
    pub async fn sample(&mut self, c: &BurstConfig, accept_new: bool) -> Result<Option<f64>> {
        if c.load == LoadKind::Url {
            let url = c.load_url.as_deref().unwrap_or_default();
            let text = ferry_probe::get_text(url, Duration::from_secs(5))
                .await
                .map_err(|e| anyhow!("{e}"))?;
            return first_number(&text)
                .map(Some)
                .with_context(|| format!("{url} answered no number"));
        }
        let cmd = command(c).unwrap_or_default();
        let name = self.host.name.clone();
        let out = match self.session(accept_new).await?.check(&cmd).await {
            Ok(o) => o,
            Err(e) => {
                // A broken session is opened again at the next sample.
                self.session = None;
                return Err(e.context(format!("sampling the load of host {name}")));
            }
        };
        let text = String::from_utf8_lossy(&out);
        match c.load {
            LoadKind::Cpu => {
                let now = procfs::stat_cpu(&text).map_err(|e| anyhow!("host {name}: {e}"))?;
                let v = self.prev_cpu.and_then(|p| cpu_busy(p, now));
                self.prev_cpu = Some(now);
                Ok(v)
            }
            LoadKind::Loadavg => loadavg_per_cpu(&text)
                .map(Some)
                .with_context(|| format!("host {name}: /proc/loadavg unreadable")),
            LoadKind::Connections => connections(&text, c.port, self.address).map(Some),
            LoadKind::Command => first_number(&text)
                .map(Some)
                .with_context(|| format!("host {name}: load_command printed no number")),
            LoadKind::Url => Ok(None),
        }
    }

    pub async fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }
}

/// The tier's value: the mean of the hosts that gave one.
pub fn tier_value(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_loadavg_and_cpu() {
        assert_eq!(first_number("load: 12.5 req/s"), Some(12.5));
        assert_eq!(first_number("42\n"), Some(42.0));
        assert_eq!(first_number("none"), None);
        assert_eq!(
            loadavg_per_cpu("3.00 2.00 1.00 1/100 4242\n4\n"),
            Some(0.75)
        );
        assert_eq!(cpu_busy((100, 1000), (150, 1100)), Some(50.0));
        assert_eq!(cpu_busy((100, 1000), (100, 1000)), None);
        assert_eq!(tier_value(&[10.0, 30.0]), Some(20.0));
        assert_eq!(tier_value(&[]), None);
    }

    #[test]
    fn connections_count_the_service_port_of_the_address() {
        // 127.77.0.21:8080 <- two clients; 127.77.0.22:8080 <- one; a listener; port 22.
        let text = "  sl  local_address rem_address   st\n\
   0: 15004D7F:1F90 00000000:0000 0A 0\n\
   1: 15004D7F:1F90 0100007F:C000 01 0\n\
   2: 15004D7F:1F90 0100007F:C001 01 0\n\
   3: 16004D7F:1F90 0100007F:C002 01 0\n\
   4: 15004D7F:0016 0100007F:C003 01 0\n";
        let a: IpAddr = "127.77.0.21".parse().unwrap();
        assert_eq!(connections(text, 8080, Some(a)).unwrap(), 2.0);
        assert_eq!(connections(text, 8080, None).unwrap(), 3.0);
        assert_eq!(connections(text, 22, Some(a)).unwrap(), 1.0);
    }
}
