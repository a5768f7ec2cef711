//! AWS compatibility findings per host, from its inventory: architecture, boot mode,
//! kernel support for NVMe and ENA, filesystems, disk sizes.

use super::model::{Finding, Inventory, Severity};

/// EBS gp3 volumes hold up to 16 TiB; io2 Block Express up to 64 TiB.
const GP3_MAX: u64 = 16 << 40;
const IO2_MAX: u64 = 64 << 40;

pub fn assess(inv: &Inventory) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |s, code: &str, m: String| out.push(Finding::new(s, code, m));
    match inv.arch.as_deref() {
        Some("x86_64") | Some("aarch64") => {}
        Some(a @ ("i386" | "i686")) => add(
            Severity::Warning,
            "arch",
            format!("{a}: 32-bit; only older instance types run it, plan a rebuild"),
        ),
        Some(a) => add(
            Severity::Blocker,
            "arch",
            format!("architecture {a} does not run on EC2"),
        ),
        None => add(
            Severity::Warning,
            "arch",
            "architecture unknown".to_string(),
        ),
    }
    if inv.arch.as_deref() == Some("aarch64") && inv.boot_mode.as_deref() == Some("bios") {
        add(
            Severity::Blocker,
            "boot-mode",
            "arm64 instances boot UEFI only".to_string(),
        );
    }
    if let Some((major, minor)) = inv
        .kernel
        .as_deref()
        .and_then(super::parse::os::kernel_version)
    {
        if (major, minor) < (3, 3) {
            add(
                Severity::Warning,
                "kernel",
                format!("kernel {major}.{minor} predates mainline NVMe support (3.3): only a vendor backport makes it boot on Nitro"),
            );
        }
    }
    match inv.drivers.nvme {
        Some(true) => {}
        Some(false) => add(
            Severity::Blocker,
            "nvme-driver",
            "the kernel has no NVMe driver (modinfo, /sys/module, modules.builtin): Nitro instances present EBS volumes as NVMe, so the image would not find its disks".to_string(),
        ),
        None => add(
            Severity::Warning,
            "nvme-driver",
            "could not check the NVMe driver".to_string(),
        ),
    }
    match inv.drivers.ena {
        Some(true) => {}
        Some(false) => add(
            Severity::Blocker,
            "ena-driver",
            "the kernel has no ENA driver: current-generation instances need it for networking"
                .to_string(),
        ),
        None => add(
            Severity::Warning,
            "ena-driver",
            "could not check the ENA driver".to_string(),
        ),
    }
    for fs in inv.filesystems.iter().filter(|f| !f.is_pseudo()) {
        if matches!(fs.fstype.as_str(), "zfs" | "reiserfs" | "jfs") {
            add(
                Severity::Warning,
                "filesystem",
                format!(
                    "{} on {} is {}: check that the image's kernel mounts it",
                    fs.source, fs.mountpoint, fs.fstype
                ),
            );
        }
    }
    for d in inv.block_devices.iter().filter(|d| d.kind == "disk") {
        if d.size_bytes > IO2_MAX {
            add(
                Severity::Blocker,
                "disk-size",
                format!(
                    "disk {} is {} TiB, more than the largest EBS volume (64 TiB)",
                    d.name,
                    d.size_bytes >> 40
                ),
            );
        } else if d.size_bytes > GP3_MAX {
            add(
                Severity::Warning,
                "disk-size",
                format!(
                    "disk {} is {} TiB: more than gp3's 16 TiB, it needs io2 Block Express",
                    d.name,
                    d.size_bytes >> 40
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::model::Drivers;
    use crate::discover::parse::disks::BlockDevice;

    #[test]
    fn blockers_and_warnings() {
        let mut inv = Inventory {
            arch: Some("x86_64".into()),
            boot_mode: Some("bios".into()),
            drivers: Drivers {
                nvme: Some(true),
                ena: Some(true),
            },
            ..Default::default()
        };
        assert!(assess(&inv).is_empty());
        inv.drivers.nvme = Some(false);
        inv.arch = Some("ppc64le".into());
        inv.kernel = Some("2.6.32-754.el6.x86_64".into());
        inv.block_devices.push(BlockDevice {
            name: "sdb".into(),
            kind: "disk".into(),
            size_bytes: 20 << 40,
            fstype: None,
            mountpoint: None,
            parent: None,
        });
        let codes: Vec<(Severity, String)> = assess(&inv)
            .into_iter()
            .map(|f| (f.severity, f.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (Severity::Blocker, "arch".to_string()),
                (Severity::Warning, "kernel".to_string()),
                (Severity::Blocker, "nvme-driver".to_string()),
                (Severity::Warning, "disk-size".to_string())
            ]
        );
    }
}
