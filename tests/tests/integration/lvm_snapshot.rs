//! `snapshot = "lvm"`: the capture reads an LVM snapshot taken for it and removes it on
//! every path. There is no device-mapper here, so the host gets stand-in `lvcreate`,
//! `lvremove` and `sudo` commands (first on its PATH) that act on plain files under
//! /dev/<vg>/ and log how they were called.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ferry_tests::disk;
use ferry_tests::ferry::Ferry;
use ferry_tests::sshd::SshHost;
use ferry_tests::stack::Stack;

/// A fake volume group under /dev whose logical volume `root` is the host's disk image.
struct FakeVg {
    dir: PathBuf,
}

impl FakeVg {
    fn new(disk: &Path) -> Result<Self> {
        let name = format!("ferrytest{}-{}", std::process::id(), rand::random::<u32>());
        let dir = Path::new("/dev").join(name);
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::symlink(disk, dir.join("root"))?;
        Ok(FakeVg { dir })
    }

    fn lv(&self) -> String {
        self.dir.join("root").display().to_string()
    }
}

impl Drop for FakeVg {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn install_stand_ins(stack: &Stack, host: &str, snapshot_is_broken: bool) -> Result<PathBuf> {
    let h = stack.host(host);
    let log = h.dir.join("lvm.log");
    let make = if snapshot_is_broken {
        // A snapshot device that cannot be read.
        "mkdir \"/dev/$vg/$name\"".to_string()
    } else {
        // The snapshot holds the origin as it was; then the "live" origin keeps changing.
        "cp \"$(readlink -f \"/dev/$origin\")\" \"/dev/$vg/$name\"\n\
         printf 'WRITTEN-AFTER-SNAPSHOT' | dd of=\"$(readlink -f \"/dev/$origin\")\" bs=1 seek=4096 conv=notrunc status=none"
            .to_string()
    };
    h.install_command(
        "lvcreate",
        &format!(
            "#!/bin/sh\necho \"lvcreate $*\" >> {log}\n\
             while [ $# -gt 0 ]; do case \"$1\" in --name) name=$2; shift 2;; --size) shift 2;; --snapshot) shift;; *) origin=$1; shift;; esac; done\n\
             vg=${{origin%/*}}\n{make}\n",
            log = log.display()
        ),
    )?;
    h.install_command(
        "lvremove",
        &format!(
            "#!/bin/sh\necho \"lvremove $*\" >> {log}\n[ \"$1\" = -f ] && shift\nrm -rf \"/dev/$1\"\n",
            log = log.display()
        ),
    )?;
    h.install_command(
        "lvs",
        &format!(
            "#!/bin/sh\necho \"lvs $*\" >> {log}\nfor a; do vg=$a; done\nfor f in /dev/$vg/*; do echo \"  ${{f##*/}}\"; done\n",
            log = log.display()
        ),
    )?;
    h.install_command(
        "sudo",
        &format!(
            "#!/bin/sh\necho \"sudo $*\" >> {log}\n[ \"$1\" = -n ] || exit 1\nshift\nexec \"$@\"\n",
            log = log.display()
        ),
    )?;
    Ok(log)
}

/// A host with a 1 MiB disk whose logical volume has LVM stand-ins (`broken`: its
/// snapshot cannot be read), `more` done to it, in a config with a file store, inited.
fn small_lvm_host(
    name: &str,
    broken: bool,
    more: impl FnOnce(&SshHost) -> Result<()>,
) -> Result<(Stack, FakeVg, PathBuf, Ferry)> {
    let mut stack = Stack::new()?;
    let d = stack.path().join("d.img");
    std::fs::write(&d, vec![1u8; 1 << 20])?;
    stack.add_host(name, Some(&d))?;
    let vg = FakeVg::new(&stack.host(name).disk)?;
    let log = install_stand_ins(&stack, name, broken)?;
    more(stack.host(name))?;
    let kh = stack.pinned_known_hosts()?;
    let mut e = stack.entry(name, &kh);
    e.disk = PathBuf::from(vg.lv());
    e.extra = "snapshot = \"lvm\"\nsudo = true\n".into();
    let ferry = stack.ferry(&stack.file_store("s"), &[e])?;
    ferry.json(&["store", "init"])?;
    Ok((stack, vg, log, ferry))
}

/// Reading a device never ends (a disk far larger than the test waits for); every
/// other `cat` is the real one.
fn endless_device_reads(h: &SshHost) -> Result<()> {
    h.install_command(
        "cat",
        "#!/bin/sh\n[ \"$1\" = -- ] && shift\ncase \"$1\" in\n\
         /dev/*) while head -c 65536 /dev/urandom; do sleep 0.05; done;;\n\
         *) exec /bin/cat \"$@\";;\nesac\n",
    )
}

/// Waits until the capture took its snapshot and has been reading for a second.
fn wait_for_snapshot(log: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("lvcreate")
    {
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the capture never took its snapshot"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    Ok(())
}

/// Only the origin is left in the volume group, and the host has no point.
fn only_origin_and_no_point(vg: &FakeVg, ferry: &Ferry, host: &str) -> Result<()> {
    let left: Vec<_> = std::fs::read_dir(&vg.dir)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("root")]);
    assert_eq!(
        ferry.json(&["points", host])?.as_array().map(Vec::len),
        Some(0)
    );
    Ok(())
}

#[test]
fn lvm_capture_reads_the_snapshot_and_removes_it() -> Result<()> {
    let (base, _) = disk::workload()?;
    let mut stack = Stack::new()?;
    stack.add_host("db1", Some(&base))?;
    let vg = FakeVg::new(&stack.host("db1").disk)?;
    let log = install_stand_ins(&stack, "db1", false)?;
    let kh = stack.pinned_known_hosts()?;
    let mut e = stack.entry("db1", &kh);
    e.disk = PathBuf::from(vg.lv());
    e.extra = "snapshot = \"lvm\"\nsudo = true\nsnapshot_size = \"2G\"\n".into();
    let ferry = stack.ferry(&stack.file_store("s"), &[e])?;
    ferry.json(&["store", "init"])?;

    let c = ferry.json(&["capture", "db1"])?;
    assert_eq!(c["consistency"], "lvm-snapshot");
    let calls = std::fs::read_to_string(&log)?;
    assert!(
        calls.contains("sudo -n lvcreate --snapshot --name ferry-root-"),
        "{calls}"
    );
    assert!(
        calls.contains("--size 2G") && calls.contains("sudo -n lvremove -f"),
        "{calls}"
    );
    assert!(calls.contains("sudo -n cat -- /dev/"), "{calls}");
    // Only the origin is left in the volume group.
    let left: Vec<_> = std::fs::read_dir(&vg.dir)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("root")]);

    // The point is the disk as it was at the snapshot, not the live disk after it.
    let out = stack.path().join("r.img");
    ferry.json(&["restore", "db1", "--to", out.to_str().unwrap()])?;
    assert_eq!(disk::sha256(&out)?, disk::sha256(&base)?);
    assert_ne!(disk::sha256(&stack.host("db1").disk)?, disk::sha256(&base)?);
    Ok(())
}

#[test]
fn lvm_snapshot_is_removed_when_the_capture_fails() -> Result<()> {
    let (_stack, vg, log, ferry) = small_lvm_host("db2", true, |_| Ok(()))?;

    let r = ferry.run(&["capture", "db2"])?;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let calls = std::fs::read_to_string(&log)?;
    assert!(
        calls.contains("lvremove -f"),
        "the snapshot must be removed on failure: {calls}"
    );
    only_origin_and_no_point(&vg, &ferry, "db2")?;
    Ok(())
}

#[test]
fn sigterm_stops_a_capture_and_removes_its_snapshot() -> Result<()> {
    let (_stack, vg, log, ferry) = small_lvm_host("db3", false, endless_device_reads)?;

    let mut child = ferry.spawn(&["capture", "db3"])?;
    wait_for_snapshot(&log)?;
    // SAFETY: sends a signal to our own child process; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if signalled.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            anyhow::bail!("ferry did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stopped_in = signalled.elapsed();
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stopped_in < std::time::Duration::from_secs(5),
        "{stopped_in:?}"
    );
    let calls = std::fs::read_to_string(&log)?;
    assert!(
        calls.contains("lvremove -f"),
        "the snapshot must be removed on SIGTERM: {calls}"
    );
    only_origin_and_no_point(&vg, &ferry, "db3")?;
    println!("FAULT | capture | SIGTERM during an LVM capture | stops within 5 s, exit 1, no point; the snapshot is removed |");
    Ok(())
}

/// Hardening, defect 9: snapshots that earlier captures left (the appliance died) are
/// removed at the start of the next capture of the host when they are older than any
/// capture takes; a young one (a capture in progress elsewhere) and other volumes stay.
#[test]
fn stale_snapshots_are_swept_by_the_next_capture() -> Result<()> {
    let (_stack, vg, log, ferry) = small_lvm_host("db4", false, |_| Ok(()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let stale = format!("ferry-root-deadbeef-{}", now - 13 * 3600);
    let young = format!("ferry-root-cafebabe-{}", now - 60);
    for n in [&stale, &young, &"data".to_string()] {
        std::fs::write(vg.dir.join(n), b"x")?;
    }
    ferry.json(&["capture", "db4"])?;
    let calls = std::fs::read_to_string(&log)?;
    assert!(
        calls.contains(&format!(
            "lvremove -f {}/{stale}",
            vg.dir.file_name().unwrap().to_str().unwrap()
        )),
        "{calls}"
    );
    assert!(!vg.dir.join(&stale).exists());
    assert!(vg.dir.join(&young).exists() && vg.dir.join("data").exists());
    Ok(())
}

/// Hardening, defect 9: the connection drops mid-capture (its sshd dies): the capture
/// fails, and removes its snapshot over a new connection.
#[test]
fn a_dropped_connection_does_not_leave_the_snapshot() -> Result<()> {
    let (stack, vg, log, ferry) = small_lvm_host("db5", false, endless_device_reads)?;
    let child = ferry.spawn(&["capture", "db5"])?;
    wait_for_snapshot(&log)?;
    let sessions = ferry_tests::procs::sshd_sessions(&stack.host("db5").dir.join("sshd_config"));
    anyhow::ensure!(!sessions.is_empty(), "no sshd session process found");
    ferry_tests::procs::kill9(&sessions);
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let calls = std::fs::read_to_string(&log)?;
    assert!(calls.contains("lvremove -f"), "{calls}");
    only_origin_and_no_point(&vg, &ferry, "db5")?;
    println!("FAULT | capture | SSH connection dropped during an LVM capture | exit 1, no point; the snapshot is removed over a new connection |");
    Ok(())
}
