//! `ferry drill GROUP`: a failover rehearsal in the group's drill subnet: no traffic
//! switch, health verified, then everything launched removed; reports the measured RTO
//! and what it cost.

use anyhow::Result;
use ferry_core::steps::failover::Mode;

use crate::ctx::Ctx;
use crate::dr::runs::GroupRun;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub group: String,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<GroupRun> {
    crate::dr::runs::run(ctx, &args.group, Mode::Drill, None, !ctx.json()).await
}
