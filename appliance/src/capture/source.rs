//! Where a capture reads from: a disk on the appliance, or a disk on a host over SSH
//! (optionally through an LVM snapshot that is removed on every path).

use std::io::Read;

use anyhow::{bail, Context, Result};
use ferry_core::manifest::{Consistency, MachineFacts};

use crate::host::{Host, SnapshotMethod};
use crate::ssh::{quote, SshSession};

/// An LVM snapshot taken for one capture.
pub struct LvmSnapshot {
    /// `vg/name`, as `lvremove` takes it.
    pub lv: String,
    /// The device to read.
    pub device: String,
}

/// `/dev/VG/LV` or `/dev/mapper/VG-LV` -> (VG, LV).
pub fn parse_lv_path(disk: &str) -> Result<(String, String)> {
    if let Some(rest) = disk.strip_prefix("/dev/mapper/") {
        // dm names double the dashes inside VG and LV names.
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'-' {
                if bytes.get(i + 1) == Some(&b'-') {
                    i += 2;
                    continue;
                }
                let vg = rest[..i].replace("--", "-");
                let lv = rest[i + 1..].replace("--", "-");
                if !vg.is_empty() && !lv.is_empty() {
                    return Ok((vg, lv));
                }
            }
            i += 1;
        }
    } else if let Some(rest) = disk.strip_prefix("/dev/") {
        if let Some((vg, lv)) = rest.split_once('/') {
            if !vg.is_empty() && !lv.is_empty() && !lv.contains('/') {
                return Ok((vg.to_string(), lv.to_string()));
            }
        }
    }
    bail!("disk {disk:?} is not an LVM logical volume path (/dev/VG/LV or /dev/mapper/VG-LV)")
}

fn sudo(h: &Host, cmd: String) -> String {
    if h.sudo {
        format!("sudo -n {cmd}")
    } else {
        cmd
    }
}

/// Takes an LVM snapshot of the host's disk.
pub async fn lvm_snapshot(session: &SshSession, h: &Host, tag: &str) -> Result<LvmSnapshot> {
    let (vg, lv) = parse_lv_path(&h.disk).with_context(|| format!("host {}", h.name))?;
    let name = format!("ferry-{lv}-{tag}");
    let cmd = sudo(
        h,
        format!(
            "lvcreate --snapshot --name {} --size {} {}",
            quote(&name),
            quote(&h.snapshot_size),
            quote(&format!("{vg}/{lv}"))
        ),
    );
    session
        .check(&cmd)
        .await
        .context("creating the LVM snapshot")?;
    Ok(LvmSnapshot {
        lv: format!("{vg}/{name}"),
        device: format!("/dev/{vg}/{name}"),
    })
}

pub async fn remove_lvm_snapshot(session: &SshSession, h: &Host, snap: &LvmSnapshot) -> Result<()> {
    session
        .check(&sudo(h, format!("lvremove -f {}", quote(&snap.lv))))
        .await
        .with_context(|| format!("removing LVM snapshot {}", snap.lv))?;
    Ok(())
}

/// Starts streaming `device` from the host.
pub async fn remote_read(
    session: &SshSession,
    h: &Host,
    device: &str,
) -> Result<Box<dyn Read + Send>> {
    // Fail early, with a clear message, when the disk is not there.
    let probe = sudo(h, format!("test -r {}", quote(device)));
    let (status, _, _) = session.run(&probe).await?;
    if status != 0 {
        bail!(
            "host {}: disk {device} does not exist or is not readable",
            h.name
        );
    }
    let reader = session
        .read_stream(&sudo(h, format!("cat -- {}", quote(device))))
        .await?;
    Ok(Box::new(reader))
}

/// Architecture and boot mode of the host, for the image built from this capture. A host
/// that does not answer the probe gets a warning, not a failed capture: the image is
/// then registered with the cloud's defaults.
pub async fn machine_facts(session: &SshSession, host: &str) -> Option<MachineFacts> {
    let facts = match session.run(MachineFacts::PROBE).await {
        Ok((0, out, _)) => MachineFacts::parse(&String::from_utf8_lossy(&out)),
        _ => None,
    };
    if facts.is_none() {
        tracing::warn!(
            host,
            "could not read architecture and boot mode; the image will use defaults"
        );
    }
    facts
}

pub fn local_read(h: &Host) -> Result<Box<dyn Read + Send>> {
    let f = std::fs::File::open(&h.disk)
        .with_context(|| format!("host {}: cannot open disk {}", h.name, h.disk))?;
    Ok(Box::new(f))
}

pub fn consistency(h: &Host) -> Consistency {
    match h.snapshot {
        SnapshotMethod::None => Consistency::Crash,
        SnapshotMethod::Lvm => Consistency::LvmSnapshot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lv_paths() {
        assert_eq!(
            parse_lv_path("/dev/vg0/root").unwrap(),
            ("vg0".into(), "root".into())
        );
        assert_eq!(
            parse_lv_path("/dev/mapper/my--vg-data--lv").unwrap(),
            ("my-vg".into(), "data-lv".into())
        );
        assert!(parse_lv_path("/dev/sda").is_err());
        assert!(parse_lv_path("/srv/disk.img").is_err());
    }
}
