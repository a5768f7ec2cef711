//! `ferry-stack`: starts the local stack for the demo and keeps it up until SIGTERM or
//! SIGINT, then stops everything it started.
//!
//! `ferry-stack --dir D --host NAME=IMAGE [--host ...]` starts the local cloud (moto
//! behind the router, with `infra/template.yaml` deployed into it, and the function
//! binaries of this build behind `cargo lambda watch --only-lambda-apis`) and one sshd host per `--host` (its disk a copy of
//! IMAGE), then writes `D/ferry.toml` (the template's S3 store), `D/stack.env` (the AWS
//! variables, each host's disk and address, the notification topic, as `export` lines)
//! and `D/ready`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ferry_tests::stack::Stack;

#[derive(Parser)]
struct Args {
    /// Where to write ferry.toml, stack.env and ready.
    #[arg(long)]
    dir: PathBuf,
    /// NAME=IMAGE: an sshd host whose disk starts as a copy of IMAGE.
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
    /// The store URL to put in ferry.toml (the functions read the template's).
    #[arg(long, default_value = ferry_tests::stack::CLOUD_STORE)]
    store: String,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let _ = std::fs::remove_file(args.dir.join("ready"));
    let mut stack = Stack::new()?.with_cloud()?;
    for spec in &args.hosts {
        let (name, image) = spec.split_once('=').context("--host takes NAME=IMAGE")?;
        stack.add_host(name, Some(std::path::Path::new(image)))?;
    }
    let kh = stack.pinned_known_hosts()?;
    let entries: Vec<_> = stack
        .hosts
        .iter()
        .map(|h| stack.entry(&h.name, &kh))
        .collect();
    let ferry = stack.ferry(&args.store, &entries)?;
    std::fs::copy(&ferry.config, args.dir.join("ferry.toml"))?;
    let mut env = String::new();
    for (k, v) in &ferry.env {
        env += &format!("export {k}={v}\n");
    }
    for h in &stack.hosts {
        let var = h.name.to_uppercase().replace('-', "_");
        env += &format!("export FERRY_DEMO_DISK_{var}={}\n", h.disk.display());
        env += &format!("export FERRY_DEMO_ADDR_{var}={}:{}\n", h.ip, h.port);
    }
    if let Ok(t) = stack.notify_topic() {
        env += &format!("export FERRY_DEMO_NOTIFY_TOPIC={t}\n");
    }
    std::fs::write(args.dir.join("stack.env"), env)?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    std::fs::write(args.dir.join("ready"), format!("{}\n", std::process::id()))?;
    eprintln!(
        "ferry-stack: up (moto on {}, {} hosts); stop with SIGTERM",
        stack
            .moto
            .as_ref()
            .map(|m| m.endpoint())
            .unwrap_or_default(),
        stack.hosts.len()
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stack);
    eprintln!("ferry-stack: stopped");
    if STOP.load(Ordering::SeqCst) {
        return Ok(());
    }
    bail!("stopped unexpectedly")
}
