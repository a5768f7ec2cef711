//! `ferry verify [HOST] [--point ID] [--read-data]`: check that points are restorable.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::ctx::Ctx;
use crate::report::{mib, Report};
use ferry_store::check::{verify, VerifyReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this host's points (default: every host in the store).
    pub host: Option<String>,
    /// Only this point.
    #[arg(long, requires = "host")]
    pub point: Option<String>,
    /// Read and check every chunk's data, not just the structure.
    #[arg(long)]
    pub read_data: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<VerifyReport> {
    let repo = ctx.repo().await?;
    let hosts = match &args.host {
        Some(h) => vec![h.clone()],
        None => repo.list_hosts().await?,
    };
    Ok(verify(&repo, &hosts, args.point.as_deref(), args.read_data).await?)
}

impl Report for VerifyReport {
    fn human(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for e in &self.errors {
            eprintln!("error: {e}");
        }
        let state = if self.ok { "ok" } else { "FAILED" };
        writeln!(
            out,
            "verify {state}: {} points, {} chunks, {} packs read ({})",
            self.points_checked,
            self.chunks_checked,
            self.packs_checked,
            mib(self.bytes_read)
        )
    }

    fn exit_code(&self) -> ExitCode {
        match self.ok {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    }
}
