//! `ferry-image-bench`: how fast `build-image` turns a recovery point into an EBS
//! snapshot and AMI on the local stack, and how many blocks an incremental image
//! writes, next to coldsnap (AWS Labs' tool that uploads a disk image to an EBS snapshot
//! with the same EBS direct APIs) on the same moto, in the same run.
//!
//! Per round, on a fresh moto with the template deployed: Ferry captures the workload's
//! 2 GiB image into the S3 store, then its build-image steps run in this (release)
//! process exactly as the state machine sequences them (plan, the ranges in parallel as
//! the Map does, finish); then the changed image is captured and built as a child
//! snapshot. coldsnap uploads the image and then the changed image. Wall time,
//! throughput (image size over wall time) and blocks written are reported as medians,
//! with the number of 512 KiB blocks that really differ between the two images.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_fn_build_image::cloud::{Cloud, DEFAULT_RANGE_BLOCKS};
use ferry_store::{Backend, Repository};
use ferry_tests::disk;
use ferry_tests::ebs::{file_blocks, nonzero};
use ferry_tests::ferry::HostEntry;
use ferry_tests::stack::{Stack, CLOUD_STORE, TABLE};
use ferry_tests::stats::median;

#[derive(Parser)]
struct Args {
    /// Directory holding disk.img and disk-changed.img (made if missing).
    #[arg(long, env = "WORKLOAD_DIR")]
    workload: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Leave coldsnap out (it must otherwise be installed).
    #[arg(long)]
    no_coldsnap: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Build {
    wall_s: f64,
    blocks: u64,
}

async fn ferry_build(cloud: &Cloud, repo: &Repository, host: &str) -> Result<Build> {
    let start = Instant::now();
    let (_, done) = ferry_tests::build::build(cloud, repo, host, "bench").await?;
    Ok(Build {
        wall_s: start.elapsed().as_secs_f64(),
        blocks: done.blocks_written,
    })
}

async fn snapshot_block_count(ebs: &aws_sdk_ebs::Client, sid: &str) -> Result<u64> {
    let mut n = 0u64;
    let mut token = None;
    loop {
        let out = ebs
            .list_snapshot_blocks()
            .snapshot_id(sid)
            .set_next_token(token)
            .send()
            .await?;
        n += out.blocks().len() as u64;
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(n);
        }
    }
}

async fn coldsnap_upload(env: &[(String, String)], image: &Path) -> Result<Build> {
    let start = Instant::now();
    let out = Command::new("coldsnap")
        .arg("upload")
        .arg(image)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .context("running coldsnap (install it with `cargo install coldsnap`)")?;
    let wall_s = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("coldsnap failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let sid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !sid.starts_with("snap-") {
        bail!("coldsnap printed no snapshot id: {sid}");
    }
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    let blocks = snapshot_block_count(&aws_sdk_ebs::Client::new(&cfg), &sid).await?;
    Ok(Build { wall_s, blocks })
}

struct Round {
    ferry_full: Build,
    ferry_child: Build,
    coldsnap_full: Option<Build>,
    coldsnap_changed: Option<Build>,
}

fn round(args: &Args, base: &Path, changed: &Path, rt: &tokio::runtime::Runtime) -> Result<Round> {
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().context("no moto")?;
    let env = moto.env();
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    let disk_path = stack.path().join("bench.img");
    disk::copy(base, &disk_path)?;
    let ferry = stack.ferry(
        CLOUD_STORE,
        &[HostEntry {
            name: "bench".into(),
            ssh: None,
            identity: None,
            disk: disk_path.clone(),
            known_hosts: None,
            extra: String::new(),
        }],
    )?;
    ferry.json(&["store", "init"])?;
    ferry.json(&["capture", "bench"])?;
    let (ferry_full, ferry_child) = rt.block_on(async {
        let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
        let cloud = Cloud::new(&cfg, Some(TABLE.into()), DEFAULT_RANGE_BLOCKS);
        let repo = Repository::open(Backend::open(CLOUD_STORE, &Default::default()).await?).await?;
        let full = ferry_build(&cloud, &repo, "bench").await?;
        disk::copy(changed, &disk_path)?;
        ferry.json(&["capture", "bench"])?;
        let repo = Repository::open(Backend::open(CLOUD_STORE, &Default::default()).await?).await?;
        let child = ferry_build(&cloud, &repo, "bench").await?;
        Ok::<_, anyhow::Error>((full, child))
    })?;
    let (coldsnap_full, coldsnap_changed) = if args.no_coldsnap {
        (None, None)
    } else {
        rt.block_on(async {
            let a = coldsnap_upload(&env, base).await?;
            let b = coldsnap_upload(&env, changed).await?;
            Ok::<_, anyhow::Error>((Some(a), Some(b)))
        })?
    };
    Ok(Round {
        ferry_full,
        ferry_child,
        coldsnap_full,
        coldsnap_changed,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (base, changed) = disk::bench_workload(args.workload.clone())?;
    let size = std::fs::metadata(&base)?.len();
    let (a, b) = (file_blocks(&base)?, file_blocks(&changed)?);
    let nonzero_blocks = nonzero(&a).len() as u64;
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count() as u64;
    drop((a, b));
    let rt = tokio::runtime::Runtime::new()?;
    let mut rounds = Vec::new();
    for i in 0..args.rounds {
        eprintln!("round {}/{}", i + 1, args.rounds);
        rounds.push(round(&args, &base, &changed, &rt)?);
    }
    let m = |f: &dyn Fn(&Round) -> Option<Build>| -> Option<(f64, u64)> {
        let v: Vec<Build> = rounds.iter().filter_map(f).collect();
        if v.is_empty() {
            return None;
        }
        Some((
            median(v.iter().map(|b| b.wall_s).collect()),
            v.last().map(|b| b.blocks).unwrap_or(0),
        ))
    };
    let mib = size as f64 / (1 << 20) as f64;
    println!(
        "\nbuild-image on the local stack: {mib:.0} MiB image, {nonzero_blocks} non-zero 512 KiB blocks; \
         {differ} blocks differ after the day of changes; medians of {} rounds\n",
        args.rounds
    );
    println!("| step | Ferry build-image | coldsnap upload |");
    println!("|---|---|---|");
    let cell = |x: Option<(f64, u64)>| match x {
        Some((s, blocks)) => format!(
            "{s:.2} s: {:.0} MiB/s of image; {blocks} blocks written, {:.0} MiB/s",
            mib / s,
            blocks as f64 / 2.0 / s
        ),
        None => "-".into(),
    };
    println!(
        "| full image | {} | {} |",
        cell(m(&|r| Some(r.ferry_full))),
        cell(m(&|r| r.coldsnap_full))
    );
    println!(
        "| after a day of changes | {} (child snapshot) | {} |",
        cell(m(&|r| Some(r.ferry_child))),
        cell(m(&|r| r.coldsnap_changed))
    );
    if let Some((_, child)) = m(&|r| Some(r.ferry_child)) {
        println!(
            "\nincremental image: {child} blocks written for {differ} that differ ({:.2}x); a full image writes {nonzero_blocks}",
            child as f64 / differ.max(1) as f64
        );
    }
    Ok(())
}
