//! Capture of the live source VM from a real LVM snapshot.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use ferry_tests::vm::{source_image, Hardware, Vm};

use crate::{ferry_on_guest, restore_to};

/// Every path through an LVM capture of the live source VM, on one boot of it (each
/// part on a volume of its own and with a store of its own):
/// - [`capture_restores_byte_for_byte`]: the capture reads a real snapshot, removes it,
///   and the point restores to exactly what the volume held;
/// - [`every_way_out_removes_the_snapshot`]: stale snapshots swept, SIGTERM, a dropped
///   connection, a snapshot device that fails.
#[test]
fn vm_lvm_snapshot_capture_leaves_no_snapshot_whether_it_succeeds_is_stopped_or_fails() -> Result<()>
{
    let image = source_image()?;
    let dir = tempfile::Builder::new().prefix("ferry-vm-").tempdir()?;
    let mut vm = Vm::boot(&image, dir.path(), "source", Hardware::Kvm)?;
    vm.wait_ssh(Duration::from_secs(180))?;
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored)?;
    capture_restores_byte_for_byte(&vm, &image.key, &restored)?;
    let faults = dir.path().join("faults");
    std::fs::create_dir(&faults)?;
    every_way_out_removes_the_snapshot(&vm, &image.key, &faults)?;
    vm.shutdown(Duration::from_secs(30))?;
    Ok(())
}

/// A real `lvcreate --snapshot` in the live guest: the capture reads the snapshot, not
/// the volume that keeps changing, removes it, and the point restores to exactly what
/// the volume held. (A volume of its own, filled by the test, whose content is known;
/// removed at the end.)
fn capture_restores_byte_for_byte(vm: &Vm, key: &Path, dir: &Path) -> Result<()> {
    vm.ssh(
        "lvcreate -q -L 96M -n data vg && head -c 100663296 /dev/urandom > /dev/vg/data && sync",
    )?;
    let want = vm.ssh("sha256sum /dev/vg/data")?;
    let want = want
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let ferry = ferry_on_guest(dir, vm, key, "64M")?;
    let cap = ferry.json(&["capture", "source", "--accept-new-host-key"])?;
    assert_eq!(cap["consistency"], "lvm-snapshot", "{cap}");
    // The snapshot is gone: only the volumes the guest had.
    let lvs = vm.ssh("lvs --noheadings -o lv_name vg")?;
    let mut names: Vec<&str> = lvs.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["data", "root"], "{lvs}");
    let restored = dir.join("restored.img");
    restore_to(&ferry, &restored)?;
    assert_eq!(ferry_tests::disk::sha256(&restored)?, want);
    vm.ssh("lvremove -q -f vg/data >/dev/null")?;
    Ok(())
}

/// The ferry snapshots of `vg` and every other volume, sorted.
fn volumes(vm: &Vm) -> Result<Vec<String>> {
    let lvs = vm.ssh("lvs --noheadings -o lv_name vg")?;
    let mut names: Vec<String> = lvs.split_whitespace().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

/// In the guest, waits (at most 60 s) until a capture's snapshot of `vg/data` exists.
/// (It ends with the check, so that commands after it run once the snapshot is there.)
const WAIT_FOR_SNAPSHOT: &str = "for i in $(seq 600); do lvs --noheadings -o lv_name vg | grep -q ferry-data- && break; sleep 0.1; done; lvs --noheadings -o lv_name vg | grep -q ferry-data-";

/// Every path out of an LVM capture with the guest's real LVM: snapshots older than
/// any capture are swept by the next capture (a young one, someone else's capture in
/// progress, stays); SIGTERM stops a capture within the 10 s grace and removes its snapshot; a
/// connection killed mid-read (the guest's sshd session processes, SIGKILL) fails the
/// capture, which removes the snapshot over a new connection; a snapshot whose device
/// fails while it is read (device-mapper's error target put in its place) fails the
/// capture, which removes it. No failed capture writes a point.
fn every_way_out_removes_the_snapshot(vm: &Vm, key: &Path, dir: &Path) -> Result<()> {
    // A volume of zeros (nothing written to it): long enough to read that a test can
    // act during the read.
    vm.ssh("lvcreate -q -L 256M -n data vg >/dev/null")?;
    let ferry = ferry_on_guest(dir, vm, key, "8M")?;
    let points = |n: usize| -> Result<()> {
        let p = ferry.json(&["points", "source"])?;
        assert_eq!(p.as_array().map(Vec::len), Some(n), "{p}");
        Ok(())
    };
    let base = ["data".to_string(), "root".to_string()];

    // Stale and young snapshots, as dead appliances would leave them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let stale = format!("ferry-data-deadbeef-{}", now - 13 * 3600);
    let young = format!("ferry-data-cafebabe-{}", now - 60);
    vm.ssh(&format!(
        "lvcreate -q -s -L 8M -n {stale} vg/data >/dev/null && lvcreate -q -s -L 8M -n {young} vg/data >/dev/null"
    ))?;
    ferry.json(&["capture", "source", "--accept-new-host-key"])?;
    let mut want = vec![young.clone(), base[0].clone(), base[1].clone()];
    want.sort();
    assert_eq!(
        volumes(vm)?,
        want,
        "the stale snapshot is swept, the young one stays"
    );
    vm.ssh(&format!("lvremove -q -f vg/{young} >/dev/null"))?;
    points(1)?;

    // SIGTERM once the snapshot exists.
    let mut child = ferry.spawn(&["capture", "source"])?;
    vm.ssh(WAIT_FOR_SNAPSHOT)?;
    // SAFETY: a signal to this test's own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        anyhow::ensure!(
            signalled.elapsed() < Duration::from_secs(20),
            "ferry did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_in = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&child.wait_with_output()?.stderr).into_owned();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Within the 10 s a command has to stop cleanly (the README's promise): a real
    // `lvremove` in an emulated guest takes seconds.
    assert!(stopped_in < Duration::from_secs(12), "{stopped_in:?}");
    assert_eq!(volumes(vm)?, base, "SIGTERM left the snapshot");
    points(1)?;
    println!("FAULT | capture | SIGTERM during an LVM capture (real guest) | stops within the 10 s grace, exit 1, no point; the snapshot is removed |");

    // The connection killed: every root SSH session's process in the guest, the one
    // reading the snapshot and the test's own (which therefore reports an error).
    let child = ferry.spawn(&["capture", "source"])?;
    vm.ssh(WAIT_FOR_SNAPSHOT)?;
    let _ = vm.ssh("pkill -9 -f '^sshd: root@notty'");
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(volumes(vm)?, base, "a dropped connection left the snapshot");
    points(1)?;
    println!("FAULT | capture | SSH connection dropped during an LVM capture (real guest) | exit 1, no point; the snapshot is removed over a new connection |");

    // The snapshot's device fails while it is read: device-mapper's error target in
    // place of its table, so that every read of it fails from then on.
    let child = ferry.spawn(&["capture", "source"])?;
    vm.ssh(&format!(
        "{WAIT_FOR_SNAPSHOT} && dmsetup wipe_table $(dmsetup ls | awk '/^vg-ferry--data--/ && !/-cow/ {{ print $1 }}')"
    ))?;
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Input/output error") && stderr.contains("no point was written"),
        "{stderr}"
    );
    assert_eq!(volumes(vm)?, base, "a failed read left the snapshot");
    points(1)?;
    println!("FAULT | capture | the LVM snapshot's device fails while read (real guest) | exit 1, no point; the snapshot is removed |");
    Ok(())
}
