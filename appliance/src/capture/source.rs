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

/// A snapshot older than this was left by a capture that died (a capture of the
/// largest disks takes hours, not half a day).
pub const STALE_AFTER_S: i64 = 12 * 3600;

/// The name of a snapshot Ferry takes: `ferry-<lv>-<tag>-<Unix seconds>`, so that a
/// later capture can tell a stale one (its taker died) from one in use.
fn snapshot_name(lv: &str, tag: &str, now: i64) -> String {
    format!("ferry-{lv}-{tag}-{now}")
}

/// Of the logical volumes `names` of a volume group, Ferry's snapshots of `lv` taken
/// more than [`STALE_AFTER_S`] before `now`.
pub fn stale_snapshots<'a>(names: &'a str, lv: &str, now: i64) -> Vec<&'a str> {
    let prefix = format!("ferry-{lv}-");
    names
        .split_whitespace()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('-'))
                .and_then(|(_, t)| t.parse::<i64>().ok())
                .is_some_and(|taken| now - taken > STALE_AFTER_S)
        })
        .collect()
}

/// Removes the snapshots of the host's volume that earlier captures left (the appliance
/// died, or its connection did, before it could remove them). Best effort: a failure is
/// logged, and the capture goes on.
pub async fn sweep_stale_snapshots(session: &SshSession, h: &Host) {
    let Ok((vg, lv)) = parse_lv_path(&h.disk) else {
        return;
    };
    let list = sudo(h, format!("lvs --noheadings -o lv_name {}", quote(&vg)));
    let names = match session.check(&list).await {
        Ok(out) => String::from_utf8_lossy(&out).to_string(),
        Err(e) => {
            tracing::warn!(host = %h.name, error = %format!("{e:#}"), "cannot list logical volumes to sweep stale snapshots");
            return;
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for name in stale_snapshots(&names, &lv, now) {
        let snap = LvmSnapshot {
            lv: format!("{vg}/{name}"),
            device: format!("/dev/{vg}/{name}"),
        };
        match remove_lvm_snapshot(session, h, &snap).await {
            Ok(()) => {
                tracing::warn!(host = %h.name, snapshot = %snap.lv, "removed a snapshot an earlier capture left")
            }
            Err(e) => {
                tracing::warn!(host = %h.name, error = %format!("{e:#}"), "cannot remove a stale snapshot")
            }
        }
    }
}

/// Takes an LVM snapshot of the host's disk.
pub async fn lvm_snapshot(session: &SshSession, h: &Host, tag: &str) -> Result<LvmSnapshot> {
    let (vg, lv) = parse_lv_path(&h.disk).with_context(|| format!("host {}", h.name))?;
    let name = snapshot_name(&lv, tag, time::OffsetDateTime::now_utc().unix_timestamp());
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

    #[test]
    fn stale_snapshots_are_ferrys_old_ones_only() {
        let now = 1_800_000_000;
        let old = now - STALE_AFTER_S - 1;
        let names = format!(
            "  root\n  ferry-root-deadbeef-{old}\n  ferry-root-cafebabe-{now}\n  ferry-home-deadbeef-{old}\n  ferry-root-notatime\n  data-snap\n"
        );
        assert_eq!(
            stale_snapshots(&names, "root", now),
            vec![format!("ferry-root-deadbeef-{old}").as_str()]
        );
        assert!(snapshot_name("root", "ab", now).ends_with(&format!("-{now}")));
    }
}
