//! `ferry store init`: create the store (idempotent).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use ferry_core::repo_config::RepoConfig;
use ferry_store::Repository;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::report::Report;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create the store (idempotent).
    Init,
}

#[derive(Debug, Serialize)]
pub struct StoreReport {
    pub store: String,
    pub created: bool,
    pub config: RepoConfig,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<StoreReport> {
    match args.action {
        Action::Init => {
            let (repo, created) = Repository::init(ctx.backend().await?).await?;
            Ok(StoreReport {
                store: repo.backend.describe(),
                created,
                config: repo.config,
            })
        }
    }
}

impl Report for StoreReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let verb = if self.created {
            "created"
        } else {
            "already initialised:"
        };
        writeln!(
            out,
            "store {verb} {} (id {})",
            self.store, self.config.store_id
        )
    }
}
