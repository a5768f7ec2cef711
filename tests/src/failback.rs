//! The failback test bed: a two-tier group (db, web) captured with built images, its
//! origin holding writes made after its last capture, failed over by hand, and then
//! for each host a "recovery instance": an sshd test host at the instance's recorded
//! private address presenting the origin's host key (it was started from the origin's
//! disk), whose disk starts as the launched point's image and then takes the outage's
//! writes. The origin is repaired (its sshd back, its services down: the post-cutover
//! hook starts them).
//!
//! The origin hosts count what is written to their disks with a `dd` in front of the
//! real one (each write's byte count, logged), so a test checks the bytes written
//! independently of what Ferry reports.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::{RngCore, SeedableRng};

use crate::dr::{BedHost, DrBed};
use crate::ferry::ferry_bin;
use crate::sshd::SshHost;

/// A region the test wrote: (offset, length).
pub type Region = (u64, u64);

pub struct HomeBed {
    pub bed: DrBed,
    pub failover_run: String,
    /// The recovery instance of each origin host, by host name.
    pub recovery: Vec<(String, SshHost)>,
    /// What the test wrote, by host: on the origin after its last capture, and on the
    /// recovery instance during the outage.
    pub origin_writes: Vec<(String, Vec<Region>)>,
    pub outage_writes: Vec<(String, Vec<Region>)>,
}

pub const HOSTS: [(&str, &str, &str); 2] =
    [("db1", "db", "127.77.0.20"), ("web1", "web", "127.77.0.21")];
/// What the pre-cutover hook writes on each recovery instance (the application's last
/// writes as it stops): this many bytes at this offset.
pub const STOP_WRITE: Region = (12 << 20, 64 << 10);

/// Writes `len` random bytes at `offset` of `path`.
pub fn write_random(path: &Path, offset: u64, len: u64, seed: u64) -> Result<()> {
    let mut buf = vec![0u8; len as usize];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut buf);
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(&buf)?;
    f.sync_all()?;
    Ok(())
}

fn install(host: &SshHost, name: &str, script: &str) -> Result<()> {
    host.install_command(name, script)
}

/// A `dd` in front of the real one: a write (`of=`) optionally waits first (a slow
/// origin), then runs, and the bytes it really copied (its own count) are logged to
/// `dd-writes.log` in the host's directory.
fn count_writes(host: &SshHost, sleep_s: u32) -> Result<()> {
    let log = host.dir.join("dd-writes.log");
    let script = r#"#!/bin/sh
case "$*" in *of=*) ;; *) exec /bin/dd "$@";; esac
sleep SLEEP
err=$(mktemp)
/bin/dd "$@" status=progress 2>"$err"
rc=$?
tr '\r' '\n' < "$err" | sed -n 's/^\([0-9][0-9]*\) bytes.*/\1/p' | tail -n 1 >> LOG
rm -f "$err"
exit $rc
"#;
    install(
        host,
        "dd",
        &script
            .replace("SLEEP", &sleep_s.to_string())
            .replace("LOG", &log.display().to_string()),
    )
}

/// Bytes the origin's `dd`s were asked to write so far.
pub fn bytes_written(host: &SshHost) -> u64 {
    std::fs::read_to_string(host.dir.join("dd-writes.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum()
}

impl HomeBed {
    /// The bed, failed over, its recovery instances written to, its origin repaired.
    /// `slow_origin_s`: every write to an origin disk waits this long first.
    pub fn new(disk_mib: usize, slow_origin_s: u32) -> Result<Self> {
        let hosts: Vec<BedHost> = HOSTS
            .iter()
            .map(|(h, t, ip)| {
                let mut b = BedHost::new(h, t, Some(ip));
                b.extra = format!("recovery_disk = \"{{root}}/{h}-recovery/disk.img\"\n");
                b
            })
            .collect();
        let hooks =
            |_: &str| "pre_cutover = \"stop-shop\"\npost_cutover = \"start-shop\"\n".to_string();
        let mut bed = DrBed::new(
            "shop",
            &hosts,
            disk_mib,
            "5s",
            "failback_heartbeat = \"6s\"\n",
            &hooks,
        )?;
        bed.ferry.json(&["protect", "shop"])?;
        let peer = ferry_bin()?.with_file_name("ferry-tcp-peer");
        for (h, _, _) in HOSTS {
            let origin = bed.stack.host(h);
            count_writes(origin, slow_origin_s)?;
            install(
                origin,
                "start-shop",
                &format!(
                    "#!/bin/sh\nsetsid {peer} --address {ip} --listen {port} </dev/null >/dev/null 2>&1 &\necho $! > {dir}/service.pid\n",
                    peer = peer.display(),
                    ip = origin.ip,
                    port = bed.port(h),
                    dir = origin.dir.display()
                ),
            )?;
            bed.capture_and_build(h)?;
        }
        // The origin takes writes after its last capture, then fails.
        let db = bed.stack.host("db1").disk.clone();
        write_random(&db, 8 << 20, 1 << 20, 7)?;
        let origin_writes = vec![
            ("db1".to_string(), vec![(8 << 20, 1 << 20)]),
            ("web1".to_string(), vec![]),
        ];
        bed.fail_origin();
        let r = bed.ferry.run(&["failover", "shop", "--json"])?;
        let f = r.json()?;
        if f["status"] != "SUCCEEDED" {
            bail!("the failover did not succeed: {f}\n{}", r.stderr);
        }
        let failover_run = f["name"].as_str().context("no run name")?.to_string();
        let root = bed.stack.path().to_path_buf();
        let mut recovery = Vec::new();
        let outage: [(&str, Vec<Region>); 2] = [
            ("db1", vec![(2 << 20, 2 << 20), (11 << 20, 512 << 10)]),
            ("web1", vec![(5 << 20, 1 << 20)]),
        ];
        for (i, (h, regions)) in outage.iter().enumerate() {
            let launched = f["run"]["hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["host"] == *h)
                .with_context(|| format!("no recovery of {h} in {f}"))?;
            let ip = launched["private_ip"].as_str().context("no private ip")?;
            let point = launched["point"].as_str().context("no point")?;
            let dir = root.join(format!("{h}-recovery"));
            std::fs::create_dir_all(&dir)?;
            let disk = dir.join("disk.img");
            bed.ferry.json(&[
                "restore",
                h,
                "--point",
                point,
                "--to",
                &disk.display().to_string(),
            ])?;
            let origin = bed.stack.host(h);
            let r = SshHost::start_like(
                &root,
                &format!("{h}-recovery"),
                &bed.stack.client_key,
                ip,
                origin.port,
                origin,
            )?;
            install(
                &r,
                "stop-shop",
                &format!(
                    "#!/bin/sh\n/bin/dd if=/dev/urandom of={disk} bs={len} count=1 seek={off} oflag=seek_bytes conv=notrunc status=none && sync && touch {dir}/stopped\n",
                    disk = r.disk.display(),
                    len = STOP_WRITE.1,
                    off = STOP_WRITE.0,
                    dir = r.dir.display()
                ),
            )?;
            for (j, (off, len)) in regions.iter().enumerate() {
                write_random(&r.disk, *off, *len, 100 + (i * 10 + j) as u64)?;
            }
            recovery.push((h.to_string(), r));
        }
        // The origin is repaired: reachable again, its services down.
        for h in &mut bed.stack.hosts {
            h.restart()?;
        }
        let outage_writes = outage
            .into_iter()
            .map(|(h, r)| (h.to_string(), r))
            .collect();
        Ok(HomeBed {
            bed,
            failover_run,
            recovery,
            origin_writes,
            outage_writes,
        })
    }

    pub fn recovery(&self, host: &str) -> &SshHost {
        &self
            .recovery
            .iter()
            .find(|(h, _)| h == host)
            .unwrap_or_else(|| panic!("no recovery instance of {host}"))
            .1
    }

    /// The bytes a failback must change on `host`'s origin: what the outage and the
    /// stop hook wrote, and what the origin wrote after its last capture (undone).
    pub fn changed_bytes(&self, host: &str) -> u64 {
        let sum = |w: &[(String, Vec<Region>)]| -> u64 {
            w.iter()
                .filter(|(h, _)| h == host)
                .flat_map(|(_, r)| r.iter().map(|(_, l)| *l))
                .sum()
        };
        sum(&self.outage_writes) + sum(&self.origin_writes) + STOP_WRITE.1
    }

    /// The origin services the post-cutover hook started, stopped.
    pub fn stop_services(&self) {
        for (h, _, _) in HOSTS {
            let pid = std::fs::read_to_string(self.bed.stack.host(h).dir.join("service.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let Some(p) = pid {
                crate::procs::kill9(&[p]);
            }
        }
    }
}

impl Drop for HomeBed {
    fn drop(&mut self) {
        self.stop_services();
    }
}
