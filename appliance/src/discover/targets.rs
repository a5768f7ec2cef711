//! Which hosts a discovery visits: `[[host]]` entries (by name or group) and the
//! `[discovery]` addresses and ranges.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::addresses::expand;
use crate::host::Host;
use crate::settings::{default_known_hosts, DiscoverySettings};
use crate::ssh::{SshAddr, SshTarget};

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
        None => default_known_hosts(),
    }
}

/// The hosts named (config names), the hosts of `group`, or, with neither, every
/// `[[host]]` with SSH and every `[discovery]` address.
pub fn targets(
    hosts: &[Host],
    discovery: &DiscoverySettings,
    names: &[String],
    group: Option<&str>,
    accept_new: bool,
) -> Result<Vec<Target>> {
    let from_host = |h: &Host| -> Result<Option<Target>> {
        Ok(h.ssh_target(accept_new).map(|ssh| Target {
            name: h.name.clone(),
            ssh,
            from_range: false,
        }))
    };
    let host = |n: &str| {
        hosts
            .iter()
            .find(|h| h.name == n)
            .with_context(|| format!("no host {n:?} in the config"))
    };
    let mut out = Vec::new();
    if !names.is_empty() || group.is_some() {
        for n in names {
            match from_host(host(n)?)? {
                Some(t) => out.push(t),
                None => bail!("host {n} has no `ssh` address to discover it at"),
            }
        }
        for h in hosts
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
    for h in hosts {
        out.extend(from_host(h)?);
    }
    let d = discovery;
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
