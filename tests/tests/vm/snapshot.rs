//! Capture of the live source VM from a real LVM snapshot.

use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_tests::vm::{source_image, Hardware, Vm};

use crate::{ferry_for, restore_to};

/// A real `lvcreate --snapshot` in the live guest: the capture reads the snapshot, not
/// the volume that keeps changing, removes it, and the point restores to exactly what
/// the volume held. (A volume of its own, filled by the test, whose content is known.)
#[test]
fn vm_lvm_snapshot_capture_of_the_live_source_leaves_no_snapshot_and_restores_byte_for_byte(
) -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let started = Instant::now();
    let mut vm = Vm::boot(&image, dir.path(), "source", Hardware::Kvm)?;
    vm.wait_ssh(started, Duration::from_secs(180))?;
    vm.ssh(
        "lvcreate -q -L 96M -n data vg && head -c 100663296 /dev/urandom > /dev/vg/data && sync",
    )?;
    let want = vm.ssh("sha256sum /dev/vg/data")?;
    let want = want
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let ferry = ferry_for(
        dir.path(),
        &format!(
            "ssh = \"root@127.0.0.1:{port}\"\nidentity = \"{key}\"\nknown_hosts = \"{kh}\"\n\
             disk = \"/dev/vg/data\"\nsnapshot = \"lvm\"\nsnapshot_size = \"64M\"\n",
            port = vm.ssh_port,
            key = image.key.display(),
            kh = dir.path().join("known_hosts").display(),
        ),
    )?;
    let cap = ferry.json(&["capture", "source", "--accept-new-host-key"])?;
    assert_eq!(cap["consistency"], "lvm-snapshot", "{cap}");
    // The snapshot is gone: only the volumes the guest had.
    let lvs = vm.ssh("lvs --noheadings -o lv_name vg")?;
    let mut names: Vec<&str> = lvs.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["data", "root"], "{lvs}");
    let restored = dir.path().join("restored.img");
    restore_to(&ferry, &restored)?;
    assert_eq!(ferry_tests::disk::sha256(&restored)?, want);
    vm.shutdown(Duration::from_secs(30))?;
    Ok(())
}
