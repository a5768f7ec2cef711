//! Hardening, defect 6: `restore --to` writes a block device in place (it used to write
//! a file beside it and rename it over the device node), refuses a device in use or too
//! small, follows a symlink instead of replacing it, refuses other kinds of files, and
//! creates images 0600 (they hold /etc/shadow and host keys).

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use ferry_tests::disk;
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::Stack;

/// A loop device over a file, detached when dropped.
struct Loop(PathBuf);

impl Loop {
    fn attach(file: &Path) -> Result<Loop> {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .context("running losetup (util-linux)")?;
        if !out.status.success() {
            bail!(
                "losetup could not attach a loop device (root and /dev/loop-control are needed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Loop(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim(),
        )))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn b3(path: &Path, len: u64) -> Result<String> {
    use std::io::Read;
    let mut h = blake3::Hasher::new();
    let mut r = std::fs::File::open(path)?.take(len);
    std::io::copy(&mut r, &mut h)?;
    Ok(h.finalize().to_hex().to_string())
}

#[test]
fn block_devices_in_place_symlinks_followed_others_refused() -> Result<()> {
    let (base, _) = disk::workload()?;
    let size = std::fs::metadata(&base)?.len();
    let stack = Stack::new()?;
    let ferry = stack.ferry(&stack.file_store("store"), &[HostEntry::local("db", &base)])?;
    ferry.json(&["store", "init"])?;
    let point = ferry.json(&["capture", "db"])?;

    // A device larger than the image, full of old data.
    let backing = stack.path().join("device.img");
    std::fs::write(&backing, vec![0xabu8; (size + (8 << 20)) as usize])?;
    let dev = Loop::attach(&backing)?;
    let r = ferry.json(&["restore", "db", "--to", dev.0.to_str().unwrap()])?;
    assert_eq!(r["read_back_verified"], true);
    let meta = std::fs::symlink_metadata(&dev.0)?;
    assert!(meta.file_type().is_block_device(), "still the device node");
    assert!(
        !stack.path().join("device.img.ferry-partial").exists()
            && !PathBuf::from(format!("{}.ferry-partial", dev.0.display())).exists()
    );
    assert_eq!(b3(&dev.0, size)?, point["image_blake3"].as_str().unwrap());
    // Past the image, the device is as it was.
    let tail = std::fs::read(&backing)?;
    assert!(tail[size as usize..].iter().all(|&b| b == 0xab));

    // In use (held exclusively, as a mount does): refused, nothing written.
    std::fs::write(&backing, vec![0xcdu8; (size + (8 << 20)) as usize])?;
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(&dev.0)?;
    let r = ferry.run(&["restore", "db", "--to", dev.0.to_str().unwrap()])?;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("in use"), "{}", r.stderr);
    drop(held);
    assert!(std::fs::read(&backing)?.iter().all(|&b| b == 0xcd));

    // Too small: refused, nothing written.
    let small = stack.path().join("small.img");
    std::fs::write(&small, vec![0xeeu8; (size / 2) as usize])?;
    let small_dev = Loop::attach(&small)?;
    let r = ferry.run(&["restore", "db", "--to", small_dev.0.to_str().unwrap()])?;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert!(std::fs::read(&small)?.iter().all(|&b| b == 0xee));

    // A symlink to a file: the file is replaced, the link stays a link; mode 0600.
    let real = stack.path().join("real.img");
    std::fs::write(&real, b"old")?;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644))?;
    let link = stack.path().join("link.img");
    std::os::unix::fs::symlink(&real, &link)?;
    ferry.json(&["restore", "db", "--to", link.to_str().unwrap(), "--fsync"])?;
    assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
    assert_eq!(disk::sha256(&real)?, disk::sha256(&base)?);
    let mode = std::fs::metadata(&real)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "images hold the host's secrets");

    // A named pipe, a directory: refused.
    let fifo = stack.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status()?.success());
    let r = ferry.run(&["restore", "db", "--to", fifo.to_str().unwrap()])?;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("named pipe"), "{}", r.stderr);
    let r = ferry.run(&["restore", "db", "--to", stack.path().to_str().unwrap()])?;
    assert!(r.stderr.contains("a directory"), "{}", r.stderr);
    Ok(())
}
