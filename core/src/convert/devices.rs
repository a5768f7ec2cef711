//! Device names that depend on the hardware (`/dev/sda1` on SCSI, `/dev/vda1` on virtio,
//! `/dev/xvda1` on Xen, `/dev/nvme0n1p1` on Nitro, and `by-path`/`by-id` links that name
//! the controller) and the partition number they stand for. Names that survive a change
//! of hardware (`UUID=`, `LABEL=`, LVM and device-mapper names, `by-uuid`) are not.

/// The partition number a hardware-bound device name stands for: `Some(n)` for the nth
/// partition, `Some(0)` for the whole disk, `None` when the name does not depend on the
/// hardware (or is not a disk name).
pub fn hardware_bound(spec: &str) -> Option<u32> {
    if let Some(link) = spec
        .strip_prefix("/dev/disk/by-path/")
        .or_else(|| spec.strip_prefix("/dev/disk/by-id/"))
    {
        return Some(match link.rsplit_once("-part") {
            Some((_, n)) => n.parse().ok()?,
            None => 0,
        });
    }
    let name = spec.strip_prefix("/dev/")?;
    if let Some(rest) = name.strip_prefix("nvme") {
        // nvme<c>n<ns>[p<part>]
        let (ctrl, ns) = rest.split_once('n')?;
        if ctrl.is_empty() || !ctrl.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return match ns.split_once('p') {
            Some((ns, part)) if digits(ns) && digits(part) => part.parse().ok(),
            None if digits(ns) => Some(0),
            _ => None,
        };
    }
    let rest = ["xvd", "sd", "vd", "hd"]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    let letters = rest.bytes().take_while(|b| b.is_ascii_lowercase()).count();
    if letters == 0 || letters > 2 {
        return None;
    }
    match &rest[letters..] {
        "" => Some(0),
        n if digits(n) => n.parse().ok(),
        _ => None,
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::hardware_bound;

    #[test]
    fn hardware_bound_names_and_their_partition() {
        for (spec, want) in [
            ("/dev/sda1", Some(1)),
            ("/dev/vda", Some(0)),
            ("/dev/vdb12", Some(12)),
            ("/dev/xvda2", Some(2)),
            ("/dev/hda3", Some(3)),
            ("/dev/sdaa1", Some(1)),
            ("/dev/nvme0n1p3", Some(3)),
            ("/dev/nvme1n1", Some(0)),
            ("/dev/disk/by-path/pci-0000:00:02.0-part1", Some(1)),
            ("/dev/disk/by-id/virtio-abc", Some(0)),
            ("/dev/mapper/vg-root", None),
            ("/dev/vg/root", None),
            ("/dev/disk/by-uuid/1234", None),
            ("UUID=1234", None),
            ("LABEL=root", None),
            ("/dev/sr0", None),
            ("/dev/dm-0", None),
            ("tmpfs", None),
            ("/dev/nvme0", None),
            ("/dev/nvmeXn1", None),
        ] {
            assert_eq!(hardware_bound(spec), want, "{spec}");
        }
    }
}
