//! `ferry failback GROUP [--abort]`: bring a failed-over protection group home (or
//! resume its failback after the appliance restarted), or abort it before its cutover.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::dr::failback::run::FailbackRun;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub group: String,
    /// Stop the running failback before its cutover: the group stays in AWS, as it was
    /// (FAILED_OVER); origin disks written part-way are reported.
    #[arg(long)]
    pub abort: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<FailbackRun> {
    crate::dr::failback::run::run(ctx, &args.group, args.abort).await
}
