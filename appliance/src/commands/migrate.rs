//! `ferry migrate HOST --subnet S ...`: run the migrate state machine for a host's point
//! and follow it.

use anyhow::{Context, Result};
use ferry_core::steps::migrate::Target;

use crate::cloud::executions::{Cloud, RunReport, DEFAULT_INSTANCE_TYPE};
use crate::ctx::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// EC2 instance type of the target.
    #[arg(long, default_value = DEFAULT_INSTANCE_TYPE)]
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

pub async fn run(args: Args, ctx: &Ctx) -> Result<RunReport> {
    let repo = ctx.repo().await?;
    let private_ip = match args.private_ip.as_deref() {
        Some("source") => Some(ctx.settings.host(&args.host)?.ipv4_address().with_context(
            || {
                format!(
                    "--private-ip source: host {} has no SSH address to keep",
                    args.host
                )
            },
        )?),
        other => other.map(str::to_string),
    };
    let target = Target {
        instance_type: args.instance_type,
        subnet_id: args.subnet,
        private_ip,
        security_group_ids: args.security_groups,
    };
    let cloud = Cloud::new(&ctx.aws().await.sfn, &ctx.settings.aws);
    cloud
        .migrate(
            &repo,
            &args.host,
            args.point.as_deref(),
            &target,
            !ctx.json(),
        )
        .await
        .with_context(|| format!("migration of host {}", args.host))
}
