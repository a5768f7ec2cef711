//! `ferry.toml`: the store, the AWS settings and the hosts the appliance protects.
//!
//! Unknown keys are errors (a typo must not silently disable a setting). Relative paths
//! (`identity`, `known_hosts`) are relative to the file's own directory.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::burst::config::BurstConfig;
use crate::dr::config::GroupConfig;
use crate::host::{Access, Host, SnapshotMethod};
use crate::ssh::SshAddr;
use ferry_aws::AwsSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `file:///abs/path` or `s3://bucket/prefix`.
    pub store: String,
    #[serde(default)]
    pub aws: AwsSettings,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostConfig>,
    #[serde(default)]
    pub discovery: DiscoverySettings,
    /// Protection groups (`[[group]]`): what `ferry protect`, `ferry daemon`,
    /// `ferry failover` and `ferry drill` act on.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// Burst tiers (`[[burst]]`): what `ferry burst setup` and `ferry daemon` act on.
    #[serde(default, rename = "burst")]
    pub bursts: Vec<BurstConfig>,
    /// `[convert]`: the helper VM `ferry convert` boots with an image attached.
    #[serde(default)]
    pub convert: ConvertSettings,
}

/// `[convert]`: the conversion helper, a small Linux VM that `ferry convert` boots under
/// QEMU with the image to convert attached as its second disk (`/dev/vdb`), reached over
/// SSH as root. Its root image is never written (QEMU keeps the helper's writes in a
/// temporary overlay).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertSettings {
    /// The helper's kernel and initramfs (given to QEMU) and its root file system image
    /// (raw, the whole disk one file system).
    pub helper_kernel: Option<PathBuf>,
    pub helper_initrd: Option<PathBuf>,
    pub helper_root: Option<PathBuf>,
    /// The private key the helper's root account takes.
    pub helper_identity: Option<PathBuf>,
    /// The QEMU binary (default `qemu-system-x86_64`).
    #[serde(default = "default_qemu")]
    pub qemu: String,
    /// Where the work copy of the image is written (default: the system's temp dir);
    /// it needs the image's size, sparse.
    pub work_dir: Option<PathBuf>,
    /// QEMU's accelerator: `kvm`, `tcg` (software emulation, for an appliance that is
    /// itself a VM without nested virtualisation, where KVM opens but never runs a
    /// guest), or `auto` (the default: KVM when /dev/kvm opens, else TCG).
    #[serde(default = "default_accel")]
    pub accel: Accel,
    #[serde(default = "default_convert_memory")]
    pub memory_mib: u32,
    #[serde(default = "default_convert_cpus")]
    pub cpus: u32,
    /// How long the helper may take from power-on to answering SSH.
    #[serde(default = "default_convert_boot_timeout")]
    pub boot_timeout_s: u64,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        ConvertSettings {
            helper_kernel: None,
            helper_initrd: None,
            helper_root: None,
            helper_identity: None,
            qemu: default_qemu(),
            work_dir: None,
            accel: default_accel(),
            memory_mib: default_convert_memory(),
            cpus: default_convert_cpus(),
            boot_timeout_s: default_convert_boot_timeout(),
        }
    }
}

fn default_qemu() -> String {
    "qemu-system-x86_64".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

fn default_accel() -> Accel {
    Accel::Auto
}

fn default_convert_memory() -> u32 {
    1024
}

fn default_convert_cpus() -> u32 {
    1
}

fn default_convert_boot_timeout() -> u64 {
    300
}

/// `[discovery]`: hosts to discover that are not (yet) `[[host]]` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySettings {
    /// Addresses or IPv4 ranges in CIDR form, each optionally with `:port`:
    /// `["10.0.0.0/28", "10.0.1.5", "10.0.1.6:2222"]`.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// SSH user for those addresses (default `root`).
    pub user: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Where `ferry discover` stores its results (default `discovery.json` beside the
    /// config); `ferry report` reads them from there.
    pub results: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    /// `user@addr:port`; omitted: `disk` is read on the appliance itself.
    pub ssh: Option<String>,
    /// Private key file for SSH.
    pub identity: Option<PathBuf>,
    /// Device or image path on the host.
    pub disk: String,
    #[serde(default)]
    pub snapshot: SnapshotMethod,
    /// LVM snapshot size, as `lvcreate --size` takes it.
    #[serde(default = "default_snapshot_size")]
    pub snapshot_size: String,
    /// Run the disk commands with `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
    pub tier: Option<String>,
    pub group: Option<String>,
    /// OpenSSH known_hosts file; default `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// `auto` (default), `python3`, `coreutils` or `off`: how incremental captures
    /// find the blocks that changed.
    #[serde(default)]
    pub changed_blocks: crate::host::ChangedBlocks,
    /// A full read when the last one is this old (`"7d"`); default never.
    #[serde(default, deserialize_with = "opt_duration")]
    pub full_every: Option<std::time::Duration>,
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&s)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("full_every {s:?}: {e}")))
}

fn default_snapshot_size() -> String {
    "1G".to_string()
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        // `{e:#}`: the cause (which host, which address) stays on the one line.
        let mut s = Self::parse(&text).map_err(|e| anyhow!("{}: {e:#}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for h in &mut s.hosts {
            h.identity = h.identity.take().map(|p| base.join(p));
            h.known_hosts = h.known_hosts.take().map(|p| base.join(p));
        }
        let d = &mut s.discovery;
        d.identity = d.identity.take().map(|p| base.join(p));
        d.known_hosts = d.known_hosts.take().map(|p| base.join(p));
        d.results = Some(base.join(d.results.take().unwrap_or_else(|| "discovery.json".into())));
        let c = &mut s.convert;
        for p in [
            &mut c.helper_kernel,
            &mut c.helper_initrd,
            &mut c.helper_root,
            &mut c.helper_identity,
            &mut c.work_dir,
        ] {
            *p = p.take().map(|p| base.join(p));
        }
        Ok(s)
    }

    /// Parses and validates; errors are one line, with the line number.
    pub fn parse(text: &str) -> Result<Self> {
        let s: Settings = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => anyhow!("line {l}: {msg}"),
                None => anyhow!("{msg}"),
            }
        })?;
        let mut seen = std::collections::HashSet::new();
        for h in &s.hosts {
            if h.name.is_empty()
                || h.name.chars().all(|c| c == '.')
                || !h
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                bail!(
                    "host name {:?} may only hold letters, digits, '.', '_' and '-', and not only dots",
                    h.name
                );
            }
            if !seen.insert(h.name.as_str()) {
                bail!("host {:?} is declared twice", h.name);
            }
            if let Some(ssh) = &h.ssh {
                ssh.parse::<SshAddr>()
                    .with_context(|| format!("host {}", h.name))?;
                if h.identity.is_none() {
                    bail!(
                        "host {}: `ssh` needs an `identity` (private key file)",
                        h.name
                    );
                }
            }
        }
        for a in &s.discovery.addresses {
            crate::addresses::expand(a).with_context(|| format!("[discovery] addresses: {a:?}"))?;
        }
        if !s.discovery.addresses.is_empty() && s.discovery.identity.is_none() {
            bail!("[discovery] addresses need an `identity` (private key file)");
        }
        let names: Vec<&str> = s.hosts.iter().map(|h| h.name.as_str()).collect();
        let mut groups = std::collections::HashSet::new();
        for g in &s.groups {
            if !groups.insert(g.name.as_str()) {
                bail!("group {:?} is declared twice", g.name);
            }
            g.check(&names)?;
        }
        let mut tiers = std::collections::HashSet::new();
        for b in &s.bursts {
            if !tiers.insert(b.tier.as_str()) {
                bail!("burst tier {:?} is declared twice", b.tier);
            }
            b.check(&names)?;
        }
        let mut protected = std::collections::HashSet::new();
        for h in s
            .groups
            .iter()
            .flat_map(|g| g.host_names().map(move |h| (g, h)))
        {
            if !protected.insert(h.1) {
                bail!("host {} is in two groups (group {} is one)", h.1, h.0.name);
            }
        }
        Ok(s)
    }

    /// The `[[host]]` entry named `name`, as a host.
    pub fn host(&self, name: &str) -> Result<Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
                anyhow!(
                    "no host {name:?} in the config (hosts: {})",
                    names.join(", ")
                )
            })?
            .to_host()
    }

    /// The `[[burst]]` tier named `tier`.
    pub fn burst(&self, tier: &str) -> Result<&BurstConfig> {
        self.bursts.iter().find(|b| b.tier == tier).ok_or_else(|| {
            anyhow!(
                "no burst tier {tier:?} in the config (tiers: {})",
                self.bursts
                    .iter()
                    .map(|b| b.tier.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The `[[group]]` named `name`.
    pub fn group(&self, name: &str) -> Result<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            anyhow!(
                "no group {name:?} in the config (groups: {})",
                names.join(", ")
            )
        })
    }

    /// Every `[[host]]` entry, as hosts.
    pub fn all_hosts(&self) -> Result<Vec<Host>> {
        self.hosts.iter().map(HostConfig::to_host).collect()
    }

    /// Settings for commands that name a store and nothing else.
    pub fn store_only(store: String) -> Self {
        Settings {
            store,
            aws: Default::default(),
            hosts: Vec::new(),
            discovery: Default::default(),
            groups: Vec::new(),
            bursts: Vec::new(),
            convert: Default::default(),
        }
    }
}

/// `~/.ssh/known_hosts`, where OpenSSH keeps pinned keys.
pub fn default_known_hosts() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
        .context("no known_hosts file set and no HOME")
}

impl HostConfig {
    /// The domain host; [`Settings::parse`] has already checked the SSH address and key.
    pub fn to_host(&self) -> Result<Host> {
        let access = match &self.ssh {
            None => Access::Local,
            Some(ssh) => Access::Ssh {
                addr: ssh
                    .parse::<SshAddr>()
                    .with_context(|| format!("host {}", self.name))?,
                identity: self
                    .identity
                    .clone()
                    .with_context(|| format!("host {}: ssh needs identity", self.name))?,
                known_hosts: match &self.known_hosts {
                    Some(p) => p.clone(),
                    None => default_known_hosts()?,
                },
            },
        };
        Ok(Host {
            name: self.name.clone(),
            access,
            disk: self.disk.clone(),
            snapshot: self.snapshot,
            snapshot_size: self.snapshot_size.clone(),
            sudo: self.sudo,
            tier: self.tier.clone(),
            group: self.group.clone(),
            read: crate::host::ReadPolicy {
                changed_blocks: self.changed_blocks,
                full_every: self.full_every,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let s = Settings::parse(
            r#"
store = "s3://ferry/store"
[aws]
region = "eu-west-1"
table = "ferry"
migrate_state_machine = "arn:aws:states:eu-west-1:111122223333:stateMachine:ferry-migrate"
image_after_capture = true
[[host]]
name = "db1"
ssh = "root@10.0.0.5:22"
identity = "keys/id"
disk = "/dev/vg0/root"
snapshot = "lvm"
sudo = true
tier = "db"
group = "shop"
"#,
        )
        .unwrap();
        assert_eq!(s.hosts[0].snapshot, SnapshotMethod::Lvm);
        assert_eq!(s.aws.table.as_deref(), Some("ferry"));
        assert!(s.aws.image_after_capture);
        assert!(s.aws.build_image_state_machine.is_none());
        assert_eq!(
            s.host("db1").unwrap().ipv4_address().as_deref(),
            Some("10.0.0.5")
        );
        assert!(s.host("db2").is_err());
    }

    #[test]
    fn errors_are_one_line_with_a_line_number() {
        let e = Settings::parse(
            "store = \"file:///x\"\n[[host]]\nname = \"a\"\ndisk = \"/d\"\ncolour = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("line 5:") && e.contains("colour") && !e.contains('\n'),
            "{e}"
        );
        let e = Settings::parse("store = \n").unwrap_err().to_string();
        assert!(e.starts_with("line 1:"), "{e}");
        let e = Settings::parse(
            "store = \"file:///x\"\n[[host]]\nname = \"a\"\ndisk = \"/d\"\nssh = \"root@h\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("identity"), "{e}");
        // `.` and `..` would put points where nothing finds them.
        for name in [".", ".."] {
            let e = Settings::parse(&format!(
                "store = \"file:///x\"\n[[host]]\nname = \"{name}\"\ndisk = \"/d\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("not only dots"), "{e}");
        }
        // The cause stays on the one line when loading a file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ferry.toml");
        std::fs::write(
            &p,
            "store = \"file:///x\"\n[[host]]\nname = \"a\"\ndisk = \"/d\"\nssh = \"root@h:x\"\nidentity = \"k\"\n",
        )
        .unwrap();
        let e = Settings::load(&p).unwrap_err().to_string();
        assert!(e.contains("host a") && e.contains("bad port"), "{e}");
    }
}
