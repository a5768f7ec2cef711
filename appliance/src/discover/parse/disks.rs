//! `lsblk -J -b -o NAME,TYPE,SIZE,FSTYPE,MOUNTPOINT` and `df -P -B1 -T`.

use serde::{Deserialize, Serialize};

use super::{err, number, ParseError};

/// One block device, flattened out of lsblk's tree (`parent` names its parent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    /// `disk`, `part`, `lvm`, `rom`, `loop`, ...
    pub kind: String,
    pub size_bytes: u64,
    pub fstype: Option<String>,
    pub mountpoint: Option<String>,
    pub parent: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    blockdevices: Vec<RawDev>,
}

#[derive(Deserialize)]
struct RawDev {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    size: serde_json::Value,
    #[serde(default)]
    fstype: Option<String>,
    #[serde(default)]
    mountpoint: Option<String>,
    #[serde(default)]
    children: Vec<RawDev>,
}

fn flatten(d: RawDev, parent: Option<&str>, out: &mut Vec<BlockDevice>) -> Result<(), ParseError> {
    // Older lsblk prints sizes as strings even with -b.
    let size = match &d.size {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| err("lsblk -J", format!("size of {} is {}", d.name, d.size)))?;
    out.push(BlockDevice {
        name: d.name.clone(),
        kind: d.kind,
        size_bytes: size,
        fstype: d.fstype,
        mountpoint: d.mountpoint,
        parent: parent.map(str::to_string),
    });
    for c in d.children {
        flatten(c, Some(&d.name), out)?;
    }
    Ok(())
}

pub fn lsblk(text: &str) -> Result<Vec<BlockDevice>, ParseError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| err("lsblk -J", e.to_string()))?;
    let mut out = Vec::new();
    for d in raw.blockdevices {
        flatten(d, None, &mut out)?;
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filesystem {
    pub source: String,
    pub fstype: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub mountpoint: String,
}

impl Filesystem {
    /// Memory-backed and kernel filesystems, which a migration does not carry.
    pub fn is_pseudo(&self) -> bool {
        matches!(
            self.fstype.as_str(),
            "tmpfs"
                | "devtmpfs"
                | "proc"
                | "sysfs"
                | "overlay"
                | "squashfs"
                | "cgroup2"
                | "efivarfs"
        )
    }
}

pub fn df(text: &str) -> Result<Vec<Filesystem>, ParseError> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| number(&f, i, "df -P", line);
            if f.len() < 7 {
                return Err(err("df -P", format!("short line {line:?}")));
            }
            Ok(Filesystem {
                source: f[0].to_string(),
                fstype: f[1].to_string(),
                size_bytes: num(2)?,
                used_bytes: num(3)?,
                // A mount point may contain spaces: everything after the capacity.
                mountpoint: f[6..].join(" "),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    #[test]
    fn lsblk_trees_flatten_with_parents() {
        let d = lsblk(&fixture("lsblk-lvm-server.json")).unwrap();
        let root = d
            .iter()
            .find(|d| d.mountpoint.as_deref() == Some("/"))
            .unwrap();
        assert_eq!(
            (root.kind.as_str(), root.parent.as_deref()),
            ("lvm", Some("sda2"))
        );
        assert_eq!(d.iter().filter(|d| d.kind == "disk").count(), 1);
        assert_eq!(d.iter().filter(|d| d.kind == "lvm").count(), 3);
        let vm = lsblk(&fixture("lsblk.json")).unwrap();
        assert!(vm
            .iter()
            .any(|d| d.name == "vda" && d.size_bytes == 274877906944));
        assert!(lsblk("{\"blockdevices\": [{\"name\": \"x\"}]}").is_err());
    }

    #[test]
    fn df_rows() {
        let f = df(&fixture("df.txt")).unwrap();
        let root = f.iter().find(|f| f.mountpoint == "/").unwrap();
        assert_eq!(
            (root.fstype.as_str(), root.used_bytes),
            ("ext4", 54028607488)
        );
        assert!(f.iter().filter(|f| f.is_pseudo()).count() >= 2);
        assert!(df("Filesystem Type\n/dev/sda1 ext4 x y z 1% /").is_err());
    }
}
