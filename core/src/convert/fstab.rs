//! `/etc/fstab` on new hardware: every entry that names a hardware-bound device
//! (`/dev/sda1`, `/dev/vda1`, ...) names its file system by UUID instead; everything else
//! (comments, spacing of other lines, options) stays as it was.

use super::devices::hardware_bound;

/// One entry of an fstab, as the conversion reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub spec: String,
    pub mountpoint: String,
    pub fstype: String,
    pub options: String,
}

/// The entries of `text`, comments and blank lines left out.
pub fn entries(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| Entry {
                spec: f[0].to_string(),
                mountpoint: f[1].to_string(),
                fstype: f[2].to_string(),
                options: f.get(3).unwrap_or(&"defaults").to_string(),
            })
        })
        .collect()
}

/// The local file systems below `/` that must be mounted for the conversion to see the
/// guest's `/boot` and its tools (`/boot`, `/boot/efi`, `/usr`, `/var`...), parents
/// first; swap, network file systems, pseudo file systems and `noauto` left out.
pub fn mounts_below_root(entries: &[Entry]) -> Vec<&Entry> {
    const SKIP: [&str; 12] = [
        "swap", "nfs", "nfs4", "cifs", "smbfs", "tmpfs", "proc", "sysfs", "devpts", "none", "auto",
        "fuse",
    ];
    let mut v: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.mountpoint.starts_with('/')
                && e.mountpoint != "/"
                && !SKIP.contains(&e.fstype.as_str())
                && !e.options.split(',').any(|o| o == "noauto")
        })
        .collect();
    v.sort_by_key(|e| e.mountpoint.matches('/').count());
    v
}

/// A rewritten fstab and what changed (`old -> new` per entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub text: String,
    pub changed: Vec<(String, String)>,
    /// Hardware-bound names whose partition has no UUID: left as they were.
    pub unresolved: Vec<String>,
}

/// Replaces each hardware-bound device of `text` by `UUID=<uuid>`, where `uuid_of`
/// gives the UUID of a partition number (0: the whole disk).
pub fn rewrite(text: &str, uuid_of: impl Fn(u32) -> Option<String>) -> Rewrite {
    let mut out = String::with_capacity(text.len() + 64);
    let mut changed = Vec::new();
    let mut unresolved = Vec::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let spec = body.split_whitespace().next().unwrap_or("");
        let new = (!body.starts_with('#'))
            .then(|| hardware_bound(spec))
            .flatten()
            .map(|part| (part, uuid_of(part)));
        match new {
            Some((_, Some(uuid))) => {
                let indent = &line[..line.len() - body.len()];
                let replaced = format!("UUID={uuid}");
                out.push_str(indent);
                out.push_str(&replaced);
                out.push_str(&body[spec.len()..]);
                changed.push((spec.to_string(), replaced));
            }
            Some((_, None)) => {
                unresolved.push(spec.to_string());
                out.push_str(line);
            }
            None => out.push_str(line),
        }
    }
    Rewrite {
        text: out,
        changed,
        unresolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FSTAB: &str = "# /etc/fstab\n\
/dev/mapper/vg-root / ext4 errors=remount-ro 0 1\n\
/dev/vda1 /boot ext4 defaults 0 2\n\
  /dev/sda2\tnone swap sw 0 0\n\
UUID=abcd /srv xfs defaults 0 2\n\
/dev/sdb1 /mnt/usb ext4 noauto 0 0\n\
tmpfs /tmp tmpfs defaults 0 0\n\
/dev/vda3 /boot/efi vfat umask=0077 0 1\n";

    fn uuids(part: u32) -> Option<String> {
        match part {
            1 => Some("1111".into()),
            2 => Some("2222".into()),
            3 => Some("3333".into()),
            _ => None,
        }
    }

    #[test]
    fn hardware_bound_devices_become_uuids_and_the_rest_is_kept() {
        let r = rewrite(FSTAB, uuids);
        assert_eq!(
            r.text,
            "# /etc/fstab\n\
/dev/mapper/vg-root / ext4 errors=remount-ro 0 1\n\
UUID=1111 /boot ext4 defaults 0 2\n\
  UUID=2222\tnone swap sw 0 0\n\
UUID=abcd /srv xfs defaults 0 2\n\
UUID=1111 /mnt/usb ext4 noauto 0 0\n\
tmpfs /tmp tmpfs defaults 0 0\n\
UUID=3333 /boot/efi vfat umask=0077 0 1\n"
        );
        assert_eq!(r.changed.len(), 4);
        assert_eq!(r.changed[0], ("/dev/vda1".into(), "UUID=1111".into()));
        assert!(r.unresolved.is_empty());
    }

    #[test]
    fn a_partition_without_uuid_is_left_and_reported() {
        let r = rewrite("/dev/sda9 /data ext4 defaults 0 2", uuids);
        assert_eq!(r.text, "/dev/sda9 /data ext4 defaults 0 2");
        assert_eq!(r.unresolved, vec!["/dev/sda9".to_string()]);
        // Converting twice changes nothing the second time.
        let once = rewrite(FSTAB, uuids);
        let twice = rewrite(&once.text, uuids);
        assert_eq!(twice.text, once.text);
        assert!(twice.changed.is_empty());
    }

    #[test]
    fn mounts_below_root_are_local_automatic_and_parents_first() {
        let e = entries(FSTAB);
        let m: Vec<&str> = mounts_below_root(&e)
            .iter()
            .map(|e| e.mountpoint.as_str())
            .collect();
        assert_eq!(m, ["/boot", "/srv", "/boot/efi"]);
    }
}
