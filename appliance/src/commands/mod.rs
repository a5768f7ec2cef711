//! The command line: global options, one module per command (its clap `Args`, its
//! `run(args, &Ctx)` and its report), and the one dispatch. A new command is a new file
//! here, one line in [`Command`] and one arm in [`run`].

pub mod args;
pub mod burst;
pub mod capture;
pub mod convert;
pub mod daemon;
pub mod discover;
pub mod dr;
pub mod drill;
pub mod failback;
pub mod failover;
pub mod image;
pub mod migrate;
pub mod points;
pub mod protect;
pub mod report;
pub mod restore;
pub mod runs;
pub mod store;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::ctx::Ctx;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Agentless server capture, restore and protection"
)]
pub struct Cli {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "FERRY_CONFIG",
        default_value = "ferry.toml"
    )]
    pub config: PathBuf,
    /// Store URL, overriding `store` in the config (file:///abs/path or s3://bucket/prefix).
    #[arg(long, global = true, env = "FERRY_STORE")]
    pub store: Option<String>,
    /// Print one JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the store.
    Store(store::Args),
    /// Capture hosts' disks into new recovery points.
    Capture(capture::Args),
    /// Make a point bootable on EC2 Nitro (NVMe, ENA, serial console, DHCP on any
    /// interface): a new point of the host, derived from it, that shares its chunks.
    Convert(convert::Args),
    /// List a host's recovery points.
    Points(points::Args),
    /// Restore a point to a file or onto a host's disk.
    Restore(restore::Args),
    /// Check that points are restorable.
    Verify(verify::Args),
    /// Build (or find) the AMI of a point: runs the build-image state machine.
    Image(image::Args),
    /// Migrate a host to EC2: runs the migrate state machine and follows it.
    Migrate(migrate::Args),
    /// List Step Functions runs (image builds, migrations, failovers, drills, failbacks,
    /// bursts, scale-ins).
    Runs(runs::Args),
    /// Discover hosts over SSH: inventory, dependency map, performance, sizing, waves.
    Discover(discover::Args),
    /// Render the last discovery as a self-contained HTML report.
    Report(report::Args),
    /// Record a protection group in AWS (tiers, launch settings, traffic switch,
    /// health) and create its alarms; idempotent.
    Protect(protect::Args),
    /// Run the protection groups: sync policies, origin health probes, metrics.
    Daemon(daemon::Args),
    /// Fail a protection group over to AWS by hand (the alarm does it hands-off).
    Failover(failover::Args),
    /// Bring a failed-over group home: two passes of changed bytes, a short cutover,
    /// traffic back to the origin (the appliance works the failback state machine).
    Failback(failback::Args),
    /// Rehearse a failover in the drill subnet, then remove everything it launched.
    Drill(drill::Args),
    /// Disaster recovery status.
    Dr(dr::Args),
    /// Hybrid burst: set a tier up for bursting into AWS, and its status.
    Burst(burst::Args),
}

/// Runs one command and prints its report as the context's output mode says.
pub async fn run(command: Command, ctx: &Ctx) -> Result<ExitCode> {
    let out = ctx.output;
    match command {
        Command::Store(a) => out.emit(&store::run(a, ctx).await?),
        Command::Capture(a) => out.emit(&capture::run(a, ctx).await?),
        Command::Convert(a) => out.emit(&convert::run(a, ctx).await?),
        Command::Points(a) => out.emit(&points::run(a, ctx).await?),
        Command::Restore(a) => out.emit(&restore::run(a, ctx).await?),
        Command::Verify(a) => out.emit(&verify::run(a, ctx).await?),
        Command::Image(a) => out.emit(&image::run(a, ctx).await?),
        Command::Migrate(a) => out.emit(&migrate::run(a, ctx).await?),
        Command::Runs(a) => out.emit(&runs::run(a, ctx).await?),
        Command::Discover(a) => out.emit(&discover::run(a, ctx).await?),
        Command::Report(a) => out.emit(&report::run(a, ctx).await?),
        Command::Protect(a) => out.emit(&protect::run(a, ctx).await?),
        Command::Daemon(a) => out.emit(&daemon::run(a, ctx).await?),
        Command::Failover(a) => out.emit(&failover::run(a, ctx).await?),
        Command::Failback(a) => out.emit(&failback::run(a, ctx).await?),
        Command::Drill(a) => out.emit(&drill::run(a, ctx).await?),
        Command::Dr(a) => out.emit(&dr::run(a, ctx).await?),
        Command::Burst(a) => out.emit(&burst::run(a, ctx).await?),
    }
}
