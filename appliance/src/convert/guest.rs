//! The conversion itself, over SSH in the helper: the image's root mounted (with what
//! its fstab mounts below it), the edits of [`ferry_core::convert`] written, the guest's
//! own initramfs generator run in a chroot and its result checked, everything unmounted.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ferry_core::convert::cmdline::{self, Options};
use ferry_core::convert::initramfs::{self, Generator};
use ferry_core::convert::{fstab, network, Change, ChangeKind};

use super::devices::{parse_attach, resolve, uuid_of_partition, Device};
use crate::ssh::{quote, SshSession};

const ATTACH: &str = include_str!("attach.sh");
const DETACH: &str = include_str!("detach.sh");

/// Where the image's root is mounted in the helper.
pub const MNT: &str = "/mnt/ferry-guest";

/// Mounts the image on `disk`, converts it, unmounts it (also when converting failed).
pub async fn convert(s: &SshSession, disk: &str) -> Result<Vec<Change>> {
    let out = s
        .check(&format!("sh -c {} sh {} {MNT}", quote(ATTACH), quote(disk)))
        .await
        .context("mounting the image in the helper")?;
    let (root, devs) = parse_attach(&String::from_utf8_lossy(&out))?;
    tracing::info!(%root, "image mounted in the helper");
    let g = Guest {
        s,
        disk: disk.to_string(),
        devs,
    };
    let r = g.run().await;
    let detached = s
        .check(&format!("sh -c {} sh {} {MNT}", quote(DETACH), quote(disk)))
        .await
        .context("unmounting the image in the helper");
    let changes = r?;
    detached?;
    Ok(changes)
}

struct Guest<'a> {
    s: &'a SshSession,
    disk: String,
    devs: Vec<Device>,
}

impl Guest<'_> {
    fn path(p: &str) -> String {
        quote(&format!("{MNT}{p}"))
    }

    /// A file of the image; `None` when it does not exist.
    async fn read(&self, p: &str) -> Result<Option<String>> {
        let (status, out, _) = self.s.run(&format!("cat {}", Self::path(p))).await?;
        Ok((status == 0).then(|| String::from_utf8_lossy(&out).into_owned()))
    }

    async fn write(&self, p: &str, text: &str) -> Result<()> {
        let mut w = self
            .s
            .write_stream(&format!("cat > {}", Self::path(p)))
            .await?;
        w.write(Bytes::copy_from_slice(text.as_bytes())).await?;
        w.finish()
            .await
            .with_context(|| format!("writing {p} in the image"))
    }

    async fn exists(&self, p: &str) -> Result<bool> {
        Ok(self.s.run(&format!("test -e {}", Self::path(p))).await?.0 == 0)
    }

    /// Names in a directory of the image (none when it does not exist).
    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let (_, out, _) = self
            .s
            .run(&format!("ls -1 {} 2>/dev/null", Self::path(dir)))
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Runs `cmd` in the image (chroot), with a plain PATH; its stdout.
    async fn chroot(&self, cmd: &str) -> Result<String> {
        let out = self
            .s
            .check(&format!(
                "chroot {MNT} /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c {}",
                quote(cmd)
            ))
            .await
            .with_context(|| format!("in the image: {cmd}"))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn uuid_of(&self, part: u32) -> Option<String> {
        uuid_of_partition(&self.devs, &self.disk, part)
    }

    async fn run(&self) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        let fstab_text = self
            .read("/etc/fstab")
            .await?
            .context("the image has no /etc/fstab")?;
        self.mount_below_root(&fstab_text).await?;
        let networkd = self.exists("/lib/systemd/systemd-networkd").await?
            || self.exists("/usr/lib/systemd/systemd-networkd").await?;
        self.fstab(&fstab_text, &mut changes).await?;
        self.boot_config(
            Options {
                ifnames_off: !networkd,
            },
            &mut changes,
        )
        .await?;
        self.network(networkd, &mut changes).await?;
        self.mac_rules(&mut changes).await?;
        // Last: the initramfs takes copies of fstab and of the udev rules.
        self.initramfs(&mut changes).await?;
        Ok(changes)
    }

    /// `/boot` and the rest of what fstab mounts below `/` from this disk, then the
    /// helper's /dev, /proc, /sys and /run for the chroot.
    async fn mount_below_root(&self, fstab_text: &str) -> Result<()> {
        let entries = fstab::entries(fstab_text);
        for e in fstab::mounts_below_root(&entries) {
            match resolve(&e.spec, &self.disk, &self.devs) {
                Some(dev) => {
                    self.s
                        .check(&format!(
                            "mount {} {}",
                            quote(&dev),
                            Self::path(&e.mountpoint)
                        ))
                        .await
                        .with_context(|| {
                            format!("mounting {} ({}) of the image", e.mountpoint, e.spec)
                        })?;
                }
                None if ["/boot", "/usr"].contains(&e.mountpoint.as_str()) => bail!(
                    "the image's fstab mounts {} from {}, which is not on this disk",
                    e.mountpoint,
                    e.spec
                ),
                None => {
                    tracing::warn!(spec = %e.spec, mountpoint = %e.mountpoint, "not on this disk; not mounted")
                }
            }
        }
        for d in ["dev", "proc", "sys", "run"] {
            self.s
                .check(&format!(
                    "mount --bind /{d} {}",
                    Self::path(&format!("/{d}"))
                ))
                .await?;
        }
        Ok(())
    }

    async fn initramfs(&self, changes: &mut Vec<Change>) -> Result<()> {
        let generator = if self.exists("/usr/sbin/update-initramfs").await? {
            Generator::InitramfsTools
        } else if self.exists("/usr/bin/dracut").await? || self.exists("/usr/sbin/dracut").await? {
            Generator::Dracut
        } else {
            bail!("the image has neither initramfs-tools nor dracut: its initramfs cannot be regenerated");
        };
        let file = generator.config_file();
        let old = self.read(file).await?.unwrap_or_default();
        let (new, added) = generator.with_modules(&old);
        if !added.is_empty() {
            self.write(file, &new).await?;
        }
        let started = std::time::Instant::now();
        self.chroot(generator.regenerate()).await?;
        tracing::info!(took = ?started.elapsed(), "initramfs regenerated");
        let mut held = Vec::new();
        for k in self.list("/lib/modules").await? {
            let image = match generator {
                Generator::InitramfsTools => format!("/boot/initrd.img-{k}"),
                Generator::Dracut => format!("/boot/initramfs-{k}.img"),
            };
            if !self.exists(&image).await? {
                continue;
            }
            let listing = self
                .chroot(&format!("{} {}", generator.list(), quote(&image)))
                .await?;
            let builtin = self
                .read(&format!("/lib/modules/{k}/modules.builtin"))
                .await?
                .unwrap_or_default();
            let missing = initramfs::missing(&listing, &builtin);
            if missing.contains(&"nvme") {
                bail!(
                    "{image} still lacks the NVMe driver after `{}`",
                    generator.regenerate()
                );
            }
            if missing.contains(&"ena") {
                // A kernel without the ENA driver boots, but without a network on ENA.
                let (_, found, _) = self
                    .s
                    .run(&format!(
                        "find {} -name 'ena.ko*'",
                        Self::path(&format!("/lib/modules/{k}"))
                    ))
                    .await?;
                if found.is_empty() {
                    changes.push(Change::new(
                        ChangeKind::Initramfs,
                        format!("kernel {k} has no ENA driver: the instance needs a newer kernel for an ENA network"),
                    ));
                } else {
                    bail!(
                        "{image} lacks the ENA driver after `{}`",
                        generator.regenerate()
                    );
                }
            }
            held.push(image);
        }
        if held.is_empty() {
            bail!(
                "no initramfs found in the image's /boot after `{}`",
                generator.regenerate()
            );
        }
        let added = match added.is_empty() {
            true => "nvme and ena already listed".to_string(),
            false => format!("added {} to {file}", added.join(", ")),
        };
        changes.push(Change::new(
            ChangeKind::Initramfs,
            format!(
                "{added}; `{}` (the image's own); {} hold(s) nvme and ena",
                generator.regenerate(),
                held.join(", ")
            ),
        ));
        Ok(())
    }

    async fn fstab(&self, text: &str, changes: &mut Vec<Change>) -> Result<()> {
        let r = fstab::rewrite(text, |p| self.uuid_of(p));
        if !r.unresolved.is_empty() {
            tracing::warn!(devices = ?r.unresolved, "fstab names devices not on this disk; left as they are");
        }
        if r.changed.is_empty() {
            return Ok(());
        }
        self.write("/etc/fstab", &r.text).await?;
        let what: Vec<String> = r
            .changed
            .iter()
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect();
        changes.push(Change::new(
            ChangeKind::Fstab,
            format!("/etc/fstab: {}", what.join(", ")),
        ));
        Ok(())
    }

    /// GRUB's generated configs, `/etc/default/grub`, BLS entries.
    async fn boot_config(&self, opts: Options, changes: &mut Vec<Change>) -> Result<()> {
        let uuid_of = |p| self.uuid_of(p);
        let mut files: Vec<(String, cmdline::Edited)> = Vec::new();
        for cfg in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] {
            if let Some(t) = self.read(cfg).await? {
                files.push((cfg.to_string(), cmdline::grub_cfg(&t, opts, &uuid_of)));
            }
        }
        for e in self.list("/boot/loader/entries").await? {
            let p = format!("/boot/loader/entries/{e}");
            if let Some(t) = self.read(&p).await? {
                files.push((p, cmdline::bls_entry(&t, opts, &uuid_of)));
            }
        }
        let kernels = files.iter().map(|(_, e)| e.entries).sum::<usize>();
        if let Some(t) = self.read("/etc/default/grub").await? {
            files.push((
                "/etc/default/grub".into(),
                cmdline::default_grub(&t, opts, &uuid_of),
            ));
        }
        if kernels == 0 && files.iter().all(|(_, e)| e.changes.is_empty()) {
            let found = files.iter().any(|(p, _)| p != "/etc/default/grub");
            if !found {
                bail!("the image has no GRUB config or BLS entry: its kernel command line cannot be set");
            }
            return Ok(());
        }
        let mut serial = false;
        for (path, e) in files.into_iter().filter(|(_, e)| !e.changes.is_empty()) {
            self.write(&path, &e.text).await?;
            serial |= e.changes.iter().any(|c| c.contains("console=ttyS0"));
            changes.push(Change::new(
                ChangeKind::Bootloader,
                format!("{path}: {}", e.changes.join(", ")),
            ));
        }
        if serial {
            changes.push(Change::new(
                ChangeKind::SerialConsole,
                "kernel console on ttyS0 at 115200 (EC2's serial console and console output)",
            ));
        }
        Ok(())
    }

    async fn network(&self, networkd: bool, changes: &mut Vec<Change>) -> Result<()> {
        if let Some(old) = self.read("/etc/network/interfaces").await? {
            let (new, removed) = network::interfaces(&old, !networkd);
            if new != old {
                self.write("/etc/network/interfaces", &new).await?;
                let mut what = format!("/etc/network/interfaces: {} taken out", removed.join(", "));
                if !networkd {
                    what.push_str("; DHCP on eth0 (net.ifnames=0)");
                }
                changes.push(Change::new(ChangeKind::Network, what));
            }
        }
        if networkd {
            let have = self.read(network::NETWORKD_FILE).await?;
            if have.as_deref() != Some(network::NETWORKD_DHCP) {
                self.write(network::NETWORKD_FILE, network::NETWORKD_DHCP)
                    .await?;
                self.chroot("systemctl enable systemd-networkd.service")
                    .await?;
                changes.push(Change::new(
                    ChangeKind::Network,
                    format!(
                        "{}: DHCP on any en*/eth* interface; systemd-networkd enabled",
                        network::NETWORKD_FILE
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn mac_rules(&self, changes: &mut Vec<Change>) -> Result<()> {
        for name in self.list("/etc/udev/rules.d").await? {
            let p = format!("/etc/udev/rules.d/{name}");
            let Some(text) = self.read(&p).await? else {
                continue;
            };
            let (new, n) = network::udev_mac_rules(&text);
            if n > 0 {
                self.write(&p, &new).await?;
                changes.push(Change::new(
                    ChangeKind::MacRules,
                    format!("{p}: {n} rule(s) naming an interface by MAC address commented out"),
                ));
            }
        }
        for name in self.list("/etc/systemd/network").await? {
            if !(name.ends_with(".link") || name.ends_with(".network")) {
                continue;
            }
            let p = format!("/etc/systemd/network/{name}");
            let Some(text) = self.read(&p).await? else {
                continue;
            };
            if network::matches_mac(&text) {
                self.s
                    .check(&format!(
                        "mv {} {}",
                        Self::path(&p),
                        Self::path(&format!("{p}.ferry-disabled"))
                    ))
                    .await?;
                changes.push(Change::new(
                    ChangeKind::MacRules,
                    format!("{p}: matched a MAC address; renamed {name}.ferry-disabled"),
                ));
            }
        }
        Ok(())
    }
}
