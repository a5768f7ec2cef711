//! `ferry-cbt-bench`: captures over SSH against the raw transport, on the 2 GiB sample
//! disk (or `--workload`) and its copy after a day of changes, in one run, interleaved
//! round by round on one loopback sshd test host:
//! - `ssh host cat disk > /dev/null` (OpenSSH's own client: the transport alone);
//! - Ferry's full capture of the disk, and its incremental capture of the changed disk
//!   (changed blocks: the host hashes, only differing blocks cross);
//! - `ssh host cat disk | rustic backup --stdin`, full and incremental, when rustic is
//!   installed (`scripts/bench-cbt.sh` installs it).
//!
//! Every step is a real process, its wall time measured; Ferry's bytes over the link come
//! from its `capture --json`. Medians over rounds, and each figure's ratio to `ssh cat`
//! of the same disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_tests::ferry::write_config;
use ferry_tests::procs::which;
use ferry_tests::stack::Stack;
use ferry_tests::stats::{measure, measure_out, median, warm};

#[derive(Parser)]
struct Args {
    /// Directory holding disk.img and disk-changed.img (made there if missing).
    #[arg(long, env = "WORKLOAD_DIR")]
    workload: Option<PathBuf>,
    /// Scratch directory for stores and repositories.
    #[arg(long)]
    scratch: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Default)]
struct Figures {
    cat_full: Vec<f64>,
    cat_inc: Vec<f64>,
    ferry_full: Vec<f64>,
    ferry_inc: Vec<f64>,
    rustic_full: Vec<f64>,
    rustic_inc: Vec<f64>,
    wire_full: Vec<f64>,
    wire_inc: Vec<f64>,
    blocks_changed: Vec<f64>,
}

/// `ssh` to the test host with its pinned key, no agent, no config: its arguments.
fn ssh_args(stack: &Stack, kh: &Path, host: &str) -> Vec<String> {
    let h = stack.host(host);
    vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", kh.display()),
        "-i".into(),
        h.client_key.display().to_string(),
        "-p".into(),
        h.port.to_string(),
        format!("root@{}", h.ip),
    ]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (base, changed) = ferry_tests::disk::bench_workload(args.workload.clone())?;
    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-cbt-bench"));
    std::fs::create_dir_all(&scratch)?;
    let ferry = ferry_tests::ferry::ferry_bin()?;
    let rustic = which("rustic");
    if rustic.is_none() {
        println!(
            "rustic is not installed: its rows are left out (scripts/bench-cbt.sh installs it)"
        );
    }

    let mut stack = Stack::new()?;
    stack.add_host("src", Some(&base))?;
    let kh = stack.pinned_known_hosts()?;
    let disk = stack.host("src").disk.clone();
    let size = std::fs::metadata(&base)?.len();
    let store = scratch.join("store");
    let cfg = scratch.join("ferry.toml");
    let capture = |label: &str| -> Result<(f64, serde_json::Value)> {
        let mut c = Command::new(&ferry);
        c.arg("--config")
            .arg(&cfg)
            .args(["--json", "capture", "src"]);
        let (t, _, out) = measure_out(label, &mut c)?;
        let v: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("{label}: {out}"))?;
        Ok((t, v))
    };
    let cat = |label: &str| -> Result<f64> {
        let mut c = Command::new("ssh");
        c.args(ssh_args(&stack, &kh, "src"))
            .arg(format!("cat -- {}", disk.display()));
        Ok(measure(label, &mut c)?.0)
    };
    let rustic_backup = |repo: &Path, label: &str| -> Result<Option<f64>> {
        let Some(r) = &rustic else { return Ok(None) };
        let ssh_cmd = ssh_args(&stack, &kh, "src").join(" ");
        // `--force`: with a parent snapshot, rustic 0.11 finds the stdin entry's
        // metadata equal to the parent's and records the parent's content without
        // reading stdin at all (0.3 s, 0 B read, for a changed disk).
        let script = format!(
            "ssh {ssh_cmd} cat -- {} | {} -r {} --password bench backup --force --stdin-filename disk.img -",
            disk.display(),
            r.display(),
            repo.display()
        );
        Ok(Some(
            measure(label, Command::new("sh").args(["-c", &script]))?.0,
        ))
    };

    let mut f = Figures::default();
    for round in 1..=args.rounds {
        ferry_tests::disk::copy(&base, &disk)?;
        let _ = std::fs::remove_dir_all(&store);
        write_config(
            &cfg,
            &format!("file://{}", store.display()),
            None,
            &[stack.entry("src", &kh)],
        )?;
        let mut init = Command::new(&ferry);
        measure(
            "ferry store init",
            init.arg("--config").arg(&cfg).args(["store", "init"]),
        )?;
        let repo = scratch.join("rustic");
        let _ = std::fs::remove_dir_all(&repo);
        if let Some(r) = &rustic {
            let mut c = Command::new(r);
            measure(
                "rustic init",
                c.arg("-r").arg(&repo).args(["--password", "bench", "init"]),
            )?;
        }

        warm(&[&disk])?;
        f.cat_full.push(cat("ssh cat (full)")?);
        let (t, full) = capture("ferry capture (full)")?;
        if full["method"] != "full" {
            bail!("the first capture was not a full read: {full}");
        }
        f.ferry_full.push(t);
        f.wire_full
            .push(full["bytes_transferred"].as_f64().unwrap_or(f64::NAN));
        if let Some(t) = rustic_backup(&repo, "rustic (full)")? {
            f.rustic_full.push(t);
        }

        ferry_tests::disk::copy(&changed, &disk)?;
        warm(&[&disk])?;
        f.cat_inc.push(cat("ssh cat (changed)")?);
        let (t, inc) = capture("ferry capture (incremental)")?;
        if inc["method"] != "changed-blocks" {
            bail!("the incremental capture did not read changed blocks: {inc}");
        }
        f.ferry_inc.push(t);
        f.wire_inc
            .push(inc["bytes_transferred"].as_f64().unwrap_or(f64::NAN));
        f.blocks_changed
            .push(inc["blocks_changed"].as_f64().unwrap_or(f64::NAN));
        if let Some(t) = rustic_backup(&repo, "rustic (incremental)")? {
            f.rustic_inc.push(t);
        }
        eprintln!(
            "round {round}: cat {:.2}s/{:.2}s, ferry {:.2}s/{:.2}s ({:.1} MiB over the link)",
            f.cat_full[round - 1],
            f.cat_inc[round - 1],
            f.ferry_full[round - 1],
            f.ferry_inc[round - 1],
            f.wire_inc[round - 1] / 1048576.0
        );
    }
    report(&f, size, args.rounds);
    Ok(())
}

fn report(f: &Figures, size: u64, rounds: usize) {
    let m = |v: &Vec<f64>| median(v.clone());
    let (cf, ci) = (m(&f.cat_full), m(&f.cat_inc));
    let mib = size as f64 / 1048576.0;
    println!(
        "\nCaptures over SSH (loopback sshd), {mib:.0} MiB disk, medians of {rounds} rounds\n"
    );
    println!("| step | wall | vs `ssh cat` | over the link |");
    println!("|---|---|---|---|");
    println!("| `ssh host cat disk > /dev/null` | {cf:.2} s | 1.00x | {mib:.0} MiB |");
    let wf = m(&f.wire_full) / 1048576.0;
    println!(
        "| Ferry full capture | {:.2} s | {:.2}x | {wf:.0} MiB |",
        m(&f.ferry_full),
        m(&f.ferry_full) / cf
    );
    if !f.rustic_full.is_empty() {
        println!(
            "| `ssh cat \\| rustic backup --stdin` (full) | {:.2} s | {:.2}x | {mib:.0} MiB |",
            m(&f.rustic_full),
            m(&f.rustic_full) / cf
        );
    }
    println!("| `ssh host cat changed-disk > /dev/null` | {ci:.2} s | 1.00x | {mib:.0} MiB |");
    let wi = m(&f.wire_inc);
    println!(
        "| Ferry incremental (changed blocks: {:.0} of {} changed) | {:.2} s | {:.2}x | {:.1} MiB ({:.2}% of the disk) |",
        m(&f.blocks_changed),
        size.div_ceil(65536),
        m(&f.ferry_inc),
        m(&f.ferry_inc) / ci,
        wi / 1048576.0,
        100.0 * wi / size as f64
    );
    if !f.rustic_inc.is_empty() {
        println!("| `ssh cat \\| rustic backup --stdin` (incremental) | {:.2} s | {:.2}x | {mib:.0} MiB |", m(&f.rustic_inc), m(&f.rustic_inc) / ci);
    }
}
