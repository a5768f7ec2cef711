//! Conversion for EC2: what makes an image that ran on other hardware boot on Nitro
//! (disks on NVMe, an ENA network adapter, the console on the serial port), as pure
//! edits of the guest's own files, and the record of what a conversion did.
//!
//! The appliance (`ferry convert`) mounts the image in a helper machine and applies these
//! edits; the guest's own tools regenerate its initramfs. Nothing here does I/O.
//!
//! - [`devices`]: which device names depend on the hardware, and the partition they name.
//! - [`fstab`]: `/etc/fstab` with hardware-bound devices replaced by `UUID=`.
//! - [`cmdline`]: the kernel command line (GRUB's config, `/etc/default/grub`, BLS
//!   entries): root by UUID, the serial console, NVMe's I/O timeout.
//! - [`network`]: DHCP on whatever interface appears, MAC-bound naming rules found.
//! - [`initramfs`]: the modules the initramfs must carry.

pub mod cmdline;
pub mod devices;
pub mod fstab;
pub mod initramfs;
pub mod network;

use serde::{Deserialize, Serialize};

/// The hardware a conversion prepares an image for.
pub const TARGET: &str = "ec2-nitro";

/// What a conversion did, recorded on the point it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The point that was converted.
    pub from: String,
    /// What it was converted for ([`TARGET`]).
    pub target: String,
    /// Where it ran (`helper-vm`: a helper VM on the appliance; `conversion-instance`:
    /// an EC2 instance with the volume attached).
    pub ran_on: String,
    /// Every change, in the order made.
    pub changes: Vec<Change>,
}

/// One change to the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    /// The file or tool, and what changed.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Initramfs,
    Fstab,
    Bootloader,
    SerialConsole,
    Network,
    MacRules,
}

impl Change {
    pub fn new(kind: ChangeKind, detail: impl Into<String>) -> Self {
        Change {
            kind,
            detail: detail.into(),
        }
    }
}

impl Conversion {
    /// One short line: the kinds of change made, in order, each once.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<&str> = Vec::new();
        for c in &self.changes {
            let k = c.kind.label();
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.join(", ")
    }
}

impl ChangeKind {
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Initramfs => "initramfs",
            ChangeKind::Fstab => "fstab",
            ChangeKind::Bootloader => "bootloader",
            ChangeKind::SerialConsole => "serial-console",
            ChangeKind::Network => "network",
            ChangeKind::MacRules => "mac-rules",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_each_kind_once_in_order() {
        let c = Conversion {
            from: "p".into(),
            target: TARGET.into(),
            ran_on: "helper-vm".into(),
            changes: vec![
                Change::new(ChangeKind::Fstab, "a"),
                Change::new(ChangeKind::Initramfs, "b"),
                Change::new(ChangeKind::Fstab, "c"),
            ],
        };
        assert_eq!(c.summary(), "fstab, initramfs");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["changes"][1]["kind"], "initramfs");
    }
}
