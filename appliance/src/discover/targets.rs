//! Which hosts a discovery visits: `[[host]]` entries (by name or group) and the
//! `[discovery]` addresses and ranges.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::settings::{HostConfig, Settings};
use crate::ssh::{SshAddr, SshTarget};

/// The largest range expanded (a /22).
const MAX_RANGE: u32 = 1024;

/// `10.0.0.0/30` -> its host addresses; `10.0.0.5` or `10.0.0.5:2222` -> itself.
/// Ports default to 22.
pub fn expand(spec: &str) -> Result<Vec<SocketAddr>> {
    let (addr, port) = match spec.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => (a, p.parse::<u16>().context("bad port")?),
        _ => (spec, 22),
    };
    let Some((net, bits)) = addr.split_once('/') else {
        let ip: IpAddr = addr.parse().context("not an IP address")?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    };
    let net: Ipv4Addr = net.parse().context("ranges are IPv4 CIDR")?;
    let bits: u32 = bits.parse().context("bad prefix length")?;
    if !(16..=32).contains(&bits) {
        bail!("prefix /{bits}: use /16 to /32");
    }
    let size = 1u32 << (32 - bits);
    if size > MAX_RANGE {
        bail!("/{bits} holds {size} addresses; at most {MAX_RANGE} at a time");
    }
    let base = u32::from(net) & !(size - 1);
    // Leave out the network and broadcast addresses of ranges that have them.
    let (first, last) = if size >= 4 { (1, size - 1) } else { (0, size) };
    Ok((first..last)
        .map(|i| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(base + i)), port))
        .collect())
}

/// One host to discover.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub ssh: SshTarget,
    /// Came from a range: skipped quietly if nothing answers on its SSH port.
    pub from_range: bool,
}

fn known_hosts(p: &Option<PathBuf>) -> Result<PathBuf> {
    match p {
        Some(p) => Ok(p.clone()),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
            .context("no known_hosts file set and no HOME"),
    }
}

/// The hosts named (config names), the hosts of `group`, or, with neither, every
/// `[[host]]` with SSH and every `[discovery]` address.
pub fn targets(
    s: &Settings,
    names: &[String],
    group: Option<&str>,
    accept_new: bool,
) -> Result<Vec<Target>> {
    let from_host = |h: &HostConfig| -> Result<Option<Target>> {
        Ok(h.ssh_target(accept_new)?.map(|ssh| Target {
            name: h.name.clone(),
            ssh,
            from_range: false,
        }))
    };
    let mut out = Vec::new();
    if !names.is_empty() || group.is_some() {
        for n in names {
            match from_host(s.host(n)?)? {
                Some(t) => out.push(t),
                None => bail!("host {n} has no `ssh` address to discover it at"),
            }
        }
        for h in s
            .hosts
            .iter()
            .filter(|h| group.is_some() && h.group.as_deref() == group)
        {
            out.extend(from_host(h)?);
        }
        if out.is_empty() {
            bail!("no host in group {:?}", group.unwrap_or(""));
        }
        return Ok(out);
    }
    for h in &s.hosts {
        out.extend(from_host(h)?);
    }
    let d = &s.discovery;
    for spec in &d.addresses {
        let addrs = expand(spec)?;
        let ranged = addrs.len() > 1;
        for a in addrs {
            if out
                .iter()
                .any(|t| t.ssh.addr.host == a.ip().to_string() && t.ssh.addr.port == a.port())
            {
                continue;
            }
            out.push(Target {
                name: a.ip().to_string(),
                ssh: SshTarget {
                    name: a.ip().to_string(),
                    addr: SshAddr {
                        user: d.user.clone().unwrap_or_else(|| "root".into()),
                        host: a.ip().to_string(),
                        port: a.port(),
                    },
                    identity: d
                        .identity
                        .clone()
                        .context("[discovery] needs an identity")?,
                    known_hosts: known_hosts(&d.known_hosts)?,
                    accept_new_host_key: accept_new,
                },
                from_range: ranged,
            });
        }
    }
    if out.is_empty() {
        bail!("nothing to discover: no [[host]] with `ssh` and no [discovery] addresses in the config");
    }
    Ok(out)
}

/// Whether something accepts TCP connections at the target's SSH port.
pub async fn answers(t: &Target) -> bool {
    let addr = (t.ssh.addr.host.as_str(), t.ssh.addr.port);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_addresses() {
        let r = expand("10.0.0.0/30").unwrap();
        assert_eq!(
            r,
            vec![
                "10.0.0.1:22".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:22".parse().unwrap()
            ]
        );
        assert_eq!(
            expand("10.0.1.5:2222").unwrap(),
            vec!["10.0.1.5:2222".parse().unwrap()]
        );
        assert_eq!(expand("10.0.0.7/32").unwrap().len(), 1);
        assert_eq!(expand("10.0.0.0/24").unwrap().len(), 254);
        assert!(expand("10.0.0.0/8").is_err());
        assert!(expand("db.example").is_err());
        assert!(expand("10.0.0.1:99999").is_err());
    }
}
