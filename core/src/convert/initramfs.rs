//! The drivers an initramfs must carry to boot on Nitro: `nvme` (EBS volumes and
//! instance store are NVMe devices) and `ena` (the Elastic Network Adapter; the network
//! is not needed to mount root, but a guest whose initramfs brings the network up, and
//! dracut's host-only images, need it there). Which tool regenerates it is the guest's.

/// The modules, in the order they are added.
pub const MODULES: [&str; 2] = ["nvme", "ena"];

/// The guest's initramfs generator, found by what its root file system holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// Debian/Ubuntu: `/etc/initramfs-tools/modules`, `update-initramfs -u -k all`.
    InitramfsTools,
    /// RHEL family, SUSE: `/etc/dracut.conf.d/*.conf`, `dracut -f --regenerate-all`.
    Dracut,
}

impl Generator {
    /// The config file the modules go into.
    pub fn config_file(self) -> &'static str {
        match self {
            Generator::InitramfsTools => "/etc/initramfs-tools/modules",
            Generator::Dracut => "/etc/dracut.conf.d/ferry-ec2.conf",
        }
    }

    /// The command that regenerates every installed kernel's initramfs (in the chroot).
    pub fn regenerate(self) -> &'static str {
        match self {
            Generator::InitramfsTools => "update-initramfs -u -k all",
            Generator::Dracut => "dracut -f --regenerate-all",
        }
    }

    /// The command that lists what one image holds (`{}`: the image).
    pub fn list(self) -> &'static str {
        match self {
            Generator::InitramfsTools => "lsinitramfs",
            Generator::Dracut => "lsinitrd",
        }
    }

    /// The config file's new text with [`MODULES`] added; which were added.
    pub fn with_modules(self, text: &str) -> (String, Vec<&'static str>) {
        match self {
            Generator::InitramfsTools => {
                let have: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|w| !w.starts_with('#'))
                    .collect();
                let add: Vec<&'static str> =
                    MODULES.into_iter().filter(|m| !have.contains(m)).collect();
                let mut out = text.to_string();
                if !add.is_empty() {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str("# Added by ferry convert: EC2 Nitro (NVMe disks, ENA).\n");
                    for m in &add {
                        out.push_str(m);
                        out.push('\n');
                    }
                }
                (out, add)
            }
            Generator::Dracut => {
                let want = format!(
                    "# Written by ferry convert: EC2 Nitro (NVMe disks, ENA).\nadd_drivers+=\" {} \"\n",
                    MODULES.join(" ")
                );
                if text == want {
                    (want, Vec::new())
                } else {
                    (want, MODULES.to_vec())
                }
            }
        }
    }
}

/// The modules of [`MODULES`] that a listing of an initramfs (one path per line) lacks;
/// `builtin` is the kernel's `modules.builtin` (a module built into the kernel needs no
/// file).
pub fn missing<'a>(listing: &str, builtin: &str) -> Vec<&'a str> {
    MODULES
        .into_iter()
        .filter(|m| {
            let file = |l: &str| {
                let name = l.rsplit('/').next().unwrap_or("");
                name == format!("{m}.ko") || name.starts_with(&format!("{m}.ko."))
            };
            !listing.lines().any(file) && !builtin.lines().any(file)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_tools_modules_added_once() {
        let (t, added) = Generator::InitramfsTools.with_modules("virtio_blk\n# nvme\next4");
        assert_eq!(added, ["nvme", "ena"]);
        assert!(t.starts_with("virtio_blk\n# nvme\next4\n# Added by ferry convert"));
        assert!(t.ends_with("\nnvme\nena\n"));
        let (again, added) = Generator::InitramfsTools.with_modules(&t);
        assert_eq!(again, t);
        assert!(added.is_empty());
        let (d, added) = Generator::Dracut.with_modules("");
        assert!(d.contains("add_drivers+=\" nvme ena \""));
        assert_eq!(added.len(), 2);
        assert!(Generator::Dracut.with_modules(&d).1.is_empty());
    }

    #[test]
    fn missing_modules_by_file_name_or_builtin() {
        let listing = "usr/lib/modules/6.1/kernel/drivers/nvme/host/nvme.ko\nusr/lib/modules/6.1/kernel/drivers/nvme/host/nvme-core.ko\n";
        assert_eq!(missing(listing, ""), ["ena"]);
        assert!(missing(listing, "kernel/drivers/net/ethernet/amazon/ena/ena.ko\n").is_empty());
        assert_eq!(missing("x/nvme-core.ko\n", ""), ["nvme", "ena"]);
        assert!(missing("a/nvme.ko.zst\nb/ena.ko.xz\n", "").is_empty());
    }
}
