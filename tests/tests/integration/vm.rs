//! Real servers: QEMU guests built from Debian's packages (`tests/src/vm.rs`). One VM
//! at a time; each test fails loudly when QEMU cannot start.

use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_tests::ferry::Ferry;
use ferry_tests::vm::{source_image, Hardware, Vm};

#[test]
fn vm_source_boots_from_its_disk_with_root_on_lvm_and_answers_ssh() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let started = Instant::now();
    let mut vm = Vm::boot(&image, dir.path(), "source", Hardware::Kvm)?;
    let up = vm.wait_ssh(started, Duration::from_secs(180))?;
    eprintln!("source VM: power-on to SSH in {up:.1?}");
    // GRUB from the disk (it names the kernel it loaded), root on LVM, /boot by device
    // name.
    let cmdline = vm.ssh("cat /proc/cmdline")?;
    assert!(cmdline.starts_with("BOOT_IMAGE=/vmlinuz-"), "{cmdline}");
    assert_eq!(
        vm.ssh("findmnt -n -o SOURCE /")?.trim(),
        "/dev/mapper/vg-root"
    );
    assert_eq!(vm.ssh("findmnt -n -o SOURCE /boot")?.trim(), "/dev/vda1");
    assert_eq!(vm.ssh("lvs --noheadings -o lv_name vg")?.trim(), "root");
    // Room for a real snapshot, which the guest's own LVM makes and removes.
    vm.ssh("lvcreate -q -s -L 64M -n probe vg/root && lvremove -q -f vg/probe")?;
    assert_eq!(vm.ssh("lvs --noheadings -o lv_name vg")?.trim(), "root");
    // A server that ran on virtio: no NVMe driver in its initramfs.
    let modules = vm.ssh("lsinitramfs /boot/initrd.img-$(uname -r)")?;
    assert!(modules.contains("virtio_blk.ko") && !modules.contains("nvme"));
    vm.shutdown(Duration::from_secs(30))?;
    Ok(())
}

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
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"file://{store}\"\n\n[[host]]\nname = \"source\"\nssh = \"root@127.0.0.1:{port}\"\n\
             identity = \"{key}\"\nknown_hosts = \"{kh}\"\ndisk = \"/dev/vg/data\"\nsnapshot = \"lvm\"\n\
             snapshot_size = \"64M\"\n",
            store = dir.path().join("store").display(),
            port = vm.ssh_port,
            key = image.key.display(),
            kh = dir.path().join("known_hosts").display(),
        ),
    )?;
    let ferry = Ferry::new(&config, Vec::new())?;
    ferry.json(&["store", "init"])?;
    let cap = ferry.json(&["capture", "source", "--accept-new-host-key"])?;
    assert_eq!(cap["consistency"], "lvm-snapshot", "{cap}");
    // The snapshot is gone: only the volumes the guest had.
    let lvs = vm.ssh("lvs --noheadings -o lv_name vg")?;
    let mut names: Vec<&str> = lvs.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["data", "root"], "{lvs}");
    let restored = dir.path().join("restored.img");
    ferry.json(&[
        "restore",
        "source",
        "--to",
        restored.to_str().unwrap_or_default(),
    ])?;
    assert_eq!(ferry_tests::disk::sha256(&restored)?, want);
    vm.shutdown(Duration::from_secs(30))?;
    Ok(())
}
