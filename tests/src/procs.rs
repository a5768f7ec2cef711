//! Child processes owned by a handle, free ports, readiness checks, and finding the
//! processes a fault test kills (a host's `dd` writers, an sshd's sessions).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A child process that is killed (and reaped) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    /// The process, for its pipes.
    pub fn child_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process already exited (a peer that died must not pass silently).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early with {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port that was free a moment ago on `ip`.
pub fn free_port(ip: &str) -> Result<u16> {
    let l = TcpListener::bind((ip, 0)).with_context(|| format!("binding a free port on {ip}"))?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections on `addr`, while `proc` stays alive.
pub fn wait_for_port(proc: &mut Proc, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        proc.check_alive()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{} did not listen on {addr} within {timeout:?}", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every process as (pid, parent pid, command line with spaces for NULs).
fn processes() -> Vec<(i32, i32, Vec<Vec<u8>>)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: i32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args = raw.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
            Some((pid, ppid, args))
        })
        .collect()
}

/// The pids of `dd` processes writing to `disk` (argv[0] `dd`, an `of=` naming it).
pub fn dd_writers(disk: &std::path::Path) -> Vec<i32> {
    let want = format!("of={}", disk.display()).into_bytes();
    processes()
        .into_iter()
        .filter(|(_, _, args)| {
            args.first().is_some_and(|a| a.ends_with(b"dd")) && args.contains(&want)
        })
        .map(|(pid, _, _)| pid)
        .collect()
}

/// The pids of the per-connection processes of the sshd started with `config` (the
/// listener renames itself, `sshd: ... -f CONFIG [listener] ...`: matched as text).
pub fn sshd_sessions(config: &std::path::Path) -> Vec<i32> {
    let want = config.display().to_string();
    let all = processes();
    let listeners: Vec<i32> = all
        .iter()
        .filter(|(_, _, args)| {
            let line: Vec<u8> = args.join(&b' ');
            String::from_utf8_lossy(&line).contains(&want)
        })
        .map(|(p, _, _)| *p)
        .collect();
    all.iter()
        .filter(|(_, pp, _)| listeners.contains(pp))
        .map(|(p, _, _)| *p)
        .collect()
}

/// SIGKILL to each of `pids`.
pub fn kill9(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: a plain kill(2); the callers pass processes of their own test peers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A program on the PATH or in `~/.cargo/bin` (where `cargo install` puts peers).
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(h) = home {
        dirs.push(h.join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.exists())
}
