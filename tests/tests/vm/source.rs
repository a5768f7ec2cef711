//! The source server as the other tests find it, through a capture.

use std::time::Duration;

use anyhow::Result;
use ferry_tests::vm::{source_image, Hardware, Vm};

use crate::captured_source;

/// The source server's disk, captured and restored, boots on the hardware it ran on
/// (virtio): GRUB from the disk, root on LVM, room for a real snapshot, no NVMe driver
/// in its initramfs. (The disk is captured as the appliance reads a local disk: the
/// capture over SSH of a live guest is the LVM tests', and a whole 2 GiB disk through
/// the emulated guest's SSH takes minutes.)
#[test]
fn vm_source_capture_boots_on_its_own_hardware_with_root_on_lvm_and_answers_ssh() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let (_ferry, cap, restored, qcow) = captured_source(dir.path(), "")?;
    assert_eq!(cap["image_size"].as_u64(), Some(restored.metadata()?.len()));
    assert_eq!(
        ferry_tests::disk::sha256(&restored)?,
        ferry_tests::disk::sha256(&image.disk)?
    );
    let mut vm = Vm::boot_disk(&qcow, &image.key, dir.path(), "source", Hardware::Kvm)?;
    let up = vm.wait_ssh(Duration::from_secs(180))?;
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
