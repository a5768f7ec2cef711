//! The image's block devices as the helper sees them (from `attach.sh`'s output), and
//! which of them an fstab entry or a partition number names.

use std::collections::HashMap;

use anyhow::{bail, Result};
use ferry_core::convert::devices::hardware_bound;

/// One block device of the image in the helper: the disk, a partition, a logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub name: String,
    pub kind: String,
    pub uuid: String,
    pub label: String,
    pub fstype: String,
}

/// `KEY="value" KEY="value"` as `lsblk -P` prints them (`\xNN` escapes decoded).
fn pairs(line: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = line.trim();
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        out.insert(key.trim().to_string(), unescape(&after[..end]));
        rest = &after[end + 1..];
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The root device and the devices, from `attach.sh`'s output.
pub fn parse_attach(out: &str) -> Result<(String, Vec<Device>)> {
    let mut root = None;
    let mut devs = Vec::new();
    for line in out.lines() {
        if let Some(r) = line.strip_prefix("ROOT ") {
            root = Some(r.trim().to_string());
        } else if let Some(d) = line.strip_prefix("DEV ") {
            let mut p = pairs(d);
            let mut take = |k: &str| p.remove(k).unwrap_or_default();
            devs.push(Device {
                name: take("NAME"),
                kind: take("TYPE"),
                uuid: take("UUID"),
                label: take("LABEL"),
                fstype: take("FSTYPE"),
            });
        }
    }
    match root {
        Some(r) => Ok((r, devs)),
        None => bail!("the helper found no root file system in the image"),
    }
}

/// The partition number of `name` on `disk` (`/dev/vdb2` -> 2, `/dev/nvme1n1p2` -> 2,
/// the disk itself -> 0).
pub fn partition_of(disk: &str, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(disk)?;
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix('p').unwrap_or(rest).parse().ok()
}

/// The UUID of the file system on partition `part` of `disk` (0: the whole disk).
pub fn uuid_of_partition(devs: &[Device], disk: &str, part: u32) -> Option<String> {
    devs.iter()
        .find(|d| partition_of(disk, &d.name) == Some(part) && !d.uuid.is_empty())
        .map(|d| d.uuid.clone())
}

/// The helper's device for an fstab `spec`: by UUID or label, a stable LVM or
/// device-mapper name as it is, a hardware-bound name by its partition number.
pub fn resolve(spec: &str, disk: &str, devs: &[Device]) -> Option<String> {
    let by = |f: &dyn Fn(&Device) -> bool| devs.iter().find(|d| f(d)).map(|d| d.name.clone());
    if let Some(u) = spec
        .strip_prefix("UUID=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"))
    {
        return by(&|d| d.uuid.eq_ignore_ascii_case(u));
    }
    if let Some(l) = spec
        .strip_prefix("LABEL=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-label/"))
    {
        return by(&|d| d.label == l);
    }
    if let Some(part) = hardware_bound(spec) {
        return by(&|d| partition_of(disk, &d.name) == Some(part));
    }
    if spec.starts_with("/dev/mapper/") || spec.matches('/').count() == 3 {
        // `/dev/mapper/vg-lv` or `/dev/vg/lv`: the helper activated the same names.
        let lv = spec.trim_start_matches("/dev/");
        return by(&|d| {
            d.name == spec
                || d.kind == "lvm"
                    && lv
                        .split_once('/')
                        .is_some_and(|(vg, l)| d.name == format!("/dev/mapper/{vg}-{l}"))
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "ROOT /dev/mapper/vg-root\n\
DEV NAME=\"/dev/vdb\" TYPE=\"disk\" UUID=\"\" LABEL=\"\" FSTYPE=\"\"\n\
DEV NAME=\"/dev/vdb1\" TYPE=\"part\" UUID=\"b-1\" LABEL=\"boot\" FSTYPE=\"ext4\"\n\
DEV NAME=\"/dev/vdb2\" TYPE=\"part\" UUID=\"pv-2\" LABEL=\"\" FSTYPE=\"LVM2_member\"\n\
DEV NAME=\"/dev/mapper/vg-root\" TYPE=\"lvm\" UUID=\"r-1\" LABEL=\"my\\x20root\" FSTYPE=\"ext4\"\n";

    #[test]
    fn attach_output_and_fstab_specs_resolve_to_the_helpers_devices() {
        let (root, devs) = parse_attach(OUT).unwrap();
        assert_eq!(root, "/dev/mapper/vg-root");
        assert_eq!(devs.len(), 4);
        assert_eq!(devs[3].label, "my root");
        let r = |s: &str| resolve(s, "/dev/vdb", &devs);
        assert_eq!(r("/dev/vda1").as_deref(), Some("/dev/vdb1"));
        assert_eq!(r("/dev/sda1").as_deref(), Some("/dev/vdb1"));
        assert_eq!(r("UUID=b-1").as_deref(), Some("/dev/vdb1"));
        assert_eq!(r("LABEL=boot").as_deref(), Some("/dev/vdb1"));
        assert_eq!(
            r("/dev/mapper/vg-root").as_deref(),
            Some("/dev/mapper/vg-root")
        );
        assert_eq!(r("/dev/vg/root").as_deref(), Some("/dev/mapper/vg-root"));
        assert_eq!(r("/dev/sdb1"), r("/dev/vda1"));
        assert_eq!(r("UUID=nope"), None);
        assert_eq!(r("/dev/vda7"), None);
        assert_eq!(
            uuid_of_partition(&devs, "/dev/vdb", 1).as_deref(),
            Some("b-1")
        );
        assert_eq!(uuid_of_partition(&devs, "/dev/vdb", 0), None);
        assert_eq!(partition_of("/dev/nvme1n1", "/dev/nvme1n1p3"), Some(3));
        assert!(parse_attach("DEV NAME=\"x\"").is_err());
    }
}
