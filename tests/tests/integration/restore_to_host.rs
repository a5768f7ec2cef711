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
