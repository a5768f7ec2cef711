//! Failback onto a real origin server.

use std::time::Duration;

use anyhow::Result;
use ferry_tests::vm::{source_image, Hardware, Vm};

use crate::ferry_for;

/// The write a failback makes (its passes call the same delta restore as
/// `ferry restore --to-host ORIGIN --base POINT`), onto a real origin: the server ran on
/// in AWS and changed there (a recovery instance booted from its point writes a file),
/// that is captured, and only the changed bytes go onto the origin's disk while the
/// origin is down (booted into a rescue system, its disk not in use). The origin then
/// boots from its own disk cleanly: every unit started, root's file system clean, the
/// change from AWS there, and it powers off cleanly again.
#[test]
fn vm_failback_delta_onto_the_origin_vm_is_followed_by_a_clean_reboot() -> Result<()> {
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    // The host's disk as the appliance reads it: the origin's, then the instance's.
    let disk = dir.path().join("disk.raw");
    std::os::unix::fs::symlink(&image.disk, &disk)?;
    let ferry = ferry_for(dir.path(), &format!("disk = \"{}\"\n", disk.display()))?;
    let origin_point = ferry.json(&["capture", "source"])?["point"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // In AWS: the recovery instance runs, and writes.
    let mut aws = Vm::boot(&image, dir.path(), "aws", Hardware::Kvm)?;
    aws.wait_ssh(Duration::from_secs(180))?;
    let want = aws.ssh(
        "head -c 8388608 /dev/urandom > /root/written-in-aws && echo 'failed over' > /etc/motd \
         && sync && sha256sum /root/written-in-aws",
    )?;
    let aws_disk = aws.overlay.clone();
    aws.shutdown(Duration::from_secs(60))?;
    let aws_raw = dir.path().join("aws.raw");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "qcow2", "-O", "raw"])
        .arg(&aws_disk)
        .arg(&aws_raw)
        .status()?;
    anyhow::ensure!(st.success(), "qemu-img convert");
    std::fs::remove_file(&disk)?;
    std::os::unix::fs::symlink(&aws_raw, &disk)?;
    let cap = ferry.json(&["capture", "source"])?;
    assert_eq!(cap["parent"], origin_point.as_str());
    let aws_point = cap["point"].as_str().unwrap_or_default().to_string();

    // The origin, down: its own disk (as its point) under a rescue system.
    let origin = dir.path().join("origin.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&image.disk)
        .arg(&origin)
        .status()?;
    anyhow::ensure!(st.success(), "qemu-img create");
    let mut rescue = Vm::boot_rescue(&origin, &image, dir.path(), "rescue")?;
    rescue.wait_ssh(Duration::from_secs(180))?;
    // The rescue system's udev activated the origin's volume group: deactivated, the
    // disk is not in use.
    rescue.ssh("vgchange -an vg >/dev/null")?;
    let config = dir.path().join("ferry.toml");
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&format!(
        "\n[[host]]\nname = \"origin\"\nssh = \"root@127.0.0.1:{}\"\nidentity = \"{}\"\n\
         known_hosts = \"{}\"\ndisk = \"/dev/vdb\"\n",
        rescue.ssh_port,
        image.key.display(),
        dir.path().join("known_hosts").display()
    ));
    std::fs::write(&config, text)?;
    let written = ferry.json(&[
        "restore",
        "source",
        "--point",
        &aws_point,
        "--to-host",
        "origin",
        "--base",
        &origin_point,
        "--accept-new-host-key",
    ])?;
    eprintln!("failback delta: {written}");
    let bytes = written["bytes_written"].as_u64().unwrap_or(u64::MAX);
    let size = written["image_size"].as_u64().unwrap_or(0);
    assert!(bytes > 8 << 20 && bytes * 20 < size, "{written}");
    assert_eq!(written["compared_with"], "base-point");
    rescue.shutdown(Duration::from_secs(60))?;

    // The origin boots from its disk, cleanly.
    let mut back = Vm::boot_disk(&origin, &image.key, dir.path(), "origin", Hardware::Kvm)?;
    let up = back.wait_ssh(Duration::from_secs(180))?;
    eprintln!("origin after the failback write: power-on to SSH in {up:.1?}");
    assert_eq!(back.ssh("sha256sum /root/written-in-aws")?, want);
    assert_eq!(back.ssh("cat /etc/motd")?.trim(), "failed over");
    let state = back
        .ssh("systemctl is-system-running --wait; systemctl --failed --no-legend")
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(state.trim(), "running", "{state}");
    let fs = back.ssh("tune2fs -l /dev/mapper/vg-root | grep '^Filesystem state'")?;
    assert!(fs.contains("clean"), "{fs}");
    back.shutdown(Duration::from_secs(60))?;
    Ok(())
}
