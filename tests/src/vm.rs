//! The VM test bed: real guests under QEMU (software emulation: KVM cannot run guests
//! on these machines), headless, reachable over SSH on 127.0.0.1 through a user-mode
//! network port forward, one at a time.
//!
//! The source server's disk is built once per machine by `tests/vm/build-source.sh`
//! (cached beside the cargo target dir, keyed by the script's hash) and each test boots
//! a qcow2 overlay of it, so tests never change the base. A VM boots as a server that
//! ran on KVM (virtio disk and NIC) or as EC2 presents an instance (the disk on NVMe, an
//! e1000 NIC the source never had), its serial console written to a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::procs::{free_port, Proc};

/// One VM at a time in this process (each uses most of a core for seconds).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How a disk and a NIC are presented to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardware {
    /// virtio-blk and virtio-net: where the source server ran.
    Kvm,
    /// The disk on NVMe and another NIC (e1000, another MAC address, another PCI slot:
    /// the guest names it ens5), as EC2's Nitro presents an instance.
    Nitro,
}

/// The built source disk and the key its root account takes; beside them the
/// conversion helper's files (its root account takes the same key).
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub disk: PathBuf,
    pub key: PathBuf,
    pub helper: PathBuf,
}

impl SourceImage {
    /// A `[convert]` section naming the helper's files (software emulation: KVM opens
    /// here but cannot run guests).
    pub fn convert_section(&self) -> String {
        format!(
            "[convert]\naccel = \"tcg\"\nhelper_kernel = \"{}\"\nhelper_initrd = \"{}\"\nhelper_root = \"{}\"\nhelper_identity = \"{}\"\n",
            self.helper.join("vmlinuz").display(),
            self.helper.join("initrd.img").display(),
            self.helper.join("root.raw").display(),
            self.key.display()
        )
    }
}

/// This process's turn to run a VM, for a VM that the test does not start itself (the
/// conversion helper `ferry convert` boots): held, no [`Vm`] boots.
pub fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::disk::repo_root().join("target"));
    target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(target)
        .join("vm")
}

/// Fails loudly when QEMU is missing (`scripts/setup.sh` installs it).
pub fn require_qemu() -> Result<()> {
    for tool in ["qemu-system-x86_64", "qemu-img", "mmdebstrap", "sfdisk"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            bail!("{tool} is not installed: run scripts/setup.sh (the VM tests need QEMU)");
        }
    }
    Ok(())
}

/// The source disk, built on first use (under a lock file: test processes share it).
pub fn source_image() -> Result<SourceImage> {
    require_qemu()?;
    let script = crate::disk::repo_root().join("tests/vm/build-source.sh");
    let text = std::fs::read(&script).context("reading build-source.sh")?;
    let key = blake3::hash(&text).to_hex()[..16].to_string();
    let dir = cache_dir().join(format!("source-{key}"));
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::File::create(dir.join("lock"))?;
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", dir.display());
    }
    let image = SourceImage {
        disk: dir.join("source.raw"),
        key: dir.join("key"),
        helper: dir.join("helper"),
    };
    if !dir.join("done").exists() {
        if !image.key.exists() {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(&image.key)
                .status()?;
            if !st.success() {
                bail!("ssh-keygen failed");
            }
        }
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .arg(image.key.with_extension("pub"))
            .output()
            .context("running build-source.sh")?;
        if !out.status.success() {
            bail!(
                "building the source VM failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!("source VM disk built in {:.0?}", started.elapsed());
        std::fs::File::create(dir.join("done"))?.write_all(b"ok\n")?;
    }
    Ok(image)
}

/// A running guest; powered off (killed) when dropped.
pub struct Vm {
    pub ssh_port: u16,
    pub serial: PathBuf,
    pub overlay: PathBuf,
    key: PathBuf,
    proc: Proc,
    /// When QEMU started (after this VM's turn came): what boot times count from.
    powered_on: Instant,
    _turn: MutexGuard<'static, ()>,
}

impl Vm {
    /// Boots a new overlay of `base` (raw) in `dir` as `hw` presents it.
    pub fn boot(base: &SourceImage, dir: &Path, name: &str, hw: Hardware) -> Result<Vm> {
        let overlay = dir.join(format!("{name}.qcow2"));
        let st = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&base.disk)
            .arg(&overlay)
            .status()?;
        if !st.success() {
            bail!("qemu-img create {}", overlay.display());
        }
        Self::boot_disk(&overlay, &base.key, dir, name, hw)
    }

    /// Boots `disk` (qcow2) as it is, from its own bootloader.
    pub fn boot_disk(disk: &Path, key: &Path, dir: &Path, name: &str, hw: Hardware) -> Result<Vm> {
        Self::start(disk, key, dir, name, hw, None)
    }

    /// Boots `disk` with a kernel, an initramfs and a command line given to QEMU (the
    /// disk's own, copied out, with the serial console added).
    pub fn boot_kernel(
        disk: &Path,
        key: &Path,
        dir: &Path,
        name: &str,
        hw: Hardware,
        kernel: (&Path, &Path, &str),
    ) -> Result<Vm> {
        Self::start(disk, key, dir, name, hw, Some(kernel))
    }

    /// Boots the conversion helper's system as a rescue system (its kernel given to
    /// QEMU, its root on the first disk and never written) with `disk` (qcow2) attached
    /// as the second disk, `/dev/vdb`: a server's disk written while the server is down.
    pub fn boot_rescue(disk: &Path, image: &SourceImage, dir: &Path, name: &str) -> Result<Vm> {
        let drives = vec![
            format!(
                "file={},format=raw,if=none,id=d0,snapshot=on",
                image.helper.join("root.raw").display()
            ),
            "virtio-blk-pci,drive=d0".to_string(),
            format!("file={},format=qcow2,if=none,id=d1", disk.display()),
            "virtio-blk-pci,drive=d1".to_string(),
        ];
        let kernel = image.helper.join("vmlinuz");
        let initrd = image.helper.join("initrd.img");
        Self::spawn(
            drives,
            "virtio-net-pci,netdev=n0",
            &image.key,
            disk,
            dir,
            name,
            Some((
                &kernel,
                &initrd,
                "root=/dev/vda rw console=ttyS0 net.ifnames=0",
            )),
        )
    }

    fn start(
        disk: &Path,
        key: &Path,
        dir: &Path,
        name: &str,
        hw: Hardware,
        kernel: Option<(&Path, &Path, &str)>,
    ) -> Result<Vm> {
        let (disk_dev, nic) = match hw {
            Hardware::Kvm => ("virtio-blk-pci,drive=d0", "virtio-net-pci,netdev=n0"),
            Hardware::Nitro => (
                "nvme,drive=d0,serial=ferry",
                "e1000,netdev=n0,mac=0e:46:52:52:59:01,addr=0x5",
            ),
        };
        let drives = vec![
            format!("file={},format=qcow2,if=none,id=d0", disk.display()),
            disk_dev.to_string(),
        ];
        Self::spawn(drives, nic, key, disk, dir, name, kernel)
    }

    /// `drives`: pairs of `-drive` and `-device` values.
    fn spawn(
        drives: Vec<String>,
        nic: &str,
        key: &Path,
        disk: &Path,
        dir: &Path,
        name: &str,
        kernel: Option<(&Path, &Path, &str)>,
    ) -> Result<Vm> {
        let turn = turn();
        let ssh_port = free_port("127.0.0.1")?;
        let serial = dir.join(format!("{name}.serial.log"));
        let mut cmd = Command::new("qemu-system-x86_64");
        if let Some((vmlinuz, initrd, append)) = kernel {
            cmd.arg("-kernel")
                .arg(vmlinuz)
                .arg("-initrd")
                .arg(initrd)
                .args(["-append", append]);
        }
        for pair in drives.chunks(2) {
            cmd.args(["-drive", &pair[0], "-device", &pair[1]]);
        }
        let proc = Proc::spawn(
            &format!("VM {name}"),
            cmd.args(["-accel", "tcg,tb-size=256", "-smp", "1", "-m", "1024"])
                .args(["-display", "none", "-monitor", "none", "-nodefaults"])
                .args([
                    "-netdev",
                    &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"),
                    "-device",
                    nic,
                ])
                .arg("-serial")
                .arg(format!("file:{}", serial.display()))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )?;
        Ok(Vm {
            ssh_port,
            serial,
            overlay: disk.to_path_buf(),
            key: key.to_path_buf(),
            proc,
            powered_on: Instant::now(),
            _turn: turn,
        })
    }

    fn ssh_command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=3",
        ])
        .arg("-i")
        .arg(&self.key)
        .args(["-p", &self.ssh_port.to_string(), "root@127.0.0.1", cmd]);
        c
    }

    /// Runs `cmd` as root in the guest; its stdout, or why it failed.
    pub fn ssh(&self, cmd: &str) -> Result<String> {
        let out = self.ssh_command(cmd).output()?;
        if !out.status.success() {
            bail!(
                "in the VM, {cmd}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits until sshd answers a real login (slirp accepts the forwarded port long
    /// before), at most `timeout` after power-on (not counting the wait for this VM's
    /// turn); returns how long after power-on.
    pub fn wait_ssh(&mut self, timeout: Duration) -> Result<Duration> {
        let started = self.powered_on;
        loop {
            self.proc.check_alive()?;
            if self
                .ssh_command("true")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!(
                    "no SSH login after {timeout:?}; the serial console:\n{}",
                    self.serial_text()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until the serial console shows `needle`, at most `timeout` after power-on;
    /// returns how long after power-on.
    pub fn wait_serial(&mut self, needle: &str, timeout: Duration) -> Result<Duration> {
        let started = self.powered_on;
        loop {
            if self.serial_text().contains(needle) {
                return Ok(started.elapsed());
            }
            self.proc.check_alive()?;
            if started.elapsed() > timeout {
                bail!(
                    "the serial console never showed {needle:?} within {timeout:?}:\n{}",
                    self.serial_text()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// Powers off cleanly (`poweroff`, then waits for QEMU to exit, at most `timeout`).
    pub fn shutdown(mut self, timeout: Duration) -> Result<()> {
        let _ = self.ssh_command("systemctl poweroff").output();
        let start = Instant::now();
        while self.proc.check_alive().is_ok() {
            if start.elapsed() > timeout {
                bail!("the VM did not power off within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(())
    }
}
