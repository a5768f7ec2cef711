//! `ferry image HOST [--point ID] [--no-wait]`: build (or find) a point's AMI with the
//! build-image state machine, following it state by state.

use anyhow::{Context, Result};

use crate::cloud::executions::{Cloud, RunReport};
use crate::ctx::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub host: String,
    /// Point id (or its unique suffix); default: the newest.
    #[arg(long)]
    pub point: Option<String>,
    /// Start the build and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<RunReport> {
    let repo = ctx.repo().await?;
    let cloud = Cloud::new(&ctx.aws().await.sfn, &ctx.settings.aws);
    cloud
        .image(
            &repo,
            &args.host,
            args.point.as_deref(),
            !args.no_wait,
            !ctx.json(),
        )
        .await
        .with_context(|| format!("image of host {}", args.host))
}
