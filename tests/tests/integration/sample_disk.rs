//! The sample disk generator: the same parameters make the same images, both are clean
//! ext4 file systems, and the day of changes touches a few percent of the image.

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::sample_disk::{ensure, Spec};

#[test]
fn sample_disks_are_deterministic_clean_ext4_with_a_day_of_changes() -> Result<()> {
    let spec = Spec {
        image_mb: 48,
        data_mb: 30,
        seed: 7,
    };
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let one = ensure(a.path(), spec)?;
    let two = ensure(b.path(), spec)?;
    assert_eq!(disk::sha256(&one.base)?, disk::sha256(&two.base)?);
    assert_eq!(disk::sha256(&one.changed)?, disk::sha256(&two.changed)?);
    // The base is a clean file system (the scattered overwrites of the day of changes
    // may hit metadata in the copy, as a crash-consistent read of a busy disk can).
    let fsck = std::process::Command::new("e2fsck")
        .arg("-fn")
        .arg(&one.base)
        .output()?;
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let ls = std::process::Command::new("debugfs")
        .args(["-R", "ls /var/log/app"])
        .arg(&one.changed)
        .output()?;
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(
        listing.contains("app0.log") && listing.contains("app7.log"),
        "{listing}"
    );
    let size = std::fs::metadata(&one.base)?.len();
    let differing = disk::differing_bytes(&one.base, &one.changed)?;
    let share = differing as f64 / size as f64;
    assert!((0.005..0.15).contains(&share), "{share}");
    // Made once: a second call with the same spec finds it.
    let again = ensure(a.path(), spec)?;
    assert_eq!(disk::sha256(&again.base)?, disk::sha256(&one.base)?);
    Ok(())
}
