//! The source VM as the other tests find it.

use std::time::{Duration, Instant};

use anyhow::Result;
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
