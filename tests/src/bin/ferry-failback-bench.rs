//! `ferry-failback-bench`: a failback of the 2 GiB sample disk after a 1% change, on
//! the local stack, next to what moving the same disk without Ferry costs, in the same
//! run on the same machine.
//!
//! Per round: a one-host group is captured (its AMI built) and failed over by hand; its
//! recovery instance (an sshd test host at the instance's private address with the
//! origin's host key) starts from the launched image and takes the outage's writes (1%
//! of the disk in 256 KiB runs of random bytes, incompressible); then `ferry failback`
//! runs to SUCCEEDED and the run item gives each pass's capture and write times, the
//! bytes uploaded and written, and the cutover window (application down).
//!
//! Peers, on the same two disks: reading the recovery disk over SSH (`ssh host cat
//! disk`, to /dev/null: the floor of any agentless pass today), and a full resync over
//! SSH (`ssh recovery cat disk | ssh origin dd of=disk`: what a failback that knows
//! nothing of what changed writes, every byte).

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_core::keys;
use ferry_tests::dr::{BedHost, DrBed};
use ferry_tests::sshd::SshHost;
use ferry_tests::stack::TABLE;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// The directory of the 2 GiB sample disk (made if missing).
    #[arg(long)]
    workload: Option<std::path::PathBuf>,
    /// Percent of the disk the outage rewrites.
    #[arg(long, default_value_t = 1.0)]
    change_percent: f64,
}

const RUN: u64 = 256 << 10;

fn num(v: &Value) -> f64 {
    v["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn mib(b: f64) -> f64 {
    b / (1u64 << 20) as f64
}

/// Runs `sh -c script`, returns its wall time.
fn timed(script: &str) -> Result<f64> {
    let t = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("{script}: {st}");
    }
    Ok(t.elapsed().as_secs_f64())
}

fn ssh(h: &SshHost, key: &std::path::Path, cmd: &str) -> String {
    format!(
        "ssh -q -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes root@{} {}",
        key.display(),
        h.port,
        h.ip,
        cmd
    )
}

struct Round {
    changed_bytes: u64,
    passes: Vec<(u32, f64, f64, f64, f64, f64)>,
    cutover_s: f64,
    total_s: f64,
    uploaded: f64,
    written: f64,
    ssh_cat_s: f64,
    resync_s: f64,
}

fn round(args: &Args, n: usize) -> Result<Round> {
    let (base, _) = ferry_tests::disk::bench_workload(args.workload.clone())?;
    let mut host = BedHost::new("web1", "web", Some("127.77.0.30"));
    host.extra = "recovery_disk = \"{root}/web1-recovery/disk.img\"\n".into();
    let hooks = |_: &str| "pre_cutover = \"sync\"\npost_cutover = \"true\"\n".to_string();
    let bed = DrBed::new(
        "bench",
        &[host],
        1,
        "1h",
        "failback_heartbeat = \"60s\"\n",
        &hooks,
    )?;
    let origin = bed.stack.host("web1");
    ferry_tests::disk::copy(&base, &origin.disk)?;
    bed.ferry.json(&["protect", "bench"])?;
    eprintln!("round {n}: capture and image of the 2 GiB origin");
    bed.capture_and_build("web1")?;
    let f = bed.ferry.json(&["failover", "bench"])?;
    let launched = &f["run"]["hosts"][0];
    let ip = launched["private_ip"]
        .as_str()
        .context("no recovery address")?;
    let root = bed.stack.path().to_path_buf();
    let dir = root.join("web1-recovery");
    std::fs::create_dir_all(&dir)?;
    ferry_tests::disk::copy(&base, &dir.join("disk.img"))?;
    let recovery = SshHost::start_like(
        &root,
        "web1-recovery",
        &bed.stack.client_key,
        ip,
        origin.port,
        origin,
    )?;
    let size = std::fs::metadata(&recovery.disk)?.len();
    let runs = ((size as f64 * args.change_percent / 100.0) / RUN as f64).round() as usize;
    ferry_tests::disk::scribble(&recovery.disk, 42 + n as u64, runs, RUN as usize)?;
    let changed_bytes = ferry_tests::disk::differing_bytes(&origin.disk, &recovery.disk)?;

    // The peers first, on copies, so that the failback finds the disks as they were.
    let key = &bed.stack.client_key;
    let ssh_cat_s = timed(&format!(
        "{} > /dev/null",
        ssh(&recovery, key, &format!("cat {}", recovery.disk.display()))
    ))?;
    let scratch = origin.dir.join("resync.img");
    let resync_s = timed(&format!(
        "{} | {}",
        ssh(&recovery, key, &format!("cat {}", recovery.disk.display())),
        ssh(
            origin,
            key,
            &format!("dd of={} bs=1M status=none", scratch.display())
        )
    ))?;
    std::fs::remove_file(&scratch)?;

    eprintln!("round {n}: failback ({changed_bytes} bytes differ)");
    let t = Instant::now();
    let out = bed.ferry.json(&["failback", "bench"])?;
    let total_s = t.elapsed().as_secs_f64();
    if out["status"] != "SUCCEEDED" {
        bail!("the failback did not succeed: {out}");
    }
    if std::fs::read(&origin.disk)? != std::fs::read(&recovery.disk)? {
        bail!("the origin does not equal its recovery instance after the failback");
    }
    let name = out["name"].as_str().context("no name")?;
    let item = bed
        .moto()
        .get_item(TABLE, &keys::group_pk("bench"), &keys::run_sk(name))?;
    let run = &item["Item"];
    let mut passes = Vec::new();
    let (mut uploaded, mut written) = (0.0, 0.0);
    for p in [1u32, 2] {
        let m = &run["passes"]["M"][format!("web1/{p}")]["M"];
        let up = num(&m["bytes_uploaded"]);
        let wr = num(&m["origin_bytes_written"]);
        uploaded += up;
        written += wr;
        passes.push((
            p,
            num(&m["capture_s"]),
            num(&m["write_s"]),
            up,
            wr,
            num(&m["origin_bytes_read"]),
        ));
    }
    Ok(Round {
        changed_bytes,
        passes,
        cutover_s: num(&run["cutover_s"]),
        total_s,
        uploaded,
        written,
        ssh_cat_s,
        resync_s,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut rounds = Vec::new();
    for n in 0..args.rounds {
        rounds.push(round(&args, n)?);
    }
    println!(
        "failback of the 2 GiB sample disk after a {:.1}% change ({} round(s), dev build, this machine)",
        args.change_percent,
        rounds.len()
    );
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "round {i}: {:.1} MiB differ; uploaded {:.1} MiB ({:.2}x), written to the origin {:.1} MiB ({:.2}x); wall {:.1} s, cutover window {:.1} s",
            mib(r.changed_bytes as f64),
            mib(r.uploaded),
            r.uploaded / r.changed_bytes as f64,
            mib(r.written),
            r.written / r.changed_bytes as f64,
            r.total_s,
            r.cutover_s
        );
        println!("  | pass | capture | write | uploaded | written | origin read |");
        println!("  |---|---|---|---|---|---|");
        for (p, c, w, up, wr, rd) in &r.passes {
            println!(
                "  | {p} | {c:.1} s | {w:.1} s | {:.1} MiB | {:.1} MiB | {:.0} MiB |",
                mib(*up),
                mib(*wr),
                mib(*rd)
            );
        }
        println!(
            "  peers: ssh cat of the recovery disk {:.1} s; full resync over SSH (ssh cat | ssh dd) {:.1} s, 2048 MiB written",
            r.ssh_cat_s, r.resync_s
        );
    }
    if rounds.len() > 1 {
        let med = |f: &dyn Fn(&Round) -> f64| {
            let mut v: Vec<f64> = rounds.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            match n % 2 {
                1 => v[n / 2],
                _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        };
        println!(
            "medians: uploaded {:.2}x, written {:.2}x of what differs; pass 1 {:.1} s + {:.1} s, pass 2 {:.1} s + {:.1} s (capture + write); cutover window {:.1} s; wall {:.1} s; ssh cat {:.1} s; full resync {:.1} s",
            med(&|r| r.uploaded / r.changed_bytes as f64),
            med(&|r| r.written / r.changed_bytes as f64),
            med(&|r| r.passes[0].1),
            med(&|r| r.passes[0].2),
            med(&|r| r.passes[1].1),
            med(&|r| r.passes[1].2),
            med(&|r| r.cutover_s),
            med(&|r| r.total_s),
            med(&|r| r.ssh_cat_s),
            med(&|r| r.resync_s)
        );
    }
    Ok(())
}
