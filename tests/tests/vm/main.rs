//! The VM tests (`vm_*`): real servers, QEMU guests built from Debian's packages
//! (`tests/src/vm.rs`). A binary of their own, so that cargo runs them after the other
//! integration tests and an emulated CPU never competes with those tests' peers (and
//! their time shows on its own line); inside it, one VM at a time. Each test fails
//! loudly when QEMU cannot start.

mod convert;
mod failback;
mod snapshot;
mod source;

use anyhow::{Context, Result};
use ferry_tests::ferry::Ferry;
use ferry_tests::vm::source_image;

/// A `ferry` for one host named `source` (`host` holds its keys after `name`) with a
/// store in `dir`, the store initialised.
pub fn ferry_for(dir: &std::path::Path, host: &str) -> Result<Ferry> {
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
pub fn restore_to(ferry: &Ferry, file: &std::path::Path) -> Result<()> {
    ferry.json(&[
        "restore",
        "source",
        "--to",
        file.to_str().unwrap_or_default(),
    ])?;
    Ok(())
}

/// The kernel and initramfs on the /boot partition (partition 1) of a raw disk, copied
/// out with debugfs through a loop device at the partition's offset.
pub fn boot_files(
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

/// A qcow2 copy of a raw disk beside it, for booting without touching the raw one.
pub fn qcow2(raw: &std::path::Path) -> Result<std::path::PathBuf> {
    let qcow = raw.with_extension("qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(raw)
        .arg(&qcow)
        .status()?;
    anyhow::ensure!(st.success(), "qemu-img convert {}", raw.display());
    Ok(qcow)
}

/// A `ferry` whose host `source` is the source server's disk read as a local disk, with
/// that disk captured and its point restored: the ferry, the restored raw image and a
/// qcow2 copy of it to boot. `more` is added to the host's config.
pub fn captured_source(
    dir: &std::path::Path,
    more: &str,
) -> Result<(
    Ferry,
    serde_json::Value,
    std::path::PathBuf,
    std::path::PathBuf,
)> {
    let image = source_image()?;
    let ferry = ferry_for(dir, &format!("disk = \"{}\"\n{more}", image.disk.display()))?;
    let cap = ferry.json(&["capture", "source"])?;
    let restored = dir.join("restored.raw");
    restore_to(&ferry, &restored)?;
    let qcow = qcow2(&restored)?;
    Ok((ferry, cap, restored, qcow))
}

/// A `ferry` whose host `source` is the running guest `vm` over SSH, its disk
/// `/dev/vg/data` read from an LVM snapshot of `snapshot_size`.
pub fn ferry_on_guest(
    dir: &std::path::Path,
    vm: &ferry_tests::vm::Vm,
    key: &std::path::Path,
    snapshot_size: &str,
) -> Result<Ferry> {
    ferry_for(
        dir,
        &format!(
            "ssh = \"root@127.0.0.1:{port}\"\nidentity = \"{key}\"\nknown_hosts = \"{kh}\"\n\
             disk = \"/dev/vg/data\"\nsnapshot = \"lvm\"\nsnapshot_size = \"{snapshot_size}\"\n",
            port = vm.ssh_port,
            key = key.display(),
            kh = dir.join("known_hosts").display(),
        ),
    )
}
