//! `snapshot = "lvm"` with a snapshot that cannot be read: the capture fails and removes
//! it. The other paths of an LVM capture (read, swept, SIGTERM, a dropped connection)
//! run against a real guest's LVM (the VM tests' `snapshot`); this one stays here
//! because a real snapshot cannot be made unreadable on demand in the middle of a
//! read. There is no device-mapper on this machine, so the host gets stand-in
//! `lvcreate`, `lvremove`, `lvs` and `sudo` commands (first on its PATH) that act on
//! plain files under /dev/<vg>/ and log how they were called, and `sudo -n` is checked
//! on the way.

use std::path::{Path, PathBuf};

use anyhow::Result;
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
fn unreadable_snapshot_is_removed_when_the_capture_fails() -> Result<()> {
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
