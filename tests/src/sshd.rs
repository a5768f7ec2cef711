//! OpenSSH `sshd` test hosts: each on its own loopback address and port, with its own
//! host key, an authorized client key, a disk image, and a `bin/` directory that comes
//! first on the session's PATH (for stand-in commands such as `lvcreate`).

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
    proc: Option<Proc>,
}

impl SshHost {
    /// Starts sshd for a host whose files live in `root/<name>/`; `client_key` is the
    /// private key it authorizes (its `.pub` beside it).
    pub fn start(root: &Path, name: &str, client_key: &Path) -> Result<Self> {
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
        keygen(&dir.join("host_key"))?;
        let n = NEXT_IP.fetch_add(1, Ordering::Relaxed).max(2);
        let ip = format!("127.0.0.{n}");
        let port = free_port(&ip)?;
        let mut h = SshHost {
            name: name.to_string(),
            disk: dir.join("disk.img"),
            dir,
            ip,
            port,
            client_key: client_key.to_path_buf(),
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
             SetEnv PATH={d}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nLogLevel ERROR\n",
            port = self.port,
            ip = self.ip,
        );
        std::fs::write(self.dir.join("sshd_config"), config)?;
        let log = std::fs::File::create(self.dir.join("sshd.log"))?;
        let mut proc = Proc::spawn(
            &format!("sshd for {}", self.name),
            Command::new(SSHD)
                .arg("-D")
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

    /// Installs an executable script in the host's `bin/` (first on its PATH).
    pub fn install_command(&self, name: &str, script: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join("bin").join(name);
        std::fs::write(&p, script)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}
