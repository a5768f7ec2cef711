//! Conversion for EC2: what an unconverted capture does on Nitro-like hardware, and
//! what `ferry convert` makes of it.

use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_tests::vm::{source_image, Hardware, Vm};

use crate::{boot_files, captured_source, ferry_for, qcow2, restore_to};

/// What a server moved as it is meets on EC2: on NVMe with another NIC, its initramfs
/// (no NVMe driver) never finds the root volume and drops to its emergency shell. (The
/// source's console is on the screen only: the NVMe boot loads the disk's own kernel
/// and initramfs with the serial console added, so that the test reads what the
/// initramfs says. That the same capture boots on the hardware it ran on is
/// `vm_source_capture_boots_on_its_own_hardware_...`.)
#[test]
fn vm_unconverted_capture_does_not_boot_on_nvme() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let (_ferry, _, restored, qcow) = captured_source(dir.path(), "")?;

    // On NVMe with another NIC: the initramfs gives up on the root volume.
    let (vmlinuz, initrd) = boot_files(&restored, dir.path())?;
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
    let failed = nitro.wait_serial("Dropping to a shell", Duration::from_secs(180))?;
    let text = nitro.serial_text();
    assert!(
        text.contains("ALERT!") && text.contains("/dev/mapper/vg-root does not exist"),
        "{text}"
    );
    eprintln!("unconverted on NVMe: emergency shell {failed:.1?} after power-on");
    Ok(())
}

/// `ferry convert` on the source's capture: the derived point shares all but a few of
/// its chunks, records what changed, and boots from its own disk (GRUB, its own kernel
/// and regenerated initramfs) on NVMe with another NIC (another MAC address, another
/// slot), reaching multi-user with sshd answering, its file systems mounted and a login
/// prompt on the serial console.
#[test]
fn vm_converted_point_boots_on_nvme_with_another_nic_and_answers_ssh() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let ferry = ferry_for(
        dir.path(),
        &format!(
            "disk = \"{}\"\n\n{}",
            image.disk.display(),
            image.convert_section()
        ),
    )?;
    let source = ferry.json(&["capture", "source"])?;
    let from = source["point"].as_str().unwrap_or_default().to_string();

    let started = Instant::now();
    let turn = ferry_tests::vm::turn();
    let conv = ferry.json(&["convert", "source"])?;
    drop(turn);
    eprintln!(
        "convert: {:.0?} in all (restore {:.1}s, helper up {:.1}s, conversion {:.1}s, capture {:.1}s); new in the store {} of {} bytes, {} of {} chunks",
        started.elapsed(),
        conv["restore_s"].as_f64().unwrap_or_default(),
        conv["helper_boot_s"].as_f64().unwrap_or_default(),
        conv["convert_s"].as_f64().unwrap_or_default(),
        conv["capture_s"].as_f64().unwrap_or_default(),
        conv["bytes_new"],
        conv["image_size"],
        conv["chunks_new"],
        conv["chunks"],
    );
    assert_eq!(conv["from"], from.as_str(), "{conv}");
    assert_eq!(conv["already_converted"], false);
    let kinds: Vec<&str> = conv["changes"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["kind"].as_str()).collect())
        .unwrap_or_default();
    for k in [
        "initramfs",
        "fstab",
        "bootloader",
        "serial-console",
        "network",
        "mac-rules",
    ] {
        assert!(kinds.contains(&k), "no {k} change: {conv}");
    }
    let detail = conv["changes"].to_string();
    assert!(detail.contains("/dev/vda1 -> UUID="), "{detail}");
    assert!(detail.contains("70-persistent-net.rules"), "{detail}");
    // Only what conversion changed is new: a small share of the image.
    let (new, size) = (
        conv["bytes_new"].as_u64().unwrap_or(u64::MAX),
        conv["image_size"].as_u64().unwrap_or(0),
    );
    assert!(new * 20 < size, "{new} new bytes of {size}");

    // The derived point, as `ferry points` shows it; converting again does nothing.
    let points = ferry.json(&["points", "source"])?;
    let last = &points[1];
    assert_eq!(last["point"], conv["point"]);
    assert_eq!(last["parent"], from.as_str());
    assert_eq!(last["converted"]["from"], from.as_str());
    assert_eq!(last["converted"]["target"], "ec2-nitro");
    let human = ferry.run(&["points", "source"])?;
    assert!(
        human
            .stdout
            .contains(&format!("converted from {from} for ec2-nitro")),
        "{}",
        human.stdout
    );
    let again = ferry.json(&["convert", "source", "--point", &from])?;
    assert_eq!(again["already_converted"], true);
    assert_eq!(again["point"], conv["point"]);
    let refused = ferry.run(&["convert", "source"])?;
    assert!(
        !refused.ok() && refused.stderr.contains("already converted"),
        "{}",
        refused.stderr
    );

    // As EC2 presents it: the disk on NVMe, an e1000 NIC with another MAC address.
    let restored = dir.path().join("converted.raw");
    restore_to(&ferry, &restored)?;
    let qcow = qcow2(&restored)?;
    let mut nitro = Vm::boot_disk(&qcow, &image.key, dir.path(), "nitro", Hardware::Nitro)?;
    let up = nitro.wait_ssh(Duration::from_secs(240))?;
    eprintln!("converted on NVMe: power-on to SSH in {up:.1?}");
    assert_eq!(
        nitro.ssh("findmnt -n -o SOURCE /")?.trim(),
        "/dev/mapper/vg-root"
    );
    assert_eq!(
        nitro.ssh("findmnt -n -o SOURCE /boot")?.trim(),
        "/dev/nvme0n1p1"
    );
    assert_eq!(
        nitro.ssh("systemctl is-active multi-user.target")?.trim(),
        "active"
    );
    let link = nitro.ssh("ip -o link show")?;
    assert!(
        link.contains("ens5") && link.contains("0e:46:52:52:59:01"),
        "{link}"
    );
    let cmdline = nitro.ssh("cat /proc/cmdline")?;
    assert!(cmdline.contains("console=ttyS0,115200n8"), "{cmdline}");
    nitro.wait_serial("login:", Duration::from_secs(60))?;
    nitro.shutdown(Duration::from_secs(60))?;
    Ok(())
}
