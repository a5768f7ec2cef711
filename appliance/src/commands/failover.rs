//! `ferry failover GROUP [--at TIME]`: fail a protection group over to AWS by hand:
//! the same state machine (and lock) the group's failover alarm starts.

use anyhow::Result;
use ferry_core::steps::failover::Mode;

use crate::ctx::Ctx;
use crate::dr::runs::GroupRun;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub group: String,
    /// Recover each host from its newest built point at or before this time (RFC 3339,
    /// e.g. 2026-11-30T12:00:00Z); default: the newest built point.
    #[arg(long)]
    pub at: Option<String>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<GroupRun> {
    crate::dr::runs::run(
        ctx,
        &args.group,
        Mode::Failover,
        args.at.as_deref(),
        !ctx.json(),
    )
    .await
}
