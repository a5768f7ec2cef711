//! `ferry-bench`: Ferry against restic, rustic, borg and casync on the project's 2 GiB
//! sample disk (`ferry_tests::sample_disk`: an ext4 image and a copy after a day of
//! changes), in one run on one machine, tools interleaved round by round.
//!
//! For each tool and round: a fresh repository in a local directory, a full backup of
//! the image, an incremental backup of the changed image (at the same path, so every
//! tool sees "the same disk, changed"), and a restore of the latest backup to a file.
//! Each step is a real process; wall time, peak RSS (wait4) and bytes added to the
//! repository are measured, and medians over rounds are printed with Ferry's ratio to
//! each peer. Then Ferry's capture over SSH (a loopback sshd test host) is compared
//! with its capture of the same disk from a local path.
//!
//! Both images are read once before each step so that every tool reads from the page
//! cache. Tools not installed are reported as missing, not skipped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_tests::ferry::{write_config, HostEntry};
use ferry_tests::procs::which;
use ferry_tests::stack::Stack;
use ferry_tests::stats::{measure, median, warm};

#[derive(Parser)]
struct Args {
    /// Directory holding disk.img and disk-changed.img: made there if missing; an
    /// earlier workload found there is used as it is.
    #[arg(long, env = "WORKLOAD_DIR")]
    workload: Option<PathBuf>,
    /// Scratch directory for repositories and restores.
    #[arg(long)]
    scratch: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tools to compare Ferry with.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rustic,restic,borg,casync"
    )]
    peers: Vec<String>,
    /// Skip the SSH-versus-local capture comparison.
    #[arg(long)]
    no_ssh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Full,
    Incremental,
    Restore,
}

const STEPS: [Step; 3] = [Step::Full, Step::Incremental, Step::Restore];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Full => "full",
            Step::Incremental => "incremental",
            Step::Restore => "restore",
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    wall_s: f64,
    rss_mib: f64,
    added_mib: f64,
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => total += dir_size(&e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("RESTIC_PASSWORD", "bench")
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_BASE_DIR", "/tmp/ferry-bench-borg-base");
    c
}

/// One tool's three steps on one repository. `src` is the backed-up path; the caller
/// swaps its content between the full and the incremental step.
struct Tool {
    name: String,
    ferry: PathBuf,
    rustic: PathBuf,
}

impl Tool {
    fn init(&self, repo: &Path, work: &Path, src: &Path) -> Result<()> {
        let r = repo.to_str().context("repo path")?;
        let mut c = match self.name.as_str() {
            "ferry" => {
                write_config(
                    &work.join("ferry.toml"),
                    &format!("file://{r}"),
                    None,
                    &[HostEntry {
                        name: "bench".into(),
                        ssh: None,
                        identity: None,
                        disk: src.to_path_buf(),
                        known_hosts: None,
                        extra: String::new(),
                    }],
                )?;
                let mut c = Command::new(&self.ferry);
                c.arg("--config")
                    .arg(work.join("ferry.toml"))
                    .args(["store", "init"]);
                c
            }
            "restic" => {
                let mut c = cmd("restic");
                c.args(["-r", r, "init"]);
                c
            }
            "rustic" => {
                let mut c = cmd(self.rustic.to_str().context("rustic path")?);
                c.args(["-r", r, "--password", "bench", "init"]);
                c
            }
            "borg" => {
                let mut c = cmd("borg");
                c.args(["init", "-e", "none", r]);
                c
            }
            "casync" => {
                std::fs::create_dir_all(repo)?;
                return Ok(());
            }
            other => bail!("unknown tool {other}"),
        };
        measure(&format!("{} init", self.name), &mut c)?;
        Ok(())
    }

    fn step(&self, step: Step, n: usize, repo: &Path, work: &Path, src: &Path) -> Result<Command> {
        let r = repo.to_str().context("repo path")?;
        let s = src.to_str().context("src path")?;
        let out = work.join("restore");
        Ok(match (self.name.as_str(), step) {
            ("ferry", Step::Restore) => {
                let mut c = Command::new(&self.ferry);
                c.arg("--config")
                    .arg(work.join("ferry.toml"))
                    .args(["restore", "bench", "--to"])
                    .arg(out.join("disk.img"));
                c
            }
            ("ferry", _) => {
                let mut c = Command::new(&self.ferry);
                c.arg("--config")
                    .arg(work.join("ferry.toml"))
                    .args(["capture", "bench"]);
                c
            }
            ("restic", Step::Restore) => {
                let mut c = cmd("restic");
                c.args(["-r", r, "restore", "latest", "--target"]).arg(&out);
                c
            }
            ("restic", _) => {
                let mut c = cmd("restic");
                c.args(["-r", r, "backup", s]);
                c
            }
            ("rustic", Step::Restore) => {
                let mut c = cmd(self.rustic.to_str().context("rustic path")?);
                c.args(["-r", r, "--password", "bench", "restore", "latest"])
                    .arg(&out);
                c
            }
            ("rustic", _) => {
                let mut c = cmd(self.rustic.to_str().context("rustic path")?);
                c.args(["-r", r, "--password", "bench", "backup", s]);
                c
            }
            ("borg", Step::Restore) => {
                let mut c = cmd("borg");
                c.current_dir(&out)
                    .args(["extract", &format!("{r}::b{}", n - 1)]);
                c
            }
            ("borg", _) => {
                let mut c = cmd("borg");
                c.args(["create", &format!("{r}::b{n}"), s]);
                c
            }
            ("casync", Step::Restore) => {
                let mut c = cmd("casync");
                c.arg("extract")
                    .arg(format!("--store={r}/store"))
                    .arg(repo.join(format!("{}.caibx", n - 1)))
                    .arg(out.join("disk.img"));
                c
            }
            ("casync", _) => {
                let mut c = cmd("casync");
                c.arg("make")
                    .arg(format!("--store={r}/store"))
                    .arg(repo.join(format!("{n}.caibx")))
                    .arg(s);
                c
            }
            (other, _) => bail!("unknown tool {other}"),
        })
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (base, changed) = ferry_tests::disk::bench_workload(args.workload.clone())?;
    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-bench"));
    let ferry = ferry_tests::ferry::ferry_bin()?;
    let rustic = which("rustic").unwrap_or_else(|| PathBuf::from("rustic"));
    let mut tools = vec!["ferry".to_string()];
    for p in &args.peers {
        let bin = if p == "rustic" {
            rustic.clone()
        } else {
            PathBuf::from(p)
        };
        if Command::new(&bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("{p}: not installed, left out (scripts/bench.sh installs it)");
            continue;
        }
        tools.push(p.clone());
    }
    let image_size = std::fs::metadata(&base)?.len();
    println!(
        "workload: {} ({} MiB) and its changed copy; {} rounds; tools: {}",
        base.parent().unwrap_or(&base).display(),
        image_size >> 20,
        args.rounds,
        tools.join(", ")
    );

    let mut results: BTreeMap<(String, Step), Vec<Measure>> = BTreeMap::new();
    for round in 0..args.rounds {
        for name in &tools {
            let tool = Tool {
                name: name.clone(),
                ferry: ferry.clone(),
                rustic: rustic.clone(),
            };
            let work = scratch.join(name);
            let _ = std::fs::remove_dir_all(&work);
            let (repo, src_dir, out) = (work.join("repo"), work.join("src"), work.join("restore"));
            std::fs::create_dir_all(&src_dir)?;
            std::fs::create_dir_all(&out)?;
            let src = src_dir.join("disk.img");
            tool.init(&repo, &work, &src)?;
            for (i, step) in STEPS.into_iter().enumerate() {
                // The backed-up path holds the base image, then the changed one.
                let image = if step == Step::Full { &base } else { &changed };
                if step != Step::Restore {
                    let _ = std::fs::remove_file(&src);
                    std::fs::hard_link(image, &src)?;
                }
                warm(&[&base, &changed])?;
                let before = dir_size(&repo);
                let mut c = tool.step(step, i + 1, &repo, &work, &src)?;
                let (wall_s, rss) = measure(&format!("{name} {}", step.name()), &mut c)?;
                let added = dir_size(&repo).saturating_sub(before);
                eprintln!(
                    "round {} {name:>7} {:<12} {wall_s:7.2}s {rss:7.1} MiB rss {:8.1} MiB added",
                    round + 1,
                    step.name(),
                    added as f64 / 1048576.0
                );
                results
                    .entry((name.clone(), step))
                    .or_default()
                    .push(Measure {
                        wall_s,
                        rss_mib: rss,
                        added_mib: added as f64 / 1048576.0,
                    });
            }
            check_restore(name, &out, &changed)?;
            let _ = std::fs::remove_dir_all(&work);
        }
    }

    let med = |name: &str, step: Step, f: fn(&Measure) -> f64| {
        median(
            results
                .get(&(name.to_string(), step))
                .map(|v| v.iter().map(f).collect())
                .unwrap_or_default(),
        )
    };
    println!(
        "\nmedians of {} rounds (wall time, peak RSS, bytes added to the repository)",
        args.rounds
    );
    println!(
        "{:<8} {:<12} {:>9} {:>12} {:>12}",
        "tool", "step", "wall s", "peak RSS", "added"
    );
    for name in &tools {
        for step in STEPS {
            println!(
                "{:<8} {:<12} {:>9.2} {:>8.1} MiB {:>8.1} MiB",
                name,
                step.name(),
                med(name, step, |m| m.wall_s),
                med(name, step, |m| m.rss_mib),
                med(name, step, |m| m.added_mib)
            );
        }
    }
    println!(
        "\nFerry's speed-up over each peer (peer time / Ferry time; > 1 means Ferry is faster)"
    );
    println!(
        "{:<8} {:>8} {:>12} {:>8}   incremental bytes added: Ferry / peer",
        "peer", "full", "incremental", "restore"
    );
    for name in tools.iter().skip(1) {
        let r = |s| med(name, s, |m| m.wall_s) / med("ferry", s, |m| m.wall_s);
        let b = med("ferry", Step::Incremental, |m| m.added_mib)
            / med(name, Step::Incremental, |m| m.added_mib);
        println!(
            "{:<8} {:>7.2}x {:>11.2}x {:>7.2}x   {:.2}",
            name,
            r(Step::Full),
            r(Step::Incremental),
            r(Step::Restore),
            b
        );
    }

    if !args.no_ssh {
        ssh_vs_local(&ferry, &base, &scratch, args.rounds)?;
    }
    Ok(())
}

/// The restored image must equal the changed image, whatever the tool named it.
fn check_restore(tool: &str, out: &Path, expected: &Path) -> Result<()> {
    let mut found = None;
    let mut stack = vec![out.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "disk.img" {
                found = Some(e.path());
            }
        }
    }
    let f =
        found.with_context(|| format!("{tool}: no restored disk.img under {}", out.display()))?;
    if ferry_tests::disk::sha256(&f)? != ferry_tests::disk::sha256(expected)? {
        bail!("{tool}: the restored image differs from the source");
    }
    Ok(())
}

/// Ferry's capture of one disk over SSH (loopback sshd) against the same disk read from
/// a local path, both into fresh local stores.
fn ssh_vs_local(ferry: &Path, image: &Path, scratch: &Path, rounds: usize) -> Result<()> {
    let mut stack = Stack::new()?;
    stack.add_host("ssh-src", Some(image))?;
    let kh = stack.pinned_known_hosts()?;
    let mut local = stack.entry("ssh-src", &kh);
    local.name = "local-src".into();
    local.ssh = None;
    local.identity = None;
    let entries = [stack.entry("ssh-src", &kh), local];
    let (mut ssh_t, mut local_t) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (host, times) in [("ssh-src", &mut ssh_t), ("local-src", &mut local_t)] {
            let store = scratch.join("ssh-bench-store");
            let _ = std::fs::remove_dir_all(&store);
            let cfg = scratch.join("ssh-bench.toml");
            write_config(&cfg, &format!("file://{}", store.display()), None, &entries)?;
            let run = |args: &[&str]| {
                let mut c = Command::new(ferry);
                c.arg("--config").arg(&cfg).args(args);
                c
            };
            measure("ferry store init", &mut run(&["store", "init"]))?;
            warm(&[&stack.host("ssh-src").disk])?;
            let (t, _) = measure(
                &format!("ferry capture {host}"),
                &mut run(&["capture", host]),
            )?;
            times.push(t);
        }
    }
    let size = std::fs::metadata(image)?.len() as f64 / 1048576.0;
    let (s, l) = (median(ssh_t), median(local_t));
    println!("\ncapture over SSH (loopback sshd) vs local path, medians of {rounds} rounds");
    println!("local path: {l:.2}s ({:.0} MiB/s); over SSH: {s:.2}s ({:.0} MiB/s); SSH reaches {:.0}% of local", size / l, size / s, 100.0 * l / s);
    Ok(())
}
