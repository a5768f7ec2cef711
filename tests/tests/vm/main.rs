//! The VM tests (`vm_*`): real servers, QEMU guests built from Debian's packages
//! (`tests/src/vm.rs`). A binary of their own, so that cargo runs them after the other
//! integration tests and an emulated CPU never competes with those tests' peers (and
//! their time shows on its own line); inside it, one VM at a time. Each test fails
//! loudly when QEMU cannot start.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferry_tests::ferry::Ferry;
use ferry_tests::vm::{source_image, Hardware, Vm};

/// A `ferry` for one host named `source` (`host` holds its keys after `name`) with a
/// store in `dir`, the store initialised.
fn ferry_for(dir: &std::path::Path, host: &str) -> Result<Ferry> {
    let config = dir.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"file://{}\"\n\n[[host]]\nname = \"source\"\n{host}",
            dir.join("store").display()
        ),
    )?;
    let ferry = Ferry::new(&config, Vec::new())?;
    ferry.json(&["store", "init"])?;
    Ok(ferry)
}

/// Restores the newest point of `source` to `file`.
fn restore_to(ferry: &Ferry, file: &std::path::Path) -> Result<()> {
    ferry.json(&[
        "restore",
        "source",
        "--to",
        file.to_str().unwrap_or_default(),
    ])?;
    Ok(())
}

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

/// The kernel and initramfs on the /boot partition (partition 1) of a raw disk, copied
/// out with debugfs through a loop device at the partition's offset.
fn boot_files(
    disk: &std::path::Path,
    out: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::process::Command;
    let facts = std::fs::read_to_string(source_image()?.disk.with_file_name("source.facts"))?;
    let kernel = facts
        .lines()
        .find_map(|l| l.strip_prefix("kernel="))
        .context("no kernel in source.facts")?
        .to_string();
    let dev = Command::new("losetup")
        .args([
            "-f",
            "--show",
            "-r",
            "-o",
            &(2048 * 512).to_string(),
            "--sizelimit",
            &(524288 * 512).to_string(),
        ])
        .arg(disk)
        .output()?;
    let dev = String::from_utf8_lossy(&dev.stdout).trim().to_string();
    anyhow::ensure!(
        dev.starts_with("/dev/loop"),
        "no loop device for {}",
        disk.display()
    );
    let vmlinuz = out.join("vmlinuz");
    let initrd = out.join("initrd.img");
    let r = Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump /vmlinuz-{kernel} {}", vmlinuz.display()))
        .arg(&dev)
        .output()
        .and_then(|_| {
            Command::new("debugfs")
                .arg("-R")
                .arg(format!("dump /initrd.img-{kernel} {}", initrd.display()))
                .arg(&dev)
                .output()
        });
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    r?;
    anyhow::ensure!(
        vmlinuz.metadata()?.len() > 0 && initrd.metadata()?.len() > 0,
        "nothing dumped from {dev}"
    );
    Ok((vmlinuz, initrd))
}

/// What a server moved as it is meets on EC2: its capture boots on the hardware it ran
/// on, and on NVMe its initramfs (no NVMe driver) never finds the root volume and drops
/// to its emergency shell. (The source's console is on the screen only: the NVMe boot
/// loads the disk's own kernel and initramfs with the serial console added, so that
/// the test reads what the initramfs says.) The source server's disk is captured as the
/// appliance reads a local disk: the capture over SSH of a live guest is the LVM test's,
/// and a whole 2 GiB disk through the emulated guest's SSH takes minutes.
#[test]
fn vm_unconverted_capture_boots_on_its_own_hardware_and_not_on_nvme() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let ferry = ferry_for(
        dir.path(),
        &format!("disk = \"{}\"\n", image.disk.display()),
    )?;
    let cap = ferry.json(&["capture", "source"])?;
    let restored = dir.path().join("restored.raw");
    restore_to(&ferry, &restored)?;
    assert_eq!(cap["image_size"].as_u64(), Some(restored.metadata()?.len()));
    let qcow = dir.path().join("restored.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&restored)
        .arg(&qcow)
        .status()?;
    anyhow::ensure!(st.success(), "qemu-img convert");

    // On its own hardware (virtio): it boots and answers.
    let started = Instant::now();
    let mut own = Vm::boot_disk(&qcow, &image.key, dir.path(), "own", Hardware::Kvm)?;
    own.wait_ssh(started, Duration::from_secs(180))?;
    assert_eq!(
        own.ssh("findmnt -n -o SOURCE /")?.trim(),
        "/dev/mapper/vg-root"
    );
    own.shutdown(Duration::from_secs(30))?;

    // On NVMe with another NIC: the initramfs gives up on the root volume.
    let (vmlinuz, initrd) = boot_files(&restored, dir.path())?;
    let started = Instant::now();
    let mut nitro = Vm::boot_kernel(
        &qcow,
        &image.key,
        dir.path(),
        "nitro",
        Hardware::Nitro,
        (
            &vmlinuz,
            &initrd,
            "root=/dev/mapper/vg-root ro rootdelay=10 console=ttyS0",
        ),
    )?;
    let failed = nitro.wait_serial("Dropping to a shell", started, Duration::from_secs(180))?;
    let text = nitro.serial_text();
    assert!(
        text.contains("ALERT!") && text.contains("/dev/mapper/vg-root does not exist"),
        "{text}"
    );
    eprintln!("unconverted on NVMe: emergency shell {failed:.1?} after power-on");
    Ok(())
}
