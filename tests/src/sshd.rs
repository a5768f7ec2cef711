//! OpenSSH `sshd` test hosts: each on its own loopback address and port, with its own
//! host key, an authorized client key, a disk image, and a `bin/` directory that comes
//! first on the session's PATH (for stand-in commands such as `cat` or `lvcreate`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procs::{free_port, wait_for_port, Proc};

const SSHD: &str = "/usr/sbin/sshd";
static NEXT_IP: AtomicU8 = AtomicU8::new(2);

pub fn keygen(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .context("running ssh-keygen (package openssh-client)")?;
    if !st.success() {
        bail!("ssh-keygen failed for {}", path.display());
    }
    Ok(())
}

pub struct SshHost {
    pub name: String,
    pub dir: PathBuf,
    pub ip: String,
    pub port: u16,
    /// Private key authorized on this host.
    pub client_key: PathBuf,
    pub disk: PathBuf,
    /// The network namespace sshd runs in (`None`: the appliance's own).
    pub netns: Option<String>,
    /// The PATH of sessions.
    path: String,
    proc: Option<Proc>,
}

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl SshHost {
    /// Starts sshd for a host whose files live in `root/<name>/`; `client_key` is the
    /// private key it authorizes (its `.pub` beside it).
    pub fn start(root: &Path, name: &str, client_key: &Path) -> Result<Self> {
        let n = NEXT_IP.fetch_add(1, Ordering::Relaxed).max(2);
        let ip = format!("127.0.0.{n}");
        let port = free_port(&ip)?;
        Self::start_at(root, name, client_key, None, ip, port)
    }

    /// Starts sshd inside network namespace `netns`, on `ip`:22, with the hostname
    /// `name`.
    pub fn start_in_netns(
        root: &Path,
        name: &str,
        client_key: &Path,
        netns: &str,
        ip: &str,
    ) -> Result<Self> {
        Self::start_at(
            root,
            name,
            client_key,
            Some(netns.to_string()),
            ip.to_string(),
            22,
        )
    }

    /// Starts sshd on `ip`:`port` presenting the host key of `like` (a machine started
    /// from another's disk, as a recovery instance is), its own disk in `root/<name>/`.
    pub fn start_like(
        root: &Path,
        name: &str,
        client_key: &Path,
        ip: &str,
        port: u16,
        like: &SshHost,
    ) -> Result<Self> {
        Self::start_keyed(
            root,
            name,
            client_key,
            None,
            ip.to_string(),
            port,
            Some(&like.dir.join("host_key")),
        )
    }

    fn start_at(
        root: &Path,
        name: &str,
        client_key: &Path,
        netns: Option<String>,
        ip: String,
        port: u16,
    ) -> Result<Self> {
        Self::start_keyed(root, name, client_key, netns, ip, port, None)
    }

    fn start_keyed(
        root: &Path,
        name: &str,
        client_key: &Path,
        netns: Option<String>,
        ip: String,
        port: u16,
        host_key: Option<&Path>,
    ) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} not found: install Debian's openssh-server (scripts/setup.sh)");
        }
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("bin"))?;
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.join("authorized_keys"),
        )?;
        match host_key {
            Some(k) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::copy(k, dir.join("host_key"))?;
                std::fs::copy(k.with_extension("pub"), dir.join("host_key.pub"))?;
                std::fs::set_permissions(
                    dir.join("host_key"),
                    std::fs::Permissions::from_mode(0o600),
                )?;
            }
            None => keygen(&dir.join("host_key"))?,
        }
        let path = format!("{}:{SYSTEM_PATH}", dir.join("bin").display());
        let mut h = SshHost {
            name: name.to_string(),
            disk: dir.join("disk.img"),
            dir,
            ip,
            port,
            client_key: client_key.to_path_buf(),
            netns,
            path,
            proc: None,
        };
        h.launch()?;
        Ok(h)
    }

    fn launch(&mut self) -> Result<()> {
        let d = self.dir.display();
        let config = format!(
            "Port {port}\nListenAddress {ip}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nMaxStartups 100\nMaxSessions 100\n\
             SetEnv PATH={path} HOME={d}/home\nLogLevel ERROR\n",
            port = self.port,
            ip = self.ip,
            path = self.path,
        );
        // The sessions' HOME is the host's own (empty) directory: what the appliance's
        // user keeps in ~/.bashrc (bash reads it for ssh commands) is not the host's.
        std::fs::create_dir_all(self.dir.join("home"))?;
        std::fs::write(self.dir.join("sshd_config"), config)?;
        let log = std::fs::File::create(self.dir.join("sshd.log"))?;
        let mut cmd = match &self.netns {
            // Its own UTS namespace too, so the host has its own hostname.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare", "--uts", "sh", "-c"])
                    .arg("hostname \"$0\" && exec \"$@\"")
                    .args([self.name.as_str(), SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        let mut proc = Proc::spawn(
            &format!("sshd for {}", self.name),
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(self.dir.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        let addr = format!("{}:{}", self.ip, self.port).parse()?;
        wait_for_port(&mut proc, addr, Duration::from_secs(10))
            .with_context(|| format!("see {}/sshd.log", self.dir.display()))?;
        self.proc = Some(proc);
        Ok(())
    }

    /// Stops sshd (the host is then "dead": nothing listens on its port).
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts sshd again after [`SshHost::stop`], with the same address and key.
    pub fn restart(&mut self) -> Result<()> {
        if self.proc.is_none() {
            self.launch()?;
        }
        Ok(())
    }

    /// Restarts sshd on the same address with a brand-new host key.
    pub fn change_host_key(&mut self) -> Result<()> {
        self.stop();
        keygen(&self.dir.join("host_key"))?;
        self.launch()
    }

    pub fn ssh_addr(&self) -> String {
        format!("root@{}:{}", self.ip, self.port)
    }

    /// This host's line for an OpenSSH known_hosts file.
    pub fn known_hosts_line(&self) -> Result<String> {
        let pubkey = std::fs::read_to_string(self.dir.join("host_key.pub"))?;
        let mut parts = pubkey.split_whitespace();
        let (alg, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        Ok(format!("[{}]:{} {alg} {key}\n", self.ip, self.port))
    }

    /// Makes `tools` (found on the system PATH) the only commands of the host's sessions
    /// besides what `bin/` holds: a host that lacks everything else, as a minimal server
    /// lacks `ss`. Restarts sshd.
    pub fn only_tools(&mut self, tools: &[&str]) -> Result<()> {
        for t in tools {
            let found = SYSTEM_PATH
                .split(':')
                .map(|d| Path::new(d).join(t))
                .find(|p| p.exists())
                .with_context(|| format!("{t} is not installed here"))?;
            let link = self.dir.join("bin").join(t);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(found, link)?;
        }
        self.path = self.dir.join("bin").display().to_string();
        self.stop();
        self.launch()
    }

    /// Installs an executable script in the host's `bin/` (first on its PATH).
    pub fn install_command(&self, name: &str, script: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join("bin").join(name);
        std::fs::write(&p, script)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}
