//! `ferry-write-rss`: the peak resident memory of one build-image `write` invocation,
//! for images of several sizes and ranges of several lengths, next to the memory the
//! earlier design needed for the same invocation (the whole store index, the point's
//! whole chunk list and its placements, loaded by every `write`), measured in the same
//! run on the same store.
//!
//! For each image size a synthetic point is written to a fresh `file://` store (every
//! 512 KiB block holds data; see `ferry_tests::synth`), the `plan` step runs against
//! moto's EBS, and then each measurement runs in a child process of its own (this
//! binary again), so that its peak RSS (`VmHWM`) is that one step's alone: `plan`,
//! one `write` of a range in the middle of the image, and the old inputs loaded.
//!
//! `cargo run --release -p ferry-tests --bin ferry-write-rss -- --sizes-gib 2,16`

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ferry_core::steps::build_image::{PlanRequest, WriteRange};
use ferry_fn_build_image::cloud::Cloud;
use ferry_fn_build_image::steps;
use ferry_store::{Backend, Repository};
use ferry_tests::stack::Stack;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    child: Option<Child>,
    /// Image sizes in GiB.
    #[arg(long, value_delimiter = ',', default_value = "2,16")]
    sizes_gib: Vec<u64>,
    /// Range lengths in 512 KiB blocks (128 MiB and 512 MiB by default; moto keeps every
    /// block written in memory, so the default 4096 would need GiBs of it).
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    range_blocks: Vec<u64>,
}

#[derive(Subcommand)]
enum Child {
    /// One `plan` step; prints its plan and peak RSS.
    Plan {
        store: String,
        host: String,
        range_blocks: u64,
    },
    /// One `write` step; prints its blocks written and peak RSS.
    Write { store: String, request: String },
    /// What a `write` loaded before locations objects: the whole index, the point's
    /// chunk list and their placements; prints the peak RSS.
    OldInputs { store: String, host: String },
}

fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

async fn child(c: Child) -> Result<Value> {
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    match c {
        Child::Plan {
            store,
            host,
            range_blocks,
        } => {
            let repo = Repository::open(Backend::open_with(&store, &cfg)?).await?;
            let cloud = Cloud::new(&cfg, None, range_blocks);
            let req = PlanRequest {
                host,
                point: None,
                attempt: "rss".into(),
            };
            let plan = steps::plan(&cloud, &repo, req).await?;
            Ok(json!({ "plan": plan, "peak_rss_kib": peak_rss_kib()? }))
        }
        Child::Write { store, request } => {
            let repo = Repository::open(Backend::open_with(&store, &cfg)?).await?;
            let cloud = Cloud::new(&cfg, None, 1);
            let req: WriteRange = serde_json::from_str(&request)?;
            let w = steps::write(&cloud, &repo, req).await?;
            Ok(json!({ "blocks_written": w.blocks_written, "peak_rss_kib": peak_rss_kib()? }))
        }
        Child::OldInputs { store, host } => {
            let repo = Repository::open(Backend::open_with(&store, &cfg)?).await?;
            let index = repo.read_index().await?.index;
            let m = repo.resolve_point(&host, None).await?;
            let placements: Vec<_> = m.offsets().collect();
            let chunks = index.chunk_count();
            let rss = peak_rss_kib()?;
            drop((index, placements));
            Ok(json!({ "chunks": chunks, "peak_rss_kib": rss }))
        }
    }
}

fn run_child(env: &[(String, String)], args: &[&str]) -> Result<Value> {
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    if !out.status.success() {
        bail!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn mib(kib: &Value) -> String {
    format!("{:.0} MiB", kib.as_f64().unwrap_or(0.0) / 1024.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    if let Some(c) = args.child {
        let v = rt.block_on(child(c))?;
        println!("{v}");
        return Ok(());
    }
    let stack = Stack::new()?.with_moto()?;
    let moto = stack.moto.as_ref().context("no moto")?;
    let env = moto.env();
    println!("| image | chunks | plan (range 4096) | write of one range | old write inputs (index + chunk list) |");
    println!("|---|---|---|---|---|");
    for gib in &args.sizes_gib {
        let dir = stack.path().join(format!("store-{gib}"));
        std::fs::create_dir_all(&dir)?;
        let store = format!("file://{}", dir.display());
        let host = format!("synth{gib}");
        let made = std::time::Instant::now();
        rt.block_on(async {
            let (repo, _) =
                Repository::init(Backend::open_with(&store, &moto.sdk_config().await)?).await?;
            ferry_tests::synth::point(&repo, &host, "20261125T000000Z-00000001", gib << 30).await
        })?;
        eprintln!(
            "{gib} GiB synthetic point written in {:.1} s",
            made.elapsed().as_secs_f64()
        );
        let plan = run_child(&env, &["plan", &store, &host, "4096"])?;
        let mut writes = Vec::new();
        for rb in &args.range_blocks {
            // A range in the middle of the image.
            let total = plan["plan"]["blocks_total"].as_u64().unwrap_or(0);
            let req = json!({
                "host": host,
                "point": plan["plan"]["point"],
                "snapshot_id": plan["plan"]["snapshot_id"],
                "parent_point": null,
                "range": total / 2 / rb,
                "range_blocks": rb,
                "attempt": "rss",
            });
            let w = run_child(&env, &["write", &store, &req.to_string()])?;
            if w["blocks_written"].as_u64() != Some(*rb) {
                bail!("a range of {rb} blocks wrote {}", w["blocks_written"]);
            }
            writes.push(format!(
                "{rb} blocks ({} MiB): {}",
                rb / 2,
                mib(&w["peak_rss_kib"])
            ));
        }
        let old = run_child(&env, &["old-inputs", &store, &host])?;
        println!(
            "| {gib} GiB | {} | {} | {} | {} |",
            old["chunks"],
            mib(&plan["peak_rss_kib"]),
            writes.join("; "),
            mib(&old["peak_rss_kib"]),
        );
    }
    Ok(())
}
