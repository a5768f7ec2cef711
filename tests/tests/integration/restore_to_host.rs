//! `restore --to-host`: only the ranges that differ are written, and the host's disk then
//! equals the point.

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::stack::Stack;

#[test]
fn delta_restore_writes_only_changed_ranges() -> Result<()> {
    let (base, changed) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("app1", Some(&base))?;
    // The failback target still holds yesterday's image.
    stack.add_host("origin", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let store = stack.file_store("store");
    let ferry = stack.ferry(
        &store,
        &[stack.entry("app1", &kh), stack.entry("origin", &kh)],
    )?;
    ferry.json(&["store", "init"])?;
    let p1 = ferry.json(&["capture", "app1"])?;
    disk::copy(&changed, &stack.host("app1").disk)?;
    let p2 = ferry.json(&["capture", "app1"])?;
    let size = std::fs::metadata(&base)?.len();
    let target = stack.host("origin").disk.clone();
    let differ = disk::differing_bytes(&base, &changed)?;

    // With --base: decided from the manifests, no read of the target.
    let r = ferry.json(&[
        "restore",
        "app1",
        "--to-host",
        "origin",
        "--base",
        p1["point"].as_str().unwrap(),
    ])?;
    assert_eq!(r["compared_with"], "base-point");
    assert_eq!(r["bytes_read_from_target"], 0);
    let written = r["bytes_written"].as_u64().unwrap();
    assert!(written >= differ, "wrote {written} bytes, {differ} differ");
    assert!(
        written < size / 4,
        "wrote {written} of {size} bytes: not a delta"
    );
    assert_eq!(disk::sha256(&target)?, disk::sha256(&changed)?);

    // Without --base: the target is read and hashed; it now equals the point, so
    // nothing is written.
    let again = ferry.json(&["restore", "app1", "--to-host", "origin"])?;
    assert_eq!(again["compared_with"], "read-target");
    assert_eq!(again["bytes_read_from_target"], size);
    assert_eq!(again["bytes_written"], 0);

    // Back to the first point, by reading the target: again only the changed ranges.
    let back = ferry.json(&[
        "restore",
        "app1",
        "--point",
        p1["point"].as_str().unwrap(),
        "--to-host",
        "origin",
    ])?;
    let w = back["bytes_written"].as_u64().unwrap();
    assert!(w >= differ && w < size / 4, "{back}");
    assert_eq!(disk::sha256(&target)?, disk::sha256(&base)?);
    assert_ne!(p1["point"], p2["point"]);
    Ok(())
}

#[test]
fn restore_to_a_smaller_disk_is_refused_and_writes_nothing() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("src", Some(&base))?;
    stack.add_host("tiny", None)?;
    std::fs::write(&stack.host("tiny").disk, vec![7u8; 1 << 20])?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(
        &stack.file_store("s"),
        &[stack.entry("src", &kh), stack.entry("tiny", &kh)],
    )?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "src"])?;
    let r = ferry.run(&["restore", "src", "--to-host", "tiny"])?;
    assert!(!r.ok());
    assert!(r.stderr.contains("holds 1048576 bytes"), "{}", r.stderr);
    assert_eq!(std::fs::read(&stack.host("tiny").disk)?, vec![7u8; 1 << 20]);
    Ok(())
}

/// Hardening, defect 5: a disk in use is refused unless forced, a wrong `--base` is
/// caught on a sample before anything is written, a write that dies part-way says the
/// disk is inconsistent and how to finish, and the rerun converges; success is reported
/// only after the disk was read back equal to the point.
#[test]
fn restore_to_host_refuses_unsafe_targets_and_says_when_half_written() -> Result<()> {
    use std::time::{Duration, Instant};
    let (base, changed) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("app1", Some(&base))?;
    stack.add_host("origin", None)?;
    let kh = stack.pinned_known_hosts()?;
    let ferry = stack.ferry(
        &stack.file_store("store"),
        &[stack.entry("app1", &kh), stack.entry("origin", &kh)],
    )?;
    ferry.json(&["store", "init"])?;
    let p1 = ferry.json(&["capture", "app1"])?;
    disk::copy(&changed, &stack.host("app1").disk)?;
    ferry.json(&["capture", "app1"])?;
    let target = stack.host("origin").disk.clone();
    let size = std::fs::metadata(&base)?.len() as usize;

    // A wrong --base: the disk holds something else. Refused, nothing written.
    std::fs::write(&target, vec![9u8; size])?;
    let p1_id = p1["point"].as_str().unwrap();
    let r = ferry.run(&["restore", "app1", "--to-host", "origin", "--base", p1_id])?;
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("does not hold base point"),
        "{}",
        r.stderr
    );
    assert!(std::fs::read(&target)?.iter().all(|&b| b == 9));

    // In use (it backs a loop device): refused; with --force written and read back.
    disk::copy(&base, &target)?;
    let lo = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&target)
        .output()?;
    assert!(
        lo.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&lo.stderr)
    );
    let loopdev = String::from_utf8(lo.stdout)?.trim().to_string();
    let r = ferry.run(&["restore", "app1", "--to-host", "origin"])?;
    let forced = ferry.json(&["restore", "app1", "--to-host", "origin", "--force"]);
    std::process::Command::new("losetup")
        .args(["-d", &loopdev])
        .status()?;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("backs a loop device"), "{}", r.stderr);
    let forced = forced?;
    assert_eq!(forced["bytes_read_back"], size as u64);
    assert_eq!(disk::sha256(&target)?, disk::sha256(&changed)?);

    // A write that dies part-way (its dd killed): the error says so, the rerun finishes.
    std::fs::write(&target, vec![0u8; size])?;
    let mut child = ferry.spawn(&["restore", "app1", "--to-host", "origin"])?;
    let start = Instant::now();
    // Each range has its own short-lived dd: kill every one seen until ferry ends (one
    // seen may exit before the signal lands).
    let mut killed = 0;
    while child.try_wait()?.is_none() && start.elapsed() < Duration::from_secs(120) {
        let pids = ferry_tests::procs::dd_writers(&target);
        killed += pids.len();
        ferry_tests::procs::kill9(&pids);
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = killed > 0;
    let out = child.wait_with_output()?;
    assert!(killed, "no dd writer seen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed part-way") && stderr.contains("run the same restore again"),
        "{stderr}"
    );
    let rerun = ferry.json(&["restore", "app1", "--to-host", "origin"])?;
    assert!(rerun["bytes_written"].as_u64().unwrap() > 0);
    assert_eq!(disk::sha256(&target)?, disk::sha256(&changed)?);
    println!("FAULT | restore onto a host | the remote dd killed mid-write | exit 1, the error says the disk is mixed and to rerun; the rerun converges, read back equal |");
    Ok(())
}
