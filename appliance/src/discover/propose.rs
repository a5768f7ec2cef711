//! `ferry discover --write-config`: `[[host]]` entries for the discovered hosts that the
//! config does not have yet, for the operator to review and copy into `ferry.toml`.

use super::model::HostReport;
use super::targets::Target;

/// The disk that holds `/` (walking up lsblk's tree from the root filesystem).
pub fn root_disk(h: &HostReport) -> Option<String> {
    let devs = &h.inventory.as_ref()?.block_devices;
    let mut d = devs.iter().find(|d| d.mountpoint.as_deref() == Some("/"))?;
    while let Some(p) = &d.parent {
        d = devs.iter().find(|x| &x.name == p)?;
    }
    Some(format!("/dev/{}", d.name))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// TOML for every reachable host not in `known` (the config's host names).
pub fn proposal(
    hosts: &[HostReport],
    targets: &[Target],
    known: &[String],
    generated: &str,
) -> String {
    let mut out = format!(
        "# Proposed by `ferry discover --write-config` at {generated}.\n\
         # Review each entry (disk, tier), then copy it into ferry.toml.\n"
    );
    for h in hosts
        .iter()
        .filter(|h| h.reachable && !known.contains(&h.host))
    {
        let Some(t) = targets
            .iter()
            .find(|t| Some(t.ssh.addr.host.as_str()) == h.address.as_deref())
        else {
            continue;
        };
        out += &format!(
            "\n[[host]]\nname = {}\nssh = {}\nidentity = {}\nknown_hosts = {}\n",
            quote(&h.host),
            quote(&format!(
                "{}@{}:{}",
                t.ssh.addr.user, t.ssh.addr.host, t.ssh.addr.port
            )),
            quote(&t.ssh.identity.display().to_string()),
            quote(&t.ssh.known_hosts.display().to_string()),
        );
        match root_disk(h) {
            Some(d) => out += &format!("disk = {}\n", quote(&d)),
            None => out += "disk = \"\"  # could not tell which disk holds /: fill in\n",
        }
        if let Some(tier) = &h.tier {
            out += &format!(
                "tier = {}  # guessed from its listening ports\n",
                quote(tier)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::model::Inventory;
    use crate::discover::parse::{disks::lsblk, fixture};

    #[test]
    fn the_root_disk_is_found_through_its_volume_group() {
        let h = HostReport {
            inventory: Some(Inventory {
                block_devices: lsblk(&fixture("lsblk-lvm-server.json")).unwrap(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(root_disk(&h).as_deref(), Some("/dev/sda"));
    }
}
