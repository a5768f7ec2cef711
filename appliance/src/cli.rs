//! Command-line interface (clap). Every command takes `--json` and then prints exactly one
//! JSON document on stdout.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    #[command(subcommand)]
    Store(StoreCommand),
    /// Capture hosts' disks into new recovery points.
    Capture(CaptureArgs),
    /// List a host's recovery points.
    Points { host: String },
    /// Restore a point to a file or onto a host's disk.
    Restore(RestoreArgs),
    /// Check that points are restorable.
    Verify(VerifyArgs),
    /// Build (or find) the AMI of a point: runs the build-image state machine.
    Image(ImageArgs),
    /// Migrate a host to EC2: runs the migrate state machine and follows it.
    Migrate(MigrateArgs),
    /// List Step Functions runs (image builds and migrations) with their status.
    Runs(RunsArgs),
    /// Discover hosts over SSH: inventory, dependency map, performance, sizing, waves.
    Discover(DiscoverArgs),
    /// Render the last discovery as a self-contained HTML report.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Hosts of the config (default: every host with `ssh`, and the [discovery] addresses).
    pub hosts: Vec<String>,
    /// Only the hosts of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Sample performance and connections over this window (e.g. 10m); 0: one look.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub sample: std::time::Duration,
    /// Time between samples.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Write proposed [[host]] entries for hosts not in the config to
    /// ferry.discovered.toml beside it.
    #[arg(long)]
    pub write_config: bool,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write.
    #[arg(long, default_value = "discovery.html")]
    pub out: PathBuf,
    /// The discovery to render (default: where `ferry discover` stored it).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// Start the build and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// EC2 instance type of the target.
    #[arg(long, default_value = crate::cloud::commands::DEFAULT_INSTANCE_TYPE)]
    pub instance_type: String,
    /// Subnet to launch into.
    #[arg(long)]
    pub subnet: String,
    /// Private IPv4 address of the target in the subnet; `source` keeps the source
    /// host's SSH address. Default: one the subnet assigns.
    #[arg(long)]
    pub private_ip: Option<String>,
    /// Security group for the target (repeatable).
    #[arg(long = "security-group")]
    pub security_groups: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this host's runs.
    pub host: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the store (idempotent).
    Init,
}

#[derive(Debug, Args)]
pub struct HostKeyArgs {
    /// Pin the host key of a host seen for the first time (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_key: bool,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[arg(required = true)]
    pub hosts: Vec<String>,
    /// After each capture, start building its AMI in AWS (the build-image state
    /// machine), so that an image is ready before it is needed.
    #[arg(long)]
    pub image: bool,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Host whose point to restore.
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// Write the image to this file.
    #[arg(long, conflicts_with = "to_host", required_unless_present = "to_host")]
    pub to: Option<PathBuf>,
    /// With --to: make the file durable (fsync) before reporting success.
    #[arg(long, requires = "to")]
    pub fsync: bool,
    /// Write onto this host's disk (a host of the config), only where it differs.
    #[arg(long)]
    pub to_host: Option<String>,
    /// A point known to be on the target disk: compare against it instead of reading the disk.
    #[arg(long, requires = "to_host")]
    pub base: Option<String>,
    #[command(flatten)]
    pub keys: HostKeyArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this host's points (default: every host in the store).
    pub host: Option<String>,
    /// Only this point.
    #[arg(long, requires = "host")]
    pub point: Option<String>,
    /// Read and check every chunk's data, not just the structure.
    #[arg(long)]
    pub read_data: bool,
}
