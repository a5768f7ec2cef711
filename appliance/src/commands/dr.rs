//! `ferry dr status [GROUP]`: where each protection group stands.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::dr::status::{status, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DrCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DrCommand {
    /// Per group: its state, each host's points against the RPO target and next sync,
    /// the alarms, the last runs with achieved RPO and RTO.
    Status {
        /// One group; default: every group of the config and every protected one.
        group: Option<String>,
    },
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Status> {
    match args.command {
        DrCommand::Status { group } => status(ctx, group.as_deref()).await,
    }
}
