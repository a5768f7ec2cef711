//! The conversion helper: a small Linux VM under QEMU with the image to convert attached
//! as its second virtio disk (`/dev/vdb`), its SSH port forwarded to 127.0.0.1 only. KVM
//! when the appliance has it, software emulation otherwise. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::settings::{Accel, ConvertSettings};
use crate::ssh::{SshAddr, SshSession, SshTarget};

/// The device the image is in the helper.
pub const GUEST_DISK: &str = "/dev/vdb";

/// The helper's files, all given.
#[derive(Debug, Clone)]
pub struct HelperFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub root: PathBuf,
    pub identity: PathBuf,
}

impl HelperFiles {
    /// The `[convert]` files, each checked to exist; one error naming every missing one.
    pub fn from_settings(c: &ConvertSettings) -> Result<Self> {
        let mut missing = Vec::new();
        let mut get = |key: &str, p: &Option<PathBuf>| match p {
            Some(p) if p.exists() => p.clone(),
            Some(p) => {
                missing.push(format!("{key} ({} does not exist)", p.display()));
                PathBuf::new()
            }
            None => {
                missing.push(format!("{key} (not set)"));
                PathBuf::new()
            }
        };
        let files = HelperFiles {
            kernel: get("helper_kernel", &c.helper_kernel),
            initrd: get("helper_initrd", &c.helper_initrd),
            root: get("helper_root", &c.helper_root),
            identity: get("helper_identity", &c.helper_identity),
        };
        if !missing.is_empty() {
            bail!(
                "[convert] in the config needs the conversion helper: {}",
                missing.join(", ")
            );
        }
        Ok(files)
    }
}

pub struct HelperVm {
    child: Child,
    port: u16,
    serial: PathBuf,
    known_hosts: PathBuf,
    identity: PathBuf,
    started: Instant,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl HelperVm {
    /// Powers the helper on with `disk` (raw) attached; `work` holds its console log.
    pub async fn start(
        c: &ConvertSettings,
        files: &HelperFiles,
        disk: &Path,
        work: &Path,
    ) -> Result<Self> {
        let port = free_port()?;
        let serial = work.join("helper.serial.log");
        let kvm = match c.accel {
            Accel::Kvm => true,
            Accel::Tcg => false,
            Accel::Auto => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_ok(),
        };
        let accel = if kvm { "kvm" } else { "tcg,tb-size=256" };
        let mut cmd = Command::new(&c.qemu);
        cmd.args(["-accel", accel, "-nodefaults", "-no-user-config"])
            .args(["-smp", &c.cpus.to_string(), "-m", &c.memory_mib.to_string()])
            .args(["-display", "none", "-monitor", "none"])
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(&files.initrd)
            .args([
                "-append",
                "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 quiet",
            ])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=helper,snapshot=on",
                files.root.display()
            ))
            .args(["-device", "virtio-blk-pci,drive=helper"])
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=guest,cache=writeback",
                disk.display()
            ))
            .args(["-device", "virtio-blk-pci,drive=guest"])
            .args([
                "-netdev",
                &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"),
                "-device",
                "virtio-net-pci,netdev=n0",
            ])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start the conversion helper ({})", c.qemu))?;
        tracing::info!(port, accel, "conversion helper powered on");
        Ok(HelperVm {
            child,
            port,
            serial,
            known_hosts: work.join("helper.known_hosts"),
            identity: files.identity.clone(),
            started: Instant::now(),
        })
    }

    /// The last lines of the helper's console, for errors.
    pub fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.serial).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn exited(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            bail!(
                "the conversion helper stopped ({status}): {}{}",
                err.trim(),
                self.console_tail()
            );
        }
        Ok(())
    }

    /// Waits until the helper answers SSH (at most `timeout` after power-on); the time
    /// it took.
    pub async fn session(&mut self, timeout: Duration) -> Result<(SshSession, Duration)> {
        let target = SshTarget {
            name: "conversion-helper".into(),
            addr: SshAddr {
                user: "root".into(),
                host: "127.0.0.1".into(),
                port: self.port,
            },
            identity: self.identity.clone(),
            // A VM this command started, on loopback: its key is learnt, not checked.
            known_hosts: self.known_hosts.clone(),
            accept_new_host_key: true,
        };
        loop {
            self.exited().await?;
            match SshSession::connect(&target).await {
                Ok(s) => match s.check("true").await {
                    Ok(_) => return Ok((s, self.started.elapsed())),
                    Err(e) => tracing::debug!(error = %e, "helper not ready"),
                },
                Err(e) => tracing::debug!(error = %e, "helper not answering yet"),
            }
            if self.started.elapsed() > timeout {
                bail!(
                    "the conversion helper did not answer SSH within {timeout:?}; its console:\n{}",
                    self.console_tail()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Powers the helper off (the image's writes are flushed by then) and waits for QEMU
    /// to exit; kills it after `timeout`.
    pub async fn power_off(mut self, session: SshSession, timeout: Duration) -> Result<()> {
        // The session ends with the power: the command's own result does not matter.
        let _ = session.run("sync; systemctl poweroff").await;
        session.close().await;
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(r) => {
                r.context("waiting for the conversion helper")?;
                Ok(())
            }
            Err(_) => {
                tracing::warn!("the conversion helper did not power off; killing it");
                self.child
                    .kill()
                    .await
                    .context("killing the conversion helper")
            }
        }
    }
}
