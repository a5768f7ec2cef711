//! Child processes owned by a handle, free ports, readiness checks.

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
