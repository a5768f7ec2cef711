//! The discovery test bed: a 3-tier web shop in network namespaces. Each host has its
//! own namespace, address and `sshd`, all on one bridge whose first address belongs to
//! the appliance (the test process). Stand-in server processes (`ferry-tcp-peer` under
//! names such as `mysqld`) listen and hold real TCP connections between the hosts.
//! Dropping it stops the processes and deletes the namespaces and the bridge.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::procs::Proc;
use crate::sshd::SshHost;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (package iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub struct BedHost {
    pub name: String,
    pub ip: String,
    pub netns: String,
    pub ssh: SshHost,
}

pub struct TestBed {
    tag: String,
    /// The first three octets of the bed's /24.
    pub net: String,
    pub appliance_ip: String,
    pub hosts: Vec<BedHost>,
    peers: Vec<Proc>,
    peer_bin: PathBuf,
    dir: PathBuf,
}

impl TestBed {
    fn bridge(&self) -> String {
        format!("fbr{}", self.tag)
    }

    /// A bridge and, per `(name, last octet)`, a namespace with sshd on NET.octet:22.
    pub fn start(dir: &Path, client_key: &Path, hosts: &[(&str, u8)]) -> Result<Self> {
        let pid = std::process::id();
        let net = format!("10.{}.{}", 100 + pid % 100, (pid / 100) % 250);
        let bed = TestBed {
            tag: format!("{:x}", pid % 0xffff),
            appliance_ip: format!("{net}.1"),
            net,
            hosts: Vec::new(),
            peers: Vec::new(),
            peer_bin: crate::ferry::ferry_bin()?.with_file_name("ferry-tcp-peer"),
            dir: dir.join("bed"),
        };
        if !bed.peer_bin.exists() {
            bail!(
                "{} not built: run `cargo build --workspace --bins`",
                bed.peer_bin.display()
            );
        }
        std::fs::create_dir_all(&bed.dir)?;
        let mut bed = bed;
        let br = bed.bridge();
        ip(&["link", "add", &br, "type", "bridge"])
            .context("the test bed needs network namespaces and bridges (run as root)")?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", bed.appliance_ip),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])?;
        for (name, last) in hosts {
            bed.add(client_key, name, *last)?;
        }
        Ok(bed)
    }

    fn add(&mut self, client_key: &Path, name: &str, last: u8) -> Result<()> {
        let ns = format!("ferry-{}-{name}", self.tag);
        let veth = format!("fv{}{last}", self.tag);
        let addr = format!("{}.{last}", self.net);
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.bridge()])?;
        ip(&["link", "set", &veth, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &self.appliance_ip,
        ])?;
        let ssh = SshHost::start_in_netns(&self.dir, name, client_key, &ns, &addr)?;
        self.hosts.push(BedHost {
            name: name.to_string(),
            ip: addr,
            netns: ns,
            ssh,
        });
        Ok(())
    }

    pub fn host(&self, name: &str) -> Result<&BedHost> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .with_context(|| format!("no test bed host {name}"))
    }

    /// Runs, inside `host`'s namespace, a stand-in process named `process` that listens
    /// on `listen` and holds `conns` connections to each `(host, port)` of `connect`.
    pub fn run(
        &mut self,
        host: &str,
        process: &str,
        listen: &[u16],
        connect: &[(&str, u16)],
        conns: usize,
    ) -> Result<()> {
        let ns = self.host(host)?.netns.clone();
        let dir = self.dir.join(host).join("proc");
        std::fs::create_dir_all(&dir)?;
        let exe = dir.join(process);
        let _ = std::fs::remove_file(&exe);
        std::os::unix::fs::symlink(&self.peer_bin, &exe)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns]).arg(&exe);
        for p in listen {
            cmd.args(["--listen", &p.to_string()]);
        }
        for (h, p) in connect {
            let to = self.host(h)?.ip.clone();
            cmd.args(["--connect", &format!("{to}:{p}")]);
        }
        cmd.args(["--conns", &conns.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        self.peers
            .push(Proc::spawn(&format!("{process} on {host}"), &mut cmd)?);
        Ok(())
    }

    /// Fails if a stand-in process died (it could not listen or connect).
    pub fn check(&mut self) -> Result<()> {
        for p in &mut self.peers {
            p.check_alive()?;
        }
        Ok(())
    }

    /// Established connections seen in `host`'s namespace (to wait for the traffic).
    pub fn established(&self, host: &str) -> Result<usize> {
        let ns = &self.host(host)?.netns;
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-Htn", "state", "established"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().count())
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        self.peers.clear();
        for h in &mut self.hosts {
            h.ssh.stop();
        }
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
