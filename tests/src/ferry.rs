//! Running the real `ferry` binary, as a user would, and reading what it prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// The `ferry` binary of this workspace's target directory (`FERRY_BIN` overrides).
pub fn ferry_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_BIN") {
        return Ok(PathBuf::from(p));
    }
    // Tests run from <target>/<profile>/deps/, binaries from <target>/<profile>/; ferry
    // is in <target>/<profile>/.
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("cannot locate the target directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("cannot locate the target directory")?;
    }
    let bin = dir.join("ferry");
    if !bin.exists() {
        bail!(
            "{} not built: run `cargo build --workspace --bins` first",
            bin.display()
        );
    }
    Ok(bin)
}

pub struct Ferry {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("ferry printed no JSON: {}", self.stdout))
    }

    /// The lines ferry wrote on stderr.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl Ferry {
    pub fn new(config: &Path, env: Vec<(String, String)>) -> Result<Self> {
        Ok(Ferry {
            bin: ferry_bin()?,
            config: config.to_path_buf(),
            env,
        })
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("FERRY_CONFIG", &self.config)
            .env_remove("FERRY_STORE")
            .env_remove("FERRY_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<Run> {
        let out: Output = self.command(args).output().context("running ferry")?;
        Ok(Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs with `--json`, fails unless it exits 0, returns the document.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.push("--json");
        let r = self.run(&a)?;
        if !r.ok() {
            bail!(
                "ferry {} failed ({:?}): {}",
                args.join(" "),
                r.code,
                r.stderr
            );
        }
        r.json()
    }

    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ferry")
    }
}

/// A `[[host]]` entry.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub name: String,
    pub ssh: Option<String>,
    pub identity: Option<PathBuf>,
    pub disk: PathBuf,
    pub known_hosts: Option<PathBuf>,
    pub extra: String,
}

impl HostEntry {
    /// A host whose disk is read on the appliance itself (no SSH).
    pub fn local(name: &str, disk: &Path) -> Self {
        HostEntry {
            name: name.into(),
            ssh: None,
            identity: None,
            disk: disk.to_path_buf(),
            known_hosts: None,
            extra: String::new(),
        }
    }
}

/// Writes a `ferry.toml`.
pub fn write_config(
    path: &Path,
    store: &str,
    table: Option<&str>,
    hosts: &[HostEntry],
) -> Result<()> {
    let mut s = format!("store = \"{store}\"\n");
    if let Some(t) = table {
        s += &format!(
            "[aws]\nregion = \"{}\"\ntable = \"{t}\"\n",
            crate::moto::REGION
        );
    }
    for h in hosts {
        s += &format!(
            "\n[[host]]\nname = \"{}\"\ndisk = \"{}\"\n",
            h.name,
            h.disk.display()
        );
        if let Some(a) = &h.ssh {
            s += &format!("ssh = \"{a}\"\n");
        }
        if let Some(i) = &h.identity {
            s += &format!("identity = \"{}\"\n", i.display());
        }
        if let Some(k) = &h.known_hosts {
            s += &format!("known_hosts = \"{}\"\n", k.display());
        }
        s += &h.extra;
    }
    std::fs::write(path, s)?;
    Ok(())
}
