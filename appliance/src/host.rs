//! A protected host as capture, restore and the records see it: its name, how to reach
//! it, its disk and how to read that disk consistently. Built from a `[[host]]` entry of
//! `ferry.toml` (the settings module), with its paths resolved and its SSH address
//! parsed, so that nothing past loading deals with the file's schema.

use crate::ssh::{quote, SshAddr, SshTarget};

/// How a disk is read consistently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotMethod {
    /// Read the live device (crash-consistent).
    #[default]
    None,
    /// Take an LVM snapshot of the logical volume, read it, remove it.
    Lvm,
}

impl SnapshotMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            SnapshotMethod::None => "none",
            SnapshotMethod::Lvm => "lvm",
        }
    }
}

/// How an incremental capture finds what changed since the parent point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangedBlocks {
    /// The host hashes its disk in blocks with the first tools it has (Python 3,
    /// then GNU coreutils); only changed blocks are read. No tools: a full read.
    #[default]
    Auto,
    Python3,
    Coreutils,
    /// Always read the whole disk.
    Off,
}

/// When captures read what, beyond the snapshot method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadPolicy {
    pub changed_blocks: ChangedBlocks,
    /// Read the whole disk when the last full read is this old (a periodic full read
    /// catches what no hash comparison can: a store that lost bytes, a host that lied).
    pub full_every: Option<std::time::Duration>,
}

/// Where the host is.
#[derive(Debug, Clone)]
pub enum Access {
    /// The disk is a device or file on the appliance itself.
    Local,
    /// Over SSH, with its key pinned in a known_hosts file.
    Ssh {
        addr: SshAddr,
        identity: std::path::PathBuf,
        known_hosts: std::path::PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub access: Access,
    /// Device or image path on the host.
    pub disk: String,
    pub snapshot: SnapshotMethod,
    /// LVM snapshot size, as `lvcreate --size` takes it.
    pub snapshot_size: String,
    /// Run the disk commands with `sudo -n`.
    pub sudo: bool,
    pub tier: Option<String>,
    pub group: Option<String>,
    pub read: ReadPolicy,
}

impl Host {
    /// The SSH target, or `None` for a disk on the appliance itself.
    pub fn ssh_target(&self, accept_new_host_key: bool) -> Option<SshTarget> {
        match &self.access {
            Access::Local => None,
            Access::Ssh {
                addr,
                identity,
                known_hosts,
            } => Some(SshTarget {
                name: self.name.clone(),
                addr: addr.clone(),
                identity: identity.clone(),
                known_hosts: known_hosts.clone(),
                accept_new_host_key,
            }),
        }
    }

    /// `user@addr:port`, as recorded; `None` for a local disk.
    pub fn ssh_label(&self) -> Option<String> {
        match &self.access {
            Access::Local => None,
            Access::Ssh { addr, .. } => Some(format!("{}@{}:{}", addr.user, addr.host, addr.port)),
        }
    }

    /// The host's SSH address when it is an IPv4 literal (what `--private-ip source`
    /// keeps on the migrated instance).
    pub fn ipv4_address(&self) -> Option<String> {
        match &self.access {
            Access::Ssh { addr, .. } => addr
                .host
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .map(|ip| ip.to_string()),
            Access::Local => None,
        }
    }

    /// The host's SSH port; `None` for a local disk.
    pub fn ssh_port(&self) -> Option<u16> {
        match &self.access {
            Access::Ssh { addr, .. } => Some(addr.port),
            Access::Local => None,
        }
    }

    /// The address its services answer at (the SSH address's host); a local disk's
    /// services are the appliance's own.
    pub fn service_address(&self) -> String {
        match &self.access {
            Access::Ssh { addr, .. } => addr.host.clone(),
            Access::Local => "127.0.0.1".to_string(),
        }
    }

    /// `cmd` as the host runs it: through `sudo -n sh -c` when the host says so.
    pub fn privileged(&self, cmd: &str) -> String {
        if self.sudo {
            format!("sudo -n sh -c {}", quote(cmd))
        } else {
            cmd.to_string()
        }
    }
}
